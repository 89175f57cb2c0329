//go:build amd64 && !purego

package ml

import "testing"

// BenchmarkPeak measures one core's float32 FMA ceiling, the figure the
// kernels' GFLOP/s are compared with in doc.go:
//
//	go test -run '^$' -bench Peak -cpu 1 ./ml
func BenchmarkPeak(b *testing.B) {
	const rounds = 1 << 20
	kbf(b, "avx2", 192*rounds, func() { fmaPeakAVX2(rounds) })
	if hasAVX512 {
		kbf(b, "avx512", 384*rounds, func() { fmaPeakAVX512(rounds) })
	}
}
