package ml

import (
	"fmt"
	"math"
)

// Interactions is a sparse user×item matrix in CSR form over dense indices
// 0..NumUsers-1 (rows) and 0..NumItems-1 (columns). Row r's columns are
// Indices[Indptr[r]:Indptr[r+1]], strictly ascending, with their weights in
// Weights at the same positions. Every stored weight is finite and > 0: an
// interaction is observed (preference p = 1) exactly when it is stored.
//
// The same type holds the item×user matrix (Transpose); "user" and "item"
// below name rows and columns of whichever orientation is at hand.
type Interactions struct {
	NumUsers, NumItems int
	Indptr             []int64
	Indices            []int32
	Weights            []float32
}

// NewInteractions builds the CSR matrix from coordinate triples: users[i]
// interacted with items[i] with weight weights[i] (weights nil means 1 for
// all). Duplicate (user, item) pairs are summed; pairs whose sum is 0 are
// dropped (w = 0 is "not observed"). It fails, naming the offending
// position, on mismatched lengths, out-of-range ids and negative, NaN or
// infinite weights, and when a summed weight overflows float32.
func NewInteractions(numUsers, numItems int, users, items []int32, weights []float32) (*Interactions, error) {
	if numUsers < 0 || numItems < 0 || numUsers > math.MaxInt32 || numItems > math.MaxInt32 {
		return nil, fmt.Errorf("ml: interactions: bad shape %d users × %d items", numUsers, numItems)
	}
	if len(users) != len(items) || (weights != nil && len(weights) != len(users)) {
		return nil, fmt.Errorf("ml: interactions: %d users, %d items and %d weights differ in length", len(users), len(items), len(weights))
	}
	for i := range users {
		u, it := users[i], items[i]
		if u < 0 || int(u) >= numUsers {
			return nil, fmt.Errorf("ml: interaction %d: user %d out of range [0,%d)", i, u, numUsers)
		}
		if it < 0 || int(it) >= numItems {
			return nil, fmt.Errorf("ml: interaction %d: item %d out of range [0,%d)", i, it, numItems)
		}
		if weights != nil {
			if err := checkWeight(float64(weights[i])); err != nil {
				return nil, fmt.Errorf("ml: interaction %d (user %d, item %d): %w", i, u, it, err)
			}
		}
	}
	n := len(users)
	// Two stable counting sorts (by item, then by user) leave each row's
	// entries in ascending item order without a comparison sort.
	byItem := make([]int32, n) // permutation of 0..n-1 ordered by item
	{
		start := make([]int64, numItems+1)
		for _, it := range items {
			start[it+1]++
		}
		for j := 0; j < numItems; j++ {
			start[j+1] += start[j]
		}
		for i, it := range items {
			byItem[start[it]] = int32(i)
			start[it]++
		}
	}
	indptr := make([]int64, numUsers+1)
	for _, u := range users {
		indptr[u+1]++
	}
	for r := 0; r < numUsers; r++ {
		indptr[r+1] += indptr[r]
	}
	pos := make([]int64, numUsers)
	copy(pos, indptr[:numUsers])
	order := make([]int32, n)
	for _, i := range byItem {
		u := users[i]
		order[pos[u]] = i
		pos[u]++
	}
	// Merge duplicates (adjacent now) in place, summing in float64.
	m := &Interactions{NumUsers: numUsers, NumItems: numItems, Indptr: make([]int64, numUsers+1),
		Indices: make([]int32, 0, n), Weights: make([]float32, 0, n)}
	for r := 0; r < numUsers; r++ {
		lo, hi := indptr[r], indptr[r+1]
		for p := lo; p < hi; {
			i := order[p]
			it := items[i]
			sum := 0.0
			for ; p < hi && items[order[p]] == it; p++ {
				if weights == nil {
					sum++
				} else {
					sum += float64(weights[order[p]])
				}
			}
			if sum > math.MaxFloat32 {
				return nil, fmt.Errorf("ml: interactions (user %d, item %d): summed weight %g overflows float32", r, it, sum)
			}
			if sum == 0 {
				continue
			}
			m.Indices = append(m.Indices, it)
			m.Weights = append(m.Weights, float32(sum))
		}
		m.Indptr[r+1] = int64(len(m.Indices))
	}
	return m, nil
}

func checkWeight(w float64) error {
	switch {
	case math.IsNaN(w):
		return fmt.Errorf("weight is NaN")
	case math.IsInf(w, 0):
		return fmt.Errorf("weight %v is infinite", w)
	case w < 0:
		return fmt.Errorf("weight %v is negative", w)
	}
	return nil
}

// Validate checks the CSR invariants: shape, monotone Indptr, ascending
// in-range column indices and finite positive weights. Matrices from
// NewInteractions and Transpose satisfy them; call it on one built by hand.
func (m *Interactions) Validate() error {
	if len(m.Indptr) != m.NumUsers+1 || m.Indptr[0] != 0 || m.Indptr[m.NumUsers] != int64(len(m.Indices)) || len(m.Indices) != len(m.Weights) {
		return fmt.Errorf("ml: interactions: inconsistent CSR shape (%d rows, %d indptr, %d indices, %d weights)", m.NumUsers, len(m.Indptr), len(m.Indices), len(m.Weights))
	}
	for r := 0; r < m.NumUsers; r++ {
		lo, hi := m.Indptr[r], m.Indptr[r+1]
		if hi < lo {
			return fmt.Errorf("ml: interactions: row %d: indptr decreases", r)
		}
		for p := lo; p < hi; p++ {
			c := m.Indices[p]
			if c < 0 || int(c) >= m.NumItems || (p > lo && c <= m.Indices[p-1]) {
				return fmt.Errorf("ml: interactions: row %d: column %d out of range or not ascending", r, c)
			}
			if w := float64(m.Weights[p]); w == 0 || checkWeight(w) != nil {
				return fmt.Errorf("ml: interactions: row %d, column %d: bad weight %v", r, c, w)
			}
		}
	}
	return nil
}

// Row returns row r's column indices and weights (borrowed, not copies).
func (m *Interactions) Row(r int) ([]int32, []float32) {
	lo, hi := m.Indptr[r], m.Indptr[r+1]
	return m.Indices[lo:hi], m.Weights[lo:hi]
}

// NNZ is the number of stored interactions.
func (m *Interactions) NNZ() int { return len(m.Indices) }

// Transpose returns the item×user matrix (NumUsers and NumItems swapped),
// rows again in ascending column order.
func (m *Interactions) Transpose() *Interactions {
	t := &Interactions{NumUsers: m.NumItems, NumItems: m.NumUsers, Indptr: make([]int64, m.NumItems+1),
		Indices: make([]int32, len(m.Indices)), Weights: make([]float32, len(m.Weights))}
	for _, c := range m.Indices {
		t.Indptr[c+1]++
	}
	for j := 0; j < m.NumItems; j++ {
		t.Indptr[j+1] += t.Indptr[j]
	}
	pos := make([]int64, m.NumItems)
	copy(pos, t.Indptr[:m.NumItems])
	for r := 0; r < m.NumUsers; r++ {
		for p := m.Indptr[r]; p < m.Indptr[r+1]; p++ {
			c := m.Indices[p]
			t.Indices[pos[c]] = int32(r)
			t.Weights[pos[c]] = m.Weights[p]
			pos[c]++
		}
	}
	return t
}
