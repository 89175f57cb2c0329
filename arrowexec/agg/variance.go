package agg

import (
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Variance and standard deviation (var_samp, var_pop, stddev_samp,
// stddev_pop; variance and stddev are the sample ones, as in DuckDB and
// PostgreSQL) keep per group the count, the mean and the sum of squared
// deviations from it (Welford's update), merged with Chan et al.'s
// pairwise formula, which stays accurate where sum and sum of squares
// would cancel. The one implementation serves both steps: the aggregate
// step keeps a VarState per group, the window step one per window in its
// blob (VarUpdate over a batch's (row, group) pairs, then Merge).

// VarState is the running state of a variance.
type VarState struct {
	N    int64
	Mean float64
	M2   float64
}

// Merge folds o into s.
func (s *VarState) Merge(o VarState) {
	switch {
	case o.N == 0:
		return
	case s.N == 0:
		*s = o
		return
	}
	n := s.N + o.N
	d := o.Mean - s.Mean
	s.Mean += d * float64(o.N) / float64(n)
	s.M2 += o.M2 + d*d*float64(s.N)*float64(o.N)/float64(n)
	s.N = n
}

// Result is the value of variance function f (NULL: false): the sample
// functions need two values, the population ones one.
func (s VarState) Result(f Func) (float64, bool) {
	switch f {
	case VarSamp, StddevSamp:
		if s.N < 2 {
			return 0, false
		}
		v := s.M2 / float64(s.N-1)
		if f == StddevSamp {
			v = math.Sqrt(v)
		}
		return v, true
	default: // VarPop, StddevPop
		if s.N < 1 {
			return 0, false
		}
		v := s.M2 / float64(s.N)
		if f == StddevPop {
			v = math.Sqrt(v)
		}
		return v, true
	}
}

// VarUpdate folds the values of col (numeric) into st: value rows[p] into
// st[gids[p]] (rows nil: value p), NULLs skipped. One typed loop; vals is
// scratch for the values as float64, returned for reuse.
func VarUpdate(st []VarState, col arrow.Array, rows []int32, gids []uint32, vals []float64) []float64 {
	vals = Float64s(col, vals)
	vv := validityOf(col)
	for p, g := range gids {
		r := p
		if rows != nil {
			r = int(rows[p])
		}
		if vv.bits != nil && !vv.valid(r) {
			continue
		}
		s := &st[g]
		s.N++
		d := vals[r] - s.Mean
		s.Mean += d / float64(s.N)
		s.M2 += d * (vals[r] - s.Mean)
	}
	return vals
}

// Float64s returns the values of a numeric column as float64 in dst (one
// typed loop; NULL slots hold whatever the buffer holds).
func Float64s(c arrow.Array, dst []float64) []float64 {
	dst = grow(dst, c.Len())
	switch c.DataType().ID() {
	case arrow.INT8:
		widenFloat(values[int8](c), dst)
	case arrow.INT16:
		widenFloat(values[int16](c), dst)
	case arrow.INT32:
		widenFloat(values[int32](c), dst)
	case arrow.INT64:
		widenFloat(values[int64](c), dst)
	case arrow.UINT8:
		widenFloat(values[uint8](c), dst)
	case arrow.UINT16:
		widenFloat(values[uint16](c), dst)
	case arrow.UINT32:
		widenFloat(values[uint32](c), dst)
	case arrow.UINT64:
		widenFloat(values[uint64](c), dst)
	case arrow.FLOAT32:
		widenFloat(values[float32](c), dst)
	case arrow.FLOAT64:
		copy(dst, values[float64](c))
	}
	return dst
}

func widenFloat[T number](src []T, dst []float64) {
	for i, v := range src {
		dst[i] = float64(v)
	}
}

// varAcc is the aggregate step's accumulator of the variance functions.
// Partial emits (and Final reads) the state as three columns: As+".n"
// (int64), As+".mean" and As+".m2" (float64); so does a checkpoint.
type varAcc struct {
	f       Func
	st      []VarState
	partial bool
	merge   bool
	vals    []float64
}

func (a *varAcc) resize(n int) { a.st = extend(a.st, n) }
func (a *varAcc) bytes() int   { return 24 * cap(a.st) }

func (a *varAcc) update(cols []arrow.Array, gids []uint32) {
	if a.merge {
		a.mergeState(cols, gids)
		return
	}
	a.vals = VarUpdate(a.st, cols[0], nil, gids, a.vals)
}

func (a *varAcc) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	st := a.st[lo:hi]
	if a.partial {
		n := make([]int64, len(st))
		mean := make([]float64, len(st))
		m2 := make([]float64, len(st))
		for i, s := range st {
			n[i], mean[i], m2[i] = s.N, s.Mean, s.M2
		}
		return append(out, fixedArray(mem, i64, n, nil),
			fixedArray(mem, arrow.PrimitiveTypes.Float64, mean, nil),
			fixedArray(mem, arrow.PrimitiveTypes.Float64, m2, nil)), nil
	}
	res := make([]float64, len(st))
	valid := make([]bool, len(st))
	for i, s := range st {
		res[i], valid[i] = s.Result(a.f)
	}
	return append(out, fixedArray(mem, arrow.PrimitiveTypes.Float64, res, valid)), nil
}

var varStateTypes = []arrow.DataType{i64, arrow.PrimitiveTypes.Float64, arrow.PrimitiveTypes.Float64}

func (a *varAcc) stateTypes() []arrow.DataType { return varStateTypes }

func (a *varAcc) exportState(dest []uint32) []stateCol {
	n := make([]int64, len(dest))
	mean := make([]float64, len(dest))
	m2 := make([]float64, len(dest))
	for g, d := range dest {
		s := a.st[g]
		n[d], mean[d], m2[d] = s.N, s.Mean, s.M2
	}
	return []stateCol{&fixedCol[int64]{dt: i64, vals: n},
		&fixedCol[float64]{dt: arrow.PrimitiveTypes.Float64, vals: mean},
		&fixedCol[float64]{dt: arrow.PrimitiveTypes.Float64, vals: m2}}
}

// mergeState merges (n, mean, m2) rows into groups; it is Final's update.
func (a *varAcc) mergeState(cols []arrow.Array, gids []uint32) {
	n := values[int64](cols[0])[:len(gids)]
	mean := values[float64](cols[1])[:len(gids)]
	m2 := values[float64](cols[2])[:len(gids)]
	nv, mv, qv := validityOf(cols[0]), validityOf(cols[1]), validityOf(cols[2])
	for i, g := range gids {
		if nv.bits != nil && !nv.valid(i) || mv.bits != nil && !mv.valid(i) || qv.bits != nil && !qv.valid(i) {
			continue
		}
		a.st[g].Merge(VarState{N: n[i], Mean: mean[i], M2: m2[i]})
	}
}
