package ml

// The hot loops' kernels. Each dispatches to AVX-512 or AVX2+FMA assembly
// (kernels_amd64.s) when the CPU has it and the length is a multiple of 8,
// else runs the portable Go version (the *Go functions, also the tests'
// reference). doc.go compares them with gonum's BLAS.

// dot returns a·b over len(a) elements (len(b) ≥ len(a)).
func dot(a, b []float32) float32 {
	if useAVX2 && len(a)%8 == 0 && len(a) > 0 {
		b = b[:len(a)]
		return dotAVX2(&a[0], &b[0], len(a))
	}
	return dotGo(a, b)
}

func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpy does y += a·x over len(x) elements.
func axpy(a float32, x, y []float32) {
	if useAVX2 && len(x)%8 == 0 && len(x) > 0 {
		y = y[:len(x)]
		axpyAVX2(a, &x[0], &y[0], len(x))
		return
	}
	axpyGo(a, x, y)
}

func axpyGo(a float32, x, y []float32) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		y[i] += a * x[i]
		y[i+1] += a * x[i+1]
		y[i+2] += a * x[i+2]
		y[i+3] += a * x[i+3]
	}
	for ; i < len(x); i++ {
		y[i] += a * x[i]
	}
}

// symv writes g·x into out for the symmetric k×k row-major matrix g.
func symv(g []float32, k int, x, out []float32) {
	if useAVX2 && k%8 == 0 && k > 0 {
		_, _, _ = g[k*k-1], x[k-1], out[k-1]
		if useAVX512 && k%16 == 0 {
			symvAVX512(&g[0], k, &x[0], &out[0])
		} else {
			symvAVX2(&g[0], k, &x[0], &out[0])
		}
		return
	}
	symvGo(g, k, x, out)
}

// symv4 writes g·x_v into out_v for the n ≤ 4 vectors stored one after
// another in x and out (k apart). Each result is bitwise what symv gives
// for that vector alone.
func symv4(g []float32, k int, x, out []float32, n int) {
	if useAVX512 && k%16 == 0 && k > 0 {
		_, _, _ = g[k*k-1], x[4*k-1], out[4*k-1]
		symv4AVX512(&g[0], k, &x[0], &out[0])
		return
	}
	for v := 0; v < n; v++ {
		symv(g, k, x[v*k:v*k+k], out[v*k:v*k+k])
	}
}

func symvGo(g []float32, k int, x, out []float32) {
	for a := 0; a < k; a++ {
		out[a] = dotGo(g[a*k:a*k+k], x)
	}
}

// gatherDotAxpy does, for each j with f the row idx[j] of fixed (k wide):
// y += (ca[j] + cb[j]·(f·x))·f. It is the per-interaction loop of a CG
// step. idx must be in range (SolveRows checks it).
func gatherDotAxpy(fixed []float32, k int, idx []int32, ca, cb, x, y []float32) {
	if len(idx) == 0 {
		return
	}
	if useAVX2 && k%8 == 0 {
		_, _ = ca[len(idx)-1], cb[len(idx)-1]
		_, _ = x[k-1], y[k-1]
		done := 0
		if useAVX512 && k%32 == 0 && len(idx) >= 4 {
			done = len(idx) &^ 3
			gatherDotAxpy4AVX512(&fixed[0], k, &idx[0], done, &ca[0], &cb[0], &x[0], &y[0])
		} else if k%16 == 0 && len(idx) >= 4 {
			done = len(idx) &^ 3
			gatherDotAxpy4AVX2(&fixed[0], k, &idx[0], done, &ca[0], &cb[0], &x[0], &y[0])
		}
		if done < len(idx) {
			gatherDotAxpyAVX2(&fixed[0], k, &idx[done], len(idx)-done, &ca[done], &cb[done], &x[0], &y[0])
		}
		return
	}
	gatherDotAxpyGo(fixed, k, idx, ca, cb, x, y)
}

func gatherDotAxpyGo(fixed []float32, k int, idx []int32, ca, cb, x, y []float32) {
	for j, i := range idx {
		f := fixed[int(i)*k : int(i)*k+k]
		axpyGo(ca[j]+cb[j]*dotGo(f, x), f, y)
	}
}

// axpy64 does y += a·x in float64.
func axpy64(a float64, x, y []float64) {
	y = y[:len(x)]
	i := 0
	if useAVX2 {
		if i = len(x) &^ 3; i > 0 {
			axpy64AVX2(a, &x[0], &y[0], i)
		}
	}
	for ; i < len(x); i++ {
		y[i] += a * x[i]
	}
}

// firstAbove returns the first index of row whose value is > thr (NaN never
// is), or len(row): the top-K scan's skip over scores that cannot enter a
// full heap.
func firstAbove(row []float32, thr float32) int {
	j := 0
	if useAVX2 {
		if n := len(row) &^ 7; n > 0 {
			if j = firstAboveAVX2(&row[0], n, thr); j < n {
				return j
			}
		}
	}
	for ; j < len(row); j++ {
		if row[j] > thr {
			return j
		}
	}
	return j
}
