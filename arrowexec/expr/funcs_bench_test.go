package expr

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BenchmarkFunctions measures the function library over the 64K-row batch
// of benchRecord (values/s = rows/s: one value per row).
func BenchmarkFunctions(b *testing.B) {
	mem := memory.NewGoAllocator()
	rec := benchRecord(mem)
	defer rec.Release()
	for _, src := range []string{
		"abs(a)", "abs(b)", "round(b, 2)", "floor(b)", "sqrt(b)", "ln(b + 1)", "pow(b, 2)", "greatest(a, 5)",
		"lower(s)", "upper(s)", "length(s)", "substr(s, 2, 3)", "trim(s)", "concat(s, '-', event_type)", "s || event_type",
		"replace(s, 'an', 'AN')", "split_part(s, 'a', 2)", "regexp_matches(s, '^a.*e$')",
		"s LIKE 'ap%'", "s LIKE '%rr%'", "s LIKE '%ot'", "s LIKE 'a_r%t'", "s ILIKE 'AP%'",
		"nullif(a, 3)", "if(a > 10, b, 0)", "hash(a, s)",
	} {
		bound, err := Bind(MustParse(src), rec.Schema())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(src, func(b *testing.B) { benchEval(b, bound, mem, rec) })
	}
}

// BenchmarkAbsArrowCompute is arrow/compute's checked abs over the same
// column as abs(a) and abs(b) above: the kernel the library could have
// used instead of its own loop.
func BenchmarkAbsArrowCompute(b *testing.B) {
	mem := memory.NewGoAllocator()
	rec := benchRecord(mem)
	defer rec.Release()
	ctx := compute.WithAllocator(context.Background(), mem)
	for _, c := range []struct {
		name string
		col  int
	}{{"int64", 0}, {"float64", 1}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			col := rec.Column(c.col)
			for b.Loop() {
				out, err := compute.CallFunction(ctx, "abs", nil, compute.NewDatum(col))
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
			b.ReportMetric(float64(b.N)*benchRows/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
