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
// values beyond the binary16 range give ±Inf.
func halfBits(v float32) uint16 {
	b := math.Float32bits(v)
	sign := uint16(b>>16) & 0x8000
	a := math.Abs(float64(v))
	switch {
	case a != a:
		return sign | 0x7e00
	case a >= 65520: // rounds beyond 65504
		return sign | 0x7c00
	case a < 0x1p-14: // subnormal (or zero): a multiple of 2⁻²⁴
		return sign | uint16(math.RoundToEven(a*0x1p24))
	}
	e := int((b>>23)&0xff) - 127
	m := b & 0x7fffff
	h := uint32(e+15)<<10 | m>>13
	if rem := m & 0x1fff; rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // a carry into the exponent is right
	}
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
// the float32 ones) and widens the error bounds.
func (s *Scorer) setHalf(i int, vec []float32) {
	f, w := s.f, s.pw
	if i/w*w*f >= len(s.half) {
		s.half = append(s.half, make([]uint16, w*f)...)
	}
	panel := s.half[(i/w)*w*f : (i/w+1)*w*f]
	j := i % w
	for t, v := range vec {
		h := halfBits(v)
		panel[t*w+j] = h
		hv := halfValue(h)
		if math.IsInf(float64(hv), 0) || hv != hv {
			s.halfOff = true // out of binary16's range: float32 only from now on
			continue
		}
		s.halfErr = max(s.halfErr, float32(math.Abs(float64(hv)-float64(v))))
		s.halfMax = max(s.halfMax, float32(math.Abs(float64(v))))
	}
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
