package lastn

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
)

type row struct {
	k, id, t int64
	v        int64
	vNull    bool
	f        float64
	fNull    bool
}

func schema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64},
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
}

func batch(mem memory.Allocator, rows []row) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schema())
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(r.k)
		b.Field(1).(*array.Int64Builder).Append(r.id)
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.t))
		if r.vNull {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.Int64Builder).Append(r.v)
		}
		if r.fNull {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.Float64Builder).Append(r.f)
		}
	}
	return b.NewRecordBatch()
}

var aggs = []Agg{{Count, "", "n"}, {Count, "v", "nv"}, {Sum, "v", "sv"}, {Avg, "v", "av"}, {Min, "f", "minf"}, {Max, "f", "maxf"}, {Avg, "f", "af"}}

// aggRow is one row's aggregates: n, nv, sv, av, minf, maxf, af (NaN: NULL).
type aggRow [7]float64

// brute computes, per row, the aggregates over the last n rows of its
// key ordered by (t, id).
func brute(rows []row, n int) map[int64]aggRow {
	byKey := map[int64][]row{}
	for _, r := range rows {
		byKey[r.k] = append(byKey[r.k], r)
	}
	out := map[int64]aggRow{}
	null := math.NaN()
	for _, rs := range byKey {
		slices.SortFunc(rs, func(a, b row) int {
			if a.t != b.t {
				return int(a.t - b.t)
			}
			return int(a.id - b.id)
		})
		for i, r := range rs {
			win := rs[max(0, i-n+1) : i+1]
			var nv, sv, cf, sf float64
			minf, maxf := null, null
			for _, w := range win {
				if !w.vNull {
					nv++
					sv += float64(w.v)
				}
				if !w.fNull {
					cf++
					sf += w.f
					if cf == 1 || w.f < minf {
						minf = w.f
					}
					if cf == 1 || w.f > maxf {
						maxf = w.f
					}
				}
			}
			res := aggRow{float64(len(win)), nv, null, null, minf, maxf, null}
			if nv > 0 {
				res[2], res[3] = sv, sv/nv
			}
			if cf > 0 {
				res[6] = sf / cf
			}
			out[r.id] = res
		}
	}
	return out
}

type collect struct{ got map[int64]aggRow }

func (c *collect) Emit(_ context.Context, b arrow.RecordBatch) error {
	defer b.Release()
	ids := b.Column(1).(*array.Int64)
	for i := range int(b.NumRows()) {
		var r aggRow
		for a := range aggs {
			col := b.Column(5 + a)
			switch {
			case col.IsNull(i):
				r[a] = math.NaN()
			case col.DataType().ID() == arrow.FLOAT64:
				r[a] = col.(*array.Float64).Value(i)
			default:
				r[a] = float64(col.(*array.Int64).Value(i))
			}
		}
		if _, dup := c.got[ids.Value(i)]; dup {
			return fmt.Errorf("row %d emitted twice", ids.Value(i))
		}
		c.got[ids.Value(i)] = r
	}
	return nil
}

func same(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}

// TestAgainstBruteForce routes random out-of-order rows by key to par
// subtasks in random batches, advances the watermark (behind the
// disorder: no row late), checkpoints every subtask at random points and
// restores at another parallelism, and compares every row's aggregates
// with the brute force's. atEnd: no watermark until the end of input (the
// rows of an aggregate step, with the watermark passed on ahead of them),
// where every row is released at once.
func TestAgainstBruteForce(t *testing.T) {
	for seed := range uint64(30) {
		for _, atEnd := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed%d/atEnd%v", seed, atEnd), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
				defer mem.AssertSize(t, 0)
				rng := rand.New(rand.NewPCG(seed, 11))
				nRows := 20 + rng.IntN(1500)
				keys := 1 + rng.IntN(30)
				n := 1 + rng.IntN(12)
				rows := make([]row, nRows)
				for i := range rows {
					r := row{k: int64(rng.IntN(keys)), id: int64(i), t: int64(i/6) + int64(rng.IntN(20)), v: int64(rng.IntN(1000)) - 300, f: rng.NormFloat64() * 100}
					r.vNull, r.fNull = rng.IntN(15) == 0, rng.IntN(15) == 0
					if rng.IntN(10) == 0 && i > 0 {
						r.t = rows[i-1].t // ties on t, broken by id
					}
					rows[i] = r
				}
				ctx := context.Background()
				spec, err := New(Options{Keys: []string{"k"}, Order: []string{"t", "id"}, N: n, Aggs: aggs, AtEnd: atEnd})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := spec.Schema([]*arrow.Schema{schema()}); err != nil {
					t.Fatal(err)
				}
				open := func(par int, rs *arrowexec.RestoreState) []arrowexec.Operator {
					ops := make([]arrowexec.Operator, par)
					for i := range ops {
						op, err := spec.New(&arrowexec.Task{Node: "lastn", Subtask: i, Parallelism: par, MaxParallelism: 128, Mem: mem, Log: slog.New(slog.DiscardHandler), Restore: rs})
						if err != nil {
							t.Fatal(err)
						}
						if err := op.Open(ctx); err != nil {
							t.Fatal(err)
						}
						ops[i] = op
					}
					return ops
				}
				par := 1 + rng.IntN(3)
				ops := open(par, nil)
				out := &collect{got: map[int64]aggRow{}}
				route := func(chunk []row, par int) [][]row {
					parts := make([][]row, par)
					b := batch(mem, chunk)
					hashes := make([]uint64, len(chunk))
					if err := arrowexec.HashColumns([]arrow.Array{b.Column(0)}, hashes); err != nil {
						t.Fatal(err)
					}
					b.Release()
					for i, r := range chunk {
						g := arrowexec.KeyGroupOf(hashes[i], 128)
						for s := range par {
							if lo, hi := arrowexec.KeyGroupRange(128, par, s); g >= lo && g < hi {
								parts[s] = append(parts[s], r)
							}
						}
					}
					return parts
				}
				maxT := int64(math.MinInt64)
				restores := 0
				for i := 0; i < nRows; {
					m := min(nRows-i, 1+rng.IntN(60))
					chunk := slices.Clone(rows[i : i+m])
					i += m
					rng.Shuffle(len(chunk), func(a, b int) { chunk[a], chunk[b] = chunk[b], chunk[a] }) // arrival order is not id order
					for _, r := range chunk {
						maxT = max(maxT, r.t)
					}
					for s, part := range route(chunk, par) {
						if len(part) == 0 {
							continue
						}
						b := batch(mem, part)
						if err := ops[s].Process(ctx, 0, b, out); err != nil {
							t.Fatal(err)
						}
						b.Release()
					}
					if rng.IntN(3) == 0 {
						wm := maxT - 25
						if atEnd {
							wm = maxT + 1000 // as an aggregate passes it on: ahead of the rows to come
						}
						for _, op := range ops {
							if err := op.(arrowexec.WatermarkHandler).OnWatermark(ctx, wm, out); err != nil {
								t.Fatal(err)
							}
						}
					}
					if rng.IntN(8) == 0 { // checkpoint, crash, restore at another parallelism
						rs := &arrowexec.RestoreState{KeyGroups: map[int][]byte{}, Watermark: arrowexec.MinWatermark}
						for _, op := range ops {
							snap, err := op.(arrowexec.Checkpointer).SnapshotState(ctx, 1)
							if err != nil {
								t.Fatal(err)
							}
							for g, b := range snap.KeyGroups {
								if _, dup := rs.KeyGroups[g]; dup {
									t.Fatalf("key group %d in two subtasks' snapshots", g)
								}
								rs.KeyGroups[g] = b
							}
							rs.Operator = append(rs.Operator, snap.Operator)
							op.Close()
						}
						par = 1 + rng.IntN(3)
						ops = open(par, rs)
						restores++
					}
				}
				for _, op := range ops {
					if err := op.(arrowexec.WatermarkHandler).OnWatermark(ctx, arrowexec.MaxWatermark, out); err != nil {
						t.Fatal(err)
					}
					if err := op.Finish(ctx, out); err != nil {
						t.Fatal(err)
					}
					op.Close()
				}
				want := brute(rows, n)
				if len(out.got) != len(want) {
					t.Fatalf("%d rows out, want %d", len(out.got), len(want))
				}
				for id, w := range want {
					g := out.got[id]
					for a := range w {
						if !same(g[a], w[a]) {
							t.Fatalf("n %d, par %d, %d restores: row %d (%+v): %s = %v, want %v", n, par, restores, id, rows[id], aggs[a].As, g[a], w[a])
						}
					}
				}
			})
		}
	}
}

func TestOptionsAndSchemaErrors(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Order: []string{"t"}, N: 3, Aggs: aggs}, "no key columns"},
		{Options{Keys: []string{"k"}, Order: []string{"t"}, N: 0, Aggs: aggs}, "want at least 1"},
		{Options{Keys: []string{"k"}, Order: []string{"t"}, N: 3, Aggs: []Agg{{"median", "v", "m"}}}, "want count, sum, avg, min or max"},
		{Options{Keys: []string{"k"}, Order: []string{"f"}, N: 3, Aggs: aggs}, "order column f (the event time) has type float64"},
		{Options{Keys: []string{"nope"}, Order: []string{"t"}, N: 3, Aggs: aggs}, `column "nope" not in the input`},
		{Options{Keys: []string{"k"}, Order: []string{"t"}, N: 3, Aggs: []Agg{{Avg, "v", "k"}}}, `output column "k" twice`},
	} {
		spec, err := New(c.o)
		if err == nil {
			_, err = spec.Schema([]*arrow.Schema{schema()})
		}
		if err == nil || !contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.o, err, c.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
