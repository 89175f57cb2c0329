package eval

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// AtK holds the metrics at one cut-off K, each the mean over the evaluated
// users, except Coverage (see doc.go).
type AtK struct {
	K        int     `json:"k"`
	Recall   float64 `json:"recall"`
	NDCG     float64 `json:"ndcg"`
	HR       float64 `json:"hr"`
	MAP      float64 `json:"map"`
	Coverage float64 `json:"coverage"`
}

// Result is one model's figures on one split.
type Result struct {
	Model string `json:"model"`
	// Users is the number of evaluated users.
	Users int   `json:"users"`
	AtK   []AtK `json:"at_k"`
}

// At returns the figures at cut-off k.
func (r *Result) At(k int) (AtK, bool) {
	for _, a := range r.AtK {
		if a.K == k {
			return a, true
		}
	}
	return AtK{}, false
}

// EvalUsers are the train users of s with at least one relevant item,
// ascending.
func (s *Split) EvalUsers() []int32 {
	var users []int32
	for u := range s.Test.NumUsers {
		if s.Test.Indptr[u+1] > s.Test.Indptr[u] {
			users = append(users, int32(u))
		}
	}
	return users
}

// Evaluate ranks the catalogue for every evaluated user of s with m,
// excluding the user's train items, and computes the metrics at each K of
// ks (positive, any order) with up to threads goroutines.
func Evaluate(ctx context.Context, s *Split, m Model, name string, ks []int, threads int) (*Result, error) {
	ks = slices.Clone(ks)
	slices.Sort(ks)
	ks = slices.Compact(ks)
	if len(ks) == 0 || ks[0] < 1 {
		return nil, fmt.Errorf("eval: cut-offs %v must be positive", ks)
	}
	maxK := ks[len(ks)-1]
	users := s.EvalUsers()
	slot := make([]int32, s.Test.NumUsers) // user -> position in users
	for p, u := range users {
		slot[u] = int32(p)
	}
	// Per user and K: recall, ndcg, hr, ap; summed in user order at the
	// end, so the figures do not depend on the threads' schedule.
	nk := len(ks)
	per := make([]float64, len(users)*nk*4)
	lists := make([]int32, len(users)*maxK) // top lists, -1 padded, for coverage
	for i := range lists {
		lists[i] = -1
	}
	err := m.TopK(ctx, users, maxK, s.Train, threads, func(u int32, items []int32, _ []float32) error {
		if len(items) > maxK {
			return fmt.Errorf("eval: model %s returned %d items for user %d, asked for %d", name, len(items), u, maxK)
		}
		p := int(slot[u])
		copy(lists[p*maxK:], items)
		rel, _ := s.Test.Row(int(u))
		userMetrics(per[p*nk*4:(p+1)*nk*4], items, rel, ks)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("eval: %s: %w", name, err)
	}
	res := &Result{Model: name, Users: len(users), AtK: make([]AtK, nk)}
	seen := make([]int32, s.Train.NumItems)
	for j, k := range ks {
		a := &res.AtK[j]
		a.K = k
		var covered int
		for p := range users {
			v := per[(p*nk+j)*4:]
			a.Recall += v[0]
			a.NDCG += v[1]
			a.HR += v[2]
			a.MAP += v[3]
			for _, i := range lists[p*maxK : p*maxK+k] {
				if i >= 0 && seen[i] != int32(j+1) {
					seen[i] = int32(j + 1)
					covered++
				}
			}
		}
		if n := float64(len(users)); n > 0 {
			a.Recall /= n
			a.NDCG /= n
			a.HR /= n
			a.MAP /= n
		}
		if s.Train.NumItems > 0 {
			a.Coverage = float64(covered) / float64(s.Train.NumItems)
		}
	}
	return res, nil
}

// discount[r] is 1/log2(r+2), the DCG weight of rank r+1.
var discount = func() []float64 {
	d := make([]float64, 1024)
	for r := range d {
		d[r] = 1 / math.Log2(float64(r+2))
	}
	return d
}()

func disc(r int) float64 {
	if r < len(discount) {
		return discount[r]
	}
	return 1 / math.Log2(float64(r+2))
}

// userMetrics writes recall, ndcg, hr and ap at each K of ks (ascending)
// into out, for a ranked list and the relevant items (ascending).
func userMetrics(out []float64, ranked, rel []int32, ks []int) {
	var hits int
	var dcg, idcg, precSum float64
	r := 0
	for j, k := range ks {
		for ; r < k && r < len(ranked); r++ {
			if _, ok := slices.BinarySearch(rel, ranked[r]); ok {
				hits++
				dcg += disc(r)
				precSum += float64(hits) / float64(r+1)
			}
		}
		den := min(k, len(rel))
		idcg = 0
		for q := range den {
			idcg += disc(q)
		}
		o := out[j*4 : j*4+4]
		o[0] = float64(hits) / float64(den)
		o[1] = dcg / idcg
		if hits > 0 {
			o[2] = 1
		} else {
			o[2] = 0
		}
		o[3] = precSum / float64(den)
	}
}
