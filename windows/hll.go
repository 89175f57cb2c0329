package windows

import (
	"math"
	"math/bits"
)

// HyperLogLog with precision 14: 16384 one-byte registers, a standard
// error of 1.04/sqrt(16384) = 0.81%. Values are hashed with
// arrowexec.HashColumns (a splitmix64-finalized 64-bit hash); the top 14
// bits pick the register, the rank is the number of leading zeros of the
// remaining 50 bits plus one (at most 51). The estimate is Ertl's improved
// estimator ("New cardinality estimation algorithms for HyperLogLog
// sketches", 2017), which needs no empirical bias tables and no switch to
// linear counting: it is unbiased from a handful of values to far beyond
// 2^40.

const (
	hllP    = 14
	hllM    = 1 << hllP
	hllSize = hllM
)

// hllRegister returns the register index and rank of hash h.
func hllRegister(h uint64) (idx uint32, rank uint8) {
	idx = uint32(h >> (64 - hllP))
	w := h<<hllP | 1<<(hllP-1) // guard bit bounds the rank at 64-p+1
	return idx, uint8(bits.LeadingZeros64(w) + 1)
}

// HLL is a dense HyperLogLog sketch (precision 14).
type HLL [hllSize]uint8

// AddHash adds a 64-bit hash.
func (s *HLL) AddHash(h uint64) {
	i, r := hllRegister(h)
	if r > s[i] {
		s[i] = r
	}
}

// Merge folds o into s.
func (s *HLL) Merge(o *HLL) { hllMerge(s[:], o[:]) }

// Estimate returns the estimated number of distinct hashes added.
func (s *HLL) Estimate() int64 { return hllEstimate(s[:]) }

func hllMerge(dst, src []uint8) {
	for i, v := range src[:hllSize] {
		if v > dst[i] {
			dst[i] = v
		}
	}
}

func hllEstimate(regs []uint8) int64 {
	const q = 64 - hllP
	var c [q + 2]int
	for _, r := range regs[:hllSize] {
		c[r]++
	}
	m := float64(hllM)
	z := m * hllTau(1-float64(c[q+1])/m)
	for k := q; k >= 1; k-- {
		z += float64(c[k])
		z *= 0.5
	}
	z += m * hllSigma(float64(c[0])/m)
	return int64(math.Round(m * m / (2 * math.Ln2) / z))
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if z == prev {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
}
