//go:build amd64 && !purego

package ml

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly kernels of kernels_amd64.s. Build with
// -tags purego to use the portable Go kernels everywhere.
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// gatherDotAxpyAVX2 does, for j < n with f = fixed[idx[j]*k:][:k]:
// y += (ca[j] + cb[j]·(f·x))·f. k must be a positive multiple of 8.
//
//go:noescape
func gatherDotAxpyAVX2(fixed *float32, k int, idx *int32, n int, ca, cb, x, y *float32)

// symvAVX2 writes gm·x into y for a symmetric row-major k×k gm; k a positive
// multiple of 8.
//
//go:noescape
func symvAVX2(gm *float32, k int, x, y *float32)

// dotAVX2 returns a·b over k elements, k a positive multiple of 8.
//
//go:noescape
func dotAVX2(a, b *float32, k int) float32

// axpyAVX2 does y += a·x over k elements, k a positive multiple of 8.
//
//go:noescape
func axpyAVX2(a float32, x, y *float32, k int)

// score4x16AVX2 writes the 4×16 block of dot products of the four user rows
// u0..u3 (k elements each) with a panel of 16 item rows stored transposed
// (panel[t*16+j] is item j's element t) into out, rows ldo apart.
//
//go:noescape
func score4x16AVX2(k int, u0, u1, u2, u3, panel, out *float32, ldo int)

// gatherDotAxpy4AVX2 is gatherDotAxpyAVX2 four interactions at a time; n a
// multiple of 4, k a positive multiple of 16.
//
//go:noescape
func gatherDotAxpy4AVX2(fixed *float32, k int, idx *int32, n int, ca, cb, x, y *float32)

// gramRank4AVX2 adds Σ_{r<4} y_r y_rᵀ for four float64 rows of k (a
// positive multiple of 4) to the k×k gm, each row a from column a&^3 on.
//
//go:noescape
func gramRank4AVX2(y *float64, k int, gm *float64)

// firstAboveAVX2 returns the first i < n with p[i] > thr (false for NaN),
// else n; n a multiple of 8.
//
//go:noescape
func firstAboveAVX2(p *float32, n int, thr float32) int

// fmaPeakAVX2 and fmaPeakAVX512 run n rounds of 12 independent FMAs (8-
// and 16-wide) for BenchmarkPeak, the FLOP/s ceiling the kernels are
// compared with.
//
//go:noescape
func fmaPeakAVX2(n int)

//go:noescape
func fmaPeakAVX512(n int)

var hasAVX512 = cpu.X86.HasAVX512F

// useAVX512 selects the 16-wide kernels where there is one.
var useAVX512 = useAVX2 && hasAVX512

// score4x32AVX512 is score4x16AVX2 over panels of 32 items.
//
//go:noescape
func score4x32AVX512(k int, u0, u1, u2, u3, panel, out *float32, ldo int)

// gatherDotAxpy4AVX512 is gatherDotAxpy4AVX2 16 wide; n a multiple of 4, k
// a positive multiple of 32.
//
//go:noescape
func gatherDotAxpy4AVX512(fixed *float32, k int, idx *int32, n int, ca, cb, x, y *float32)

// symvAVX512 is symvAVX2 16 wide; k a positive multiple of 16.
//
//go:noescape
func symvAVX512(gm *float32, k int, x, y *float32)

// axpy64AVX2 does y += a·x over n float64 elements, n a multiple of 4.
//
//go:noescape
func axpy64AVX2(a float64, x, y *float64, n int)

// symv4AVX512 is symvAVX512 for four vectors stored k apart in x and y, in
// one pass over gm; per vector bitwise symvAVX512's result. k a positive
// multiple of 16.
//
//go:noescape
func symv4AVX512(gm *float32, k int, x, y *float32)

// score1x16AVX2 writes the dot products of the query row x (k elements)
// with np consecutive panels of 16 item rows stored transposed (as
// score4x16AVX2's) into out[p*16+j]: the one-query (serving) path, which
// would waste three quarters of score4x16AVX2's work.
//
//go:noescape
func score1x16AVX2(k int, x, panels *float32, np int, out *float32)

// score1x32AVX512 is score1x16AVX2 over panels of 32 items.
//
//go:noescape
func score1x32AVX512(k int, x, panels *float32, np int, out *float32)

// score1x32F16AVX512 is score1x32AVX512 over panels of binary16 item
// factors (widened exactly to float32 before each FMA).
//
//go:noescape
func score1x32F16AVX512(k int, x *float32, panels *uint16, np int, out *float32)
