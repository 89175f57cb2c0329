package expr

import (
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var boolType = arrow.FixedWidthTypes.Boolean

func boolConst(v bool) node {
	s := scalar{t: boolType, k: kBool}
	if v {
		s.i = 1
	}
	return &constNode{v: s}
}

// logicNode is AND / OR under SQL three-valued logic, computed 64 rows at a
// time on the value and validity bitmaps.
type logicNode struct {
	op   BinaryOp
	l, r node
}

func (n *logicNode) dataType() arrow.DataType { return boolType }

func newLogic(op BinaryOp, l, r node, e *BinaryExpr) (node, error) {
	for _, x := range []struct {
		n node
		e Expr
	}{{l, e.L}, {r, e.R}} {
		if k := kindOf(x.n.dataType()); k != kBool && k != kNull {
			return nil, errorf("%s needs booleans, got %s", op, describe(x.e, x.n.dataType()))
		}
	}
	if _, ok := l.(*constNode); ok {
		l, r = r, l
	}
	if c, ok := r.(*constNode); ok && !c.v.null && c.v.k == kBool {
		v := c.v.i != 0
		switch {
		case op == OpAnd && v, op == OpOr && !v:
			if kindOf(l.dataType()) == kNull {
				return nullBool(), nil
			}
			return l, nil // x AND TRUE, x OR FALSE
		default:
			return boolConst(v), nil // x AND FALSE, x OR TRUE
		}
	}
	if kindOf(r.dataType()) == kNull {
		r = nullBool()
	}
	if kindOf(l.dataType()) == kNull {
		l = nullBool()
	}
	return &logicNode{op: op, l: l, r: r}, nil
}

// triBits returns value and validity words for an operand: validity nil
// means all valid. Constants give constant words.
type triBits struct {
	val, valid []uint64
	cval       uint64 // for constants
	cvalid     uint64
	isConst    bool
	rel        []func()
}

func loadTri(mem memory.Allocator, o operand, n int) *triBits {
	t := &triBits{}
	if o.c != nil {
		t.isConst = true
		if !o.c.null {
			t.cvalid = math.MaxUint64
			if o.c.i != 0 {
				t.cval = math.MaxUint64
			}
		}
		return t
	}
	vb, rel := boolBits(mem, o.arr)
	t.rel = append(t.rel, rel)
	t.val = viewAs[uint64](vb)
	if o.arr.NullN() > 0 {
		b, rel := validBits(mem, o.arr)
		t.rel = append(t.rel, rel)
		t.valid = viewAs[uint64](b)
	}
	return t
}

func (t *triBits) release() {
	for _, f := range t.rel {
		f()
	}
}

func (t *triBits) word(i int) (val, valid uint64) {
	if t.isConst {
		return t.cval, t.cvalid
	}
	if t.valid == nil {
		return t.val[i], math.MaxUint64
	}
	return t.val[i], t.valid[i]
}

// validBits returns the validity bitmap of a at bit offset 0, padded to
// whole words (a must have nulls).
func validBits(mem memory.Allocator, a arrow.Array) ([]byte, func()) {
	b, off := validity(a)
	n := a.Len()
	if off == 0 && len(b) >= bitmapBytes(n) {
		return b, func() {}
	}
	buf := newBuf(mem, bitmapBytes(n))
	bitutil.CopyBitmap(b, off, n, buf.Bytes(), 0)
	return buf.Bytes(), buf.Release
}

func (n *logicNode) eval(c *evalCtx) (arrow.Array, error) {
	lo, ro, err := evalOperands(c, n.l, n.r)
	if err != nil {
		return nil, err
	}
	defer lo.release()
	defer ro.release()
	rows := c.n
	x, y := loadTri(c.mem, lo, rows), loadTri(c.mem, ro, rows)
	defer x.release()
	defer y.release()
	out := newBuf(c.mem, bitmapBytes(rows))
	ow := viewAs[uint64](out.Bytes())
	var valid *memory.Buffer
	var vw []uint64
	if x.valid != nil || y.valid != nil || (x.isConst && x.cvalid == 0) || (y.isConst && y.cvalid == 0) {
		valid = newBuf(c.mem, bitmapBytes(rows))
		vw = viewAs[uint64](valid.Bytes())
	}
	for i := range ow {
		a, va := x.word(i)
		b, vb := y.word(i)
		ta, fa := a&va, ^a&va
		tb, fb := b&vb, ^b&vb
		if n.op == OpAnd {
			ow[i] = ta & tb
			if vw != nil {
				vw[i] = (ta & tb) | fa | fb
			}
		} else {
			ow[i] = ta | tb
			if vw != nil {
				vw[i] = ta | tb | (fa & fb)
			}
		}
	}
	clearTail(out.Bytes(), rows)
	if valid != nil {
		clearTail(valid.Bytes(), rows)
	}
	return makeArray(boolType, rows, valid, out), nil
}

// notNode is logical NOT; NULL stays NULL.
type notNode struct{ x node }

func (n *notNode) dataType() arrow.DataType { return boolType }

func (n *notNode) eval(c *evalCtx) (arrow.Array, error) {
	a, err := n.x.eval(c)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	rows := c.n
	if kindOf(a.DataType()) == kNull {
		return materialize(c.mem, &nullBool().(*constNode).v, rows), nil
	}
	out := newBuf(c.mem, bitmapBytes(rows))
	d := a.Data()
	bitutil.CopyBitmap(d.Buffers()[1].Bytes(), d.Offset(), rows, out.Bytes(), 0)
	w := viewAs[uint64](out.Bytes())
	for i := range w {
		w[i] = ^w[i]
	}
	clearTail(out.Bytes(), rows)
	return makeArray(boolType, rows, andValidity(c.mem, rows, false, a), out), nil
}

// isNullNode is X IS [NOT] NULL; its result is never NULL.
type isNullNode struct {
	x   node
	not bool
}

func (n *isNullNode) dataType() arrow.DataType { return boolType }

func (n *isNullNode) eval(c *evalCtx) (arrow.Array, error) {
	a, err := n.x.eval(c)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	rows := c.n
	out := newBuf(c.mem, bitmapBytes(rows))
	switch {
	case a.NullN() == 0:
		if n.not {
			fillBits(out.Bytes(), rows)
		}
	case a.NullN() == rows:
		if !n.not {
			fillBits(out.Bytes(), rows)
		}
	default:
		b, off := validity(a)
		bitutil.CopyBitmap(b, off, rows, out.Bytes(), 0)
		if !n.not {
			w := viewAs[uint64](out.Bytes())
			for i := range w {
				w[i] = ^w[i]
			}
			clearTail(out.Bytes(), rows)
		}
	}
	return makeArray(boolType, rows, nil, out), nil
}

// prefixNode is starts_with(X, prefix).
type prefixNode struct {
	x      node
	prefix string
}

func (n *prefixNode) dataType() arrow.DataType { return boolType }

func (n *prefixNode) eval(c *evalCtx) (arrow.Array, error) {
	a, err := n.x.eval(c)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	rows := c.n
	if kindOf(a.DataType()) == kNull {
		return materialize(c.mem, &nullBool().(*constNode).v, rows), nil
	}
	out := newBuf(c.mem, bitmapBytes(rows))
	bits := out.Bytes()
	p := []byte(n.prefix)
	if kindOf(a.DataType()) == kString {
		prefixBits(stringOffsets32(a))(p, rows, bits)
	} else {
		prefixBits(stringOffsets64(a))(p, rows, bits)
	}
	return makeArray(boolType, rows, andValidity(c.mem, rows, false, a), out), nil
}

func prefixBits[O int32 | int64](offs []O, data []byte) func(p []byte, n int, out []byte) {
	return func(p []byte, n int, out []byte) {
		ps := string(p)
		ow := viewAs[uint64](out)
		var cur uint64
		for i := 0; i < n; i++ {
			s, e := int(offs[i]), int(offs[i+1])
			hit := e-s >= len(ps) && string(data[s:s+len(ps)]) == ps
			cur |= uint64(b2u(hit)) << (i & 63)
			if i&63 == 63 {
				ow[i>>6] = cur
				cur = 0
			}
		}
		if n&63 != 0 {
			ow[n>>6] = cur
		}
	}
}

func prefixSel[O int32 | int64](offs []O, data []byte, p []byte, n int, sel []int32, all bool) []int32 {
	k := 0
	ps := string(p)
	if all {
		sel = sel[:n]
		for i := 0; i < n; i++ {
			s, e := int(offs[i]), int(offs[i+1])
			sel[k] = int32(i)
			k += int(b2u(e-s >= len(ps) && string(data[s:s+len(ps)]) == ps))
		}
		return sel[:k]
	}
	for _, i := range sel {
		s, e := int(offs[i]), int(offs[i+1])
		sel[k] = i
		k += int(b2u(e-s >= len(ps) && string(data[s:s+len(ps)]) == ps))
	}
	return sel[:k]
}
