package agg

import (
	"encoding/binary"
	"math"
	"slices"
)

// A quantile sketch for unbounded input (median and quantile in the window
// step), after Karnin, Lang and Liberty's KLL: values enter level 0 with
// weight 1; a level over its capacity is sorted and every other value of
// it (the odd or the even ones) moves up a level with twice the weight,
// the rest is dropped. Capacities shrink geometrically (factor 2/3) from
// the top level, whose capacity is KLLK, so a sketch holds at most about
// 3*KLLK values, whatever the input size. The extremes and the NaNs
// (greater than every number, as in DuckDB) are kept exactly aside.
//
// Until a group has more than KLLK values nothing is compacted and the
// result is exact: DuckDB's quantile_cont (see QuantileCont). Beyond, the
// value returned for q has a rank within KLLRankError*n of q*(n-1)
// (TestKLLRankError checks this bound on random, sorted and duplicate-heavy
// inputs, single sketches and merges of many; it observes at most about
// half of it).
//
// Which half of a level survives is decided by a pseudo-random bit derived
// from the sketch's own count, so a sketch's evolution depends only on its
// inputs: a restored window continues exactly as it would have.
//
// A sketch is kept in a window blob as a region (the format of hll.go's
// regions: a tag byte, then a uint32 length of the payload): payload
//
//	n uint64 | nans uint64 | min float64 | max float64 | levels uint8 |
//	levels x size uint32 | the values of level 0, 1, ... (float64)
//
// and an empty sketch is a region with an empty payload.

// KLLK is the capacity of the top level.
const KLLK = 200

// KLLRankError is the documented bound of the normalized rank error.
const KLLRankError = 0.02

const regionKLL = 2

// KLL is a decoded quantile sketch.
type KLL struct {
	N        uint64 // values in the levels (not NaN)
	NaN      uint64
	Min, Max float64
	Levels   [][]float64 // values of level h weigh 2^h
}

// Reset empties s, keeping its memory.
func (s *KLL) Reset() {
	s.N, s.NaN, s.Min, s.Max = 0, 0, 0, 0
	for i := range s.Levels {
		s.Levels[i] = s.Levels[i][:0]
	}
	s.Levels = s.Levels[:0]
}

func kllCapacity(h, levels int) int {
	c := float64(KLLK) * math.Pow(2.0/3.0, float64(levels-1-h))
	return max(8, int(c))
}

func (s *KLL) level(h int) []float64 {
	for len(s.Levels) <= h {
		if len(s.Levels) < cap(s.Levels) {
			s.Levels = s.Levels[:len(s.Levels)+1]
			s.Levels[len(s.Levels)-1] = s.Levels[len(s.Levels)-1][:0]
		} else {
			s.Levels = append(s.Levels, nil)
		}
	}
	return s.Levels[h]
}

// Add adds values (NaNs are counted aside).
func (s *KLL) Add(vals ...float64) {
	l0 := s.level(0)
	for _, v := range vals {
		if v != v {
			s.NaN++
			continue
		}
		if s.N == 0 || v < s.Min {
			s.Min = v
		}
		if s.N == 0 || v > s.Max {
			s.Max = v
		}
		s.N++
		l0 = append(l0, v)
		if len(l0) >= 2*KLLK {
			s.Levels[0] = l0
			s.compress()
			l0 = s.Levels[0]
		}
	}
	s.Levels[0] = l0
	s.compress()
}

// Merge folds o into s.
func (s *KLL) Merge(o *KLL) {
	if o.N == 0 && o.NaN == 0 {
		return
	}
	if o.N > 0 {
		if s.N == 0 || o.Min < s.Min {
			s.Min = o.Min
		}
		if s.N == 0 || o.Max > s.Max {
			s.Max = o.Max
		}
	}
	s.N += o.N
	s.NaN += o.NaN
	for h, l := range o.Levels {
		s.Levels[h] = append(s.level(h), l...)
	}
	s.compress()
}

// compress compacts levels over their capacity, lowest first, until none
// is.
func (s *KLL) compress() {
	for h := 0; h < len(s.Levels); h++ {
		l := s.Levels[h]
		if len(l) <= kllCapacity(h, len(s.Levels)) {
			continue
		}
		slices.Sort(l)
		// An odd count keeps its greatest value at this level.
		keep := len(l) % 2
		off := int(mix(s.N^uint64(h)<<56^uint64(len(l))) & 1)
		up := s.level(h + 1)
		l = s.Levels[h] // level may have grown the slice of levels
		for i := off; i < len(l)-keep; i += 2 {
			up = append(up, l[i])
		}
		s.Levels[h+1] = up
		if keep == 1 {
			l[0] = l[len(l)-1]
		}
		s.Levels[h] = l[:keep]
		h = -1 // capacities changed if a level was added: start over
	}
}

// Quantile returns the q-quantile estimate (ok false: no values): as
// QuantileCont, the value at rank q*(n-1) interpolated, from the weighted
// values of the sketch; exact while nothing was compacted.
func (s *KLL) Quantile(q float64) (float64, bool) {
	n := s.N + s.NaN
	if n == 0 {
		return 0, false
	}
	pos := q * float64(n-1)
	lo, hi := math.Floor(pos), math.Ceil(pos)
	if hi >= float64(s.N) {
		return math.NaN(), true // the NaNs come last
	}
	type wv struct {
		v float64
		w uint64
	}
	items := make([]wv, 0, 64)
	for h, l := range s.Levels {
		for _, v := range l {
			items = append(items, wv{v, 1 << h})
		}
	}
	slices.SortFunc(items, func(a, b wv) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	at := func(r float64) float64 {
		if r <= 0 {
			return s.Min
		}
		if r >= float64(s.N-1) {
			return s.Max
		}
		// The value whose weight covers rank r, ranks scaled to the
		// sketch's total weight (compaction keeps it within a value of n).
		var total uint64
		for _, it := range items {
			total += it.w
		}
		target := r * float64(total) / float64(s.N)
		var cum uint64
		for _, it := range items {
			cum += it.w
			if float64(cum) > target {
				return it.v
			}
		}
		return s.Max
	}
	a := at(lo)
	if lo == hi {
		return a, true
	}
	b := at(hi)
	if a == b {
		return a, true
	}
	return a + (pos-lo)*(b-a), true
}

// AppendKLLRegion appends s as a region to dst.
func AppendKLLRegion(dst []byte, s *KLL) []byte {
	if s.N == 0 && s.NaN == 0 {
		return AppendEmptyKLL(dst)
	}
	items := 0
	for _, l := range s.Levels {
		items += len(l)
	}
	payload := 33 + 4*len(s.Levels) + 8*items
	dst = append(dst, regionKLL)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(payload))
	dst = binary.LittleEndian.AppendUint64(dst, s.N)
	dst = binary.LittleEndian.AppendUint64(dst, s.NaN)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.Min))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.Max))
	dst = append(dst, uint8(len(s.Levels)))
	for _, l := range s.Levels {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(l)))
	}
	for _, l := range s.Levels {
		for _, v := range l {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
		}
	}
	return dst
}

// AppendEmptyKLL appends an empty quantile sketch region to dst (as long as
// an empty HyperLogLog region: EmptySketchSize).
func AppendEmptyKLL(dst []byte) []byte { return append(dst, regionKLL, 0, 0, 0, 0) }

// DecodeKLL decodes region r (AppendKLLRegion) into s, reusing its memory;
// false if r is not a well-formed quantile sketch region.
func DecodeKLL(r []byte, s *KLL) bool {
	s.Reset()
	if len(r) < regionHeader || r[0] != regionKLL || int(binary.LittleEndian.Uint32(r[1:])) != len(r)-regionHeader {
		return false
	}
	p := r[regionHeader:]
	if len(p) == 0 {
		return true
	}
	if len(p) < 33 {
		return false
	}
	s.N = binary.LittleEndian.Uint64(p)
	s.NaN = binary.LittleEndian.Uint64(p[8:])
	s.Min = math.Float64frombits(binary.LittleEndian.Uint64(p[16:]))
	s.Max = math.Float64frombits(binary.LittleEndian.Uint64(p[24:]))
	nl := int(p[32])
	p = p[33:]
	if len(p) < 4*nl {
		return false
	}
	sizes := p[:4*nl]
	p = p[4*nl:]
	for h := range nl {
		k := int(binary.LittleEndian.Uint32(sizes[4*h:]))
		if len(p) < 8*k {
			return false
		}
		l := s.level(h)
		for i := range k {
			l = append(l, math.Float64frombits(binary.LittleEndian.Uint64(p[8*i:])))
		}
		s.Levels[h] = l
		p = p[8*k:]
	}
	return len(p) == 0
}
