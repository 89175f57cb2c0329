package agg

import (
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"
)

// The brute-force oracle of the collecting functions (collect.go), used by
// oracle in agg_test.go: it keeps every (value, ordering value) pair.

func isCollect(f Func) bool {
	switch f {
	case Median, Quantile, ArgMax, ArgMin, First, Last, List:
		return true
	}
	return false
}

type collectState struct {
	xs, bys []any
}

func (c *collectState) add(f Func, x, by any) {
	c.xs = append(c.xs, x)
	c.bys = append(c.bys, by)
}

// listString is a list value as a canonical string: its elements' key
// strings, sorted (list order is arrival order, which parallelism changes).
func listString(a *array.List, i int) string {
	lo, hi := a.ValueOffsets(i)
	vals := a.ListValues()
	var el []string
	for j := lo; j < hi; j++ {
		el = append(el, keyString(goValue(vals, int(j))))
	}
	slices.Sort(el)
	return "[" + strings.Join(el, ",") + "]"
}

func (c *collectState) result(a Agg) value {
	switch a.Func {
	case List:
		if len(c.xs) == 0 {
			return value{}
		}
		var el []string
		for _, x := range c.xs {
			el = append(el, keyString(x))
		}
		slices.Sort(el)
		return value{v: "[" + strings.Join(el, ",") + "]"}
	case Median, Quantile:
		var vals []float64
		for _, x := range c.xs {
			switch {
			case x == nil:
			case isNaN(x):
				vals = append(vals, math.NaN())
			default:
				if i, ok := asInt64(x); ok {
					vals = append(vals, float64(i))
				} else {
					vals = append(vals, asFloat64(x))
				}
			}
		}
		if len(vals) == 0 {
			return value{}
		}
		// Sort with NaN greatest (bubble the NaNs out first).
		slices.SortFunc(vals, func(a, b float64) int {
			switch {
			case a != a && b != b:
				return 0
			case a != a:
				return 1
			case b != b:
				return -1
			case a < b:
				return -1
			case a > b:
				return 1
			}
			return 0
		})
		q := a.Param
		if a.Func == Median {
			q = 0.5
		}
		rank := q * float64(len(vals)-1)
		lo, hi := vals[int(math.Floor(rank))], vals[int(math.Ceil(rank))]
		r := lo
		if hi != lo {
			r = lo + (hi-lo)*(rank-math.Floor(rank))
		}
		return value{v: r, tol: 1e-9 * (math.Abs(lo) + math.Abs(hi) + 1)}
	}
	// arg_max, arg_min, first, last: every x tied at the best ordering value.
	isMax := a.Func == ArgMax || a.Func == Last
	var best any
	var cands []any
	for i, by := range c.bys {
		x := c.xs[i]
		if by == nil || x == nil && (a.Func == ArgMax || a.Func == ArgMin) {
			continue
		}
		switch {
		case best == nil || isMax && less(best, by) || !isMax && less(by, best):
			best, cands = by, []any{x}
		case !less(best, by) && !less(by, best):
			cands = append(cands, x)
		}
	}
	if best == nil {
		return value{}
	}
	return value{oneOf: cands}
}
