package ml

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// kb runs fn b.N times as sub-benchmark name, reporting allocations and the
// process CPU time per call (cpu-ns/op), steadier than wall time on a
// shared machine.
func kb(b *testing.B, name string, fn func()) { kbf(b, name, 0, fn) }

// kbf is kb also reporting GFLOP/s (by CPU time) for flops per call.
func kbf(b *testing.B, name string, flops float64, fn func()) {
	b.Run(name, func(b *testing.B) {
		b.ReportAllocs()
		c0 := cpuTime()
		for range b.N {
			fn()
		}
		cpu := float64(cpuTime() - c0)
		b.ReportMetric(cpu/float64(b.N), "cpu-ns/op")
		if flops > 0 {
			b.ReportMetric(flops*float64(b.N)/cpu, "GFLOP/s")
		}
	})
}

func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkKernel compares the hot loops' kernels: the portable Go ones
// ("go"), the dispatching ones ("riffle": AVX2 assembly on this CPU) and
// gonum's pure-Go BLAS (blas32/blas64, whose level-1 inner loops are SSE
// assembly on amd64) doing the same work.
//
//	go test -run '^$' -bench Kernel -cpu 1 ./ml
func BenchmarkKernel(b *testing.B) {
	for _, k := range []int{64, 128} {
		rng := rand.New(rand.NewPCG(31, uint64(k)))
		x, y := randFactors(rng, k, 1), randFactors(rng, k, 1)
		vx, vy := blas32.Vector{N: k, Inc: 1, Data: x}, blas32.Vector{N: k, Inc: 1, Data: y}
		b.Run(fmt.Sprintf("dot/K=%d", k), func(b *testing.B) {
			var s float32
			kb(b, "go", func() {
				s += dotGo(x, y)
			})
			kb(b, "riffle", func() {
				s += dot(x, y)
			})
			kb(b, "gonum", func() {
				s += blas32.Dot(vx, vy)
			})
			_ = s
		})
		b.Run(fmt.Sprintf("axpy/K=%d", k), func(b *testing.B) {
			kb(b, "go", func() {
				axpyGo(1e-9, x, y)
			})
			kb(b, "riffle", func() {
				axpy(1e-9, x, y)
			})
			kb(b, "gonum", func() {
				blas32.Axpy(1e-9, vx, vy)
			})
		})
		g := randFactors(rng, k*k, 1)
		for a := 0; a < k; a++ {
			for c := 0; c < a; c++ {
				g[a*k+c] = g[c*k+a]
			}
		}
		out := make([]float32, k)
		b.Run(fmt.Sprintf("symv/K=%d", k), func(b *testing.B) {
			kb(b, "go", func() {
				symvGo(g, k, x, out)
			})
			kb(b, "riffle", func() {
				symv(g, k, x, out)
			})
			withoutAVX512(func() { kb(b, "riffle-avx2", func() { symv(g, k, x, out) }) })
			gs := blas32.Symmetric{N: k, Stride: k, Data: g, Uplo: blas.Upper}
			vo := blas32.Vector{N: k, Inc: 1, Data: out}
			kb(b, "gonum-symv", func() {
				blas32.Symv(1, gs, vx, 0, vo)
			})
			gg := blas32.General{Rows: k, Cols: k, Stride: k, Data: g}
			kb(b, "gonum-gemv", func() {
				blas32.Gemv(blas.NoTrans, 1, gg, vx, 0, vo)
			})
		})
		// One CG product's interaction loop for a user with 50 items.
		const items, n = 20000, 50
		fixed := randFactors(rng, items*k, 0.1)
		idx := make([]int32, n)
		for j := range idx {
			idx[j] = int32(rng.IntN(items))
		}
		ca, cb := make([]float32, n), randFactors(rng, n, 1)
		b.Run(fmt.Sprintf("cg-interactions/K=%d/n=%d", k, n), func(b *testing.B) {
			kb(b, "go", func() {
				gatherDotAxpyGo(fixed, k, idx, ca, cb, x, y)
			})
			kb(b, "riffle", func() {
				gatherDotAxpy(fixed, k, idx, ca, cb, x, y)
			})
			withoutAVX512(func() { kb(b, "riffle-avx2", func() { gatherDotAxpy(fixed, k, idx, ca, cb, x, y) }) })
			kb(b, "gonum", func() {
				for j, i := range idx {
					f := blas32.Vector{N: k, Inc: 1, Data: fixed[int(i)*k : int(i)*k+k]}
					blas32.Axpy(ca[j]+cb[j]*blas32.Dot(f, vx), f, vy)
				}
			})
		})
		// Scoring: a 64-user block against a 512-item tile.
		users := randFactors(rng, topkUserBlock*k, 1)
		tile := randFactors(rng, topkItemTile*k, 1)
		blk := make([]int32, topkUserBlock)
		for j := range blk {
			blk[j] = int32(j)
		}
		scores := make([]float32, topkUserBlock*topkItemTile)
		flops := 2 * float64(topkUserBlock*topkItemTile*k)
		b.Run(fmt.Sprintf("score-tile/K=%d", k), func(b *testing.B) {
			kbf(b, "go", flops, func() { scoreTile(users, blk, tile, k, topkItemTile, scores) })
			if pw := panelWidth(); pw > 0 {
				panels := packPanels(tile, k, topkItemTile, pw)
				kbf(b, fmt.Sprintf("riffle-%d", pw), flops, func() { scoreTilePanels(users, blk, panels, k, topkItemTile, pw, scores) })
			}
			if pw := panelWidth(); pw == 32 {
				withoutAVX512(func() {
					panels := packPanels(tile, k, topkItemTile, 16)
					kbf(b, "riffle-16", flops, func() { scoreTilePanels(users, blk, panels, k, topkItemTile, 16, scores) })
				})
			}
			ua := blas32.General{Rows: topkUserBlock, Cols: k, Stride: k, Data: users}
			ta := blas32.General{Rows: topkItemTile, Cols: k, Stride: k, Data: tile}
			ca := blas32.General{Rows: topkUserBlock, Cols: topkItemTile, Stride: topkItemTile, Data: scores}
			kbf(b, "gonum-gemm", flops, func() { blas32.Gemm(blas.NoTrans, blas.Trans, 1, ua, ta, 0, ca) })
		})
		// Gram of 2048 rows (one chunk), float64 accumulation.
		rows := randFactors(rng, gramChunk*k, 1)
		gd := make([]float64, k*k)
		r64 := make([]float64, len(rows))
		gflops := 2 * float64(gramChunk*k*k)
		b.Run(fmt.Sprintf("gram-chunk/K=%d", k), func(b *testing.B) {
			kbf(b, "riffle", gflops/2, func() { gramRows(rows, k, gd) })
			kbf(b, "gonum-syrk64", gflops/2, func() {
				for i, v := range rows {
					r64[i] = float64(v)
				}
				blas64.Syrk(blas.Trans, 1, blas64.General{Rows: gramChunk, Cols: k, Stride: k, Data: r64}, 1,
					blas64.Symmetric{N: k, Stride: k, Data: gd, Uplo: blas.Upper})
			})
		})
	}
}
