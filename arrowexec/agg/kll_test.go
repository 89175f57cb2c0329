package agg

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// rankError is the normalized distance of rank target from the ranks v
// takes in sorted (ties: a range of ranks), 0 inside it.
func rankError(sorted []float64, v, target float64) float64 {
	lo := float64(sort.SearchFloat64s(sorted, v))                                          // values < v
	hi := float64(sort.Search(len(sorted), func(i int) bool { return sorted[i] > v })) - 1 // last rank of v
	if v != v {
		lo, hi = float64(len(sorted)), float64(len(sorted))
	}
	n := float64(len(sorted))
	switch {
	case target < lo:
		return (lo - target) / n
	case target > hi:
		return (target - hi) / n
	}
	return 0
}

// TestKLLRankError checks the documented bound KLLRankError on random
// inputs: uniform, normal, sorted, reverse sorted and with many
// duplicates, in one sketch or as a merge of many (windows merge a
// sketch per batch, sessions merge windows), for sizes up to 10^6.
func TestKLLRankError(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	gens := map[string]func(i, n int) float64{
		"uniform":  func(int, int) float64 { return rng.Float64() },
		"normal":   func(int, int) float64 { return rng.NormFloat64() * 1e6 },
		"sorted":   func(i, n int) float64 { return float64(i) },
		"reversed": func(i, n int) float64 { return float64(n - i) },
		"dups":     func(int, int) float64 { return float64(rng.IntN(50)) },
	}
	sizes := []int{150, 1000, 20_000, 300_000}
	if !testing.Short() {
		sizes = append(sizes, 1_000_000)
	}
	worst := 0.0
	for name, gen := range gens {
		for _, n := range sizes {
			for _, chunks := range []int{1, 37} {
				vals := make([]float64, n)
				for i := range vals {
					vals[i] = gen(i, n)
				}
				var s KLL
				per := (n + chunks - 1) / chunks
				for lo := 0; lo < n; lo += per {
					var part KLL
					// Batches of random size, as windows add them.
					for b := lo; b < min(lo+per, n); {
						e := min(b+1+rng.IntN(500), lo+per, n)
						part.Add(vals[b:e]...)
						b = e
					}
					// Round trip through the region format.
					var back KLL
					if !DecodeKLL(AppendKLLRegion(nil, &part), &back) {
						t.Fatal("region does not decode")
					}
					s.Merge(&back)
				}
				if s.N != uint64(n) {
					t.Fatalf("%s n=%d: N = %d", name, n, s.N)
				}
				items := 0
				for _, l := range s.Levels {
					items += len(l)
				}
				if items > 4*KLLK {
					t.Fatalf("%s n=%d: %d values kept, want at most %d", name, n, items, 4*KLLK)
				}
				sorted := slices.Clone(vals)
				slices.Sort(sorted)
				for q := 0.0; q <= 1.0001; q += 0.01 {
					q = math.Min(q, 1)
					v, ok := s.Quantile(q)
					if !ok {
						t.Fatal("no result")
					}
					e := rankError(sorted, v, q*float64(n-1))
					worst = max(worst, e)
					if e > KLLRankError {
						t.Errorf("%s n=%d chunks=%d q=%.2f: rank error %.4f > %.4f", name, n, chunks, q, e, KLLRankError)
					}
					if n <= KLLK && chunks == 1 {
						if want := QuantileCont(slices.Clone(vals), q); v != want {
							t.Errorf("%s n=%d q=%.2f: %v, exact %v", name, n, q, v, want)
						}
					}
				}
			}
		}
	}
	t.Logf("worst normalized rank error: %.5f (bound %.3f)", worst, KLLRankError)
}

// TestKLLExactSmall: up to KLLK values the sketch is exact, NaNs included.
func TestKLLExactSmall(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for it := range 300 {
		n := 1 + rng.IntN(KLLK)
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = float64(rng.IntN(40)) - 20
			if rng.IntN(30) == 0 {
				vals[i] = math.NaN()
			}
		}
		var s KLL
		s.Add(vals[:n/2]...)
		var o KLL
		o.Add(vals[n/2:]...)
		s.Merge(&o)
		q := rng.Float64()
		got, _ := s.Quantile(q)
		want := QuantileCont(slices.Clone(vals), q)
		if got != want && !(got != got && want != want) && math.Abs(got-want) > 1e-9*math.Abs(want) {
			t.Fatalf("%d: n=%d q=%v: %v, exact %v", it, n, q, got, want)
		}
	}
}

func BenchmarkKLLAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	vals := make([]float64, 4096)
	for i := range vals {
		vals[i] = rng.NormFloat64()
	}
	b.ReportAllocs()
	var s KLL
	for b.Loop() {
		s.Add(vals...)
	}
	b.ReportMetric(float64(b.N*len(vals))/b.Elapsed().Seconds(), "values/s")
}

func BenchmarkKLLRegionRoundTrip(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	var s KLL
	for range 100 {
		v := make([]float64, 1000)
		for i := range v {
			v[i] = rng.Float64()
		}
		s.Add(v...)
	}
	var buf []byte
	var back KLL
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendKLLRegion(buf[:0], &s)
		DecodeKLL(buf, &back)
	}
	b.ReportMetric(float64(len(buf)), "bytes")
}
