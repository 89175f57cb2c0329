package agg

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"slices"
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

// HLLRegister returns the register index and rank of hash h.
func HLLRegister(h uint64) (idx uint32, rank uint8) {
	idx = uint32(h >> (64 - hllP))
	w := h<<hllP | 1<<(hllP-1) // guard bit bounds the rank at 64-p+1
	return idx, uint8(bits.LeadingZeros64(w) + 1)
}

// HLL is a dense HyperLogLog sketch (precision 14).
type HLL [hllSize]uint8

// AddHash adds a 64-bit hash.
func (s *HLL) AddHash(h uint64) {
	i, r := HLLRegister(h)
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

// Sketches start sparse: a group or window sees few distinct values far
// more often than many, and a dense sketch is 16 KiB. A sketch (the state
// of approx_distinct in both steps: a window blob's region, an aggregate's
// partial and checkpoint state) is
//
//	kind (0 sparse, 1 dense; 2 is a quantile sketch, kll.go) | n (uint32 LE) | payload
//
// where a sparse payload is n uint32 entries idx<<8 | rank, sorted by idx,
// one per non-zero register, and a dense one the 16384 registers. A sparse
// sketch turns dense past hllSparseMax entries (where it would be half the
// dense size). Both give exactly the estimate of the dense sketch.
const (
	hllSparseMax = 2048
	regionHeader = 5
	regionSparse = 0
	regionDense  = 1
)

func SketchLen(b []byte) int {
	switch b[0] {
	case regionDense:
		return regionHeader + hllSize
	case regionKLL: // a quantile sketch (kll.go)
		return regionHeader + int(binary.LittleEndian.Uint32(b[1:]))
	}
	return regionHeader + 4*int(binary.LittleEndian.Uint32(b[1:]))
}

// EmptySketchSize is the size of an empty sketch.
const EmptySketchSize = regionHeader

// AppendEmptySketch appends an empty (sparse) sketch to dst.
func AppendEmptySketch(dst []byte) []byte { return append(dst, regionSparse, 0, 0, 0, 0) }

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

// SketchUpdate folds entries (idx<<8 | rank, sorted) into a region and
// returns the new region (the same bytes when it stays dense).
func SketchUpdate(region []byte, ents []uint32) []byte {
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

// SketchMerge merges region src into dst and returns the result.
func SketchMerge(dst, src []byte) []byte {
	if src[0] == regionSparse {
		n := int(binary.LittleEndian.Uint32(src[1:]))
		ents := make([]uint32, n)
		for k := range ents {
			ents[k] = binary.LittleEndian.Uint32(src[regionHeader+4*k:])
		}
		return SketchUpdate(dst, ents)
	}
	regs := append([]uint8(nil), toDense(dst)...)
	hllMerge(regs, src[regionHeader:])
	return denseRegion(regs)
}

// SketchEstimate estimates the distinct count of a region.
func SketchEstimate(region []byte) int64 {
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

// errCorruptSketch reports sketch bytes (from a checkpoint or a partial
// aggregate) that are not a sketch.
var errCorruptSketch = errors.New("agg: approx_distinct: corrupt sketch state")

// validSketch reports whether b is a well-formed sketch: a dense one of
// 16384 registers, or a sparse one whose entries are sorted by register.
func validSketch(b []byte) bool {
	if len(b) < regionHeader {
		return false
	}
	n := int(binary.LittleEndian.Uint32(b[1:]))
	switch b[0] {
	case regionDense:
		return n == hllSize && len(b) == regionHeader+hllSize
	case regionSparse:
		if n > hllSparseMax || len(b) != regionHeader+4*n {
			return false
		}
		for j := 1; j < n; j++ {
			if binary.LittleEndian.Uint32(b[regionHeader+4*j:])>>8 <= binary.LittleEndian.Uint32(b[regionHeader+4*j-4:])>>8 {
				return false
			}
		}
		return true
	}
	return false
}

// SketchEntry packs group g and the register and rank of hash h into one
// word; sorted, such entries bring each group's registers together in
// register order (SketchRuns).
func SketchEntry(g uint32, h uint64) uint64 {
	idx, r := HLLRegister(h)
	return uint64(g)<<32 | uint64(idx)<<8 | uint64(r)
}

// SketchRuns sorts ents (SketchEntry words) and calls fn once per group
// with the group's entries idx<<8 | rank in register order, ready for
// SketchUpdate; run is scratch space, returned for reuse.
func SketchRuns(ents []uint64, run []uint32, fn func(g uint32, run []uint32)) []uint32 {
	slices.Sort(ents)
	for lo := 0; lo < len(ents); {
		g := uint32(ents[lo] >> 32)
		hi := lo + 1
		for hi < len(ents) && uint32(ents[hi]>>32) == g {
			hi++
		}
		run = run[:0]
		for _, e := range ents[lo:hi] {
			run = append(run, uint32(e))
		}
		fn(g, run)
		lo = hi
	}
	return run
}
