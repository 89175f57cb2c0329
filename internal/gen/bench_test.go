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

// BenchmarkChunk measures generation alone, one goroutine: the plain
// generator and the planted model of rank 8 and 64 (default sizes).
func BenchmarkChunk(b *testing.B) {
	for _, latent := range []int{0, 8, 64} {
		b.Run(fmt.Sprintf("latent=%d", latent), func(b *testing.B) {
			g, err := gen.New(gen.Options{Rows: 1 << 20, LatentFactors: latent})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				g.Chunk(0).Release()
			}
			b.ReportMetric(float64(b.N)*float64(1<<20)/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// BenchmarkNewLatent measures drawing the planted model (default sizes:
// 100k users, 20k items).
func BenchmarkNewLatent(b *testing.B) {
	for _, latent := range []int{8, 64} {
		b.Run(fmt.Sprintf("latent=%d", latent), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := gen.New(gen.Options{LatentFactors: latent}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
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
