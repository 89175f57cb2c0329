package windows

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/state"
)

var kinds = []Options{
	{Kind: Tumbling, Size: 100 * time.Millisecond},
	{Kind: Sliding, Size: 100 * time.Millisecond, Slide: 30 * time.Millisecond},
	{Kind: Sliding, Size: 90 * time.Millisecond, Slide: 30 * time.Millisecond},
	{Kind: Session, Gap: 25 * time.Millisecond},
}

func kindName(o Options) string {
	switch o.Kind {
	case Sliding:
		return fmt.Sprintf("sliding-%v-%v", o.Size, o.Slide)
	case Session:
		return fmt.Sprintf("session-%v", o.Gap)
	}
	return fmt.Sprintf("tumbling-%v", o.Size)
}

// TestOracleGraph runs shuffled, boundedly out-of-order events through a
// source -> hash exchange -> window graph at several parallelisms and batch
// sizes with a watermark that never makes an event late, and compares the
// final result of every window with a brute-force oracle. Every window must
// be emitted exactly once (no updates without late data).
func TestOracleGraph(t *testing.T) {
	for _, base := range kinds {
		for _, bs := range []int{1, 17, 500, 4096} {
			for _, par := range []int{1, 3} {
				base, bs, par := base, bs, par
				t.Run(fmt.Sprintf("%s/batch=%d/p=%d", kindName(base), bs, par), func(t *testing.T) {
					mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
					defer mem.AssertSize(t, 0)
					rng := rand.New(rand.NewPCG(uint64(bs), uint64(par)))
					n := 4000
					if bs == 1 {
						n = 600
					}
					const disorder = 40
					// Gaps (step up to 30 ms per event over 8 keys) make
					// sessions both merge across batches and split.
					evs := genEvents(rng, n, 8, 6, disorder)
					opts := base
					opts.Keys, opts.Time, opts.Aggs = []string{"k"}, "t", testAggs
					got, spec := runGraph(t, mem, opts, evs, bs, par, disorder+1)
					want := oracle(opts, evs)
					compareResults(t, got.final(), want)
					if len(got.rows) != len(want) {
						t.Fatalf("%d results for %d windows: lossless watermarks must emit each window once", len(got.rows), len(want))
					}
					if st := spec.Stats(); st.LateRows != 0 || st.Updates != 0 || st.Fired != int64(len(want)) {
						t.Fatalf("stats %+v, want 0 late, 0 updates, %d fired", st, len(want))
					}
				})
			}
		}
	}
}

func runGraph(t *testing.T, mem memory.Allocator, opts Options, evs []ev, bs, par int, lag int64) (*collected, *Spec) {
	t.Helper()
	batches := toBatches(mem, evs, bs)
	src := exectest.NewSource(evSchema, batches)
	releaseBatches(batches)
	defer src.Release()
	src.EventTime, src.Lag = 1, lag
	spec, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	sink := exectest.NewSink()
	defer sink.Release()
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, par)
	w := g.Add("window", spec, par, s.HashBy("k"))
	g.Add("sink", sink, par, w.Forward())
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := &collected{}
	for sub := 0; sub < par; sub++ {
		for _, b := range sink.Batches[sub] {
			c.read(b)
		}
	}
	return c, spec
}

// lateOracle replays the batches with the watermark each one saw and
// returns the windows of the accepted events and the number of late
// (event, window) pairs.
func lateOracle(o Options, batches [][]ev, wms []int64) (map[winKey]result, int64) {
	size, slide, lateness := o.Size.Milliseconds(), o.Slide.Milliseconds(), o.AllowedLateness.Milliseconds()
	if o.Kind == Tumbling {
		slide = size
	}
	accs := map[winKey]*oracleAcc{}
	var late int64
	for i, b := range batches {
		for _, e := range b {
			for _, w := range fixedWindows(e.t, size, slide) {
				if w[1]-1+lateness <= wms[i] {
					late++
					continue
				}
				k := winKey{keyOf(e), w[0], w[1]}
				if accs[k] == nil {
					accs[k] = &oracleAcc{}
				}
				accs[k].add(e)
			}
		}
	}
	out := map[winKey]result{}
	for w, a := range accs {
		out[w] = a.result()
	}
	return out, late
}

// TestOracleLateness drives one operator with a watermark that lags less
// than the disorder, so events arrive late, with several allowed lateness
// values. Late events inside the lateness update their windows
// (is_update); later ones are counted and sent to the side output. The
// final results must match the oracle that replays the same watermarks.
func TestOracleLateness(t *testing.T) {
	for _, base := range kinds[:3] {
		for _, lateness := range []time.Duration{0, 20 * time.Millisecond, 70 * time.Millisecond} {
			for _, bs := range []int{1, 13, 256} {
				base, lateness, bs := base, lateness, bs
				t.Run(fmt.Sprintf("%s/lateness=%v/batch=%d", kindName(base), lateness, bs), func(t *testing.T) {
					mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
					defer mem.AssertSize(t, 0)
					rng := rand.New(rand.NewPCG(uint64(bs), uint64(lateness)))
					evs := genEvents(rng, 3000, 5, 6, 300)
					opts := base
					opts.Keys, opts.Time, opts.Aggs, opts.AllowedLateness = []string{"k"}, "t", testAggs, lateness
					if bs == 13 {
						opts.CacheWindows = -1 // every batch reads and writes the store
					}
					d := newDriver(t, mem, opts)
					var chunks [][]ev
					var wms []int64
					wm, maxT := arrowexec.MinWatermark, int64(-1<<62)
					for lo := 0; lo < len(evs); lo += bs {
						chunk := evs[lo:min(lo+bs, len(evs))]
						chunks, wms = append(chunks, chunk), append(wms, wm)
						b := toBatches(mem, chunk, bs)
						d.process(b[0])
						releaseBatches(b)
						for _, e := range chunk {
							maxT = max(maxT, e.t)
						}
						if next := maxT - 30; next > wm && rng.IntN(3) > 0 {
							wm = next
							d.watermark(wm)
						}
					}
					d.finish()
					want, late := lateOracle(opts, chunks, wms)
					compareResults(t, d.out.final(), want)
					firsts := map[winKey]int{}
					for _, r := range d.out.rows {
						if !r.r.update {
							firsts[r.w]++
						} else if firsts[r.w] == 0 {
							t.Fatalf("%s: update before its first result", r.w)
						}
					}
					for w := range want {
						if firsts[w] != 1 {
							t.Fatalf("%s: %d first results, want 1", w, firsts[w])
						}
					}
					st := d.op.s.Stats()
					if st.LateRows != late {
						t.Fatalf("late rows %d, want %d", st.LateRows, late)
					}
					if late == 0 {
						t.Fatalf("test produced no late data")
					}
					if lateness > 0 && st.Updates == 0 {
						t.Fatalf("no updates with lateness %v", lateness)
					}
				})
			}
		}
	}
}

// TestPebbleBackend runs the graph oracle with window state in Pebble.
func TestPebbleBackend(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	be, err := state.NewPebbleBackend(state.PebbleOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range kinds {
		for _, cache := range []int{0, -1, 5} {
			rng := rand.New(rand.NewPCG(7, 7))
			evs := genEvents(rng, 3000, 8, 6, 40)
			opts := base
			opts.Keys, opts.Time, opts.Aggs, opts.Backend, opts.CacheWindows = []string{"k"}, "t", testAggs, be, cache
			got, _ := runGraph(t, mem, opts, evs, 300, 2, 41)
			compareResults(t, got.final(), oracle(opts, evs))
		}
	}
}
