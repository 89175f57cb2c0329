package eval

import (
	"cmp"
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Model ranks catalogue items for train users (the index spaces of a
// Split). *ml.Model has this method.
type Model interface {
	// TopK calls fn for every user in users with its at most k best items
	// and their scores, best first, leaving out the user's items in
	// exclude. fn may be called from up to threads goroutines at once, for
	// distinct users; items and scores are valid only during the call. The
	// first error of fn stops TopK and is returned.
	TopK(ctx context.Context, users []int32, k int, exclude *Interactions, threads int, fn func(user int32, items []int32, scores []float32) error) error
}

// Trainer fits a Model to train interactions.
type Trainer interface {
	// Name labels the model in reports.
	Name() string
	Fit(ctx context.Context, train *Interactions) (Model, error)
}

// Popularity is the popularity baseline: an item's score is the number of
// distinct train users who have it.
type Popularity struct{}

// Name implements Trainer.
func (Popularity) Name() string { return "popularity" }

// Fit implements Trainer.
func (Popularity) Fit(_ context.Context, train *Interactions) (Model, error) {
	counts := make([]float32, train.NumItems)
	for _, i := range train.Indices {
		counts[i]++
	}
	order := make([]int32, train.NumItems)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(counts[b], counts[a]) })
	return &popModel{counts: counts, order: order}, nil
}

// popModel ranks every user's candidates by one global order, so a user
// costs O(k + its train items), not O(catalogue).
type popModel struct {
	counts []float32
	order  []int32 // items by count descending, then index ascending
}

func (m *popModel) TopK(ctx context.Context, users []int32, k int, exclude *Interactions, threads int, fn func(int32, []int32, []float32) error) error {
	return walkTopK(ctx, len(m.counts), users, k, exclude, threads, nil, func(_ [2]uint64, j int) (int32, float32) {
		i := m.order[j]
		return i, m.counts[i]
	}, fn)
}

// walkTopK serves models whose ranking of user u is a sequence of all n
// items, at(begin(u), j) being the item at position j and its score (begin
// may be nil): it takes the first k not in exclude, in O(k + |exclude_u|)
// per user, the exclusions marked in a stamped array.
func walkTopK(ctx context.Context, n int, users []int32, k int, exclude *Interactions, threads int,
	begin func(u int32) [2]uint64, at func(st [2]uint64, j int) (int32, float32), fn func(int32, []int32, []float32) error) error {
	type scratch struct {
		seen   []int32 // seen[i] == stamp: i is excluded for this user
		stamp  int32
		items  []int32
		scores []float32
	}
	return forUsers(ctx, users, threads, func() any {
		return &scratch{seen: make([]int32, n), items: make([]int32, 0, k), scores: make([]float32, 0, k)}
	}, func(sc any, u int32) error {
		s := sc.(*scratch)
		s.stamp++
		if exclude != nil {
			row, _ := exclude.Row(int(u))
			for _, i := range row {
				s.seen[i] = s.stamp
			}
		}
		s.items, s.scores = s.items[:0], s.scores[:0]
		var st [2]uint64
		if begin != nil {
			st = begin(u)
		}
		for j := 0; j < n && len(s.items) < k; j++ {
			if i, score := at(st, j); s.seen[i] != s.stamp {
				s.items = append(s.items, i)
				s.scores = append(s.scores, score)
			}
		}
		return fn(u, s.items, s.scores)
	})
}

// Random is the random baseline: user u ranks the catalogue by a
// pseudo-random affine permutation drawn from (Seed, u) (see doc.go).
type Random struct{ Seed uint64 }

// Name implements Trainer.
func (Random) Name() string { return "random" }

// Fit implements Trainer.
func (r Random) Fit(_ context.Context, train *Interactions) (Model, error) {
	return &randModel{seed: r.Seed, n: uint64(train.NumItems)}, nil
}

type randModel struct{ seed, n uint64 }

// perm returns user u's permutation: the item at position j is
// (a·j + b) mod n.
func (m *randModel) perm(u int32) (a, b uint64) {
	h1 := splitmix64(m.seed + uint64(u))
	h2 := splitmix64(h1)
	a = 1
	if m.n > 1 {
		a = 1 + h1%(m.n-1)
		for gcd(a, m.n) != 1 {
			a++
		}
	}
	return a, h2 % max(m.n, 1)
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (m *randModel) TopK(ctx context.Context, users []int32, k int, exclude *Interactions, threads int, fn func(int32, []int32, []float32) error) error {
	n := m.n
	return walkTopK(ctx, int(n), users, k, exclude, threads, func(u int32) [2]uint64 {
		a, b := m.perm(u)
		return [2]uint64{a, b}
	}, func(st [2]uint64, j int) (int32, float32) {
		return int32((st[0]*uint64(j) + st[1]) % n), float32(n-uint64(j)) / float32(n)
	}, fn)
}

// splitmix64 is the SplitMix64 output function applied to x + golden gamma.
func splitmix64(x uint64) uint64 {
	z := x + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// forUsers runs do for every user on up to threads goroutines (0 means
// GOMAXPROCS), each with scratch space from newScratch, in blocks of
// users. The first error stops the others.
func forUsers(ctx context.Context, users []int32, threads int, newScratch func() any, do func(scratch any, u int32) error) error {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	const block = 256
	threads = max(1, min(threads, (len(users)+block-1)/block))
	var next atomic.Int64
	var stop atomic.Bool
	errs := make([]error, threads)
	var wg sync.WaitGroup
	for t := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := newScratch()
			for !stop.Load() {
				lo := int(next.Add(block)) - block
				if lo >= len(users) {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[t] = err
					stop.Store(true)
					return
				}
				for _, u := range users[lo:min(lo+block, len(users))] {
					if err := do(sc, u); err != nil {
						errs[t] = err
						stop.Store(true)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
