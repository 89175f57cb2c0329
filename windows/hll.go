package windows

import (
	"math"
	"math/bits"
)

// HyperLogLog with precision 14: 16384 one-byte registers, a standard
// error of 1.04/sqrt(16384) = 0.81%. Values are hashed with
// arrowexec.HashColumns (a splitmix64-finalized 64-bit hash); the top 14
// bits pick the register, the rank is the number of leading zeros of the
// remaining 50 bits plus one. The estimate is the raw HLL estimate with
// linear counting below 2.5m (Flajolet et al. 2007, with the small-range
// correction of Heule et al. 2013's threshold); 64-bit hashes make the
// large-range correction unnecessary.

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
	var sum float64
	zeros := 0
	for _, r := range regs[:hllSize] {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	m := float64(hllM)
	alpha := 0.7213 / (1 + 1.079/m)
	e := alpha * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return int64(math.Round(e))
}
