package gen

import (
	"math"
	"math/rand/v2"
	"sync"
)

// Defaults of the planted low-rank model (Options.LatentFactors > 0).
const (
	DefaultLatentNoise         = 0.05
	DefaultLatentPopularity    = 0.2
	DefaultLatentConcentration = 0.1
	// maxLatentCells bounds Users·LatentFactors and Items·LatentFactors,
	// the planted vectors held in memory.
	maxLatentCells = 1 << 26
)

// Planted is the low-rank preference model interactions are drawn from
// when Options.LatentFactors > 0 (see doc.go). Rows are indexed by user and
// item id.
type Planted struct {
	Factors int
	// UserVectors is Users × Factors, row-major: user u's topic mixture
	// θ_u (non-negative, summing to 1).
	UserVectors []float32
	// ItemMemberships is Items × Factors, row-major: item i's topic
	// memberships v_i (non-negative, summing to 1).
	ItemMemberships []float32
	// ItemVectors is Items × Factors, row-major: φ_k(i), the probability
	// of item i within topic k (each column sums to 1).
	ItemVectors []float32
	// Popularity is z_i, the Zipf popularity of item i (sums to 1).
	Popularity []float64
	// PopularityShare π and NoiseShare ε: the probability that an event's
	// item is drawn from Popularity, and uniformly.
	PopularityShare, NoiseShare float64
}

// latent samples items from the planted model.
type latent struct {
	p       *Planted
	userCum []float32    // Users × Factors cumulative θ_u
	topics  []*idSampler // topic k: items with probability φ_k(i)
	items   int64
}

// entityBlock is the number of users or items whose vectors come from one
// random stream, so the model can be drawn in parallel.
const entityBlock = 4096

func newLatent(o Options, items *idSampler) *latent {
	n := o.LatentFactors
	p := &Planted{Factors: n, PopularityShare: o.LatentPopularity, NoiseShare: o.LatentNoise}
	p.UserVectors = dirichletRows(o.Seed, 1, o.Users, n, o.LatentConcentration, o.Parallelism)
	p.ItemMemberships = dirichletRows(o.Seed, 2, o.Items, n, o.LatentConcentration, o.Parallelism)
	p.ItemVectors = make([]float32, len(p.ItemMemberships))
	// Topic k ranks the items by a permutation of its own.
	pr := rand.New(rand.NewPCG(uint64(o.Seed), 3<<56))
	topicPerms := make([]perm, n)
	for k := range topicPerms {
		topicPerms[k] = newPerm(pr, o.Items)
	}
	// z_i: the weight of item i's popularity rank, as the Zipf item
	// sampler draws it.
	p.Popularity = make([]float64, o.Items)
	var sum float64
	for k := range o.Items {
		w := math.Pow(float64(k+1), -o.ZipfS)
		p.Popularity[items.perm.apply(uint64(k))] = w
		sum += w
	}
	for i := range p.Popularity {
		p.Popularity[i] /= sum
	}
	l := &latent{p: p, items: o.Items, userCum: make([]float32, len(p.UserVectors))}
	for u := int64(0); u < o.Users; u++ {
		var acc float32
		for k := range n {
			acc += p.UserVectors[u*int64(n)+int64(k)]
			l.userCum[u*int64(n)+int64(k)] = acc
		}
	}
	l.topics = make([]*idSampler, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.Parallelism)
	for k := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w := make([]float64, o.Items)
			var total float64
			for r := range o.Items {
				i := topicPerms[k].apply(uint64(r))
				w[i] = float64(p.ItemMemberships[i*int64(n)+int64(k)]) * math.Pow(float64(r+1), -o.ZipfS)
				total += w[i]
			}
			if !(total > 0) {
				// No item loads on this topic (possible only with very
				// few items): it falls back to popularity.
				copy(w, p.Popularity)
				total = 1
			}
			for i, x := range w {
				p.ItemVectors[int64(i)*int64(n)+int64(k)] = float32(x / total)
			}
			l.topics[k] = newWeightedSampler(w)
		}()
	}
	wg.Wait()
	return l
}

// sample draws the item of an event by user u.
func (l *latent) sample(r *rand.Rand, u int64, popular *idSampler) int64 {
	x := r.Float64()
	switch {
	case x < l.p.NoiseShare:
		return int64(r.Uint64N(uint64(l.items)))
	case x < l.p.NoiseShare+l.p.PopularityShare:
		return popular.sample(r)
	}
	n := l.p.Factors
	cum := l.userCum[u*int64(n) : (u+1)*int64(n)]
	t := float32(r.Float64()) * cum[n-1]
	// The first k with t < cum[k] (the last topic when rounding leaves
	// none): a scan for few topics, a binary search for many.
	k := 0
	if n <= 16 {
		for k < n-1 && t >= cum[k] {
			k++
		}
	} else {
		lo, hi := 0, n-1
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if t >= cum[mid] {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		k = lo
	}
	return l.topics[k].sample(r)
}

// dirichletRows draws rows vectors from a symmetric Dirichlet(c) of
// dimension n, block b of entityBlock rows from the random stream (seed,
// stream, b), blocks in parallel.
func dirichletRows(seed int64, stream uint64, rows int64, n int, c float64, par int) []float32 {
	out := make([]float32, rows*int64(n))
	blocks := (rows + entityBlock - 1) / entityBlock
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	for b := int64(0); b < blocks; b++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rng := rand.New(rand.NewPCG(uint64(seed), stream<<56^uint64(b)*0x9e3779b97f4a7c15))
			g := make([]float64, n)
			for row := b * entityBlock; row < min(rows, (b+1)*entityBlock); row++ {
				var sum float64
				for k := range g {
					g[k] = gamma(rng, c)
					sum += g[k]
				}
				for k, x := range g {
					out[row*int64(n)+int64(k)] = float32(x / sum)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// gamma draws from Gamma(a, 1) (Marsaglia and Tsang 2000; for a < 1 the
// boost Gamma(a) = Gamma(a+1)·U^(1/a)). The result is positive.
func gamma(r *rand.Rand, a float64) float64 {
	boost := 1.0
	if a < 1 {
		// U in (0, 1]: U^(1/a) > 0 unless it underflows, which the log
		// form below avoids down to exp(-745).
		u := 1 - r.Float64()
		boost = math.Exp(math.Log(u) / a)
		a++
	}
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return max(d*v*boost, math.SmallestNonzeroFloat64)
		}
	}
}
