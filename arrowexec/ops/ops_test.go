package ops_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/arrowexec/ops"
)

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "k", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "v", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}, nil)

type row struct {
	id int64
	k  *int64
	s  *string
	v  *float64
}

func gen(mem memory.Allocator, rng *rand.Rand, n, batch int) ([]arrow.RecordBatch, []row) {
	bld := array.NewRecordBuilder(mem, schema)
	defer bld.Release()
	var out []arrow.RecordBatch
	var rows []row
	words := []string{"apple", "apricot", "banana", "", "avocado", "cherry"}
	for i := 0; i < n; i++ {
		r := row{id: int64(i)}
		bld.Field(0).(*array.Int64Builder).Append(r.id)
		if rng.IntN(8) == 0 {
			bld.Field(1).AppendNull()
		} else {
			k := int64(rng.IntN(20) - 5)
			r.k = &k
			bld.Field(1).(*array.Int64Builder).Append(k)
		}
		if rng.IntN(8) == 0 {
			bld.Field(2).AppendNull()
		} else {
			s := words[rng.IntN(len(words))]
			r.s = &s
			bld.Field(2).(*array.StringBuilder).Append(s)
		}
		if rng.IntN(8) == 0 {
			bld.Field(3).AppendNull()
		} else {
			v := float64(rng.IntN(1000)) / 10
			r.v = &v
			bld.Field(3).(*array.Float64Builder).Append(v)
		}
		rows = append(rows, r)
		if (i+1)%batch == 0 || i == n-1 {
			out = append(out, bld.NewRecordBatch())
		}
	}
	return out, rows
}

// TestFilterProject runs filter then project in a graph and compares with a
// direct Go computation of the same query, for every batch size and
// parallelism.
func TestFilterProject(t *testing.T) {
	pred := expr.MustParse("k > 3 AND s LIKE 'ap%' OR v IS NULL")
	proj := []ops.Column{
		{Name: "id", Expr: expr.Col("id")},
		{Name: "twice", Expr: expr.MustParse("k * 2 + 1")},
		{Name: "ratio", Expr: expr.MustParse("v / 4")},
	}
	oracle := func(r row) (bool, string) {
		// SQL: (k > 3 AND s LIKE 'ap%') OR v IS NULL, with three-valued AND.
		keep := r.v == nil
		if r.k != nil && r.s != nil && *r.k > 3 && len(*r.s) >= 2 && (*r.s)[:2] == "ap" {
			keep = true
		}
		twice, ratio := "NULL", "NULL"
		if r.k != nil {
			twice = fmt.Sprint(*r.k*2 + 1)
		}
		if r.v != nil {
			ratio = fmt.Sprint(*r.v / 4)
		}
		return keep, fmt.Sprintf("%d|%s|%s", r.id, twice, ratio)
	}
	for _, bs := range []int{1, 7, 1024, 65536} {
		for _, p := range []int{1, 2, 4} {
			t.Run(fmt.Sprintf("batch=%d/p=%d", bs, p), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				n := 3000
				if bs == 65536 {
					n = 70000
				}
				batches, rows := gen(mem, rand.New(rand.NewPCG(uint64(bs), uint64(p))), n, bs)
				src := exectest.NewSource(schema, batches)
				for _, b := range batches {
					b.Release()
				}
				defer src.Release()
				sink := exectest.NewSink()
				defer sink.Release()
				g := arrowexec.NewGraph()
				s := g.AddSource("src", src, p)
				f := g.Add("filter", ops.NewFilter(pred), p, s.Forward())
				pr := g.Add("project", ops.NewProject(proj), p, f.Rebalance())
				g.Add("sink", sink, p, pr.Forward())
				job, err := g.Compile(arrowexec.RunOptions{Mem: mem})
				if err != nil {
					t.Fatal(err)
				}
				if err := job.Run(context.Background()); err != nil {
					t.Fatal(err)
				}
				var want, got []string
				for _, r := range rows {
					if keep, line := oracle(r); keep {
						want = append(want, line)
					}
				}
				for _, b := range sink.All() {
					id := b.Column(0).(*array.Int64)
					tw := b.Column(1).(*array.Int64)
					ra := b.Column(2).(*array.Float64)
					for i := 0; i < int(b.NumRows()); i++ {
						twice, ratio := "NULL", "NULL"
						if tw.IsValid(i) {
							twice = fmt.Sprint(tw.Value(i))
						}
						if ra.IsValid(i) {
							ratio = fmt.Sprint(ra.Value(i))
						}
						got = append(got, fmt.Sprintf("%d|%s|%s", id.Value(i), twice, ratio))
					}
				}
				slices.Sort(want)
				slices.Sort(got)
				if !slices.Equal(want, got) {
					t.Fatalf("got %d rows, want %d", len(got), len(want))
				}
			})
		}
	}
}

func TestPlanErrors(t *testing.T) {
	cases := []struct {
		spec arrowexec.Spec
		want string
	}{
		{ops.NewFilter(expr.MustParse("k + 1")), `filter "k + 1": predicate has type int64, want bool`},
		{ops.NewFilter(expr.MustParse("nope = 1")), `filter "nope = 1": expr: unknown column "nope" (available: id, k, s, v)`},
		{ops.NewProject([]ops.Column{{Name: "a", Expr: expr.Col("id")}, {Name: "a", Expr: expr.Col("k")}}), `ops: project: duplicate column "a"`},
	}
	for _, c := range cases {
		_, err := c.spec.Schema([]*arrow.Schema{schema})
		if err == nil || err.Error() != c.want {
			t.Errorf("err = %v\nwant %s", err, c.want)
		}
	}
}

func BenchmarkFilter(b *testing.B) {
	mem := memory.NewGoAllocator()
	batches, _ := gen(mem, rand.New(rand.NewPCG(1, 1)), 65536, 65536)
	rec := batches[0]
	defer rec.Release()
	f := ops.NewFilter(expr.MustParse("k > 3 AND v < 50.0"))
	if _, err := f.Schema([]*arrow.Schema{schema}); err != nil {
		b.Fatal(err)
	}
	op, _ := f.New(&arrowexec.Task{Mem: mem})
	out := discard{}
	b.ReportAllocs()
	for b.Loop() {
		if err := op.Process(context.Background(), 0, rec, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rec.NumRows())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkProject(b *testing.B) {
	mem := memory.NewGoAllocator()
	batches, _ := gen(mem, rand.New(rand.NewPCG(1, 1)), 65536, 65536)
	rec := batches[0]
	defer rec.Release()
	p := ops.NewProject([]ops.Column{{Name: "id", Expr: expr.Col("id")}, {Name: "x", Expr: expr.MustParse("k * 2 + v")}})
	if _, err := p.Schema([]*arrow.Schema{schema}); err != nil {
		b.Fatal(err)
	}
	op, _ := p.New(&arrowexec.Task{Mem: mem})
	b.ReportAllocs()
	for b.Loop() {
		if err := op.Process(context.Background(), 0, rec, discard{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rec.NumRows())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

type discard struct{}

func (discard) Emit(_ context.Context, b arrow.RecordBatch) error { b.Release(); return nil }
