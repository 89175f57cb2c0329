package windowmax

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
)

type collect struct{ rows []arrow.RecordBatch }

func (c *collect) Emit(_ context.Context, b arrow.RecordBatch) error {
	c.rows = append(c.rows, b)
	return nil
}

func (c *collect) ids(t *testing.T) []int64 {
	var out []int64
	for _, b := range c.rows {
		out = append(out, b.Column(0).(*array.Int64).Int64Values()...)
	}
	slices.Sort(out)
	return out
}

func (c *collect) release() {
	for _, b := range c.rows {
		b.Release()
	}
	c.rows = nil
}

// row is one input row: id, event time (ms), and the ranked value
// (int64 column v, or float64 column f), either maybe null.
type row struct {
	id, t int64
	tNull bool
	v     int64
	f     float64
	vNull bool
}

func schema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
}

func batch(mem memory.Allocator, rows []row) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schema())
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(r.id)
		if r.tNull {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(r.t*1000 + 999)) // µs, floored to r.t ms
		}
		if r.vNull {
			b.Field(2).AppendNull()
			b.Field(3).AppendNull()
		} else {
			b.Field(2).(*array.Int64Builder).Append(r.v)
			b.Field(3).(*array.Float64Builder).Append(r.f)
		}
	}
	return b.NewRecordBatch()
}

// want is the brute force: per window, the ids of the rows (not late, not
// null) whose value equals the window's maximum (floats: NaN largest, -0
// equal to +0).
func want(rows []row, late map[int64]bool, size int64, float bool) []int64 {
	key := func(r row) float64 {
		if !float {
			return float64(r.v) // values are small: exact
		}
		if math.IsNaN(r.f) {
			return math.Inf(1) // above +Inf below: test values never hold +Inf
		}
		return r.f
	}
	best := map[int64]float64{}
	for _, r := range rows {
		if r.tNull || r.vNull || late[r.id] {
			continue
		}
		w := floorDiv(r.t, size)
		if m, ok := best[w]; !ok || key(r) > m {
			best[w] = key(r)
		}
	}
	var out []int64
	for _, r := range rows {
		if r.tNull || r.vNull || late[r.id] {
			continue
		}
		if key(r) == best[floorDiv(r.t, size)] {
			out = append(out, r.id)
		}
	}
	slices.Sort(out)
	return out
}

func task(mem memory.Allocator, par, sub int, rs *arrowexec.RestoreState) *arrowexec.Task {
	return &arrowexec.Task{Node: "wm", Subtask: sub, Parallelism: par, MaxParallelism: 128, Mem: mem,
		Log: slog.New(slog.DiscardHandler), Restore: rs}
}

// TestAgainstBruteForce feeds random out-of-order rows (with ties, nulls,
// NaNs and late rows) through par partial operators and one final, with
// random batch sizes and a snapshot/restore of the final at random
// points, and compares the ids emitted with the brute force's.
func TestAgainstBruteForce(t *testing.T) {
	lateSeen := 0
	defer func() {
		if lateSeen == 0 {
			t.Error("no late rows in any run: the late path went untested")
		}
	}()
	for seed := range uint64(40) {
		for _, float := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed%d/float%v", seed, float), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
				defer mem.AssertSize(t, 0)
				rng := rand.New(rand.NewPCG(seed, 7))
				const size = 100
				n := 50 + rng.IntN(2000)
				rows := make([]row, n)
				for i := range rows {
					r := row{id: int64(i), t: 2*int64(i) - 300, v: int64(rng.IntN(20)) - 5}
					r.t += int64(rng.IntN(60)) // disorder up to 60 ms (more than the watermark delay: some rows late)
					r.f = float64(r.v) / 4
					switch rng.IntN(40) {
					case 0:
						r.tNull = true
					case 1:
						r.vNull = true
					case 2:
						r.f = math.NaN()
					case 3:
						r.f = math.Copysign(0, -1)
					}
					rows[i] = r
				}
				by := "v"
				if float {
					by = "f"
				}
				par := 1 + rng.IntN(3)
				opts := Options{Time: "t", By: by, Size: size * time.Millisecond}
				newOp := func(final bool, par, sub int, rs *arrowexec.RestoreState) arrowexec.Operator {
					o := opts
					o.Final = final
					s, err := New(o)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := s.Schema([]*arrow.Schema{schema()}); err != nil {
						t.Fatal(err)
					}
					op, err := s.New(task(mem, par, sub, rs))
					if err != nil {
						t.Fatal(err)
					}
					if err := op.Open(context.Background()); err != nil {
						t.Fatal(err)
					}
					return op
				}
				ctx := context.Background()
				partials := make([]arrowexec.Operator, par)
				for i := range partials {
					partials[i] = newOp(false, par, i, nil)
				}
				final := newOp(true, 1, 0, nil)
				var mid collect
				var out collect
				late := map[int64]bool{}
				wm, maxT := arrowexec.MinWatermark, int64(math.MinInt64)
				for i, k := 0, 0; i < n; k++ {
					m := min(n-i, 1+rng.IntN(50))
					chunk := rows[i : i+m]
					i += m
					for _, r := range chunk {
						if !r.tNull {
							maxT = max(maxT, r.t)
							if floorDiv(r.t, size)*size+size-1 <= wm {
								late[r.id] = true
							}
						}
					}
					b := batch(mem, chunk)
					if err := partials[k%par].Process(ctx, 0, b, &mid); err != nil {
						t.Fatal(err)
					}
					b.Release()
					for _, r := range mid.rows {
						if err := final.Process(ctx, 0, r, &out); err != nil {
							t.Fatal(err)
						}
					}
					mid.release()
					if rng.IntN(4) == 0 && maxT > math.MinInt64 {
						wm = max(wm, maxT-40)
						for _, p := range partials {
							if err := p.(arrowexec.WatermarkHandler).OnWatermark(ctx, wm, &mid); err != nil {
								t.Fatal(err)
							}
						}
						if err := final.(arrowexec.WatermarkHandler).OnWatermark(ctx, wm, &out); err != nil {
							t.Fatal(err)
						}
					}
					if rng.IntN(10) == 0 { // checkpoint, crash, restore
						snap, err := final.(arrowexec.Checkpointer).SnapshotState(ctx, uint64(k))
						if err != nil {
							t.Fatal(err)
						}
						final.Close()
						final = newOp(true, 1, 0, &arrowexec.RestoreState{Operator: [][]byte{snap.Operator}, Watermark: arrowexec.MinWatermark})
					}
				}
				for _, p := range partials {
					if err := p.(arrowexec.WatermarkHandler).OnWatermark(ctx, arrowexec.MaxWatermark, &mid); err != nil {
						t.Fatal(err)
					}
					p.Finish(ctx, &mid)
					p.Close()
				}
				if len(mid.rows) != 0 {
					t.Fatal("a partial emitted at the watermark")
				}
				if err := final.(arrowexec.WatermarkHandler).OnWatermark(ctx, arrowexec.MaxWatermark, &out); err != nil {
					t.Fatal(err)
				}
				if err := final.Finish(ctx, &out); err != nil {
					t.Fatal(err)
				}
				final.Close()
				lateSeen += len(late)
				got, exp := out.ids(t), want(rows, late, size, float)
				out.release()
				if !slices.Equal(got, exp) {
					for _, id := range exp {
						if !slices.Contains(got, id) {
							r := rows[id]
							w := floorDiv(r.t, size)
							t.Logf("missing %+v window %d", r, w)
							for _, q := range rows {
								if !q.tNull && !q.vNull && floorDiv(q.t, size) == w {
									t.Logf("  same window: %+v late %v", q, late[q.id])
								}
							}
						}
					}
					t.Fatalf("par %d, %d rows (%d late): got %d ids %v\nwant %d ids %v", par, n, len(late), len(got), got, len(exp), exp)
				}
				if len(exp) == 0 {
					t.Fatal("no rows expected: a test that cannot fail")
				}
			})
		}
	}
}

func TestSchemaErrors(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Time: "t", By: "nope", Size: time.Second}, `column "nope" not in the input`},
		{Options{Time: "v", By: "t", Size: time.Second}, ""},
		{Options{Time: "f", By: "v", Size: time.Second}, `time column "f" has type float64`},
	} {
		s, err := New(c.o)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Schema([]*arrow.Schema{schema()})
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.o, err, c.want)
		}
	}
	if _, err := New(Options{Time: "t", By: "v"}); err == nil {
		t.Error("size 0 accepted")
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}
