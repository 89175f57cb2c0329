package eval

import (
	"context"
	"sync"
	"testing"

	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/ml"
)

var bench struct {
	once sync.Once
	d    *Dataset
	s    *Split
}

// benchSplit is a user-time split of 2M generated events, 100k users ×
// 20k items (the generator's defaults).
func benchSplit(b *testing.B) (*Dataset, *Split) {
	bench.once.Do(func() {
		d, _ := plantedDataset(b, gen.Options{Rows: 2_000_000, Seed: 1, LatentFactors: 8})
		s, err := NewSplit(d, UserTime, DefaultTestPercent)
		if err != nil {
			b.Fatal(err)
		}
		bench.d, bench.s = d, s
	})
	return bench.d, bench.s
}

// BenchmarkSplit: splitting 2M rows user-time and building the matrices.
func BenchmarkSplit(b *testing.B) {
	d, _ := benchSplit(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewSplit(d, UserTime, DefaultTestPercent); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(d.Len())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkEvaluate: ranking the 20k-item catalogue for every test user
// (about 75k of 100k) at K = 10, 20 and computing every metric; "ials64"
// ranks with an (untrained) 64-factor ml.Model, so it times scoring every
// pair through ml.Model.TopK.
func BenchmarkEvaluate(b *testing.B) {
	_, s := benchSplit(b)
	ctx := context.Background()
	models := map[string]Model{"ials64": ml.NewModel(ml.Config{Factors: 64, Seed: 1}, s.Train.NumUsers, s.Train.NumItems)}
	names := []string{"popularity", "random", "ials64"}
	for _, tr := range []Trainer{Popularity{}, Random{Seed: 1}} {
		m, err := tr.Fit(ctx, s.Train)
		if err != nil {
			b.Fatal(err)
		}
		models[tr.Name()] = m
	}
	for _, name := range names {
		m := models[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Evaluate(ctx, s, m, name, []int{10, 20}, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(s.Stats.EvalUsers)*float64(b.N)/b.Elapsed().Seconds(), "users/s")
		})
	}
}
