package windows

import (
	"encoding/binary"
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
	var c [64 - hllP + 2]int
	for _, r := range regs[:hllSize] {
		c[r]++
	}
	return hllEstimateHist(&c)
}

// hllEstimateHist estimates from the histogram of register values.
func hllEstimateHist(c *[64 - hllP + 2]int) int64 {
	const q = 64 - hllP
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

// Sketches inside window state start sparse: a window sees few distinct
// values far more often than many, and a dense sketch is 16 KiB. A sketch
// region in a window's blob is
//
//	kind (0 sparse, 1 dense) | n (uint32 LE) | payload
//
// where a sparse payload is n uint32 entries idx<<8 | rank, sorted by idx,
// one per non-zero register, and a dense one the 16384 registers. A sparse
// sketch turns dense past hllSparseMax entries (where it would be half the
// dense size). Both give exactly the estimate of the dense sketch.
const (
	hllSparseMax  = 2048
	regionHeader  = 5
	regionSparse  = 0
	regionDense   = 1
	emptyRegionSz = regionHeader
)

func regionLen(b []byte) int {
	if b[0] == regionDense {
		return regionHeader + hllSize
	}
	return regionHeader + 4*int(binary.LittleEndian.Uint32(b[1:]))
}

// findRegion returns the offset and length of sketch region i of blob,
// whose fixed part is fixed bytes long.
func findRegion(blob []byte, fixed, i int) (off, n int) {
	off = fixed
	for ; i > 0; i-- {
		off += regionLen(blob[off:])
	}
	return off, regionLen(blob[off:])
}

func appendEmptyRegion(dst []byte) []byte { return append(dst, regionSparse, 0, 0, 0, 0) }

// spliceRegion replaces blob[off:off+old] with region.
func spliceRegion(blob []byte, off, old int, region []byte) []byte {
	if len(region) == old {
		copy(blob[off:], region)
		return blob
	}
	out := make([]byte, 0, len(blob)-old+len(region))
	out = append(out, blob[:off]...)
	out = append(out, region...)
	return append(out, blob[off+old:]...)
}

func denseRegion(regs []uint8) []byte {
	out := make([]byte, regionHeader+hllSize)
	out[0] = regionDense
	binary.LittleEndian.PutUint32(out[1:], hllSize)
	copy(out[regionHeader:], regs)
	return out
}

// toDense returns the registers of a region (a copy for sparse ones).
func toDense(region []byte) []uint8 {
	if region[0] == regionDense {
		return region[regionHeader : regionHeader+hllSize]
	}
	regs := make([]uint8, hllSize)
	n := int(binary.LittleEndian.Uint32(region[1:]))
	for j := 0; j < n; j++ {
		e := binary.LittleEndian.Uint32(region[regionHeader+4*j:])
		regs[e>>8] = uint8(e)
	}
	return regs
}

// regionUpdate folds entries (idx<<8 | rank, sorted) into a region and
// returns the new region (the same bytes when it stays dense).
func regionUpdate(region []byte, ents []uint32) []byte {
	if region[0] == regionDense {
		regs := region[regionHeader:]
		for _, e := range ents {
			if r := uint8(e); r > regs[e>>8] {
				regs[e>>8] = r
			}
		}
		return region
	}
	n := int(binary.LittleEndian.Uint32(region[1:]))
	old := region[regionHeader : regionHeader+4*n]
	merged := make([]uint32, 0, n+len(ents))
	i, j := 0, 0
	for i < n || j < len(ents) {
		var e uint32
		switch {
		case j == len(ents) || (i < n && binary.LittleEndian.Uint32(old[4*i:])>>8 < ents[j]>>8):
			e = binary.LittleEndian.Uint32(old[4*i:])
			i++
		case i == n || ents[j]>>8 < binary.LittleEndian.Uint32(old[4*i:])>>8:
			e = ents[j]
			j++
		default: // same register from both: the larger rank
			e = max(binary.LittleEndian.Uint32(old[4*i:]), ents[j])
			i++
			j++
		}
		if k := len(merged) - 1; k >= 0 && merged[k]>>8 == e>>8 {
			merged[k] = max(merged[k], e)
			continue
		}
		merged = append(merged, e)
	}
	if len(merged) > hllSparseMax {
		regs := make([]uint8, hllSize)
		for _, e := range merged {
			regs[e>>8] = uint8(e)
		}
		return denseRegion(regs)
	}
	out := make([]byte, regionHeader+4*len(merged))
	binary.LittleEndian.PutUint32(out[1:], uint32(len(merged)))
	for k, e := range merged {
		binary.LittleEndian.PutUint32(out[regionHeader+4*k:], e)
	}
	return out
}

// regionMerge merges region src into dst and returns the result.
func regionMerge(dst, src []byte) []byte {
	if src[0] == regionSparse {
		n := int(binary.LittleEndian.Uint32(src[1:]))
		ents := make([]uint32, n)
		for k := range ents {
			ents[k] = binary.LittleEndian.Uint32(src[regionHeader+4*k:])
		}
		return regionUpdate(dst, ents)
	}
	regs := append([]uint8(nil), toDense(dst)...)
	hllMerge(regs, src[regionHeader:])
	return denseRegion(regs)
}

// regionEstimate estimates the distinct count of a region.
func regionEstimate(region []byte) int64 {
	if region[0] == regionDense {
		return hllEstimate(region[regionHeader : regionHeader+hllSize])
	}
	var c [64 - hllP + 2]int
	n := int(binary.LittleEndian.Uint32(region[1:]))
	c[0] = hllM - n
	for j := 0; j < n; j++ {
		c[uint8(binary.LittleEndian.Uint32(region[regionHeader+4*j:]))]++
	}
	return hllEstimateHist(&c)
}
