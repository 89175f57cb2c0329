package expr

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Eval evaluates the expression over every row of rec and returns an array
// of rec.NumRows() rows and type b.Type(). The caller owns the result and
// must Release it; rec is only borrowed. Every buffer is allocated from mem.
// A result may share buffers with rec's columns (a column reference returns
// the column itself, retained).
func (b *Bound) Eval(mem memory.Allocator, rec arrow.RecordBatch) (arrow.Array, error) {
	c := &evalCtx{mem: mem, rec: rec, n: int(rec.NumRows())}
	return b.root.eval(c)
}

// selectNode returns the rows where nd is TRUE: among all rows when all is
// set (sel is then empty with capacity >= c.n), otherwise among sel, which
// it refines in place.
func selectNode(c *evalCtx, nd node, sel []int32, all bool) ([]int32, error) {
	switch x := nd.(type) {
	case *constNode:
		if x.v.null || x.v.i == 0 {
			return sel[:0], nil
		}
		if all {
			return allRows(sel, c.n), nil
		}
		return sel, nil
	case *logicNode:
		if x.op == OpAnd {
			sel, err := selectNode(c, x.l, sel, all)
			if err != nil || len(sel) == 0 {
				return sel, err
			}
			return selectNode(c, x.r, sel, false)
		}
		return selectOr(c, x, sel, all)
	case *cmpNode:
		if !x.rconst {
			break
		}
		a, err := x.l.eval(c)
		if err != nil {
			return nil, err
		}
		defer a.Release()
		switch x.mode {
		case cmConst:
			if !x.constRes {
				return sel[:0], nil
			}
			if all {
				sel = allRows(sel, c.n)
			}
		case cmNative:
			sel = selNative(x.op, x.k, a, &x.c, c.n, sel, all)
		case cmFloat:
			sel = selFloat(x.op, x.k, a, x.c.f, c.n, sel, all)
		}
		return dropNulls(a, sel), nil
	case *inNode:
		a, err := x.x.eval(c)
		if err != nil {
			return nil, err
		}
		defer a.Release()
		return dropNulls(a, x.m.sel(a, c.n, sel, all)), nil
	case *prefixNode:
		a, err := x.x.eval(c)
		if err != nil {
			return nil, err
		}
		defer a.Release()
		p := []byte(x.prefix)
		if kindOf(a.DataType()) == kString {
			o, d := stringOffsets32(a)
			sel = prefixSel(o, d, p, c.n, sel, all)
		} else {
			o, d := stringOffsets64(a)
			sel = prefixSel(o, d, p, c.n, sel, all)
		}
		return dropNulls(a, sel), nil
	case *isNullNode:
		a, err := x.x.eval(c)
		if err != nil {
			return nil, err
		}
		defer a.Release()
		if all {
			sel = allRows(sel, c.n)
		}
		if x.not {
			return dropNulls(a, sel), nil
		}
		if a.NullN() == 0 {
			return sel[:0], nil
		}
		vb, off := validity(a)
		return refBits(vb, off, sel, false), nil
	}
	// Fallback: evaluate to a boolean array.
	a, err := nd.eval(c)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	if kindOf(a.DataType()) == kNull {
		return sel[:0], nil
	}
	if all {
		sel = allRows(sel, c.n)
	}
	d := a.Data()
	sel = refBits(d.Buffers()[1].Bytes(), d.Offset(), sel, true)
	return dropNulls(a, sel), nil
}

// allRows returns 0..n-1 in sel's memory (cap(sel) >= n).
func allRows(sel []int32, n int) []int32 {
	sel = sel[:n]
	for i := range sel {
		sel[i] = int32(i)
	}
	return sel
}

// refBits keeps the rows of sel whose bit in b (at bit offset off) equals
// want.
func refBits(b []byte, off int, sel []int32, want bool) []int32 {
	k := 0
	for _, i := range sel {
		sel[k] = i
		k += int(b2u(bitutil.BitIsSet(b, off+int(i)) == want))
	}
	return sel[:k]
}

// dropNulls removes the rows where a is NULL.
func dropNulls(a arrow.Array, sel []int32) []int32 {
	if a.NullN() == 0 || len(sel) == 0 {
		return sel
	}
	vb, off := validity(a)
	return refBits(vb, off, sel, true)
}

func selectOr(c *evalCtx, x *logicNode, sel []int32, all bool) ([]int32, error) {
	var left []int32
	if all {
		left = make([]int32, 0, c.n)
	} else {
		left = append([]int32(nil), sel...)
	}
	left, err := selectNode(c, x.l, left, all)
	if err != nil {
		return nil, err
	}
	var right []int32
	if all {
		right = sel[:0]
	} else {
		right = append(make([]int32, 0, len(sel)), sel...)
	}
	right, err = selectNode(c, x.r, right, all)
	if err != nil {
		return nil, err
	}
	// Merge two ascending lists into sel (right may alias sel).
	right = append([]int32(nil), right...)
	out := sel[:0]
	i, j := 0, 0
	for i < len(left) && j < len(right) {
		switch {
		case left[i] < right[j]:
			out = append(out, left[i])
			i++
		case left[i] > right[j]:
			out = append(out, right[j])
			j++
		default:
			out = append(out, left[i])
			i++
			j++
		}
	}
	out = append(out, left[i:]...)
	return append(out, right[j:]...), nil
}

func selNative(op BinaryOp, k kind, a arrow.Array, c *scalar, n int, sel []int32, all bool) []int32 {
	switch k {
	case kI8:
		return selVSDispatch(op, values[int8](a), int8(c.i), n, sel, all)
	case kI16:
		return selVSDispatch(op, values[int16](a), int16(c.i), n, sel, all)
	case kI32, kDate32:
		return selVSDispatch(op, values[int32](a), int32(c.i), n, sel, all)
	case kI64, kTimestamp, kDuration, kTime:
		return selVSDispatch(op, values[int64](a), c.i, n, sel, all)
	case kU8:
		return selVSDispatch(op, values[uint8](a), uint8(c.i), n, sel, all)
	case kU16:
		return selVSDispatch(op, values[uint16](a), uint16(c.i), n, sel, all)
	case kU32:
		return selVSDispatch(op, values[uint32](a), uint32(c.i), n, sel, all)
	case kU64:
		return selVSDispatch(op, values[uint64](a), uint64(c.i), n, sel, all)
	case kF32:
		return selVSDispatch(op, values[float32](a), float32(c.f), n, sel, all)
	case kF64:
		return selVSDispatch(op, values[float64](a), c.f, n, sel, all)
	}
	if op == OpEq || op == OpNe {
		switch k {
		case kString:
			o, d := stringOffsets32(a)
			return selStrEq(o, d, c.s, op == OpNe, n, sel, all)
		case kLargeString:
			o, d := stringOffsets64(a)
			return selStrEq(o, d, c.s, op == OpNe, n, sel, all)
		}
	}
	// Other string comparisons and booleans: through a bitmap.
	buf := make([]byte, bitmapBytes(n))
	cmpNativeVS(op, k, a, c, n, buf)
	if all {
		sel = allRows(sel, n)
	}
	return refBits(buf, 0, sel, true)
}

func selVSDispatch[T numeric](op BinaryOp, v []T, c T, n int, sel []int32, all bool) []int32 {
	if all {
		return selVS(op, v, c, n, sel)
	}
	return refVS(op, v, c, sel)
}

func selFloat(op BinaryOp, k kind, a arrow.Array, c float64, n int, sel []int32, all bool) []int32 {
	switch k {
	case kI8:
		return selVSFDispatch(op, values[int8](a), c, n, sel, all)
	case kI16:
		return selVSFDispatch(op, values[int16](a), c, n, sel, all)
	case kI32:
		return selVSFDispatch(op, values[int32](a), c, n, sel, all)
	case kI64:
		return selVSFDispatch(op, values[int64](a), c, n, sel, all)
	case kU8:
		return selVSFDispatch(op, values[uint8](a), c, n, sel, all)
	case kU16:
		return selVSFDispatch(op, values[uint16](a), c, n, sel, all)
	case kU32:
		return selVSFDispatch(op, values[uint32](a), c, n, sel, all)
	case kU64:
		return selVSFDispatch(op, values[uint64](a), c, n, sel, all)
	case kF32:
		return selVSFDispatch(op, values[float32](a), c, n, sel, all)
	}
	return selVSDispatch(op, values[float64](a), c, n, sel, all)
}

func selVSFDispatch[T numeric](op BinaryOp, v []T, c float64, n int, sel []int32, all bool) []int32 {
	if all {
		return selVSF(op, v, c, n, sel)
	}
	return refVSF(op, v, c, sel)
}

func selStrEq[O int32 | int64](offs []O, data []byte, c string, ne bool, n int, sel []int32, all bool) []int32 {
	k := 0
	if all {
		sel = sel[:n]
		for i := 0; i < n; i++ {
			sel[k] = int32(i)
			k += int(b2u((string(data[offs[i]:offs[i+1]]) == c) != ne))
		}
		return sel[:k]
	}
	for _, i := range sel {
		sel[k] = i
		k += int(b2u((string(data[offs[i]:offs[i+1]]) == c) != ne))
	}
	return sel[:k]
}
