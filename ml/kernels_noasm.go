//go:build !amd64 || purego

package ml

const (
	useAVX2   = false
	useAVX512 = false
)

func gatherDotAxpyAVX2(fixed *float32, k int, idx *int32, n int, ca, cb, x, y *float32) {
	panic("unreachable")
}
func gatherDotAxpy4AVX2(fixed *float32, k int, idx *int32, n int, ca, cb, x, y *float32) {
	panic("unreachable")
}
func symvAVX2(gm *float32, k int, x, y *float32)                        { panic("unreachable") }
func dotAVX2(a, b *float32, k int) float32                              { panic("unreachable") }
func axpyAVX2(a float32, x, y *float32, k int)                          { panic("unreachable") }
func score4x16AVX2(k int, u0, u1, u2, u3, panel, out *float32, ldo int) { panic("unreachable") }
func gramRank4AVX2(y *float64, k int, gm *float64)                      { panic("unreachable") }
func firstAboveAVX2(p *float32, n int, thr float32) int                 { panic("unreachable") }
func score4x32AVX512(k int, u0, u1, u2, u3, panel, out *float32, ldo int) {
	panic("unreachable")
}
func gatherDotAxpy4AVX512(fixed *float32, k int, idx *int32, n int, ca, cb, x, y *float32) {
	panic("unreachable")
}
func symvAVX512(gm *float32, k int, x, y *float32)                    { panic("unreachable") }
func axpy64AVX2(a float64, x, y *float64, n int)                      { panic("unreachable") }
func symv4AVX512(gm *float32, k int, x, y *float32)                   { panic("unreachable") }
func score1x16AVX2(k int, x, panels *float32, np int, out *float32)   { panic("unreachable") }
func score1x32AVX512(k int, x, panels *float32, np int, out *float32) { panic("unreachable") }
func score1x32F16AVX512(k int, x *float32, panels *uint16, np int, out *float32) {
	panic("unreachable")
}
