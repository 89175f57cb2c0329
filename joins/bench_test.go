package joins

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// countEmitter counts and drops emitted rows.
type countEmitter struct{ rows int64 }

func (c *countEmitter) Emit(_ context.Context, b arrow.RecordBatch) error {
	c.rows += b.NumRows()
	b.Release()
	return nil
}

// benchJoin runs one subtask of o over n events per side (keys keys,
// 1 ms apart per side, 4096-row batches alternating sides, the watermark
// 100 ms behind the range both sides sent) and reports input rows/s and output
// rows per input row.
func benchJoin(b *testing.B, o Options, n, keys int) {
	mem := memory.NewGoAllocator()
	rng := rand.New(rand.NewPCG(1, 2))
	var sides [2][]ev
	for s := range 2 {
		for i := 0; i < n; i++ {
			sides[s] = append(sides[s], ev{side: s, k: rng.Int64N(int64(keys)), t: int64(i) + rng.Int64N(50), id: int64(s*10_000_000 + i)})
		}
	}
	const bs = 4096
	var ss []step
	for i := 0; i < n; i += bs {
		// The watermark moves past a range only once both sides sent it.
		ss = append(ss, step{side: 0, b: batch(mem, sides[0][i:min(i+bs, n)]), wm: int64(i) - 100},
			step{side: 1, b: batch(mem, sides[1][i:min(i+bs, n)]), wm: int64(min(i+bs, n)) - 100})
	}
	defer releaseSteps(ss)
	spec, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	out := &countEmitter{}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		op, err := spec.New(&arrowexec.Task{Node: "join", Parallelism: 1, MaxParallelism: 128, Mem: mem, Inputs: []*arrow.Schema{leftSchema, rightSchema}})
		if err != nil {
			b.Fatal(err)
		}
		if err := op.Open(ctx); err != nil {
			b.Fatal(err)
		}
		wh := op.(arrowexec.WatermarkHandler)
		for _, s := range ss {
			if err := op.Process(ctx, s.side, s.b, out); err != nil {
				b.Fatal(err)
			}
			if err := wh.OnWatermark(ctx, s.wm, out); err != nil {
				b.Fatal(err)
			}
		}
		if err := wh.OnWatermark(ctx, arrowexec.MaxWatermark, out); err != nil {
			b.Fatal(err)
		}
		if err := op.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	in := float64(2*n) * float64(b.N)
	b.ReportMetric(in/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(out.rows)/in, "out/row")
}

// BenchmarkIntervalJoin: 200k rows per side over 1,000 keys (a key
// every second per side), ±500 ms: about one match per row.
func BenchmarkIntervalJoin(b *testing.B) {
	benchJoin(b, Options{Type: Interval, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "rt", Lower: -500 * time.Millisecond, Upper: 500 * time.Millisecond}, 200_000, 1_000)
}

// BenchmarkWindowJoin: 200k rows per side over 1,000 keys, 1 s tumbling:
// about one match per row.
func BenchmarkWindowJoin(b *testing.B) {
	benchJoin(b, Options{Type: Window, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "rt", Size: time.Second}, 200_000, 1_000)
}

// BenchmarkRegularJoin: 200k rows per side over 200k keys (about one
// match per row), kept forever.
func BenchmarkRegularJoin(b *testing.B) {
	benchJoin(b, Options{Type: Regular, LeftKeys: []string{"k"}, RightKeys: []string{"k"}}, 200_000, 200_000)
}

// BenchmarkLookupJoin: 400k input rows against a 10,000-row table over
// 10,000 keys (about one match per row).
func BenchmarkLookupJoin(b *testing.B) {
	mem := memory.NewGoAllocator()
	rng := rand.New(rand.NewPCG(3, 4))
	var table, in []ev
	for i := 0; i < 10_000; i++ {
		table = append(table, ev{side: 1, k: int64(i), t: int64(i), id: int64(10_000_000 + i)})
	}
	for i := 0; i < 400_000; i++ {
		in = append(in, ev{side: 0, k: rng.Int64N(10_000), t: int64(i), id: int64(i)})
	}
	var bs []arrow.RecordBatch
	for i := 0; i < len(in); i += 4096 {
		bs = append(bs, batch(mem, in[i:min(i+4096, len(in))]))
	}
	defer func() {
		for _, x := range bs {
			x.Release()
		}
	}()
	spec, err := NewLookup(LookupOptions{Keys: []string{"k"}, TableKeys: []string{"k"}, Table: &memTable{rows: table, version: "v1"}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	out := &countEmitter{}
	op, err := spec.New(&arrowexec.Task{Node: "lookup", Parallelism: 1, MaxParallelism: 128, Mem: mem, Inputs: []*arrow.Schema{leftSchema}})
	if err != nil {
		b.Fatal(err)
	}
	if err := op.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer op.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, x := range bs {
			if err := op.Process(ctx, 0, x, out); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	rows := float64(len(in)) * float64(b.N)
	b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(out.rows)/rows, "out/row")
}
