package expr

import (
	"fmt"
	"math"
	"math/bits"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
)

// condNode is CASE and COALESCE. Its arms are tried in order; each claims
// some of the rows no earlier arm claimed and gives them its value:
//
//   - a CASE arm claims the rows where its WHEN condition is TRUE (NULL
//     counts as false); the ELSE arm (nil condition) claims the rest;
//   - a COALESCE arm (conds == nil) claims the rows where its value is not
//     NULL.
//
// Rows no arm claims are NULL. Conditions are "is TRUE" bitmaps built by the
// Select kernels (trueBits), 64 rows a word; once every row is claimed the
// remaining arms are not evaluated, nor is the value of an arm that claims
// no row. A computed value of a sparse arm (gatherPays) is evaluated over its
// rows only, gathered; other values over the whole batch. Values are
// blended by the claim masks (or scattered), one typed loop per arm.
type condNode struct {
	t     arrow.DataType
	conds []node // CASE: one per arm, nil for ELSE; COALESCE: nil
	vals  []node // one per arm, of type t (strings: string or large_string)
}

func (n *condNode) dataType() arrow.DataType { return n.t }

// arm is one evaluated arm: the rows it claimed and its value, an array
// (arr) or a non-null constant (c). When idx is set, arr is compact: its
// row k is the value of batch row idx[k] (the claimed rows, ascending).
type arm struct {
	mask *[]uint64
	n    int // rows claimed
	arr  arrow.Array
	c    *scalar
	idx  []int32
}

func (a *arm) release() {
	if a.mask != nil {
		putWords(a.mask)
	}
	if a.arr != nil {
		a.arr.Release()
	}
}

func (n *condNode) eval(c *evalCtx) (arrow.Array, error) {
	rows := c.n
	undec := getWords(rows)
	defer putWords(undec)
	fillBits(wordBytes(*undec), rows)
	left := rows
	var arms []arm
	defer func() {
		for i := range arms {
			arms[i].release()
		}
	}()
	for i, v := range n.vals {
		if left == 0 {
			break
		}
		cv, isConst := v.(*constNode)
		if isConst && cv.v.null && n.conds == nil {
			continue // COALESCE(…, NULL, …)
		}
		a := arm{mask: getWords(rows)}
		if isConst {
			a.c = &cv.v
		}
		switch {
		case n.conds != nil && n.conds[i] != nil:
			if err := condBits(c, n.conds[i], *undec, left, *a.mask); err != nil {
				a.release()
				return nil, err
			}
		case n.conds == nil && !isConst:
			arr, err := v.eval(c)
			if err != nil {
				a.release()
				return nil, err
			}
			a.arr = arr
			fillBits(wordBytes(*a.mask), rows)
			andValid(*a.mask, arr, rows)
		default: // ELSE, or a constant COALESCE argument: every row left
			copy(*a.mask, *undec)
		}
		m, u := *a.mask, *undec
		for j, w := range m {
			w &= u[j]
			m[j] = w
			u[j] &^= w
			a.n += bits.OnesCount64(w)
		}
		left -= a.n
		if a.n == 0 || isConst && cv.v.null {
			a.release() // no row, or rows that stay NULL
			continue
		}
		if a.arr == nil && !isConst {
			var err error
			if gatherPays(v, a.n, rows) {
				a.idx = extract(*a.mask, make([]int32, 0, a.n))
				a.arr, err = evalRows(c, v, a.idx)
			} else {
				a.arr, err = v.eval(c)
			}
			if err != nil {
				a.release()
				return nil, err
			}
		}
		arms = append(arms, a)
	}
	return blend(c.mem, n.t, rows, arms)
}

// caseSparseDiv sets when a WHEN condition is tested only on the rows still
// undecided (a selection vector through the Select kernels) rather than on
// the whole batch: when fewer than n/caseSparseDiv rows are left. A
// variable so tests and benchmarks can drive both paths (0: always dense).
var caseSparseDiv = 16

// condBits sets in dst (zeroed) the rows where cond is TRUE, at least among
// the left undecided rows marked in undec; rows outside undec may be set.
func condBits(c *evalCtx, cond node, undec []uint64, left int, dst []uint64) error {
	if caseSparseDiv == 0 || left >= c.n/caseSparseDiv {
		return trueBits(c, cond, dst)
	}
	sel := extract(undec, make([]int32, 0, left))
	sel, err := selectNode(c, cond, sel, false)
	if err != nil {
		return err
	}
	for _, i := range sel {
		dst[i>>6] |= 1 << (i & 63)
	}
	return nil
}

// gatherPays reports whether the value v of an arm claiming claimed of rows
// rows is better evaluated over those rows only, gathered: when the arm is
// sparse (as for conditions, caseSparseDiv) and v computes something. A
// column or a constant costs nothing to evaluate over the whole batch.
func gatherPays(v node, claimed, rows int) bool {
	switch v.(type) {
	case *colNode, *constNode:
		return false
	}
	if caseSparseDiv == 0 || claimed >= rows/caseSparseDiv {
		return false
	}
	// arrowexec.TakeArray sends large_string to compute.TakeArray with a
	// nil context, which panics, and converted columns (date64,
	// dictionaries) are not gathered: such values are evaluated over the
	// batch.
	return walkNodes(v, func(x node) error {
		if cn, ok := x.(*colNode); ok && (kindOf(cn.t) == kLargeString || convertedType(cn.t) != nil) {
			return errHasCols
		}
		return nil
	}) == nil
}

// evalRows evaluates v over the rows idx of the batch: the columns v reads
// are gathered with arrowexec.TakeArray, the one gather kernel.
func evalRows(c *evalCtx, v node, idx []int32) (arrow.Array, error) {
	cols := make([]arrow.Array, c.rec.NumCols())
	defer func() {
		for _, a := range cols {
			if a != nil {
				a.Release()
			}
		}
	}()
	err := walkNodes(v, func(x node) error {
		cn, ok := x.(*colNode)
		if !ok || cols[cn.idx] != nil {
			return nil
		}
		full, err := cn.eval(c)
		if err != nil {
			return err
		}
		defer full.Release()
		if cols[cn.idx], err = arrowexec.TakeArray(c.mem, full, idx); err != nil {
			return errorf("column %q: %v", cn.name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v.eval(&evalCtx{mem: c.mem, rec: c.rec, n: len(idx), cols: cols})
}

// blend builds the result of type t from the arms, whose masks are disjoint;
// rows in no mask are NULL.
func blend(mem memory.Allocator, t arrow.DataType, rows int, arms []arm) (arrow.Array, error) {
	k := kindOf(t)
	if len(arms) == 0 || k == kNull {
		return materialize(mem, &scalar{t: t, k: k, null: true}, rows), nil
	}
	if a := arms[0]; len(arms) == 1 && a.n == rows && a.idx == nil {
		if a.arr == nil {
			s := *a.c
			s.t, s.k = t, k
			return materialize(mem, &s, rows), nil
		}
		if arrow.TypeEqual(a.arr.DataType(), t) {
			a.arr.Retain()
			return a.arr, nil
		}
	}
	valid := newBuf(mem, bitmapBytes(rows))
	vw := viewAs[uint64](valid.Bytes())
	for _, a := range arms {
		m := *a.mask
		if a.arr == nil || a.arr.NullN() == 0 {
			for j, w := range m {
				vw[j] |= w
			}
			continue
		}
		vb, rel := validBits(mem, a.arr)
		if a.idx != nil {
			scatterBits(vw, vb, a.idx)
		} else {
			aw := viewAs[uint64](vb)
			for j, w := range m {
				vw[j] |= w & aw[j]
			}
		}
		rel()
	}
	switch k {
	case kBool:
		out := newBuf(mem, bitmapBytes(rows))
		ow := viewAs[uint64](out.Bytes())
		for _, a := range arms {
			m := *a.mask
			if a.arr == nil {
				if a.c.i != 0 {
					for j, w := range m {
						ow[j] |= w
					}
				}
				continue
			}
			bb, rel := boolBits(mem, a.arr)
			if a.idx != nil {
				scatterBits(ow, bb, a.idx)
			} else {
				bw := viewAs[uint64](bb)
				for j, w := range m {
					ow[j] |= w & bw[j]
				}
			}
			rel()
		}
		return makeArray(t, rows, valid, out), nil
	case kString:
		return blendStrings[int32](mem, t, rows, arms, valid)
	case kLargeString:
		return blendStrings[int64](mem, t, rows, arms, valid)
	case kI8:
		return blendFixed[int8](mem, t, rows, arms, valid), nil
	case kI16:
		return blendFixed[int16](mem, t, rows, arms, valid), nil
	case kI32, kDate32:
		return blendFixed[int32](mem, t, rows, arms, valid), nil
	case kI64, kTimestamp, kDuration, kTime:
		return blendFixed[int64](mem, t, rows, arms, valid), nil
	case kU8:
		return blendFixed[uint8](mem, t, rows, arms, valid), nil
	case kU16:
		return blendFixed[uint16](mem, t, rows, arms, valid), nil
	case kU32:
		return blendFixed[uint32](mem, t, rows, arms, valid), nil
	case kU64:
		return blendFixed[uint64](mem, t, rows, arms, valid), nil
	case kF32:
		return blendFixed[float32](mem, t, rows, arms, valid), nil
	case kF64:
		return blendFixed[float64](mem, t, rows, arms, valid), nil
	case kDecimal128:
		return blendDec(mem, t, rows, arms, valid), nil
	}
	valid.Release()
	return nil, errorf("no blend kernel for type %s", t)
}

func blendFixed[T numeric](mem memory.Allocator, t arrow.DataType, rows int, arms []arm, valid *memory.Buffer) arrow.Array {
	var zero T
	out := newBuf(mem, rows*int(unsafe.Sizeof(zero)))
	o := viewAs[T](out.Bytes())
	for _, a := range arms {
		if a.arr == nil {
			var c T
			if a.c.k.isFloat() {
				c = T(a.c.f)
			} else {
				c = T(a.c.i)
			}
			blendConst(o, *a.mask, c)
		} else if a.idx != nil {
			scatter(o, a.idx, values[T](a.arr))
		} else {
			blendVals(o, *a.mask, values[T](a.arr))
		}
	}
	return makeArray(t, rows, valid, out)
}

// blendConst sets o[i] = c for the rows i in mask m.
func blendConst[T any](o []T, m []uint64, c T) {
	for j, w := range m {
		base := j * 64
		if w == math.MaxUint64 {
			fill(o[base:base+64], c)
			continue
		}
		for w != 0 {
			o[base+bits.TrailingZeros64(w)] = c
			w &= w - 1
		}
	}
}

// blendVals sets o[i] = v[i] for the rows i in mask m.
func blendVals[T any](o []T, m []uint64, v []T) {
	for j, w := range m {
		base := j * 64
		if w == math.MaxUint64 {
			copy(o[base:base+64], v[base:base+64])
			continue
		}
		for w != 0 {
			i := base + bits.TrailingZeros64(w)
			o[i] = v[i]
			w &= w - 1
		}
	}
}

// scatter sets o[idx[k]] = v[k].
func scatter[T any](o []T, idx []int32, v []T) {
	for k, i := range idx {
		o[i] = v[k]
	}
}

// scatterBits sets bit idx[k] of dst where bit k of src is set.
func scatterBits(dst []uint64, src []byte, idx []int32) {
	for k, i := range idx {
		dst[i>>6] |= uint64(src[k>>3]>>(k&7)&1) << (i & 63)
	}
}

// blendStrings builds a string (O = int32) or large_string (O = int64)
// column in two passes over the masks: lengths, then bytes. Arms may be
// string or large_string arrays of either width.
func blendStrings[O int32 | int64](mem memory.Allocator, t arrow.DataType, rows int, arms []arm, valid *memory.Buffer) (arrow.Array, error) {
	var zero O
	offs := newBuf(mem, (rows+1)*int(unsafe.Sizeof(zero)))
	o := viewAs[O](offs.Bytes())
	lens := o[1:]
	for _, a := range arms {
		switch {
		case a.arr == nil:
			blendConst(lens, *a.mask, O(len(a.c.s)))
		case kindOf(a.arr.DataType()) == kString:
			so, _ := stringOffsets32(a.arr)
			armLens(lens, *a.mask, a.idx, so)
		default:
			so, _ := stringOffsets64(a.arr)
			armLens(lens, *a.mask, a.idx, so)
		}
	}
	var total int64
	for i := range lens {
		total += int64(lens[i])
		lens[i] = O(total)
	}
	if unsafe.Sizeof(zero) == 4 && total > math.MaxInt32 {
		offs.Release()
		valid.Release()
		return nil, errorf("result of %d bytes does not fit a string column (2 GiB at most)", total)
	}
	data := newBufUninit(mem, int(total))
	d := data.Bytes()
	for _, a := range arms {
		switch {
		case a.arr == nil:
			s := a.c.s
			for j, w := range *a.mask {
				base := j * 64
				for w != 0 {
					i := base + bits.TrailingZeros64(w)
					copy(d[o[i]:o[i+1]], s)
					w &= w - 1
				}
			}
		case kindOf(a.arr.DataType()) == kString:
			so, sd := stringOffsets32(a.arr)
			armCopy(d, o, *a.mask, a.idx, so, sd)
		default:
			so, sd := stringOffsets64(a.arr)
			armCopy(d, o, *a.mask, a.idx, so, sd)
		}
	}
	return makeArray(t, rows, valid, offs, data), nil
}

// armLens writes the lengths of an arm's strings for the rows in m; with
// idx, so holds the compact values.
func armLens[O, S int32 | int64](lens []O, m []uint64, idx []int32, so []S) {
	if idx != nil {
		for k, i := range idx {
			lens[i] = O(so[k+1] - so[k])
		}
		return
	}
	for j, w := range m {
		base := j * 64
		for w != 0 {
			i := base + bits.TrailingZeros64(w)
			lens[i] = O(so[i+1] - so[i])
			w &= w - 1
		}
	}
}

// armCopy copies an arm's strings to their places in d; with idx, so and
// sd hold the compact values.
func armCopy[O, S int32 | int64](d []byte, o []O, m []uint64, idx []int32, so []S, sd []byte) {
	if idx != nil {
		for k, i := range idx {
			copy(d[o[i]:o[i+1]], sd[so[k]:so[k+1]])
		}
		return
	}
	for j, w := range m {
		base := j * 64
		for w != 0 {
			i := base + bits.TrailingZeros64(w)
			copy(d[o[i]:o[i+1]], sd[so[i]:so[i+1]])
			w &= w - 1
		}
	}
}

// ---- binding ----

// branch is a value of CASE or COALESCE being bound: its node, its source
// and how error messages name its position.
type branch struct {
	n     node
	e     Expr
	label string
}

func (b branch) String() string { return b.label + " (" + describe(b.e, b.n.dataType()) + ")" }

// adaptable reports whether n is a constant that takes the type of the
// other values when it fits exactly: an integer literal, or a timestamp
// constant (an instant, whatever its unit and zone).
func adaptable(n node) bool {
	c, ok := n.(*constNode)
	return ok && !c.v.null && (c.v.untyped || c.v.k == kTimestamp)
}

// fits reports whether the adaptable constant s is exactly a value of t.
func fits(s *scalar, t arrow.DataType) bool {
	tk := kindOf(t)
	switch {
	case s.untyped && tk.isInt():
		lo, hi := intRange(tk)
		return s.i >= lo && (s.i < 0 || uint64(s.i) <= hi)
	case s.k == kTimestamp && tk == kTimestamp:
		from := unitNanos(s.t.(*arrow.TimestampType).Unit)
		to := unitNanos(t.(*arrow.TimestampType).Unit)
		if from <= to {
			return s.i%(to/from) == 0
		}
		m := from / to
		return s.i <= math.MaxInt64/m && s.i >= math.MinInt64/m
	}
	return false
}

// commonType returns the type the values of a CASE or COALESCE (what) take,
// by the rules of arithmetic and comparison: NULL takes any type; integer
// literals and timestamp constants take the type of the other values when
// those all have one integer or timestamp type and the constants fit it
// exactly; otherwise integers of different types give int64 (uint64 only
// with unsigned integers: with a signed one, cast one side), a float gives
// float64 (float32 when all are float32), string and large_string give
// large_string, timestamps of one time zone give the finest unit. Anything
// else is a type error naming both positions.
func commonType(what string, bs []branch) (arrow.DataType, error) {
	var only arrow.DataType
	one := true
	for _, b := range bs {
		t := b.n.dataType()
		if kindOf(t) == kNull || adaptable(b.n) {
			continue
		}
		if only != nil && !arrow.TypeEqual(only, t) {
			one = false
		}
		only = t
	}
	if one && only != nil && (kindOf(only).isInt() || kindOf(only) == kTimestamp) {
		ok := true
		for _, b := range bs {
			if adaptable(b.n) {
				ok = ok && fits(&b.n.(*constNode).v, only)
			}
		}
		if ok {
			return only, nil
		}
	}
	var t arrow.DataType
	first := -1
	for i, b := range bs {
		bt := b.n.dataType()
		if kindOf(bt) == kNull {
			continue
		}
		if t == nil {
			t, first = bt, i
			continue
		}
		nt, hint := promote(t, bt)
		if nt == nil {
			return nil, errorf("%s has no common type for %s and %s%s", what, bs[first], b, hint)
		}
		t = nt
	}
	if t == nil {
		return arrow.Null, nil
	}
	return t, nil
}

// promote returns the common type of a and b, or nil and a hint.
func promote(a, b arrow.DataType) (arrow.DataType, string) {
	if arrow.TypeEqual(a, b) {
		return a, ""
	}
	ak, bk := kindOf(a), kindOf(b)
	switch {
	case ak == kDecimal128 || bk == kDecimal128:
		return decPromote(a, b)
	case ak.isNumeric() && bk.isNumeric():
		switch {
		case ak == kF32 && bk == kF32:
			return a, ""
		case ak.isFloat() || bk.isFloat():
			return arrow.PrimitiveTypes.Float64, ""
		case ak == kU64 || bk == kU64:
			if ak.isUnsigned() && bk.isUnsigned() {
				return arrow.PrimitiveTypes.Uint64, ""
			}
			return nil, ": cast one side"
		}
		return arrow.PrimitiveTypes.Int64, ""
	case ak.isString() && bk.isString():
		return arrow.BinaryTypes.LargeString, ""
	case ak == kTimestamp && bk == kTimestamp:
		at, bt := a.(*arrow.TimestampType), b.(*arrow.TimestampType)
		if at.TimeZone != bt.TimeZone {
			return nil, ": time zones differ, cast one side"
		}
		if unitNanos(bt.Unit) < unitNanos(at.Unit) {
			return b, ""
		}
		return a, ""
	}
	return nil, ""
}

// unify returns the common type of the values (see commonType) and the
// values converted to it (strings keep their width: the blend reads either).
func unify(what string, bs []branch) (arrow.DataType, []node, error) {
	t, err := commonType(what, bs)
	if err != nil {
		return nil, nil, err
	}
	out := make([]node, len(bs))
	tk := kindOf(t)
	for i, b := range bs {
		bt := b.n.dataType()
		switch {
		case kindOf(bt) == kNull || isNullConst(b.n):
			out[i] = &constNode{v: scalar{t: t, k: tk, null: true}}
		case tk.isString() || arrow.TypeEqual(bt, t):
			out[i] = b.n
		default:
			n, err := castTo(b.n, t, &CastExpr{X: b.e, To: typeName(t)})
			if err != nil {
				return nil, nil, err
			}
			if out[i], err = foldConst(n); err != nil {
				return nil, nil, err
			}
		}
	}
	return t, out, nil
}

func (b *binder) bindCase(x *CaseExpr) (node, error) {
	if len(x.Whens) == 0 {
		return nil, errorf("CASE needs at least one WHEN")
	}
	var operand node
	if x.Operand != nil {
		var err error
		if operand, err = b.bind(x.Operand); err != nil {
			return nil, err
		}
	}
	conds := make([]node, 0, len(x.Whens)+1)
	bs := make([]branch, 0, len(x.Whens)+1)
	for i, w := range x.Whens {
		if w.Cond == nil || w.Then == nil {
			return nil, errorf("CASE WHEN %d: nil expression", i+1)
		}
		cn, err := b.bind(w.Cond)
		if err != nil {
			return nil, err
		}
		if operand != nil {
			if cn, err = newCmp(OpEq, operand, cn, x.Operand, w.Cond); err != nil {
				return nil, errorf("CASE WHEN %d: %s", i+1, strings.TrimPrefix(err.Error(), "expr: "))
			}
			if cn, err = foldConst(cn); err != nil {
				return nil, err
			}
		} else if k := kindOf(cn.dataType()); k != kBool && k != kNull {
			return nil, errorf("CASE WHEN %d needs a boolean condition, got %s", i+1, describe(w.Cond, cn.dataType()))
		}
		vn, err := b.bind(w.Then)
		if err != nil {
			return nil, err
		}
		conds = append(conds, cn)
		bs = append(bs, branch{n: vn, e: w.Then, label: fmt.Sprintf("THEN %d", i+1)})
	}
	if x.Else != nil {
		vn, err := b.bind(x.Else)
		if err != nil {
			return nil, err
		}
		conds = append(conds, nil)
		bs = append(bs, branch{n: vn, e: x.Else, label: "ELSE"})
	}
	t, vals, err := unify("CASE", bs)
	if err != nil {
		return nil, err
	}
	// Constant conditions: a FALSE or NULL one drops its arm, a TRUE one
	// makes its arm the ELSE.
	n := &condNode{t: t}
	for i, cn := range conds {
		if c, ok := cn.(*constNode); ok {
			if c.v.null || c.v.i == 0 {
				continue
			}
			cn = nil
		}
		n.conds = append(n.conds, cn)
		n.vals = append(n.vals, vals[i])
		if cn == nil {
			break
		}
	}
	return simplifyCond(n), nil
}

func bindCoalesce(e *CallExpr, args []node) (node, error) {
	bs := make([]branch, len(args))
	for i, a := range args {
		bs[i] = branch{n: a, e: e.Args[i], label: fmt.Sprintf("argument %d", i+1)}
	}
	t, vals, err := unify("coalesce", bs)
	if err != nil {
		return nil, err
	}
	n := &condNode{t: t}
	for _, v := range vals {
		if isNullConst(v) {
			continue
		}
		n.vals = append(n.vals, v)
		if _, ok := v.(*constNode); ok {
			break // claims every row left
		}
	}
	return simplifyCond(n), nil
}

// simplifyCond returns the value itself when the first arm claims every row
// and NULL when there is no arm.
func simplifyCond(n *condNode) node {
	switch {
	case len(n.vals) == 0:
		return &constNode{v: scalar{t: n.t, k: kindOf(n.t), null: true}}
	case n.conds != nil && n.conds[0] == nil, n.conds == nil && !hasNulls(n.vals[0]):
		if kindOf(n.t).isString() && !arrow.TypeEqual(n.vals[0].dataType(), n.t) {
			return n // a string arm of a large_string result goes through the blend
		}
		return n.vals[0]
	}
	return n
}

// hasNulls reports whether n may give NULL: only non-null constants cannot,
// as far as the binder knows.
func hasNulls(n node) bool {
	c, ok := n.(*constNode)
	return !ok || c.v.null
}
