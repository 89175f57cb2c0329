package ml

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

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
// 100k users × 20k items; every touched item re-solved or popular ones
// deferred (UpdateOptions.ItemDefer), and with a cap of 2 interactions
// per user (MaxHistory: nearly every user of a batch is over it, the
// trim's worst case).
//
//	go test -run '^$' -bench StreamProcess -benchtime 40x ./ml
func BenchmarkStreamProcess(b *testing.B) {
	for _, c := range []struct{ itemDefer, maxHistory int }{{0, 0}, {DefaultItemDefer, 0}, {DefaultItemDefer, 2}} {
		b.Run(fmt.Sprintf("item_defer=%d/max_history=%d", c.itemDefer, c.maxHistory), func(b *testing.B) {
			benchStreamProcess(b, UpdateOptions{Every: 10000, ItemDefer: c.itemDefer, MaxHistory: c.maxHistory})
		})
	}
}

func benchStreamProcess(b *testing.B, up UpdateOptions) {
	mem := memory.NewGoAllocator()
	rng := rand.New(rand.NewPCG(3, 4))
	o := testOptions(b)
	o.Config = Config{Factors: 64, Regularization: 0.05, Alpha: 2, Iterations: 3, Seed: 7, Threads: 1}
	o.Update = &up
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
	c0 := cpuTime()
	for b.Loop() {
		if err := op.Process(ctx, 0, batches[n%len(batches)], nil); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)*8192/b.Elapsed().Seconds(), "interactions/s")
	b.ReportMetric(float64(n)*8192/(float64(cpuTime()-c0)/1e9), "interactions/cpu-s")
}

// BenchmarkStreamCheckpoint1M measures a checkpoint of a streaming
// recommend model of 1M users × 20k items × 64 factors (2M interactions:
// two per user), memory state: the barrier's synchronous part (flush and
// point-in-time view), the asynchronous write of the snapshot, its size,
// and a restore into a new operator (Open). One iteration builds the model
// (a full training of one sweep at the first barrier, not timed).
//
//	go test -run '^$' -bench StreamCheckpoint1M -benchtime 1x ./ml
func BenchmarkStreamCheckpoint1M(b *testing.B) {
	const users, items = 1_000_000, 20_000
	mem := memory.NewGoAllocator()
	rng := rand.New(rand.NewPCG(9, 9))
	o := testOptions(b)
	o.Config = Config{Factors: 64, Regularization: 0.05, Alpha: 2, Iterations: 1, Seed: 7}
	o.Update = &UpdateOptions{Every: 1 << 30}
	spec, err := NewRecommend(o)
	if err != nil {
		b.Fatal(err)
	}
	out, _ := spec.Schema([]*arrow.Schema{evSchemaInt})
	newTask := func() *arrowexec.Task {
		return &arrowexec.Task{Node: "recommend", Subtask: 0, Parallelism: 1, MaxParallelism: 128, Mem: mem,
			Inputs: []*arrow.Schema{evSchemaInt}, Output: out}
	}
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		op, err := spec.New(newTask())
		if err != nil {
			b.Fatal(err)
		}
		if err := op.Open(ctx); err != nil {
			b.Fatal(err)
		}
		evs := make([]event, 0, 65536)
		for u := 0; u < users; u++ {
			for range 2 {
				evs = append(evs, event{user: int64(u), item: int64(rng.IntN(items)), ev: "view", weight: 1})
			}
			if len(evs) == cap(evs) || u == users-1 {
				batch := toBatch(mem, evSchemaInt, evs)
				if err := op.Process(ctx, 0, batch, nil); err != nil {
					b.Fatal(err)
				}
				batch.Release()
				evs = evs[:0]
			}
		}
		ck := op.(arrowexec.AsyncCheckpointer)
		// Barrier 1 trains the model (not timed); barrier 2 is the
		// checkpoint of a trained model measured here.
		if c, err := ck.SnapshotStateAsync(ctx, 1); err != nil {
			b.Fatal(err)
		} else if _, err := c(ctx); err != nil {
			b.Fatal(err)
		}
		runtime.GC() // the set-up's garbage is not the checkpoint's cost
		b.StartTimer()
		t0, c0 := time.Now(), cpuTime()
		complete, err := ck.SnapshotStateAsync(ctx, 2)
		if err != nil {
			b.Fatal(err)
		}
		t1, c1 := time.Now(), cpuTime()
		snap, err := complete(ctx)
		if err != nil {
			b.Fatal(err)
		}
		t2, c2 := time.Now(), cpuTime()
		size := len(snap.Operator)
		for _, kg := range snap.KeyGroups {
			size += len(kg)
		}
		op.Close()
		rt := newTask()
		rt.Restore = &arrowexec.RestoreState{CheckpointID: 2, KeyGroups: snap.KeyGroups, Operator: [][]byte{snap.Operator}}
		op2, err := spec.New(rt)
		if err != nil {
			b.Fatal(err)
		}
		if err := op2.Open(ctx); err != nil {
			b.Fatal(err)
		}
		t3, c3 := time.Now(), cpuTime()
		op2.Close()
		b.ReportMetric(t1.Sub(t0).Seconds(), "barrier-s")
		b.ReportMetric(t2.Sub(t1).Seconds(), "write-s")
		b.ReportMetric(float64(size)/(1<<20), "MiB")
		b.ReportMetric(t3.Sub(t2).Seconds(), "restore-s")
		// CPU seconds of the process (every thread, the collector's too):
		// what the wall times cost on a loaded machine.
		b.ReportMetric(float64(c1-c0)/1e9, "barrier-cpu-s")
		b.ReportMetric(float64(c2-c1)/1e9, "write-cpu-s")
		b.ReportMetric(float64(c3-c2)/1e9, "restore-cpu-s")
	}
}
