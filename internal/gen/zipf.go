package gen

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// zipf samples ranks 1..n with P(k) proportional to k^-s, for any s > 0,
// by rejection-inversion (W. Hörmann, G. Derflinger: "Rejection-inversion to
// generate variates from monotone discrete distributions", 1996), as in
// Apache Commons RNG. O(1) memory and time per sample.
type zipf struct {
	s, n        float64
	hIntegralX1 float64
	hIntegralN  float64
	sThreshold  float64
	oneMinusS   float64
}

func newZipf(s float64, n int64) *zipf {
	z := &zipf{s: s, n: float64(n), oneMinusS: 1 - s}
	z.hIntegralX1 = z.hIntegral(1.5) - 1
	z.hIntegralN = z.hIntegral(z.n + 0.5)
	z.sThreshold = 2 - z.hIntegralInverse(z.hIntegral(2.5)-z.h(2))
	return z
}

// sample returns a rank in [1, n].
func (z *zipf) sample(r *rand.Rand) int64 {
	for {
		u := z.hIntegralN + r.Float64()*(z.hIntegralX1-z.hIntegralN)
		x := z.hIntegralInverse(u)
		k := math.Floor(x + 0.5)
		if k < 1 {
			k = 1
		} else if k > z.n {
			k = z.n
		}
		if k-x <= z.sThreshold || u >= z.hIntegral(k+0.5)-z.h(k) {
			return int64(k)
		}
	}
}

// hIntegral is H(x) = ((x^(1-s)) - 1) / (1-s), or log(x) when s = 1.
func (z *zipf) hIntegral(x float64) float64 {
	lx := math.Log(x)
	return helper2(z.oneMinusS*lx) * lx
}

// h is x^-s.
func (z *zipf) h(x float64) float64 { return math.Exp(-z.s * math.Log(x)) }

func (z *zipf) hIntegralInverse(x float64) float64 {
	t := x * z.oneMinusS
	if t < -1 {
		t = -1 // numerical safety
	}
	return math.Exp(helper1(t) * x)
}

// helper1 is log(1+x)/x, continuous at 0.
func helper1(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Log1p(x) / x
	}
	return 1 - x*(0.5-x*(1.0/3.0-0.25*x))
}

// helper2 is (exp(x)-1)/x, continuous at 0.
func helper2(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Expm1(x) / x
	}
	return 1 + x*0.5*(1+x*(1.0/3.0)*(1+0.25*x))
}

// perm is a bijection of [0, n): k -> (a*k + b) mod n with gcd(a, n) = 1.
type perm struct {
	a, b, n uint64
}

func newPerm(r *rand.Rand, n int64) perm {
	un := uint64(n)
	a := r.Uint64()%un | 1
	for gcd(a, un) != 1 {
		a = (a + 2) % un
		if a == 0 {
			a = 1
		}
	}
	return perm{a: a, b: r.Uint64() % un, n: un}
}

func (p perm) apply(k uint64) int64 {
	hi, lo := bits.Mul64(p.a, k)
	_, r := bits.Div64(hi%p.n, lo, p.n)
	return int64((r + p.b) % p.n)
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// maxAliasN is the largest id range sampled through an alias table (20 bytes
// per id); larger ranges use rejection-inversion and an affine permutation.
const maxAliasN = 1 << 22

// idSampler draws ids in [0, n) whose popularity ranks follow Zipf(s): rank k
// has probability proportional to k^-s, and rank k is id perm(k-1).
type idSampler struct {
	// Alias table (Vose): draw i uniformly, keep val[i] when the next 32
	// random bits are below prob[i], else take alt[i].
	n    uint64
	prob []uint32
	val  []int64
	alt  []int64
	// Fallback for large n.
	z    *zipf
	perm perm
}

func newIDSampler(s float64, n int64, p perm) *idSampler {
	is := &idSampler{n: uint64(n), perm: p}
	if n > maxAliasN {
		is.z = newZipf(s, n)
		return is
	}
	w := make([]float64, n)
	for k := range w {
		w[k] = math.Pow(float64(k+1), -s)
	}
	is.buildAlias(w, p.apply)
	return is
}

// newWeightedSampler draws ids in [0, len(w)) with probability proportional
// to w (non-negative, not all zero), id k having weight w[k].
func newWeightedSampler(w []float64) *idSampler {
	is := &idSampler{n: uint64(len(w))}
	is.buildAlias(slices.Clone(w), func(k uint64) int64 { return int64(k) })
	return is
}

// buildAlias fills the alias table for weights w (overwritten), entry k
// standing for id(k).
func (is *idSampler) buildAlias(w []float64, id func(uint64) int64) {
	n := len(w)
	var sum float64
	for _, x := range w {
		sum += x
	}
	scaled := w
	small := make([]int32, 0, n)
	large := make([]int32, 0, n)
	for k := range scaled {
		scaled[k] = scaled[k] * float64(n) / sum
		if scaled[k] < 1 {
			small = append(small, int32(k))
		} else {
			large = append(large, int32(k))
		}
	}
	is.prob = make([]uint32, n)
	is.val = make([]int64, n)
	is.alt = make([]int64, n)
	for k := range is.val {
		is.val[k] = id(uint64(k))
		is.alt[k] = is.val[k]
	}
	for len(small) > 0 && len(large) > 0 {
		sm, lg := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		is.prob[sm] = probBits(scaled[sm])
		is.alt[sm] = is.val[lg]
		scaled[lg] -= 1 - scaled[sm]
		if scaled[lg] < 1 {
			large = large[:len(large)-1]
			small = append(small, lg)
		}
	}
	// What is left has probability 1 (up to rounding).
	for _, k := range large {
		is.prob[k] = math.MaxUint32
		is.alt[k] = is.val[k]
	}
	for _, k := range small {
		is.prob[k] = math.MaxUint32
		is.alt[k] = is.val[k]
	}
}

func probBits(p float64) uint32 {
	if p >= 1 {
		return math.MaxUint32
	}
	return uint32(p * (1 << 32))
}

// sample draws one id.
func (is *idSampler) sample(r *rand.Rand) int64 {
	if is.z != nil {
		return is.perm.apply(uint64(is.z.sample(r) - 1))
	}
	x := r.Uint64()
	i, _ := bits.Mul64(x>>32<<32, is.n) // uniform index from the high 32 bits
	if uint32(x) < is.prob[i] {
		return is.val[i]
	}
	return is.alt[i]
}
