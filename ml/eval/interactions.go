package eval

import (
	"slices"
)

// Interactions is a sparse users × items matrix in CSR form: user u's items
// are Indices[Indptr[u]:Indptr[u+1]], ascending and distinct, with their
// Weights.
type Interactions struct {
	NumUsers, NumItems int
	Indptr             []int64
	Indices            []int32
	Weights            []float32
}

// newCSR builds the matrix of (users[k], items[k], weights[k]), summing the
// weights of repeated pairs. Indices must be in range.
func newCSR(numUsers, numItems int, users, items []int32, weights []float32) *Interactions {
	m := &Interactions{NumUsers: numUsers, NumItems: numItems, Indptr: make([]int64, numUsers+1)}
	for _, u := range users {
		m.Indptr[u+1]++
	}
	for u := range numUsers {
		m.Indptr[u+1] += m.Indptr[u]
	}
	next := slices.Clone(m.Indptr[:numUsers])
	idx := make([]int32, len(users))
	w := make([]float32, len(users))
	for k, u := range users {
		p := next[u]
		next[u]++
		idx[p], w[p] = items[k], weights[k]
	}
	// Sort each row and merge repeats, compacting in place.
	var out int64
	for u := range numUsers {
		lo, hi := m.Indptr[u], m.Indptr[u+1]
		row, rw := idx[lo:hi], w[lo:hi]
		if !slices.IsSorted(row) {
			sortPairs(row, rw)
		}
		m.Indptr[u] = out
		for k := range row {
			if k > 0 && row[k] == row[k-1] {
				w[out-1] += rw[k]
				continue
			}
			idx[out], w[out] = row[k], rw[k]
			out++
		}
	}
	m.Indptr[numUsers] = out
	m.Indices, m.Weights = idx[:out:out], w[:out:out]
	return m
}

// sortPairs sorts keys ascending, stably, carrying vals along.
func sortPairs(keys []int32, vals []float32) {
	perm := make([]int, len(keys))
	for i := range perm {
		perm[i] = i
	}
	slices.SortStableFunc(perm, func(a, b int) int { return int(keys[a]) - int(keys[b]) })
	k2 := make([]int32, len(keys))
	v2 := make([]float32, len(vals))
	for i, p := range perm {
		k2[i], v2[i] = keys[p], vals[p]
	}
	copy(keys, k2)
	copy(vals, v2)
}

// Row returns user u's items and weights.
func (m *Interactions) Row(u int32) ([]int32, []float32) {
	lo, hi := m.Indptr[u], m.Indptr[u+1]
	return m.Indices[lo:hi], m.Weights[lo:hi]
}

// Has says whether user u has item i.
func (m *Interactions) Has(u, i int32) bool {
	row, _ := m.Row(u)
	_, ok := slices.BinarySearch(row, i)
	return ok
}
