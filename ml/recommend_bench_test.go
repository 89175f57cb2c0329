package ml

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
)

// BenchmarkRecommendProcess measures the recommend operator's ingest: one
// subtask (memory state) taking batches of 8192 rows (int64 user ids,
// int32 item ids, the CASE weight expression), appending each row to its
// user's list in keyed state.
//
//	go test -run '^$' -bench RecommendProcess ./ml
func BenchmarkRecommendProcess(b *testing.B) {
	mem := memory.NewGoAllocator()
	rng := rand.New(rand.NewPCG(1, 2))
	evs := genEvents(rng, 8192, 100_000, 20_000)
	batch := toBatch(mem, evSchemaInt, evs)
	defer batch.Release()
	o := testOptions(b)
	spec, err := NewRecommend(o)
	if err != nil {
		b.Fatal(err)
	}
	out, _ := spec.Schema([]*arrow.Schema{evSchemaInt})
	task := &arrowexec.Task{Node: "recommend", Subtask: 0, Parallelism: 1, MaxParallelism: 128, Mem: mem,
		Inputs: []*arrow.Schema{evSchemaInt}, Output: out}
	op, err := spec.New(task)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := op.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer op.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := op.Process(ctx, 0, batch, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(batch.NumRows())/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkStreamProcess measures the streaming recommend operator's
// ingest end to end: batches of 8192 rows (the CASE weight) appended to
// the user and item lists in memory state, an incremental update every
// 10000 interactions (Online.Apply, K = 64, one thread) and the changed
// rows' factors written back, on a model first trained on 200k events of
// 100k users × 20k items.
//
//	go test -run '^$' -bench StreamProcess -benchtime 40x ./ml
func BenchmarkStreamProcess(b *testing.B) {
	mem := memory.NewGoAllocator()
	rng := rand.New(rand.NewPCG(3, 4))
	o := testOptions(b)
	o.Config = Config{Factors: 64, Regularization: 0.05, Alpha: 2, Iterations: 3, Seed: 7, Threads: 1}
	o.Update = &UpdateOptions{Every: 10000}
	spec, err := NewRecommend(o)
	if err != nil {
		b.Fatal(err)
	}
	out, _ := spec.Schema([]*arrow.Schema{evSchemaInt})
	task := &arrowexec.Task{Node: "recommend", Subtask: 0, Parallelism: 1, MaxParallelism: 128, Mem: mem,
		Inputs: []*arrow.Schema{evSchemaInt}, Output: out}
	op, err := spec.New(task)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := op.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer op.Close()
	history := toBatch(mem, evSchemaInt, genEvents(rng, 200_000, 100_000, 20_000))
	if err := op.Process(ctx, 0, history, nil); err != nil {
		b.Fatal(err)
	}
	history.Release()
	batches := make([]arrow.RecordBatch, 16)
	for i := range batches {
		batches[i] = toBatch(mem, evSchemaInt, genEvents(rng, 8192, 100_000, 20_000))
		defer batches[i].Release()
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if err := op.Process(ctx, 0, batches[n%len(batches)], nil); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)*8192/b.Elapsed().Seconds(), "interactions/s")
}
