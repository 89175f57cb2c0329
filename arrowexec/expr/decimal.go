package expr

import (
	"math"
	"math/big"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Decimal columns (decimal128(p, s): an int128 n standing for n / 10^s).
//
// Comparisons are exact, as in DuckDB:
//   - with a numeric literal, the literal is brought to the column's scale
//     once at bind time (a float literal stands for the decimal it is
//     written as, 5.25 for 5.25, as DuckDB reads `5.25` as a DECIMAL
//     literal); a literal between two steps of the scale adjusts the
//     operator, as timestamps do;
//   - with another decimal column, the side with the smaller scale is
//     multiplied up to the larger one (refused at bind time when that could
//     overflow 38 digits);
//   - with an integer column, the integer is scaled up the same way;
//   - with a float column both sides are compared as float64, DuckDB's
//     choice for DECIMAL against DOUBLE.
//
// CAST(d AS float64|float32) divides by 10^s in float64; CAST(d AS int*)
// rounds half away from zero (DuckDB's rule) and is an error when the
// result does not fit; CAST(d AS string) prints all s digits ("12.50").
// Arithmetic is in decarith.go, casts to decimals in deccast.go.

type decMode uint8

const (
	dmConst    decMode = iota // constant result on non-null rows
	dmConstVal                // against a constant at the column's scale
	dmCols                    // two decimal/integer columns at one scale
	dmFloat                   // as float64
)

// decCmpNode compares a decimal column l with r.
type decCmpNode struct {
	op       BinaryOp
	l, r     node
	mode     decMode
	ls       int32          // scale of l
	rs       int32          // scale of r (0 for integers)
	lmul     decimal128.Num // dmCols: multipliers bringing both sides to one scale
	rmul     decimal128.Num
	c        decimal128.Num // dmConstVal
	cf       float64        // dmFloat with a constant
	rconst   bool
	constRes bool
}

func (n *decCmpNode) dataType() arrow.DataType { return arrow.FixedWidthTypes.Boolean }

func decScale(t arrow.DataType) (p, s int32) {
	d := t.(*arrow.Decimal128Type)
	return d.Precision, d.Scale
}

// newDecCmp binds a comparison with a decimal on at least one side.
func newDecCmp(op BinaryOp, l, r node, le, re Expr) (node, error) {
	if kindOf(l.dataType()) != kDecimal128 {
		l, r, le, re, op = r, l, re, le, op.flip()
	}
	if isNullConst(r) {
		return nullBool(), nil
	}
	lp, ls := decScale(l.dataType())
	n := &decCmpNode{op: op, l: l, r: r, ls: ls}
	rk := kindOf(r.dataType())
	if rc, ok := r.(*constNode); ok {
		n.rconst = true
		switch {
		case rk.isInt() || rk.isFloat():
			n.bindConst(&rc.v)
			return n, nil
		}
		return nil, errorf("cannot compare %s with %s", describe(le, l.dataType()), describe(re, r.dataType()))
	}
	switch {
	case rk == kDecimal128:
		rp, rs := decScale(r.dataType())
		n.rs = rs
		if ls >= rs && rp+(ls-rs) > 38 || rs > ls && lp+(rs-ls) > 38 {
			return nil, errorf("cannot compare %s with %s exactly: cast one side", describe(le, l.dataType()), describe(re, r.dataType()))
		}
	case rk.isInt() && rk != kU64:
		if ls > 38-19 {
			return nil, errorf("cannot compare %s with %s exactly: cast one side", describe(le, l.dataType()), describe(re, r.dataType()))
		}
	case rk.isNumeric():
		n.mode = dmFloat
		return n, nil
	default:
		return nil, errorf("cannot compare %s with %s", describe(le, l.dataType()), describe(re, r.dataType()))
	}
	n.mode = dmCols
	n.lmul, n.rmul = decimal128.FromI64(1), decimal128.FromI64(1)
	if ls > n.rs {
		n.rmul = decimal128.GetScaleMultiplier(int(ls - n.rs))
	} else {
		n.lmul = decimal128.GetScaleMultiplier(int(n.rs - ls))
	}
	return n, nil
}

// bindConst brings a numeric constant to the column's scale.
func (n *decCmpNode) bindConst(c *scalar) {
	var r big.Rat
	switch {
	case c.k == kU64:
		r.SetInt(new(big.Int).SetUint64(uint64(c.i)))
	case c.k.isInt():
		r.SetInt64(c.i)
	default:
		f := c.asFloat()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			n.mode, n.cf = dmFloat, f
			return
		}
		// The literal as written: the shortest decimal that reads back as f.
		r.SetString(strconv.FormatFloat(f, 'g', -1, 64))
	}
	r.Mul(&r, new(big.Rat).SetInt(decimal128.GetScaleMultiplier(int(n.ls)).BigInt()))
	q, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if rem.Sign() < 0 { // floor
		q.Sub(q, big.NewInt(1))
	}
	limit := decimal128.GetScaleMultiplier(38).BigInt()
	if q.CmpAbs(limit) >= 0 {
		// Beyond any decimal128 value.
		n.mode = dmConst
		above := q.Sign() > 0
		switch n.op {
		case OpNe:
			n.constRes = true
		case OpLt, OpLe:
			n.constRes = above
		case OpGt, OpGe:
			n.constRes = !above
		}
		return
	}
	n.mode, n.c = dmConstVal, decimal128.FromBigInt(q)
	if rem.Sign() != 0 {
		// Between q and q+1 at the column's scale.
		var isConst bool
		if n.op, isConst, n.constRes = betweenSteps(n.op); isConst {
			n.mode = dmConst
		}
	}
}

func (n *decCmpNode) eval(c *evalCtx) (arrow.Array, error) {
	la, err := n.l.eval(c)
	if err != nil {
		return nil, err
	}
	defer la.Release()
	rows := c.n
	out := newBuf(c.mem, bitmapBytes(rows))
	bits := out.Bytes()
	lv := la.(*array.Decimal128).Values()
	if n.rconst {
		switch n.mode {
		case dmConst:
			if n.constRes {
				fillBits(bits, rows)
			}
		case dmConstVal:
			if p, _ := decScale(n.l.dataType()); p <= 18 && n.c.HighBits() == int64(n.c.LowBits())>>63 {
				cmpDec64Const(n.op, lv, int64(n.c.LowBits()), bits)
			} else {
				cmpDecConst(n.op, lv, n.c, bits)
			}
		case dmFloat:
			cmpDecFloatConst(n.op, lv, n.ls, n.cf, bits)
		}
		return makeArray(arrow.FixedWidthTypes.Boolean, rows, andValidity(c.mem, rows, false, la), out), nil
	}
	ra, err := n.r.eval(c)
	if err != nil {
		return nil, err
	}
	defer ra.Release()
	if n.mode == dmFloat {
		f, rel := asFloat64(c.mem, ra)
		defer rel()
		for i, x := range lv {
			if cmpFloat(n.op, decToFloat(x, n.ls), f[i]) {
				bits[i>>3] |= 1 << (i & 7)
			}
		}
	} else {
		rv, rel := decValues(c, ra)
		defer rel()
		for i, x := range lv {
			if ordHolds(n.op, x.Mul(n.lmul).Cmp(rv(i).Mul(n.rmul))) {
				bits[i>>3] |= 1 << (i & 7)
			}
		}
	}
	return makeArray(arrow.FixedWidthTypes.Boolean, rows, andValidity(c.mem, rows, false, la, ra), out), nil
}

// decValues returns an accessor of the values of a decimal or integer array
// as decimal128 at scale 0 (decimals: their unscaled integer).
func decValues(c *evalCtx, a arrow.Array) (func(i int) decimal128.Num, func()) {
	if d, ok := a.(*array.Decimal128); ok {
		v := d.Values()
		return func(i int) decimal128.Num { return v[i] }, func() {}
	}
	v, rel := asInt64(c.mem, a)
	return func(i int) decimal128.Num { return decimal128.FromI64(v[i]) }, rel
}

func ordHolds(op BinaryOp, c int) bool {
	switch op {
	case OpEq:
		return c == 0
	case OpNe:
		return c != 0
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	case OpGt:
		return c > 0
	}
	return c >= 0
}

func cmpFloat(op BinaryOp, a, b float64) bool {
	switch op {
	case OpEq:
		return a == b
	case OpNe:
		return a != b
	case OpLt:
		return a < b
	case OpLe:
		return a <= b
	case OpGt:
		return a > b
	}
	return a >= b
}

// ltOrEq reduces x op c to one of two tests, x < c' or x = c, and
// whether to negate it: x <= c is x < c+1, x > c is NOT x < c+1, x >= c is
// NOT x < c, x != c is NOT x = c. c+1 cannot overflow: c is a decimal of at
// most 38 digits.
func ltOrEq(op BinaryOp, c decimal128.Num) (k decimal128.Num, eq bool, flip byte) {
	switch op {
	case OpEq, OpNe:
		return c, true, b2u(op == OpNe) * 0xFF
	case OpLt, OpGe:
		return c, false, b2u(op == OpGe) * 0xFF
	}
	return c.Add(decimal128.FromI64(1)), false, b2u(op == OpGt) * 0xFF
}

// cmpDecConst sets bit i when v[i] op c.
func cmpDecConst(op BinaryOp, v []decimal128.Num, c decimal128.Num, bits []byte) {
	k, eq, flip := ltOrEq(op, c)
	kh, kl := k.HighBits(), k.LowBits()
	n := len(v)
	for i := 0; i < n; i += 8 {
		var b byte
		if eq {
			for j, x := range v[i:min(i+8, n)] {
				b |= b2u(x.HighBits() == kh && x.LowBits() == kl) << j
			}
		} else {
			for j, x := range v[i:min(i+8, n)] {
				h := x.HighBits()
				b |= b2u(h < kh || h == kh && x.LowBits() < kl) << j
			}
		}
		bits[i>>3] = (b ^ flip) & tailMask(n-i)
	}
}

// cmpDec64Const is cmpDecConst for values and a constant that fit in
// int64 (precision 18 or less): only the low words are compared.
func cmpDec64Const(op BinaryOp, v []decimal128.Num, c int64, bits []byte) {
	kn, eq, flip := ltOrEq(op, decimal128.FromI64(c))
	k := int64(kn.LowBits()) // c+1 still fits: c has at most 18 digits
	n := len(v)
	if eq {
		for i := 0; i < n; i += 8 {
			var b byte
			for j, x := range v[i:min(i+8, n)] {
				b |= b2u(int64(x.LowBits()) == k) << j
			}
			bits[i>>3] = (b ^ flip) & tailMask(n-i)
		}
		return
	}
	for i := 0; i < n; i += 8 {
		var b byte
		for j, x := range v[i:min(i+8, n)] {
			b |= b2u(int64(x.LowBits()) < k) << j
		}
		bits[i>>3] = (b ^ flip) & tailMask(n-i)
	}
}

// tailMask keeps the bits of the m rows left (all 8 when m >= 8).
func tailMask(m int) byte {
	if m >= 8 {
		return 0xFF
	}
	return byte(1)<<m - 1
}

func cmpDecFloatConst(op BinaryOp, v []decimal128.Num, scale int32, f float64, bits []byte) {
	for i, x := range v {
		if cmpFloat(op, decToFloat(x, scale), f) {
			bits[i>>3] |= 1 << (i & 7)
		}
	}
}

// decCastNode casts a decimal column to float64, an int64 (then to the
// target integer type by the ordinary cast), or a string.
type decCastNode struct {
	x     node
	t     arrow.DataType
	scale int32
	e     *CastExpr
}

func (n *decCastNode) dataType() arrow.DataType { return n.t }

func newDecCast(x node, to arrow.DataType, e *CastExpr) (node, error) {
	_, s := decScale(x.dataType())
	k := kindOf(to)
	switch {
	case k == kF64 || k == kString:
		return &decCastNode{x: x, t: to, scale: s, e: e}, nil
	case k == kF32:
		return newCast(&decCastNode{x: x, t: arrow.PrimitiveTypes.Float64, scale: s, e: e}, to, e)
	case k == kI64:
		return &decCastNode{x: x, t: to, scale: s, e: e}, nil
	case k.isInt():
		return newCast(&decCastNode{x: x, t: arrow.PrimitiveTypes.Int64, scale: s, e: e}, to, e)
	}
	return nil, errorf("cannot cast %s to %s", describe(e.X, x.dataType()), typeName(to))
}

func (n *decCastNode) eval(c *evalCtx) (arrow.Array, error) {
	a, err := n.x.eval(c)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	rows := c.n
	v := a.(*array.Decimal128).Values()
	switch kindOf(n.t) {
	case kString:
		return buildStrings(c.mem, n.t, rows, andValidity(c.mem, rows, false, a), func(dst []byte, i int) []byte {
			if a.IsNull(i) {
				return dst
			}
			return append(dst, v[i].ToString(n.scale)...)
		}), nil
	case kF64:
		out := newBufUninit(c.mem, rows*8)
		o := viewAs[float64](out.Bytes())
		for i, x := range v {
			o[i] = decToFloat(x, n.scale)
		}
		return makeArray(n.t, rows, andValidity(c.mem, rows, false, a), out), nil
	}
	out := newBuf(c.mem, rows*8)
	o := viewAs[int64](out.Bytes())
	div := decimal128.GetScaleMultiplier(int(n.scale))
	half := decimal128.GetHalfScaleMultiplier(int(n.scale))
	for i, x := range v {
		if a.IsNull(i) {
			continue
		}
		q, r := x, decimal128.Num{}
		if n.scale > 0 {
			q, r = x.Div(div)
		}
		// Round half away from zero.
		if n.scale > 0 && !r.Abs().Less(half) {
			q = q.Add(decimal128.FromI64(int64(x.Sign())))
		}
		if q.HighBits() != int64(q.LowBits())>>63 { // not a sign-extended int64
			out.Release()
			return nil, errorf("%s: value %s out of range of int64", n.e, x.ToString(n.scale))
		}
		o[i] = int64(q.LowBits())
	}
	return makeArray(n.t, rows, andValidity(c.mem, rows, false, a), out), nil
}

// pow10f holds the powers of ten float64 represents exactly.
var pow10f = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// decToFloat returns the float64 nearest to x / 10^scale: one correctly
// rounded division when the unscaled value and the power of ten are exact
// in float64 (|x| < 2^53, scale <= 22), else through the decimal text.
func decToFloat(x decimal128.Num, scale int32) float64 {
	h, l := x.HighBits(), x.LowBits()
	if h == int64(l)>>63 && scale <= 22 {
		if v := int64(l); v > -1<<53 && v < 1<<53 {
			return float64(v) / pow10f[scale]
		}
	}
	f, _ := strconv.ParseFloat(x.ToString(scale), 64)
	return f
}

// blendDec is blendFixed for decimal128 values (CASE, coalesce, nullif):
// decimal constants are never folded (a scalar holds no decimal), so an
// arm without an array is NULL, whose rows validity already clears.
func blendDec(mem memory.Allocator, t arrow.DataType, rows int, arms []arm, valid *memory.Buffer) arrow.Array {
	out := newBuf(mem, rows*16)
	o := viewDec(out.Bytes())
	for _, a := range arms {
		switch {
		case a.arr == nil:
		case a.idx != nil:
			scatter(o, a.idx, a.arr.(*array.Decimal128).Values())
		default:
			blendVals(o, *a.mask, a.arr.(*array.Decimal128).Values())
		}
	}
	return makeArray(t, rows, valid, out)
}
