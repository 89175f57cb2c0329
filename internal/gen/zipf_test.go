package gen

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSamplers checks both Zipf samplers against the exact probabilities of
// the first ranks, for exponents below, at and above 1.
func TestSamplers(t *testing.T) {
	const n, draws = 1000, 400_000
	for _, s := range []float64{0.5, 1.0, 1.3} {
		var h float64
		for k := 1; k <= n; k++ {
			h += math.Pow(float64(k), -s)
		}
		p := perm{a: 1, b: 0, n: n}
		rng := rand.New(rand.NewPCG(1, uint64(s*10)))
		ri := newZipf(s, n)
		alias := newIDSampler(s, n, p)
		var cz, ca [n]int
		for i := 0; i < draws; i++ {
			cz[ri.sample(rng)-1]++
			ca[alias.sample(rng)]++
		}
		for _, k := range []int{1, 2, 10, 100} {
			want := math.Pow(float64(k), -s) / h * draws
			tol := 5*math.Sqrt(want) + 1
			for name, c := range map[string]int{"rejection-inversion": cz[k-1], "alias": ca[k-1]} {
				if math.Abs(float64(c)-want) > tol {
					t.Errorf("s=%v %s rank %d: %d draws, want %.0f ± %.0f", s, name, k, c, want, tol)
				}
			}
		}
	}
}

// TestPerm checks the affine permutation is a bijection.
func TestPerm(t *testing.T) {
	for _, n := range []int64{1, 2, 10, 97, 1000, 4096} {
		p := newPerm(rand.New(rand.NewPCG(uint64(n), 0)), n)
		seen := make([]bool, n)
		for k := int64(0); k < n; k++ {
			v := p.apply(uint64(k))
			if v < 0 || v >= n || seen[v] {
				t.Fatalf("n=%d: %d -> %d repeats or out of range", n, k, v)
			}
			seen[v] = true
		}
	}
}

// TestLargeIDRange uses the rejection-inversion path (more ids than the
// alias table takes).
func TestLargeIDRange(t *testing.T) {
	n := int64(maxAliasN + 1)
	is := newIDSampler(1.1, n, newPerm(rand.New(rand.NewPCG(1, 1)), n))
	if is.z == nil {
		t.Fatal("alias table for a large range")
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for i := 0; i < 10000; i++ {
		if v := is.sample(rng); v < 0 || v >= n {
			t.Fatalf("id %d out of range", v)
		}
	}
}
