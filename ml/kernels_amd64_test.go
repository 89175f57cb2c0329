//go:build amd64 && !purego

package ml

import "testing"

// TestTopKAVX2Path runs the top-K tests on the AVX2 scoring kernel when the
// CPU would otherwise use the AVX-512 one.
func TestTopKAVX2Path(t *testing.T) {
	if !useAVX512 {
		t.Skip("the AVX2 kernel is already the default here")
	}
	withoutAVX512(func() {
		TestTopKMatchesBruteForce(t)
		TestTopKRealValuedScores(t)
	})
}

// withoutAVX512 runs fn with the AVX-512 kernels switched off.
func withoutAVX512(fn func()) {
	was := useAVX512
	useAVX512 = false
	defer func() { useAVX512 = was }()
	fn()
}
