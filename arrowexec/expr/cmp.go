package expr

import (
	"bytes"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

type cmpMode uint8

const (
	cmConst  cmpMode = iota // constant result on non-null rows (literal out of the column's range)
	cmNative                // same physical kind on both sides
	cmFloat                 // both sides promoted to float64
	cmInt64                 // integers widened to int64
	cmUint64                // unsigned integers widened to uint64
	cmString                // string and large_string mixed
	cmBool                  // booleans, word-wise
	cmTime                  // timestamps of different units, scaled to the finer one
)

// cmpNode compares l with r. When r is a constant it has been converted to
// l's physical type at bind time (c), so the kernel compares against a
// literal without materializing it.
type cmpNode struct {
	op       BinaryOp
	l, r     node
	mode     cmpMode
	k        kind // physical kind of l
	rconst   bool
	c        scalar // the constant r, converted
	constRes bool
	lmul     int64 // cmTime: multipliers bringing both sides to one unit
	rmul     int64
}

func (n *cmpNode) dataType() arrow.DataType { return arrow.FixedWidthTypes.Boolean }

func isNullConst(n node) bool {
	c, ok := n.(*constNode)
	return ok && c.v.null
}

func nullBool() node {
	return &constNode{v: scalar{t: arrow.FixedWidthTypes.Boolean, k: kBool, null: true}}
}

// canCompare reports whether values of kinds a and b can be compared.
func canCompare(a, b kind) bool {
	switch {
	case a == kNull || b == kNull:
		return true
	case a.isNumeric() && b.isNumeric():
		return true
	case a.isString() && b.isString():
		return true
	}
	return a == b && (a == kBool || a == kTimestamp || a == kDate32 || a == kDuration || a == kTime)
}

func newCmp(op BinaryOp, l, r node, le, re Expr) (node, error) {
	lk, rk := kindOf(l.dataType()), kindOf(r.dataType())
	if lk == kDecimal128 || rk == kDecimal128 {
		return newDecCmp(op, l, r, le, re)
	}
	if !canCompare(lk, rk) {
		return nil, errorf("cannot compare %s with %s", describe(le, l.dataType()), describe(re, r.dataType()))
	}
	_, lc := l.(*constNode)
	_, rc := r.(*constNode)
	if lc && !rc {
		l, r, le, re, op = r, l, re, le, op.flip()
		lk, rk = rk, lk
		lc, rc = rc, lc
	}
	if lk.isInt() && rk.isInt() && !rc && lk != rk &&
		((lk == kU64 && rk.isSigned()) || (rk == kU64 && lk.isSigned())) {
		return nil, errorf("cannot compare %s with %s: cast one side", describe(le, l.dataType()), describe(re, r.dataType()))
	}
	if lk == kDuration && rk == kDuration && !arrow.TypeEqual(l.dataType(), r.dataType()) {
		return nil, errorf("cannot compare %s with %s: the units differ", describe(le, l.dataType()), describe(re, r.dataType()))
	}
	if isNullConst(l) || isNullConst(r) {
		return nullBool(), nil
	}
	n := &cmpNode{op: op, l: l, r: r, k: lk, rconst: rc}
	if rc {
		n.c = r.(*constNode).v
		n.bindConst()
		return n, nil
	}
	switch {
	case lk == rk && (lk != kTimestamp || arrow.TypeEqual(l.dataType(), r.dataType())):
		n.mode = cmNative
	case lk.isNumeric():
		switch {
		case lk.isFloat() || rk.isFloat():
			n.mode = cmFloat
		case lk.isUnsigned() && rk.isUnsigned():
			n.mode = cmUint64
		default:
			n.mode = cmInt64
		}
	case lk.isString():
		n.mode = cmString
	case lk == kTimestamp:
		n.mode = cmTime
		lu := unitNanos(l.dataType().(*arrow.TimestampType).Unit)
		ru := unitNanos(r.dataType().(*arrow.TimestampType).Unit)
		n.lmul, n.rmul = 1, 1
		if lu > ru {
			n.lmul = lu / ru
		} else {
			n.rmul = ru / lu
		}
	}
	return n, nil
}

// bindConst converts the constant right side to the left side's physical
// type, or decides the result is constant.
func (n *cmpNode) bindConst() {
	lk, c := n.k, &n.c
	n.mode = cmNative
	switch {
	case lk.isInt() && c.k.isInt():
		lo, hi := intRange(lk)
		below, above := false, false
		if c.k == kU64 {
			above = uint64(c.i) > hi
		} else {
			below = c.i < lo
			above = c.i >= 0 && uint64(c.i) > hi
		}
		if below || above {
			n.mode = cmConst
			switch n.op {
			case OpNe:
				n.constRes = true
			case OpLt, OpLe:
				n.constRes = above
			case OpGt, OpGe:
				n.constRes = below
			}
		}
	case lk.isNumeric():
		if lk == kF32 && c.k == kF32 {
			break
		}
		if lk != kF64 {
			n.mode = cmFloat
		}
		c.f = c.asFloat()
	case lk == kTimestamp:
		cu := c.t.(*arrow.TimestampType).Unit
		lu := n.l.dataType().(*arrow.TimestampType).Unit
		var q, rem int64
		if unitNanos(cu) >= unitNanos(lu) {
			q = c.i * (unitNanos(cu) / unitNanos(lu))
		} else {
			q, rem = floorDiv(c.i, unitNanos(lu)/unitNanos(cu))
		}
		c.i = q
		if rem != 0 {
			// The literal falls between two ticks of the column's unit.
			var isConst bool
			if n.op, isConst, n.constRes = betweenSteps(n.op); isConst {
				n.mode = cmConst
			}
		}
	}
}

func (n *cmpNode) eval(c *evalCtx) (arrow.Array, error) {
	lo, ro, err := evalOperands(c, n.l, n.r)
	if err != nil {
		return nil, err
	}
	defer lo.release()
	defer ro.release()
	rows := c.n
	valid := andValidity(c.mem, rows, false, lo.arr, ro.arr)
	out := newBuf(c.mem, bitmapBytes(rows))
	bits := out.Bytes()
	a := lo.arr
	if n.rconst || ro.c != nil {
		switch n.mode {
		case cmConst:
			if n.constRes {
				fillBits(bits, rows)
			}
		case cmNative:
			cmpNativeVS(n.op, n.k, a, &n.c, rows, bits)
		case cmFloat:
			cmpFloatVS(n.op, n.k, a, n.c.f, rows, bits)
		}
	} else {
		b := ro.arr
		switch n.mode {
		case cmNative:
			cmpNativeVV(c.mem, n.op, n.k, a, b, rows, bits)
		case cmFloat:
			x, rx := asFloat64(c.mem, a)
			y, ry := asFloat64(c.mem, b)
			cmpVV(n.op, x, y, rows, bits)
			rx()
			ry()
		case cmInt64, cmTime:
			x, rx := asInt64(c.mem, a)
			y, ry := asInt64(c.mem, b)
			if n.mode == cmTime {
				x, y = scaled(c.mem, x, n.lmul, &rx), scaled(c.mem, y, n.rmul, &ry)
			}
			cmpVV(n.op, x, y, rows, bits)
			rx()
			ry()
		case cmUint64:
			x, rx := asUint64(c.mem, a)
			y, ry := asUint64(c.mem, b)
			cmpVV(n.op, x, y, rows, bits)
			rx()
			ry()
		case cmString:
			cmpStrVV(n.op, a, b, rows, bits)
		}
	}
	return makeArray(arrow.FixedWidthTypes.Boolean, rows, valid, out), nil
}

// scaled multiplies v by m into a new scratch buffer (m != 1), chaining the
// release function.
func scaled(mem memory.Allocator, v []int64, m int64, rel *func()) []int64 {
	if m == 1 {
		return v
	}
	buf := newBuf(mem, len(v)*8)
	out := viewAs[int64](buf.Bytes())
	for i, x := range v {
		out[i] = x * m
	}
	prev := *rel
	*rel = func() { prev(); buf.Release() }
	return out
}

func asUint64(mem memory.Allocator, a arrow.Array) ([]uint64, func()) {
	if kindOf(a.DataType()) == kU64 {
		return values[uint64](a), func() {}
	}
	buf := newBuf(mem, a.Len()*8)
	out := viewAs[uint64](buf.Bytes())
	convertTo(a, out)
	return out, buf.Release
}

func cmpNativeVS(op BinaryOp, k kind, a arrow.Array, c *scalar, n int, out []byte) {
	switch k {
	case kI8:
		cmpVS(op, values[int8](a), int8(c.i), n, out)
	case kI16:
		cmpVS(op, values[int16](a), int16(c.i), n, out)
	case kI32, kDate32:
		cmpVS(op, values[int32](a), int32(c.i), n, out)
	case kI64, kTimestamp, kDuration, kTime:
		cmpVS(op, values[int64](a), c.i, n, out)
	case kU8:
		cmpVS(op, values[uint8](a), uint8(c.i), n, out)
	case kU16:
		cmpVS(op, values[uint16](a), uint16(c.i), n, out)
	case kU32:
		cmpVS(op, values[uint32](a), uint32(c.i), n, out)
	case kU64:
		cmpVS(op, values[uint64](a), uint64(c.i), n, out)
	case kF32:
		cmpVS(op, values[float32](a), float32(c.f), n, out)
	case kF64:
		cmpVS(op, values[float64](a), c.f, n, out)
	case kString:
		o, d := stringOffsets32(a)
		cmpStrVS(op, o, d, c.s, n, out)
	case kLargeString:
		o, d := stringOffsets64(a)
		cmpStrVS(op, o, d, c.s, n, out)
	case kBool:
		cmpBoolVS(op, a, c.i != 0, n, out)
	}
}

func cmpFloatVS(op BinaryOp, k kind, a arrow.Array, c float64, n int, out []byte) {
	switch k {
	case kI8:
		cmpVSF(op, values[int8](a), c, n, out)
	case kI16:
		cmpVSF(op, values[int16](a), c, n, out)
	case kI32:
		cmpVSF(op, values[int32](a), c, n, out)
	case kI64:
		cmpVSF(op, values[int64](a), c, n, out)
	case kU8:
		cmpVSF(op, values[uint8](a), c, n, out)
	case kU16:
		cmpVSF(op, values[uint16](a), c, n, out)
	case kU32:
		cmpVSF(op, values[uint32](a), c, n, out)
	case kU64:
		cmpVSF(op, values[uint64](a), c, n, out)
	case kF32:
		cmpVSF(op, values[float32](a), c, n, out)
	case kF64:
		cmpVS(op, values[float64](a), c, n, out)
	}
}

func cmpNativeVV(mem memory.Allocator, op BinaryOp, k kind, a, b arrow.Array, n int, out []byte) {
	switch k {
	case kI8:
		cmpVV(op, values[int8](a), values[int8](b), n, out)
	case kI16:
		cmpVV(op, values[int16](a), values[int16](b), n, out)
	case kI32, kDate32:
		cmpVV(op, values[int32](a), values[int32](b), n, out)
	case kI64, kTimestamp, kDuration, kTime:
		cmpVV(op, values[int64](a), values[int64](b), n, out)
	case kU8:
		cmpVV(op, values[uint8](a), values[uint8](b), n, out)
	case kU16:
		cmpVV(op, values[uint16](a), values[uint16](b), n, out)
	case kU32:
		cmpVV(op, values[uint32](a), values[uint32](b), n, out)
	case kU64:
		cmpVV(op, values[uint64](a), values[uint64](b), n, out)
	case kF32:
		cmpVV(op, values[float32](a), values[float32](b), n, out)
	case kF64:
		cmpVV(op, values[float64](a), values[float64](b), n, out)
	case kString, kLargeString:
		cmpStrVV(op, a, b, n, out)
	case kBool:
		cmpBoolVV(mem, op, a, b, n, out)
	}
}

// strCmp is the result of comparing x with y under op.
func strCmp(op BinaryOp, x, y []byte) bool {
	switch op {
	case OpEq:
		return bytes.Equal(x, y)
	case OpNe:
		return !bytes.Equal(x, y)
	}
	return ordHolds(op, bytes.Compare(x, y))
}

func cmpStrVS[O int32 | int64](op BinaryOp, offs []O, data []byte, c string, n int, out []byte) {
	cb := []byte(c)
	if op == OpEq || op == OpNe {
		ne := op == OpNe
		ow := viewAs[uint64](out)
		var cur uint64
		for i := 0; i < n; i++ {
			s := data[offs[i]:offs[i+1]]
			cur |= uint64(b2u((string(s) == c) != ne)) << (i & 63)
			if i&63 == 63 {
				ow[i>>6] = cur
				cur = 0
			}
		}
		if n&63 != 0 {
			ow[n>>6] = cur
		}
		return
	}
	for i := 0; i < n; i++ {
		if strCmp(op, data[offs[i]:offs[i+1]], cb) {
			out[i>>3] |= 1 << (i & 7)
		}
	}
}

// strAccessor returns the bytes of row i of a string or large_string array.
func strAccessor(a arrow.Array) func(i int) []byte {
	if kindOf(a.DataType()) == kString {
		o, d := stringOffsets32(a)
		return func(i int) []byte { return d[o[i]:o[i+1]] }
	}
	o, d := stringOffsets64(a)
	return func(i int) []byte { return d[o[i]:o[i+1]] }
}

func cmpStrVV(op BinaryOp, a, b arrow.Array, n int, out []byte) {
	if kindOf(a.DataType()) == kString && kindOf(b.DataType()) == kString {
		ao, ad := stringOffsets32(a)
		bo, bd := stringOffsets32(b)
		for i := 0; i < n; i++ {
			if strCmp(op, ad[ao[i]:ao[i+1]], bd[bo[i]:bo[i+1]]) {
				out[i>>3] |= 1 << (i & 7)
			}
		}
		return
	}
	x, y := strAccessor(a), strAccessor(b)
	for i := 0; i < n; i++ {
		if strCmp(op, x(i), y(i)) {
			out[i>>3] |= 1 << (i & 7)
		}
	}
}

// boolBits returns the value bits of a boolean array at bit offset 0, padded
// to whole words, copying only when the array is sliced or unpadded.
func boolBits(mem memory.Allocator, a arrow.Array) ([]byte, func()) {
	n := a.Len()
	d := a.Data()
	b := d.Buffers()[1].Bytes()
	if d.Offset() == 0 && len(b) >= bitmapBytes(n) {
		return b, func() {}
	}
	buf := newBuf(mem, bitmapBytes(n))
	bitutil.CopyBitmap(b, d.Offset(), n, buf.Bytes(), 0)
	return buf.Bytes(), buf.Release
}

func cmpBoolVS(op BinaryOp, a arrow.Array, c bool, n int, out []byte) {
	// x op c for a constant c reduces to x, NOT x, TRUE or FALSE.
	var pass, flip, all bool
	switch op {
	case OpEq:
		pass, flip = true, !c
	case OpNe:
		pass, flip = true, c
	case OpLt: // x < c: c && !x
		pass, flip = c, true
	case OpLe: // x <= c: !c -> !x ; c -> true
		if c {
			all = true
		} else {
			pass, flip = true, true
		}
	case OpGt: // x > c: !c && x
		pass = !c
	case OpGe: // x >= c: c -> x ; !c -> true
		if c {
			pass = true
		} else {
			all = true
		}
	}
	switch {
	case all:
		fillBits(out, n)
	case pass:
		d := a.Data()
		bitutil.CopyBitmap(d.Buffers()[1].Bytes(), d.Offset(), n, out, 0)
		if flip {
			w := viewAs[uint64](out)
			for i := range w {
				w[i] = ^w[i]
			}
			clearTail(out, n)
		}
	}
}

// clearTail zeroes the bits from n to the end of b.
func clearTail(b []byte, n int) {
	if n&7 != 0 {
		b[n>>3] &= byte(1)<<(n&7) - 1
	}
	clear(b[(n+7)>>3:])
}

func cmpBoolVV(mem memory.Allocator, op BinaryOp, a, b arrow.Array, n int, out []byte) {
	x, rx := boolBits(mem, a)
	defer rx()
	y, ry := boolBits(mem, b)
	defer ry()
	xw, yw, ow := viewAs[uint64](x), viewAs[uint64](y), viewAs[uint64](out)
	for i := range ow {
		p, q := xw[i], yw[i]
		var r uint64
		switch op {
		case OpEq:
			r = ^(p ^ q)
		case OpNe:
			r = p ^ q
		case OpLt:
			r = ^p & q
		case OpLe:
			r = ^p | q
		case OpGt:
			r = p &^ q
		case OpGe:
			r = p | ^q
		}
		ow[i] = r
	}
	clearTail(out, n)
}

// betweenSteps adjusts `x op c` for a constant c that lies strictly between
// the representable values q and q+1 of x (a literal between two ticks of a
// timestamp unit, or two steps of a decimal scale), to `x op' q`: < and <=
// become <=, > and >= become >. = and != have a constant result, res.
func betweenSteps(op BinaryOp) (_ BinaryOp, isConst, res bool) {
	switch op {
	case OpLt, OpLe:
		return OpLe, false, false
	case OpGt, OpGe:
		return OpGt, false, false
	case OpEq:
		return op, true, false
	}
	return op, true, true
}
