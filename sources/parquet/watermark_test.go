package parquet

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"

	"github.com/riffle-dev/riffle/arrowexec"
)

// writeEvents writes rows with event times ts (in unit) in row groups of
// 100 rows.
func writeEvents(t *testing.T, mem memory.Allocator, path string, unit arrow.TimeUnit, ts []int64) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_time", Type: &arrow.TimestampType{Unit: unit, TimeZone: "UTC"}},
	}, nil)
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	for i, v := range ts {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(v))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	writeFile(t, path, sc, []arrow.RecordBatch{rec}, pq.WithMaxRowGroupLength(100))
}

// checkWatermarks reads every subtask and checks that no row read after a
// watermark has an event time at or below it. It returns whether every
// reader was ordered and the largest watermark reported before the end.
func checkWatermarks(t *testing.T, src *Source, mem memory.Allocator, par int, scale int64) (bool, int64) {
	ordered, best := true, arrowexec.MinWatermark
	for sub := 0; sub < par; sub++ {
		r, err := src.Open(context.Background(), &arrowexec.Task{Node: "pq", Subtask: sub, Parallelism: par, Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		rd := r.(*Reader)
		ordered = ordered && rd.EventTimeOrdered()
		wm, maxMS := arrowexec.MinWatermark, arrowexec.MinWatermark
		for {
			b, err := rd.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range b.Column(1).(*array.Timestamp).TimestampValues() {
				ms := floorDiv(int64(v), scale)
				if ms <= wm {
					t.Fatalf("subtask %d: row at %d ms read after watermark %d", sub, ms, wm)
				}
				maxMS = max(maxMS, ms)
			}
			b.Release()
			w, idle := rd.CurrentWatermark()
			if idle || w < wm {
				t.Fatalf("watermark went back from %d to %d (idle %v)", wm, w, idle)
			}
			wm = w
		}
		// At the end, ordered or not, the suspend watermark is the
		// bounded one of every row read.
		want := arrowexec.MinWatermark
		if maxMS != arrowexec.MinWatermark {
			want = maxMS - src.opts.Watermark.MaxOutOfOrderness.Milliseconds() - 1
		}
		if got := rd.SuspendWatermark(); got != want {
			t.Fatalf("subtask %d: suspend watermark %d, want %d", sub, got, want)
		}
		best = max(best, wm)
		rd.Close()
	}
	return ordered, best
}

func TestWatermarkOrderedRowGroups(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	for _, unit := range []arrow.TimeUnit{arrow.Millisecond, arrow.Microsecond} {
		scale := int64(1)
		if unit == arrow.Microsecond {
			scale = 1000
		}
		// 1000 rows, rising by 10 ms with up to 30 ms of disorder.
		ts := make([]int64, 1000)
		for i := range ts {
			ts[i] = (int64(i)*10 + 1_700_000_000_000 - rng.Int64N(31)) * scale
		}
		sorted := filepath.Join(dir, unit.String()+"-sorted.parquet")
		writeEvents(t, mem, sorted, unit, ts)
		// The same rows with row groups swapped: not in event-time order.
		shuffled := append(append([]int64(nil), ts[500:]...), ts[:500]...)
		unsorted := filepath.Join(dir, unit.String()+"-unsorted.parquet")
		writeEvents(t, mem, unsorted, unit, shuffled)

		strategy := arrowexec.WatermarkStrategy{Column: "event_time", MaxOutOfOrderness: 30 * time.Millisecond}
		for _, par := range []int{1, 2, 3} {
			src, err := New(Options{Paths: []string{sorted}, BatchSize: 37, Watermark: strategy})
			if err != nil {
				t.Fatal(err)
			}
			ordered, best := checkWatermarks(t, src, mem, par, scale)
			if !ordered || best < 1_700_000_000_000 {
				t.Fatalf("%s sorted p=%d: ordered=%v, best watermark %d: want progress", unit, par, ordered, best)
			}
			src, err = New(Options{Paths: []string{unsorted}, BatchSize: 37, Watermark: strategy})
			if err != nil {
				t.Fatal(err)
			}
			if ordered, best := checkWatermarks(t, src, mem, 1, scale); ordered || best != arrowexec.MinWatermark {
				t.Fatalf("%s unsorted: ordered=%v, watermark %d: want none before the end", unit, ordered, best)
			}
		}
		// The bounded watermark advances inside row groups: more
		// distinct watermarks than row groups.
		src, err := New(Options{Paths: []string{sorted}, BatchSize: 10, Watermark: strategy})
		if err != nil {
			t.Fatal(err)
		}
		if steps := countWatermarks(t, src, mem); steps <= 10 {
			t.Fatalf("%s: %d distinct watermarks over 10 row groups, want progress inside row groups", unit, steps)
		}
	}
	if _, err := New(Options{Paths: []string{filepath.Join(dir, "ms-sorted.parquet")}, Columns: []string{"id"}, Watermark: arrowexec.WatermarkStrategy{Column: "event_time"}}); err == nil {
		t.Fatal("watermark column outside the projection accepted")
	}
}

// countWatermarks reads one subtask and counts distinct watermarks.
func countWatermarks(t *testing.T, src *Source, mem memory.Allocator) int {
	r, err := src.Open(context.Background(), &arrowexec.Task{Node: "pq", Parallelism: 1, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seen := map[int64]bool{}
	for {
		b, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b.Release()
		wm, _ := r.(*Reader).CurrentWatermark()
		seen[wm] = true
	}
	return len(seen)
}
