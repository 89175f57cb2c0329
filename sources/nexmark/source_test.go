package nexmark

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/windows"
)

// TestWatermarkSafe: after every Next, no row a reader emits later has a
// date_time at or below its watermark, with and without out-of-order
// groups and delay; the watermark advances to the end of the stream.
func TestWatermarkSafe(t *testing.T) {
	for _, c := range []struct {
		tab   Table
		group int
		delay time.Duration
	}{{Bid, 1, NoWatermarkDelay}, {Person, 1, NoWatermarkDelay}, {Auction, 9, NoWatermarkDelay}, {Bid, 13, 0}} {
		t.Run(fmt.Sprintf("%s/group=%d/delay=%v", c.tab, c.group, c.delay), func(t *testing.T) {
			o := Options{Table: c.tab, Events: 40_000, OutOfOrderGroupSize: c.group, WatermarkDelay: c.delay, BatchEvents: 999, Rate: 1000}
			src, err := NewSource(o)
			if err != nil {
				t.Fatal(err)
			}
			delay := src.Generator().Options().WatermarkDelay.Milliseconds()
			for sub := range 3 {
				r, err := src.Open(context.Background(), &arrowexec.Task{Subtask: sub, Parallelism: 3, Mem: memory.DefaultAllocator})
				if err != nil {
					t.Fatal(err)
				}
				wmr := r.(arrowexec.WatermarkSource)
				wm, _ := wmr.CurrentWatermark()
				var maxTime int64
				for {
					b, err := r.Next(context.Background())
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					for _, ts := range timesOf(b) {
						if ts <= wm {
							t.Fatalf("subtask %d: date_time %d after watermark %d", sub, ts, wm)
						}
						maxTime = max(maxTime, ts)
					}
					b.Release()
					next, _ := wmr.CurrentWatermark()
					if next < wm {
						t.Fatalf("watermark went back from %d to %d", wm, next)
					}
					wm = next
				}
				// The stream ends at event time 40 s (rate 1000/s): the last
				// watermark is that, less the delay and the group.
				if end := src.Generator().EventTime(40_000) - delay - int64(c.group) - 1; wm < end || wm < maxTime-delay-int64(c.group) {
					t.Fatalf("subtask %d ends at watermark %d, want at least %d", sub, wm, end)
				}
			}
		})
	}
}

// fakeClock is a settable wall clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestPace: a paced reader emits exactly the events due by the (fake) wall
// clock, and all of them.
func TestPace(t *testing.T) {
	src, err := NewSource(Options{Table: Bid, Pace: true, Rate: 5000})
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	src.now = clk.now
	var waits int
	src.wait = func(ctx context.Context, d time.Duration) error {
		if d <= 0 || d > maxPaceWait {
			t.Fatalf("paced reader waits %v", d)
		}
		waits++
		return nil
	}
	r, err := src.Open(context.Background(), &arrowexec.Task{Parallelism: 1, Mem: memory.DefaultAllocator})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	g := src.Generator()
	start := clk.t
	var rows int64
	for _, step := range []time.Duration{0, 3 * time.Millisecond, 250 * time.Millisecond, time.Second, 7 * time.Second} {
		clk.t = clk.t.Add(step)
		el := clk.t.Sub(start).Milliseconds()
		for {
			b, err := r.Next(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if b == nil {
				break
			}
			for _, ts := range timesOf(b) {
				if ts-g.base > el {
					t.Fatalf("at %d ms: event of %d ms emitted", el, ts-g.base)
				}
			}
			rows += b.NumRows()
			b.Release()
		}
		// Every event number with date_time <= el is out: el·5 + 5 of them.
		var want int64
		for e := int64(0); g.EventTime(e)-g.base <= el; e++ {
			if Kind(e) == Bid {
				want++
			}
		}
		if rows != want {
			t.Fatalf("at %d ms: %d bids emitted, want %d", el, rows, want)
		}
	}
	if waits != 5 {
		t.Fatalf("%d waits, want one per clock step", waits)
	}
}

// TestWindowsFireInAJob runs an unbounded auction source at parallelism 2
// into a tumbling window of 1 s counting auctions per category, stops the
// job once windows fired, and checks every fired window against a count
// over the generator's events: the watermark let them fire, and only when
// complete.
func TestWindowsFireInAJob(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := Options{Table: Auction, Rate: 20_000, BatchEvents: 4096, WatermarkDelay: 100 * time.Millisecond}
	src, err := NewSource(o)
	if err != nil {
		t.Fatal(err)
	}
	agg, err := windows.ParseAgg("count(*) AS n")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := windows.New(windows.Options{Kind: windows.Tumbling, Size: time.Second, Keys: []string{"category"}, Time: EventTimeColumn, Aggs: []windows.Agg{agg}})
	if err != nil {
		t.Fatal(err)
	}
	sink := exectest.NewSink()
	defer sink.Release()
	gr := arrowexec.NewGraph()
	s := gr.AddSource("nexmark", src, 2)
	w := gr.Add("window", spec, 2, s.HashBy("category"))
	gr.Add("sink", sink, 1, w.Rebalance())
	j, err := gr.Compile(arrowexec.RunOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- j.Run(context.Background()) }()
	fired := func() int64 {
		var n int64
		for _, m := range j.Metrics("sink") {
			n += m.RowsIn.Load()
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for fired() < 5*20 && time.Now().Before(deadline) { // 20 windows of 5 categories
		time.Sleep(10 * time.Millisecond)
	}
	j.Stop(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Brute force: auctions per (second, category) over the first 30 s.
	g := src.Generator()
	want := map[[2]int64]int64{}
	rec, err := g.Batch(mem, Auction, 0, 30*o.Rate)
	if err != nil {
		t.Fatal(err)
	}
	times := timesOf(rec)
	cat := rec.Column(rec.Schema().FieldIndices("category")[0]).(*array.Int64)
	for i, ts := range times {
		want[[2]int64{ts / 1000 * 1000, cat.Value(i)}]++
	}
	rec.Release()
	var checked int
	for _, b := range sink.All() {
		cs := b.Column(b.Schema().FieldIndices("category")[0]).(*array.Int64)
		ws := b.Column(b.Schema().FieldIndices("window_start")[0]).(*array.Timestamp)
		ns := b.Column(b.Schema().FieldIndices("n")[0]).(*array.Int64)
		for i := 0; i < b.Column(0).Len(); i++ {
			k := [2]int64{int64(ws.Value(i)), cs.Value(i)}
			if k[0] >= g.EventTime(29*o.Rate) {
				continue // beyond the oracle's range
			}
			if ns.Value(i) != want[k] {
				t.Fatalf("window %v: count %d, want %d", k, ns.Value(i), want[k])
			}
			checked++
		}
	}
	if checked < 5*20 {
		t.Fatalf("only %d window results checked", checked)
	}
}
