package gen_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/riffle-dev/riffle/internal/gen"
)

// BenchmarkChunk measures generation alone, one goroutine.
func BenchmarkChunk(b *testing.B) {
	g, err := gen.New(gen.Options{Rows: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		g.Chunk(0).Release()
	}
	b.ReportMetric(float64(b.N)*float64(1<<20)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkWriteFile measures WriteFile end to end (generation in parallel,
// Parquet encoding, zstd, fsync). Run the 50M case with -benchtime 1x.
func BenchmarkWriteFile(b *testing.B) {
	for _, rows := range []int64{1_000_000, 10_000_000, 50_000_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "events.parquet")
			b.ReportAllocs()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := gen.WriteFile(context.Background(), path, gen.Options{Rows: rows, Seed: int64(i)}, nil); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(rows)*float64(b.N)/el, "rows/s")
			b.ReportMetric(el/float64(b.N), "s/file")
			if st, err := os.Stat(path); err == nil {
				b.ReportMetric(float64(st.Size())/1e6, "file-MB")
			}
		})
	}
}
