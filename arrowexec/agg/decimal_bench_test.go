package agg

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	duck "github.com/riffle-dev/riffle/internal/oracle"
)

// BenchmarkDecimalSum sums a decimal(12,2) price (5% NULL) over 16 batches
// of 64Ki rows, without keys and by an int64 key of 1000 values, and times
// DuckDB (one thread, the same rows loaded into an in-memory table first)
// on the same query in the same run: metric duckdb-rows/s.
//
//	go test -run '^$' -bench DecimalSum -count 3 ./arrowexec/agg
func BenchmarkDecimalSum(b *testing.B) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64},
		{Name: "price", Type: &arrow.Decimal128Type{Precision: 12, Scale: 2}, Nullable: true},
	}, nil)
	rng := rand.New(rand.NewPCG(8, 9))
	var batches []arrow.RecordBatch
	for range 16 {
		rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		kb, pb := rb.Field(0).(*array.Int64Builder), rb.Field(1).(*array.Decimal128Builder)
		for range benchBatch {
			kb.Append(rng.Int64N(1000))
			if rng.IntN(20) == 0 {
				pb.AppendNull()
			} else {
				pb.Append(decimal128.FromI64(rng.Int64N(10_000_000) - 1_000_000))
			}
		}
		batches = append(batches, rb.NewRecordBatch())
		rb.Release()
	}
	defer releaseAll(batches)
	file := filepath.Join(b.TempDir(), "prices.parquet")
	writeParquet(b, file, sc, batches)
	for _, c := range []struct {
		name string
		by   []string
		sql  string
	}{
		{"global", nil, "SELECT sum(price), avg(price), min(price), max(price) FROM t"},
		{"by_key", []string{"k"}, "SELECT k, sum(price), avg(price), min(price), max(price) FROM t GROUP BY k"},
	} {
		b.Run(c.name, func(b *testing.B) {
			aggs := []Agg{{Func: Sum, Column: "price"}, {Func: Avg, Column: "price"}, {Func: Min, Column: "price"}, {Func: Max, Column: "price"}}
			runBench(b, sc, batches, Options{GroupBy: c.by, Aggs: aggs})
			if py, err := duck.Available(); err == nil {
				b.ReportMetric(duckRowsPerSec(b, py, file, c.sql, 16*benchBatch), "duckdb-rows/s")
			}
		})
	}
}

func writeParquet(b *testing.B, path string, sc *arrow.Schema, batches []arrow.RecordBatch) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(sc, f, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		b.Fatal(err)
	}
	for _, rb := range batches {
		if err := w.Write(rb); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// duckRowsPerSec loads file into a DuckDB table (threads=1) and returns
// rows per second of query over it, best of 5 runs.
func duckRowsPerSec(b *testing.B, py, file, query string, rows int) float64 {
	script := `
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET threads = 1")
con.execute("CREATE TABLE t AS SELECT * FROM read_parquet('%s')" % sys.argv[1])
best = 1e9
for _ in range(5):
    t0 = time.perf_counter()
    con.execute(sys.argv[2]).fetchall()
    best = min(best, time.perf_counter() - t0)
print(best)
`
	out, err := exec.Command(py, "-c", script, file, query).CombinedOutput()
	if err != nil {
		b.Fatalf("duckdb: %v\n%s", err, out)
	}
	sec, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		b.Fatal(fmt.Errorf("duckdb timing %q: %w", out, err))
	}
	return float64(rows) / sec
}
