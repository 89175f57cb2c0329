package windows

import (
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// TestPendingAgainstOracle feeds out-of-order events in batches, each
// followed by a watermark, and checks after every step that Pending
// reports the watermark and the earliest end, among the windows of the
// events so far, that the watermark has not reached: exactly for
// tumbling and sliding windows, and never later than it for sessions
// (which may report a session that grew since).
func TestPendingAgainstOracle(t *testing.T) {
	for _, base := range kinds {
		t.Run(kindName(base), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			opts := base
			opts.Keys, opts.Time, opts.Aggs = []string{"k"}, "t", testAggs
			d := newDriver(t, mem, opts)
			spec := d.op.s
			if p := spec.Pending(); len(p) != 1 || p[0].EarliestEnd != arrowexec.MaxWatermark || p[0].Watermark != arrowexec.MinWatermark {
				t.Fatalf("before any input: %+v", p)
			}
			rng := rand.New(rand.NewPCG(7, uint64(len(kindName(base)))))
			evs := genEvents(rng, 3000, 13, 3, 40)
			size, slide := opts.Size.Milliseconds(), opts.Slide.Milliseconds()
			if slide == 0 {
				slide = size
			}
			var seen []ev
			maxT := int64(-1 << 62)
			for lo := 0; lo < len(evs); lo += 97 {
				hi := min(lo+97, len(evs))
				bs := toBatches(mem, evs[lo:hi], 97)
				for _, b := range bs {
					d.process(b)
				}
				releaseBatches(bs)
				seen = append(seen, evs[lo:hi]...)
				for _, e := range evs[lo:hi] {
					maxT = max(maxT, e.t)
				}
				wm := maxT - 41 - int64(rng.IntN(60))
				d.watermark(wm)
				wm = d.op.wm
				want := int64(arrowexec.MaxWatermark)
				if opts.Kind == Session {
					for w := range oracle(opts, seen) {
						if w.end-1 > wm {
							want = min(want, w.end)
						}
					}
				} else {
					for _, e := range seen {
						for _, w := range fixedWindows(e.t, size, slide) {
							if w[1]-1 > wm {
								want = min(want, w[1])
							}
						}
					}
				}
				p := spec.Pending()
				if len(p) != 1 || p[0].Watermark != wm {
					t.Fatalf("after %d events: Pending %+v, want watermark %d", hi, p, wm)
				}
				got := p[0].EarliestEnd
				switch {
				case got-1 <= wm:
					t.Fatalf("after %d events at watermark %d: earliest pending end %d is due already", hi, wm, got)
				case opts.Kind == Session && got > want:
					t.Fatalf("after %d events at watermark %d: earliest pending end %d, later than the oracle's %d", hi, wm, got, want)
				case opts.Kind != Session && got != want:
					t.Fatalf("after %d events at watermark %d: earliest pending end %d, oracle %d", hi, wm, got, want)
				}
			}
			d.finish()
			if p := spec.Pending(); p[0].EarliestEnd != arrowexec.MaxWatermark {
				t.Fatalf("after the final watermark: %+v", p)
			}
		})
	}
}
