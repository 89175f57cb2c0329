package ml

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestHalfConversion: every finite binary16 survives halfValue then
// halfBits; a float32 goes to the nearest binary16 (ties to even), checked
// against its two neighbours.
func TestHalfConversion(t *testing.T) {
	for h := range 1 << 16 {
		v := halfValue(uint16(h))
		if math.IsInf(float64(v), 0) || v != v {
			continue
		}
		if got := halfBits(v); got != uint16(h) && !(v == 0 && got&0x7fff == 0) {
			t.Fatalf("half %#04x = %v comes back as %#04x", h, v, got)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		v := float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-8)))
		if math.Abs(float64(v)) >= 65504 {
			continue
		}
		h := halfBits(v)
		d := math.Abs(float64(halfValue(h)) - float64(v))
		for _, n := range []uint16{h + 1, h - 1} {
			if hv := halfValue(n); !math.IsInf(float64(hv), 0) && hv == hv && math.Abs(float64(hv)-float64(v)) < d {
				t.Fatalf("%v: half %#04x (%v) is not the nearest: %#04x (%v)", v, h, halfValue(h), n, hv)
			}
		}
	}
}

// TestScorerHalfExact: TopKOf with the half-precision pass gives bitwise
// the answers of the float32 pass, on factors of mixed scales (tiny
// values that become binary16 subnormals, large ones) across tiles, with
// exclusions, and falls back to float32 once a factor leaves binary16's
// range.
func TestScorerHalfExact(t *testing.T) {
	if !useAVX512 {
		t.Skip("the half-precision pass runs on AVX-512 only")
	}
	for _, f := range []int{8, 32, 64} {
		rng := rand.New(rand.NewPCG(7, uint64(f)))
		s, err := NewItemScorer(f)
		if err != nil {
			t.Fatal(err)
		}
		vec := func(scale float64) []float32 {
			v := make([]float32, f)
			for j := range v {
				v[j] = float32(rng.NormFloat64() * scale)
			}
			return v
		}
		n := 3000
		for i := range n {
			scale := 0.3
			switch i % 97 {
			case 0:
				scale = 1e-6
			case 1:
				scale = 200
			}
			if err := s.SetItem(i, vec(scale)); err != nil {
				t.Fatal(err)
			}
		}
		check := func(what string) {
			t.Helper()
			for q := range 300 {
				x := vec(0.5)
				var ex []int32
				for i := range n {
					if rng.IntN(20) == 0 {
						ex = append(ex, int32(i))
					}
				}
				k := 1 + rng.IntN(40)
				if q == 0 {
					k = n
				}
				hi, hs, err := s.TopKOf(x, k, ex, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				was := halfScoring
				halfScoring = false
				fi, fs, err := s.TopKOf(x, k, ex, nil, nil)
				halfScoring = was
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(hi, fi) || !slices.Equal(hs, fs) {
					t.Fatalf("f=%d %s query %d k=%d: half pass %v %v, float32 pass %v %v", f, what, q, k, hi, hs, fi, fs)
				}
			}
		}
		check("mixed scales")
		if s.halfOff || s.halfErr == 0 {
			t.Fatalf("f=%d: half pass off (%v) or no rounding (%v)", f, s.halfOff, s.halfErr)
		}
		// Overwrite items (in place) and check again.
		for range 500 {
			if err := s.SetItem(rng.IntN(n), vec(0.3)); err != nil {
				t.Fatal(err)
			}
		}
		check("after updates")
		if err := s.SetItem(5, vec(1e5)); err != nil { // beyond binary16
			t.Fatal(err)
		}
		if !s.halfOff {
			t.Fatalf("f=%d: a factor beyond 65504 left the half pass on", f)
		}
		check("out of range")
	}
}
