package parquet

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"

	"github.com/riffle-dev/riffle/arrowexec"
)

const (
	benchRows     = 2_000_000
	benchRGRows   = 250_000
	benchBatchLen = 65536
)

var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

var benchSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "user", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "country", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
}, nil)

// benchFile writes (once per process) a 2M-row, 8-row-group, snappy file:
// int64, int64 with 5% nulls, low-cardinality string with 2% nulls, float64
// with 5% nulls, timestamp[ms].
func benchFile(b *testing.B) string {
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "riffle-parquet-bench")
		if benchErr != nil {
			return
		}
		rng := rand.New(rand.NewPCG(42, 42))
		mem := memory.NewGoAllocator()
		countries := []string{"DE", "FR", "US", "JP", "BR", "IN", "NL", "SE", "ZA", "AU", "CA", "MX"}
		var recs []arrow.RecordBatch
		for id := 0; id < benchRows; id += benchRGRows {
			bld := array.NewRecordBuilder(mem, benchSchema)
			ids := bld.Field(0).(*array.Int64Builder)
			users := bld.Field(1).(*array.Int64Builder)
			cs := bld.Field(2).(*array.StringBuilder)
			am := bld.Field(3).(*array.Float64Builder)
			ts := bld.Field(4).(*array.TimestampBuilder)
			t0 := int64(1_700_000_000_000)
			for i := id; i < id+benchRGRows; i++ {
				ids.Append(int64(i))
				if rng.IntN(20) == 0 {
					users.AppendNull()
				} else {
					users.Append(rng.Int64N(1_000_000))
				}
				if rng.IntN(50) == 0 {
					cs.AppendNull()
				} else {
					cs.Append(countries[rng.IntN(len(countries))])
				}
				if rng.IntN(20) == 0 {
					am.AppendNull()
				} else {
					am.Append(rng.Float64() * 1000)
				}
				ts.Append(arrow.Timestamp(t0 + int64(i)*13 + rng.Int64N(13)))
			}
			recs = append(recs, bld.NewRecordBatch())
			bld.Release()
		}
		writeFile(b, filepath.Join(benchDir, "events.parquet"), benchSchema, recs, pq.WithMaxRowGroupLength(benchRGRows))
		for _, r := range recs {
			r.Release()
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return filepath.Join(benchDir, "events.parquet")
}

func benchDecode(b *testing.B, dec string, cols []string) {
	benchScan(b, []string{benchFile(b)}, dec, cols)
}

func benchScan(b *testing.B, paths []string, dec string, cols []string) {
	src, err := New(Options{Paths: paths, Decoder: dec, Columns: cols, BatchSize: benchBatchLen})
	if err != nil {
		b.Fatal(err)
	}
	_, _, _, rows, bytes := src.Stats()
	mem := memory.NewGoAllocator()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(bytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := src.Open(ctx, &arrowexec.Task{Parallelism: 1, Mem: mem})
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for {
			rec, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += rec.NumRows()
			rec.Release()
		}
		r.Close()
		if n != rows {
			b.Fatalf("read %d rows, want %d", n, rows)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkDecode decodes the whole 2M-row file into 64Ki-row batches with
// one subtask.
//
//	go test -run '^$' -bench Decode -benchtime 5x -count 3 ./sources/parquet
func BenchmarkDecode(b *testing.B) {
	for _, dec := range []string{DecoderArrow, DecoderParquetGo} {
		b.Run(dec+"/all", func(b *testing.B) { benchDecode(b, dec, nil) })
		b.Run(dec+"/country,amount", func(b *testing.B) { benchDecode(b, dec, []string{"country", "amount"}) })
	}
}
