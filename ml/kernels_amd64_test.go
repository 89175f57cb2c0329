//go:build amd64 && !purego

package ml

import "testing"

// TestAVX2Path runs the kernel, solver and top-K tests on the AVX2 kernels
// when the CPU would otherwise use the AVX-512 ones.
func TestAVX2Path(t *testing.T) {
	if !useAVX512 {
		t.Skip("the AVX2 kernels are already the default here")
	}
	withoutAVX512(func() {
		TestKernelsMatchGo(t)
		TestSolveRowsClosedForm(t)
		TestCGConvergesToCholesky(t)
		TestTopKMatchesBruteForce(t)
		TestTopKRealValuedScores(t)
		TestScorerSetItem(t)
	})
}

// withoutAVX512 runs fn with the AVX-512 kernels switched off.
func withoutAVX512(fn func()) {
	was := useAVX512
	useAVX512 = false
	defer func() { useAVX512 = was }()
	fn()
}
