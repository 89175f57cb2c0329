package checkpoint_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/state"
)

// benchKeys is the number of distinct keys of keyed state in the
// benchmarks: 1M, or RIFFLE_BENCH_KEYS.
func benchKeys(b *testing.B) int {
	if s := os.Getenv("RIFFLE_BENCH_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 1 << 20
}

// fillSource emits keys "key-0" .. "key-<N-1>" once, split over its
// subtasks, then idles until the job stops.
type fillSource struct{ n int }

func (s *fillSource) Schema() *arrow.Schema { return kvSchema }
func (s *fillSource) Open(_ context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	return &fillReader{n: s.n, next: t.Subtask, step: t.Parallelism, mem: t.Mem}, nil
}

type fillReader struct {
	n, next, step int
	mem           memory.Allocator
}

func (r *fillReader) Next(context.Context) (arrow.RecordBatch, error) {
	if r.next >= r.n {
		time.Sleep(time.Millisecond)
		return nil, nil
	}
	kb := array.NewStringBuilder(r.mem)
	vb := array.NewInt64Builder(r.mem)
	rows := 0
	for ; r.next < r.n && rows < 1<<15; r.next += r.step {
		kb.Append("key-" + strconv.Itoa(r.next))
		vb.Append(int64(r.next))
		rows++
	}
	kc, vc := kb.NewArray(), vb.NewArray()
	kb.Release()
	vb.Release()
	defer kc.Release()
	defer vc.Release()
	return array.NewRecordBatch(kvSchema, []arrow.Array{kc, vc}, int64(rows)), nil
}

func (r *fillReader) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	return arrowexec.SubtaskSnapshot{Operator: []byte(strconv.Itoa(r.next))}, nil
}
func (r *fillReader) Close() error { return nil }

// filledJob runs src -> Pebble counter (parallelism p) until every key is
// in state, with periodic checkpoints off.
func filledJob(b *testing.B, dir string, n, p int) *running {
	g := arrowexec.NewGraph()
	s := g.AddSource("src", &fillSource{n: n}, 1)
	g.Add("pebble", &pebbleCount{backend: newPebbleBench(b)}, p, s.HashBy("k")).Parallelism()
	g.Add("sink", rowCounter{sink: true}, 1, g.Node("pebble").Rebalance())
	log, _ := newLog()
	r := start(b, g, nil, checkpoint.Options{Dir: dir, Interval: -1, Retain: 2, JobFingerprint: fingerprint, Log: log}, memory.NewGoAllocator())
	for {
		var rows int64
		for _, m := range r.job.Metrics("sink") {
			rows += m.RowsIn.Load()
		}
		if rows >= int64(n) {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newPebbleBench(b *testing.B) state.Backend {
	be, err := state.NewPebbleBackend(state.PebbleOptions{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	return be
}

// BenchmarkCheckpoint measures one checkpoint of a job holding N keys of
// Pebble state (default 1M): trigger to durable chk-<id>, including the
// state snapshot files, checksums, fsyncs, rename and retention.
func BenchmarkCheckpoint(b *testing.B) {
	n := benchKeys(b)
	for _, p := range []int{1, 4} {
		b.Run(fmt.Sprintf("keys=%d/p=%d", n, p), func(b *testing.B) {
			r := filledJob(b, b.TempDir(), n, p)
			defer r.crash()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := r.c.Checkpoint(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			st := r.c.Stats()
			b.ReportMetric(float64(st.LastBytes), "bytes/checkpoint")
			b.ReportMetric(float64(st.LastBytes)/float64(n), "bytes/key")
		})
	}
}

// BenchmarkRestore measures loading and verifying a checkpoint of N keys
// (default 1M) and restoring its Pebble state into p new stores.
func BenchmarkRestore(b *testing.B) {
	n := benchKeys(b)
	dir := b.TempDir()
	r := filledJob(b, dir, n, 4)
	path, err := r.c.Checkpoint(context.Background())
	r.crash()
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []int{1, 4} {
		b.Run(fmt.Sprintf("keys=%d/4->%d", n, p), func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				chk, err := checkpoint.Load(path)
				if err != nil {
					b.Fatal(err)
				}
				be := newPebbleBench(b)
				var restored int64
				for sub := 0; sub < p; sub++ {
					rs := chk.RestoreState("pebble", sub, p)
					lo, hi := arrowexec.KeyGroupRange(arrowexec.DefaultMaxParallelism, p, sub)
					s, err := be.Open(ctx, state.StoreOptions{Name: fmt.Sprint("r", i, "/", sub), MaxParallelism: arrowexec.DefaultMaxParallelism, KeyGroupLo: lo, KeyGroupHi: hi})
					if err != nil {
						b.Fatal(err)
					}
					if err := state.Restore(ctx, s, rs.Dirs, lo, hi); err != nil {
						b.Fatal(err)
					}
					if i == 0 {
						sz, _ := s.Sizes(ctx)
						for _, x := range sz {
							restored += x.Entries
						}
					}
					s.Close()
				}
				if i == 0 && restored != int64(n) {
					b.Fatalf("restored %d entries, want %d", restored, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}
