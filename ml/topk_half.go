package ml

import (
	"math"
	"slices"
)

// Half-precision scoring for one query (Scorer.TopKOf on AVX-512): a
// query's cost is bound by reading the item panels (package doc, "Live
// serving"), so a Scorer made by NewItemScorer also keeps them in IEEE
// binary16 (half the bytes) and answers in two passes that give exactly
// the float32 answer: the half-precision scores of every item select the
// candidates that can be among the best k, whose float32 scores then
// decide. A half score differs from the float32 one by at most
// E = ‖x‖₁·(maxErr + 2·f·2⁻²⁴·(maxAbs + maxErr)) (the factors' rounding
// to binary16, at most maxErr each, plus both sums' float32 rounding), so
// if the k-th best half score is θ, every item of the float32 top k has a
// half score ≥ θ − 2E, and only those are rescored.

// halfScoring switches the half-precision pass on (off only in tests and
// benchmarks that compare the two).
var halfScoring = true

// halfBits returns v as binary16, rounded to nearest (ties to even);
// values beyond the binary16 range give ±Inf, NaN a NaN.
func halfBits(v float32) uint16 {
	b := math.Float32bits(v)
	sign := uint16(b>>16) & 0x8000
	a := b &^ (1 << 31)
	switch {
	case a > 0x7f800000:
		return sign | 0x7e00
	case a >= 0x477ff000: // ≥ 65520: rounds beyond 65504
		return sign | 0x7c00
	case a < 0x38800000: // below 2⁻¹⁴: subnormal (or zero), a multiple of 2⁻²⁴
		return sign | uint16(math.RoundToEven(float64(math.Float32frombits(a))*0x1p24))
	}
	h := a>>13 - 112<<10 // the exponent rebiased from 127 to 15
	// Round up when the dropped 13 bits are above half, or half with h
	// odd (without a branch: random data mispredicts it); a carry into
	// the exponent is right.
	h += (a&0x1fff + h&1 + 0xfff) >> 13
	return sign | uint16(h)
}

// halfValue returns the binary16 h as a float32 (exactly).
func halfValue(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	e := uint32(h>>10) & 0x1f
	m := uint32(h & 0x3ff)
	switch e {
	case 0:
		v := float32(m) * 0x1p-24
		if sign != 0 {
			v = -v
		}
		return v
	case 31:
		return math.Float32frombits(sign | 0x7f800000 | m<<13)
	}
	return math.Float32frombits(sign | (e-15+127)<<23 | m<<13)
}

// setHalf stores vec as item i's column of the half panels (grown like
// the float32 ones) and widens the bounds: halfMax ≥ every |y|, and
// halfErr ≥ every |y − ŷ|, since binary16 rounds a normal value within
// 2⁻¹¹ of it relatively and a subnormal one within 2⁻²⁵.
func (s *Scorer) setHalf(i int, vec []float32) {
	f, w := s.f, s.pw
	if i/w*w*f >= len(s.half) {
		s.half = append(s.half, make([]uint16, w*f)...)
	}
	panel := s.half[(i/w)*w*f : (i/w+1)*w*f]
	j := i % w
	var amax uint32 // the largest |v|'s bits: they order like the values
	for t, v := range vec {
		amax = max(amax, math.Float32bits(v)&^(1<<31))
		panel[t*w+j] = halfBits(v)
	}
	if amax >= 0x477ff000 { // ≥ 65520, Inf or NaN: float32 only from now on
		s.halfOff = true
		return
	}
	s.halfMax = max(s.halfMax, math.Float32frombits(amax))
	s.halfErr = s.halfMax*0x1p-11 + 0x1p-25
}

// topKHalf is TopKOf's two passes (see above): it writes the best k into
// items and scores (len ≥ k) and returns how many there are.
func (s *Scorer) topKHalf(x []float32, k int, exclude []int32, sc *topkScratch, items []int32, scores []float32) int {
	f, w := s.f, s.pw
	var l1 float64
	for _, v := range x {
		l1 += math.Abs(float64(v))
	}
	bound := 2 * l1 * (float64(s.halfErr) + 2*float64(f)*0x1p-24*float64(s.halfMax+s.halfErr)) * (1 + 1e-6)
	below := func(theta float32) float32 { // a float32 ≤ θ − 2E
		return math.Nextafter32(float32(float64(theta)-bound), float32(math.Inf(-1)))
	}
	h := &sc.heaps[0]
	h.reset(k)
	sc.cands, sc.coarse = sc.cands[:0], sc.coarse[:0]
	e := exclude
	for t0 := 0; t0 < s.n; t0 += topkItemTile {
		t1 := min(t0+topkItemTile, s.n)
		nt := t1 - t0
		score1x32F16AVX512(f, &x[0], &s.half[t0*f], (nt+w-1)/w, &sc.scores[0])
		row := sc.scores[:nt]
		for j := 0; j < nt; j++ {
			if h.full() {
				if j += firstAbove(row[j:], below(h.scores[0])); j == nt {
					break
				}
			}
			it := int32(t0 + j)
			var skip bool
			if e, skip = excluded(e, it); skip {
				continue
			}
			h.push(it, row[j])
			sc.cands, sc.coarse = append(sc.cands, it), append(sc.coarse, row[j])
		}
	}
	lb := float32(math.Inf(-1))
	if h.full() {
		lb = below(h.scores[0])
	}
	h.reset(k)
	// The candidates' float32 scores, by the float32 kernel on panels of
	// 32 candidates gathered from the item panels: bitwise the scores of
	// the one-pass path.
	sc.panel = slices.Grow(sc.panel[:0], 32*f)[:32*f]
	var out [32]float32
	n := 0
	flush := func() {
		score1x32AVX512(f, &x[0], &sc.panel[0], 1, &out[0])
		for c := range n {
			h.push(sc.batch[c], out[c])
		}
		n = 0
	}
	for c, it := range sc.cands {
		if sc.coarse[c] <= lb {
			continue
		}
		base, j := int(it)/w*w*f, int(it)%w
		for t := range f {
			sc.panel[t*32+n] = s.items[base+t*w+j]
		}
		sc.batch[n] = it
		if n++; n == 32 {
			flush()
		}
	}
	if n > 0 {
		flush()
	}
	return h.drain(items, scores)
}
