package eval

import (
	"slices"

	"github.com/riffle-dev/riffle/ml"
)

// Interactions is package ml's CSR matrix: user u's items are
// Indices[Indptr[u]:Indptr[u+1]], ascending and distinct.
type Interactions = ml.Interactions

// has says whether user u of m has item i.
func has(m *Interactions, u, i int32) bool {
	row, _ := m.Row(int(u))
	_, ok := slices.BinarySearch(row, i)
	return ok
}
