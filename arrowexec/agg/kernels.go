package agg

import (
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
)

// Fold kernels: the typed loops that fold one column into per-group state
// for count, sum, avg, min and max (and bool_and, bool_or, which are min
// and max over 0/1). They are the one home of these loops: the aggregate
// step's accumulators call them over a whole batch, the window step
// (package windows) over the (row, window) pairs of a batch.
//
// Pair p folds input row rows[p] (rows nil: row p) into group gids[p];
// rows of col that are NULL are skipped. vals are col's values as T (its
// values buffer, or a widened copy), indexed by input row. A seen slice,
// where a kernel takes one, marks the groups that got a value; nil means
// the caller does not track it (it knows col has no NULLs, or that every
// group is already marked). With rows nil, no NULLs and seen nil a kernel
// runs its dense loop; otherwise one loop that checks each of them, with
// branches that go the same way for the whole batch.

// pairRow is the input row of pair p.
func pairRow(rows []int32, p int) int {
	if rows == nil {
		return p
	}
	return int(rows[p])
}

// FoldCount adds to counts[g] the pairs of group g whose value is not NULL
// (col nil: every pair, count(*)).
func FoldCount(col arrow.Array, rows []int32, gids []uint32, counts []int64) {
	var vv validity
	if col != nil {
		vv = validityOf(col)
	}
	if vv.bits == nil {
		for _, g := range gids {
			counts[g]++
		}
		return
	}
	for p, g := range gids {
		if vv.valid(pairRow(rows, p)) {
			counts[g]++
		}
	}
}

// FoldSum adds the values of the pairs into sums (no overflow check: floats
// and integers narrower than 64 bits; see FoldSumInt64).
func FoldSum[T number, S int64 | float64](col arrow.Array, vals []T, rows []int32, gids []uint32, sums []S, seen []bool) {
	vv := validityOf(col)
	if rows == nil && vv.bits == nil && seen == nil {
		vals = vals[:len(gids)]
		for i, g := range gids {
			sums[g] += S(vals[i])
		}
		return
	}
	for p, g := range gids {
		r := pairRow(rows, p)
		if vv.bits != nil && !vv.valid(r) {
			continue
		}
		sums[g] += S(vals[r])
		if seen != nil {
			seen[g] = true
		}
	}
}

// FoldSumInt64 is FoldSum over int64 values (or partial int64 sums) with
// overflow checks: it reports whether a sum left the int64 range (the sums
// have wrapped then, and the caller fails).
func FoldSumInt64(col arrow.Array, vals []int64, rows []int32, gids []uint32, sums []int64, seen []bool) (overflow bool) {
	vv := validityOf(col)
	var ovf int64
	if rows == nil && vv.bits == nil && seen == nil {
		vals = vals[:len(gids)]
		for i, g := range gids {
			s, v := sums[g], vals[i]
			r := s + v
			ovf |= (s ^ r) & (v ^ r)
			sums[g] = r
		}
		return ovf < 0
	}
	for p, g := range gids {
		r := pairRow(rows, p)
		if vv.bits != nil && !vv.valid(r) {
			continue
		}
		s, v := sums[g], vals[r]
		t := s + v
		ovf |= (s ^ t) & (v ^ t)
		sums[g] = t
		if seen != nil {
			seen[g] = true
		}
	}
	return ovf < 0
}

// AvgState is the running state of avg: the sum and the count of values.
type AvgState[S int64 | float64] struct {
	Sum   S
	Count int64
}

// FoldAvg adds the values of the pairs into st (no overflow check, see
// FoldSum).
func FoldAvg[T number, S int64 | float64](col arrow.Array, vals []T, rows []int32, gids []uint32, st []AvgState[S]) {
	vv := validityOf(col)
	if rows == nil && vv.bits == nil {
		vals = vals[:len(gids)]
		for i, g := range gids {
			p := &st[g]
			p.Sum += S(vals[i])
			p.Count++
		}
		return
	}
	for p, g := range gids {
		r := pairRow(rows, p)
		if vv.bits != nil && !vv.valid(r) {
			continue
		}
		s := &st[g]
		s.Sum += S(vals[r])
		s.Count++
	}
}

// MinMaxStart is the value a group's min (isMax false) or max starts from
// in FoldMinMax: one that every value replaces or equals (the type's
// greatest value for min, NaN for float min, the least value for max).
func MinMaxStart[T number](isMax bool) T { return sentinel[T](isMax) }

// FoldMinMax keeps in cur[g] the least (isMax false) or greatest value of
// group g; cur of a new group holds MinMaxStart. NaN is greater than every
// other float (as in DuckDB and PostgreSQL).
func FoldMinMax[T number](col arrow.Array, vals []T, rows []int32, gids []uint32, cur []T, seen []bool, isMax bool) {
	vv := validityOf(col)
	if rows == nil && vv.bits == nil && seen == nil {
		vals = vals[:len(gids)]
		if isMax {
			for i, g := range gids {
				if v := vals[i]; v > cur[g] || (v != v && cur[g] == cur[g]) {
					cur[g] = v
				}
			}
		} else {
			for i, g := range gids {
				if v := vals[i]; v < cur[g] || (cur[g] != cur[g] && v == v) {
					cur[g] = v
				}
			}
		}
		return
	}
	for p, g := range gids {
		r := pairRow(rows, p)
		if vv.bits != nil && !vv.valid(r) {
			continue
		}
		if seen != nil {
			seen[g] = true
		}
		v := vals[r]
		if isMax && (v > cur[g] || (v != v && cur[g] == cur[g])) ||
			!isMax && (v < cur[g] || (cur[g] != cur[g] && v == v)) {
			cur[g] = v
		}
	}
}

// FoldMinMaxString keeps in cur[g] the least (isMax false) or greatest
// value of group g of a string or binary column, bytewise; seen (required)
// marks the groups that have one. A value is copied when it becomes the
// extreme; with borrow it is not: cur then points into col's data and is
// valid only while col is (a caller folding one batch into state it keeps
// elsewhere).
func FoldMinMaxString(col arrow.Array, rows []int32, gids []uint32, cur []string, seen []bool, isMax, borrow bool) {
	offs, data := binaryView(col)
	vv := validityOf(col)
	for p, g := range gids {
		r := pairRow(rows, p)
		if vv.bits != nil && !vv.valid(r) {
			continue
		}
		v := data[offs[r]:offs[r+1]]
		if seen[g] && (isMax && string(v) <= cur[g] || !isMax && string(v) >= cur[g]) {
			continue
		}
		seen[g] = true
		if borrow {
			cur[g] = unsafe.String(unsafe.SliceData(v), len(v))
		} else {
			cur[g] = string(v)
		}
	}
}
