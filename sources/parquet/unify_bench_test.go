package parquet

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"
)

var (
	unifyBenchOnce sync.Once
	unifyBenchDir  string
)

// unifyBenchFiles writes (once) two directories of two 2M-row files each:
// same/ holds two copies of the benchmark file; unified/ holds one copy and
// a file with the same rows whose country column is large_utf8 and which
// has no user column.
func unifyBenchFiles(b *testing.B) (same, unified []string) {
	path := benchFile(b)
	unifyBenchOnce.Do(func() {
		unifyBenchDir = filepath.Join(filepath.Dir(path), "unify")
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range []string{"same/a.parquet", "same/b.parquet", "unified/a.parquet"} {
			p = filepath.Join(unifyBenchDir, p)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		src, err := New(Options{Paths: []string{path}, Columns: []string{"id", "country", "amount", "ts"}, BatchSize: benchRGRows})
		if err != nil {
			b.Fatal(err)
		}
		sc := arrow.NewSchema([]arrow.Field{src.Schema().Field(0),
			{Name: "country", Type: arrow.BinaryTypes.LargeString, Nullable: true},
			src.Schema().Field(2), src.Schema().Field(3)}, nil)
		mem := memory.NewGoAllocator()
		var recs []arrow.RecordBatch
		for rec, err := range src.Batches(context.Background(), mem, 0) {
			if err != nil {
				b.Fatal(err)
			}
			large, err := compute.CastToType(context.Background(), rec.Column(1), arrow.BinaryTypes.LargeString)
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, array.NewRecordBatch(sc, []arrow.Array{rec.Column(0), large, rec.Column(2), rec.Column(3)}, rec.NumRows()))
			large.Release()
		}
		writeFile(b, filepath.Join(unifyBenchDir, "unified/b.parquet"), sc, recs, pq.WithMaxRowGroupLength(benchRGRows))
		releaseBatchList(recs)
	})
	same = []string{filepath.Join(unifyBenchDir, "same")}
	unified = []string{filepath.Join(unifyBenchDir, "unified")}
	return same, unified
}

func releaseBatchList(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

// BenchmarkUnifiedScan reads 4M rows from two files with the arrow decoder:
// two files of one schema, and two files unified by name (utf8 and
// large_utf8 country, user missing from one), which costs a cast of
// country to utf8 and a NULL user column per batch of the second file.
//
//	go test -run '^$' -bench UnifiedScan -benchtime 3x -count 3 ./sources/parquet
func BenchmarkUnifiedScan(b *testing.B) {
	same, unified := unifyBenchFiles(b)
	b.Run("same-schema", func(b *testing.B) { benchScan(b, same, DecoderArrow, nil) })
	b.Run("unified", func(b *testing.B) { benchScan(b, unified, "", nil) })
}
