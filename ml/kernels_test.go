package ml

import (
	"math"
	"math/rand/v2"
	"testing"
)

func near(a, b, tol float32) bool {
	return math.Abs(float64(a-b)) <= float64(tol)*math.Max(1, math.Abs(float64(b)))
}

// TestKernelsMatchGo checks the dispatching kernels (assembly when the CPU
// has AVX2) against the portable Go versions at several widths.
func TestKernelsMatchGo(t *testing.T) {
	if !useAVX2 {
		t.Log("no AVX2: the dispatching kernels are the Go ones")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	for _, k := range []int{1, 3, 8, 16, 24, 40, 64, 72, 128} {
		x := randFactors(rng, k, 1)
		y := randFactors(rng, k, 1)
		if got, want := dot(x, y), dotGo(x, y); !near(got, want, 1e-5) {
			t.Fatalf("k=%d dot %v, want %v", k, got, want)
		}
		y1, y2 := append([]float32(nil), y...), append([]float32(nil), y...)
		axpy(0.7, x, y1)
		axpyGo(0.7, x, y2)
		for i := range y1 {
			if !near(y1[i], y2[i], 1e-6) {
				t.Fatalf("k=%d axpy[%d] %v, want %v", k, i, y1[i], y2[i])
			}
		}
		g := randFactors(rng, k*k, 1)
		for a := 0; a < k; a++ {
			for b := 0; b < a; b++ {
				g[a*k+b] = g[b*k+a]
			}
		}
		o1, o2 := make([]float32, k), make([]float32, k)
		symv(g, k, x, o1)
		symvGo(g, k, x, o2)
		for i := range o1 {
			if !near(o1[i], o2[i], 1e-5) {
				t.Fatalf("k=%d symv[%d] %v, want %v", k, i, o1[i], o2[i])
			}
		}
		// symv4 equals symv per vector, bitwise (so grouping rows in CG
		// does not change their results).
		x4, o4 := randFactors(rng, 4*k, 1), make([]float32, 4*k)
		for n := 1; n <= 4; n++ {
			symv4(g, k, x4, o4, n)
			for v := 0; v < n; v++ {
				symv(g, k, x4[v*k:v*k+k], o1)
				for i := range o1 {
					if o4[v*k+i] != o1[i] {
						t.Fatalf("k=%d n=%d: symv4 vector %d [%d] = %v, symv %v", k, n, v, i, o4[v*k+i], o1[i])
					}
				}
			}
		}
		const items = 50
		fixed := randFactors(rng, items*k, 1)
		idx := []int32{0, 49, 7, 7, 23, 11, 3, 49, 0, 31, 30}
		ca, cb := randFactors(rng, len(idx), 1), randFactors(rng, len(idx), 1)
		g1, g2 := append([]float32(nil), y...), append([]float32(nil), y...)
		gatherDotAxpy(fixed, k, idx, ca, cb, x, g1)
		gatherDotAxpyGo(fixed, k, idx, ca, cb, x, g2)
		for i := range g1 {
			if !near(g1[i], g2[i], 1e-4) {
				t.Fatalf("k=%d gatherDotAxpy[%d] %v, want %v", k, i, g1[i], g2[i])
			}
		}
	}
}

func TestFirstAbove(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for n := 0; n < 70; n++ {
		for trial := 0; trial < 20; trial++ {
			row := randFactors(rng, n, 1)
			for i := range row {
				if rng.IntN(10) == 0 {
					row[i] = float32(math.NaN())
				}
			}
			thr := float32(rng.NormFloat64() + 1.5)
			want := len(row)
			for i, v := range row {
				if v > thr {
					want = i
					break
				}
			}
			if got := firstAbove(row, thr); got != want {
				t.Fatalf("n=%d: firstAbove = %d, want %d (row %v, thr %v)", n, got, want, row, thr)
			}
		}
	}
}
