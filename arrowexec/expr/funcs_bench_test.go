package expr

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
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

// BenchmarkDateTrunc compares date_trunc with arrow/compute's
// floor_temporal (calendar-based origin, as date_trunc) over 64K random
// timestamp[us] values from 1930 to 2070.
func BenchmarkDateTrunc(b *testing.B) {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_us, Nullable: true}}, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	tb := array.NewTimestampBuilder(mem, arrow.FixedWidthTypes.Timestamp_us.(*arrow.TimestampType))
	for i := 0; i < benchRows; i++ {
		tb.Append(arrow.Timestamp(rng.Int64N(140*365*86400e6) - 40*365*86400e6))
	}
	col := tb.NewArray()
	tb.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, benchRows)
	defer rec.Release()
	ctx := compute.WithAllocator(context.Background(), mem)
	for _, c := range []struct {
		unit string
		cu   compute.RoundTemporalUnit
	}{{"hour", compute.RoundTemporalHour}, {"day", compute.RoundTemporalDay}, {"month", compute.RoundTemporalMonth}} {
		bound, err := Bind(MustParse("date_trunc('"+c.unit+"', ts)"), schema)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.unit+"/riffle", func(b *testing.B) { benchEval(b, bound, mem, rec) })
		b.Run(c.unit+"/arrow_compute", func(b *testing.B) {
			b.ReportAllocs()
			opts := compute.RoundTemporalOptions{Multiple: 1, Unit: c.cu, CalendarBasedOrigin: true}
			for b.Loop() {
				out, err := compute.CallFunction(ctx, "floor_temporal", &opts, compute.NewDatum(col))
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
			b.ReportMetric(float64(b.N)*benchRows/b.Elapsed().Seconds(), "rows/s")
		})
	}
	col.Release()
}
