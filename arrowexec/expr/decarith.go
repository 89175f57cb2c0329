package expr

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Decimal arithmetic, with DuckDB's result types (checked against DuckDB
// 1.5). An integer operand takes part as decimal(w, 0), w its type's
// digits (int8 3, int16 5, int32 10, int64 19, uint64 20; an integer
// literal 10 when it fits int32, else 19); a float literal as the decimal
// it is written as (1.5 is decimal(2,1); one Go prints with an exponent,
// and a float column, turn the decimal into float64). With p, s the
// operands' precisions and scales:
//
//	+ -   scale max(s); precision max(max(s) + max(p-s), max(p)) + 1
//	*     scale s1+s2 (more than 38: bind error); precision p1+p2
//	%     scale max(s); precision max(max(s) + max(p-s), max(p))
//	/     float64 (as DuckDB: DECIMAL / DECIMAL is DOUBLE)
//
// A precision beyond 38 becomes 38; one beyond 18 from operands of at most
// 18 digits becomes 18 (for * only when the scale is below 18), DuckDB's
// choice to stay in 64-bit integers. Such capped results, and only they,
// can overflow: a value of more digits than the precision is a runtime
// error naming the expression and the operands, as DuckDB's "Overflow in
// addition of DECIMAL(18)". x % 0 is NULL. -x keeps x's type.
//
// Kernels: operands are decimal columns (their int128 buffer, no copy),
// integer columns (widened once per batch) or constants (a one-element
// slice indexed with i&0). When no overflow is possible and every value
// fits int64 (precisions up to 18) the loops run on int64; scales that
// match need no multiplier.

const maxDec128Digits = 38

// decTypeName prints decimal(p,s), the name CAST takes.
func decTypeName(p, s int32) string { return fmt.Sprintf("decimal(%d,%d)", p, s) }

// decimalType parses the rest of a decimal type name after DECIMAL or
// NUMERIC: nothing (decimal(18,3), DuckDB's default), (p) or (p, s).
func (p *parser) decimalType(t token) (string, error) {
	prec, scale := int64(18), int64(3)
	if isOp(p.peek(), "(") {
		p.i++
		n := p.next()
		if n.kind != tInt {
			return "", p.expected(n, "a decimal precision")
		}
		prec, _ = strconv.ParseInt(n.text, 10, 64)
		scale = 0
		if isOp(p.peek(), ",") {
			p.i++
			n = p.next()
			if n.kind != tInt {
				return "", p.expected(n, "a decimal scale")
			}
			scale, _ = strconv.ParseInt(n.text, 10, 64)
		}
		if err := p.expectOp(")"); err != nil {
			return "", err
		}
	}
	if prec < 1 || prec > maxDec128Digits || scale < 0 || scale > prec {
		return "", p.errAt(t.pos, "decimal(%d,%d): the precision must be 1 to %d and the scale 0 to the precision", prec, scale, maxDec128Digits)
	}
	return decTypeName(int32(prec), int32(scale)), nil
}

// decCastType resolves a type name decimalType produced.
func decCastType(name string) (arrow.DataType, bool) {
	var p, s int32
	if _, err := fmt.Sscanf(name, "decimal(%d,%d)", &p, &s); err != nil || decTypeName(p, s) != name {
		return nil, false
	}
	if p < 1 || p > maxDec128Digits || s < 0 || s > p {
		return nil, false
	}
	return &arrow.Decimal128Type{Precision: p, Scale: s}, true
}

// intDigits is the decimal precision of an integer kind.
func intDigits(k kind) int32 {
	switch k {
	case kI8, kU8:
		return 3
	case kI16, kU16:
		return 5
	case kI32, kU32:
		return 10
	case kI64:
		return 19
	}
	return 20
}

// decArg is one operand of decimal arithmetic.
type decArg struct {
	n     node           // nil for a constant
	c     decimal128.Num // the constant's unscaled value
	p, s  int32
	isDec bool // n is a decimal128 (else an integer)
}

// decArgOf returns how n takes part in decimal arithmetic; ok is false
// when it must be a float.
func decArgOf(n node) (decArg, bool) {
	t := n.dataType()
	k := kindOf(t)
	if k == kDecimal128 {
		p, s := decScale(t)
		return decArg{n: n, p: p, s: s, isDec: true}, true
	}
	c, isConst := n.(*constNode)
	if !isConst {
		if k.isInt() {
			return decArg{n: n, p: intDigits(k)}, true
		}
		return decArg{}, false
	}
	switch {
	case k.isInt():
		if k == kU64 {
			return decArg{c: decimal128.FromU64(uint64(c.v.i)), p: 20}, true
		}
		p := int32(19)
		if c.v.i >= math.MinInt32 && c.v.i <= math.MaxInt32 {
			p = 10
		}
		return decArg{c: decimal128.FromI64(c.v.i), p: p}, true
	case k.isFloat():
		txt := strconv.FormatFloat(c.v.f, 'f', -1, 64)
		if g := strconv.FormatFloat(c.v.f, 'g', -1, 64); strings.ContainsAny(g, "eEnN") {
			return decArg{}, false // 1e+30, NaN, Inf: a DOUBLE in DuckDB
		}
		neg := strings.HasPrefix(txt, "-")
		txt = strings.TrimPrefix(txt, "-")
		ip, fp, _ := strings.Cut(txt, ".")
		digits := strings.TrimLeft(ip+fp, "0")
		p, s := int32(len(ip)+len(fp)), int32(len(fp))
		if p > maxDec128Digits {
			return decArg{}, false
		}
		var v decimal128.Num
		if digits != "" {
			b, _ := new(big.Int).SetString(digits, 10)
			v = decimal128.FromBigInt(b)
		}
		if neg {
			v = v.Negate()
		}
		return decArg{c: v, p: p, s: s}, true
	}
	return decArg{}, false
}

// decArithNode computes l op r on decimals.
type decArithNode struct {
	op         BinaryOp
	l, r       decArg
	lmul, rmul decimal128.Num // bring both to the result's scale (+ - %)
	t          *arrow.Decimal128Type
	bound      decimal128.Num // 10^precision: results must stay below
	small      bool           // no overflow possible and everything fits int64
	e          Expr
}

func (n *decArithNode) dataType() arrow.DataType { return n.t }

// newDecArith binds l op r where one side is a decimal.
func newDecArith(op BinaryOp, l, r node, e Expr) (node, error) {
	lk, rk := kindOf(l.dataType()), kindOf(r.dataType())
	if lk == kNull || rk == kNull || isNullConst(l) || isNullConst(r) {
		if lk == kDecimal128 {
			return nullOf(l.dataType()), nil
		}
		return nullOf(r.dataType()), nil
	}
	la, lok := decArgOf(l)
	ra, rok := decArgOf(r)
	if !(lk.isNumeric() || lk == kDecimal128) || !(rk.isNumeric() || rk == kDecimal128) {
		be, _ := e.(*BinaryExpr)
		if be == nil {
			return nil, errorf("cannot apply %s in %s", op, e)
		}
		return nil, errorf("cannot apply %s to %s and %s", op, describe(be.L, l.dataType()), describe(be.R, r.dataType()))
	}
	if op == OpDiv || !lok || !rok {
		// DOUBLE arithmetic, as DuckDB.
		return newArith(op, decAsFloat(l), decAsFloat(r), e)
	}
	n := &decArithNode{op: op, l: la, r: ra, e: e, lmul: decimal128.FromI64(1), rmul: decimal128.FromI64(1)}
	maxP, maxS, maxWos := max(la.p, ra.p), max(la.s, ra.s), max(la.p-la.s, ra.p-ra.s)
	var p, s int32
	capped := false
	switch op {
	case OpAdd, OpSub, OpMod:
		s = maxS
		p = max(maxS+maxWos, maxP)
		if op != OpMod {
			p++
		}
		if p > 18 && maxP <= 18 && op != OpMod {
			p, capped = 18, true
		}
		n.lmul = decimal128.GetScaleMultiplier(int(s - la.s))
		n.rmul = decimal128.GetScaleMultiplier(int(s - ra.s))
	case OpMul:
		s, p = la.s+ra.s, la.p+ra.p
		if s > maxDec128Digits {
			return nil, errorf("%s: the product needs scale %d, beyond the %d digits of a decimal: cast an operand to a smaller scale or to float64", e, s, maxDec128Digits)
		}
		if p > 18 && maxP <= 18 && s < 18 {
			p, capped = 18, true
		}
	}
	if p > maxDec128Digits {
		p, capped = maxDec128Digits, true
	}
	n.t = &arrow.Decimal128Type{Precision: p, Scale: s}
	n.bound = decimal128.GetScaleMultiplier(int(p))
	// Without a cap the result type holds every result; int64 holds
	// every operand and result up to 18 digits.
	n.small = !capped && p <= 18 && la.p+(s-la.s) <= 18 && ra.p+(s-ra.s) <= 18
	return n, nil
}

// decAsFloat is n as float64 when it is a decimal.
func decAsFloat(n node) node {
	if kindOf(n.dataType()) != kDecimal128 {
		return n
	}
	_, s := decScale(n.dataType())
	return &decCastNode{x: n, t: arrow.PrimitiveTypes.Float64, scale: s}
}

// newDecNeg binds -x for a decimal x: the same type.
func newDecNeg(x node) node {
	p, s := decScale(x.dataType())
	return &decArithNode{op: OpSub, l: decArg{p: p, s: s}, r: decArg{n: x, p: p, s: s, isDec: true},
		lmul: decimal128.FromI64(1), rmul: decimal128.FromI64(1), t: x.dataType().(*arrow.Decimal128Type), small: p <= 18,
		bound: decimal128.GetScaleMultiplier(int(p))}
}

// decOperand is an evaluated operand: values indexed with i&mask.
type decOperand struct {
	arr  arrow.Array // nil for a constant
	v    []decimal128.Num
	i64  []int64 // small: values at i64[(i&mask)*stride]
	step int
	mask int
	rel  func()
}

func (o *decOperand) release() {
	if o.rel != nil {
		o.rel()
	}
	if o.arr != nil {
		o.arr.Release()
	}
}

// evalDecArg evaluates an operand as int128 values, or as int64 values
// when small.
func evalDecArg(c *evalCtx, a *decArg, small bool) (decOperand, error) {
	if a.n == nil {
		if small {
			return decOperand{i64: []int64{int64(a.c.LowBits())}, step: 1}, nil
		}
		return decOperand{v: []decimal128.Num{a.c}}, nil
	}
	arr, err := a.n.eval(c)
	if err != nil {
		return decOperand{}, err
	}
	o := decOperand{arr: arr, mask: -1}
	switch {
	case a.isDec && small:
		// The low words, read in place: every other int64 of the buffer.
		v := arr.(*array.Decimal128).Values()
		o.i64, o.step = unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(v))), 2*len(v)), 2
	case a.isDec:
		o.v = arr.(*array.Decimal128).Values()
	case small:
		o.i64, o.rel = asInt64(c.mem, arr)
		o.step = 1
	default:
		iv, rel := asInt64(c.mem, arr)
		defer rel()
		buf := newBufUninit(c.mem, arr.Len()*16)
		o.v, o.rel = viewDec(buf.Bytes()), buf.Release
		if kindOf(arr.DataType()) == kU64 {
			for i, x := range iv {
				o.v[i] = decimal128.FromU64(uint64(x))
			}
		} else {
			for i, x := range iv {
				o.v[i] = decimal128.FromI64(x)
			}
		}
	}
	return o, nil
}

func (n *decArithNode) eval(c *evalCtx) (arrow.Array, error) {
	lo, err := evalDecArg(c, &n.l, n.small)
	if err != nil {
		return nil, err
	}
	defer lo.release()
	ro, err := evalDecArg(c, &n.r, n.small)
	if err != nil {
		return nil, err
	}
	defer ro.release()
	rows := c.n
	valid := andValidity(c.mem, rows, n.op == OpMod, lo.arr, ro.arr)
	var out *memory.Buffer
	if n.small {
		out = newBufUninit(c.mem, rows*16) // every row is written (NULL rows too)
	} else {
		out = newBuf(c.mem, rows*16) // NULL rows are skipped: zero
	}
	o := viewDec(out.Bytes())
	if n.small {
		decArith64(n.op, &lo, int64(n.lmul.LowBits()), &ro, int64(n.rmul.LowBits()), viewAs[int64](out.Bytes()))
	} else if i := decArith128(n.op, lo.v, lo.mask, n.lmul, ro.v, ro.mask, n.rmul, n.bound, o, valid); i >= 0 {
		if valid != nil {
			valid.Release()
		}
		out.Release()
		return nil, n.overflow(lo.v[i&lo.mask], ro.v[i&ro.mask], i)
	}
	if n.op == OpMod {
		// x % 0 is NULL.
		if valid == nil {
			valid = newBuf(c.mem, bitmapBytes(rows))
			fillBits(valid.Bytes(), rows)
		}
		vb := valid.Bytes()
		if n.small {
			for i := 0; i < rows; i++ {
				if ro.i64[(i&ro.mask)*ro.step] == 0 {
					vb[i>>3] &^= 1 << (i & 7)
				}
			}
		} else {
			for i := 0; i < rows; i++ {
				if ro.v[i&ro.mask] == (decimal128.Num{}) {
					vb[i>>3] &^= 1 << (i & 7)
				}
			}
		}
	}
	return makeArray(n.t, rows, valid, out), nil
}

func (n *decArithNode) overflow(l, r decimal128.Num, row int) error {
	return errorf("overflow in %s: %s %s %s does not fit %s (row %d of the batch)",
		n.e, l.ToString(n.l.s), n.op, r.ToString(n.r.s), decTypeName(n.t.Precision, n.t.Scale), row)
}

// decArith64 computes l op r for small decimals (no overflow is
// possible) into out, two words per row (the result sign-extended).
func decArith64(op BinaryOp, lo *decOperand, la int64, ro *decOperand, ra int64, out []int64) {
	l, lm, ls := lo.i64, lo.mask, lo.step
	r, rm, rs := ro.i64, ro.mask, ro.step
	n := len(out) / 2
	switch {
	case op == OpMul:
		for i := 0; i < n; i++ {
			v := l[(i&lm)*ls] * r[(i&rm)*rs]
			out[2*i], out[2*i+1] = v, v>>63
		}
	case op == OpMod:
		for i := 0; i < n; i++ {
			v := int64(0)
			if d := r[(i&rm)*rs] * ra; d != 0 {
				v = l[(i&lm)*ls] * la % d
			}
			out[2*i], out[2*i+1] = v, v>>63
		}
	case la == 1 && ra == 1 && op == OpAdd: // scales match
		for i := 0; i < n; i++ {
			v := l[(i&lm)*ls] + r[(i&rm)*rs]
			out[2*i], out[2*i+1] = v, v>>63
		}
	case la == 1 && ra == 1:
		for i := 0; i < n; i++ {
			v := l[(i&lm)*ls] - r[(i&rm)*rs]
			out[2*i], out[2*i+1] = v, v>>63
		}
	case op == OpAdd:
		for i := 0; i < n; i++ {
			v := l[(i&lm)*ls]*la + r[(i&rm)*rs]*ra
			out[2*i], out[2*i+1] = v, v>>63
		}
	default:
		for i := 0; i < n; i++ {
			v := l[(i&lm)*ls]*la - r[(i&rm)*rs]*ra
			out[2*i], out[2*i+1] = v, v>>63
		}
	}
}

// decArith128 computes l op r in int128 and returns the first row whose
// result is not below bound in magnitude (or overflows int128 on the
// way), or -1. Rows that valid marks NULL are skipped.
func decArith128(op BinaryOp, l []decimal128.Num, lm int, la decimal128.Num, r []decimal128.Num, rm int, ra decimal128.Num, bound decimal128.Num, out []decimal128.Num, valid *memory.Buffer) int {
	var vb []byte
	if valid != nil {
		vb = valid.Bytes()
	}
	one := decimal128.FromI64(1)
	for i := range out {
		if vb != nil && vb[i>>3]&(1<<(i&7)) == 0 {
			continue
		}
		x, y := l[i&lm], r[i&rm]
		var res decimal128.Num
		ok := true
		switch op {
		case OpMul:
			res, ok = mulChecked(x, y)
		case OpMod:
			if la != one {
				x, ok = mulChecked(x, la)
			}
			if ra != one && ok {
				y, ok = mulChecked(y, ra)
			}
			if ok && y != (decimal128.Num{}) {
				res = rem128(x, y)
			}
		default:
			if la != one {
				x, ok = mulChecked(x, la)
			}
			if ra != one && ok {
				y, ok = mulChecked(y, ra)
			}
			if op == OpSub {
				y = y.Negate()
			}
			res = x.Add(y)
			if ok && x.Sign() == y.Sign() && res.Sign() != x.Sign() && x.Sign() != 0 {
				ok = false
			}
		}
		if !ok || !absBelow(res, bound) {
			return i
		}
		out[i] = res
	}
	return -1
}

// absBelow reports |x| < b for a positive b.
func absBelow(x, b decimal128.Num) bool {
	if x.Sign() < 0 {
		x = x.Negate()
		if x.Sign() < 0 { // the smallest int128
			return false
		}
	}
	return x.Less(b)
}

// abs128 returns |x| as two unsigned words.
func abs128(x decimal128.Num) (hi, lo uint64) {
	if x.Sign() < 0 {
		x = x.Negate()
	}
	return uint64(x.HighBits()), x.LowBits()
}

// mulChecked returns x*y and whether it fits int128.
func mulChecked(x, y decimal128.Num) (decimal128.Num, bool) {
	neg := (x.Sign() < 0) != (y.Sign() < 0)
	xh, xl := abs128(x)
	yh, yl := abs128(y)
	if xh != 0 && yh != 0 {
		return decimal128.Num{}, false
	}
	if xh != 0 {
		xh, xl, yh, yl = yh, yl, xh, xl
	}
	// x < 2^64: x*y = xl*yl + xl*yh*2^64.
	ph, pl := bits.Mul64(xl, yl)
	ch, cl := bits.Mul64(xl, yh)
	hi, carry := bits.Add64(ph, cl, 0)
	if ch != 0 || carry != 0 || hi > math.MaxInt64 {
		return decimal128.Num{}, false
	}
	res := decimal128.New(int64(hi), pl)
	if neg {
		res = res.Negate()
	}
	return res, true
}

// rem128 is x % y (truncated: the sign of x) for y != 0.
func rem128(x, y decimal128.Num) decimal128.Num {
	if x.HighBits() == int64(x.LowBits())>>63 && y.HighBits() == int64(y.LowBits())>>63 {
		a, b := int64(x.LowBits()), int64(y.LowBits())
		if b == -1 {
			return decimal128.Num{}
		}
		return decimal128.FromI64(a % b)
	}
	_, r := x.Div(y) // big.Int: rare operands beyond int64
	return r
}

// viewDec views a byte slice as decimal128 values. No copy.
func viewDec(b []byte) []decimal128.Num {
	return unsafe.Slice((*decimal128.Num)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/16)
}
