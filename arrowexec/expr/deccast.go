package expr

import (
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// CAST(x AS decimal(p,s)), as DuckDB 1.5 does it:
//   - from a decimal: the value at scale s, rounded half away from zero
//     when s is smaller;
//   - from an integer: exact;
//   - from a float: x * 10^s in float64, rounded half away from zero (so
//     CAST(2.675 AS decimal(10,2)) is 2.68, as in DuckDB);
//   - from a string: the decimal text (sign, digits, point, exponent;
//     surrounding spaces allowed) rounded half away from zero.
//
// A value with more than p digits, NaN or an infinity is a runtime error
// naming the cast and the row (DuckDB's "Could not cast value"), except
// from strings, which give NULL where they do not parse or fit (riffle's
// rule for every cast from a string; DuckDB raises an error).

// castTo binds a cast of x to type to: to a decimal (newCastToDec), from
// a decimal (newDecCast) or between other types (newCast).
func castTo(x node, to arrow.DataType, e *CastExpr) (node, error) {
	switch {
	case kindOf(to) == kDecimal128:
		return newCastToDec(x, to.(*arrow.Decimal128Type), e)
	case kindOf(x.dataType()) == kDecimal128:
		return newDecCast(x, to, e)
	}
	return newCast(x, to, e)
}

// decPromote is the common type of a decimal and another number (CASE,
// coalesce, greatest): decimals and integers (as decimal(w, 0)) take the
// larger scale and the larger number of integer digits (at most 38
// digits in all); with a float, float64.
func decPromote(a, b arrow.DataType) (arrow.DataType, string) {
	ps := func(t arrow.DataType) (int32, int32, bool) {
		switch k := kindOf(t); {
		case k == kDecimal128:
			p, s := decScale(t)
			return p, s, true
		case k.isInt():
			return intDigits(k), 0, true
		}
		return 0, 0, false
	}
	ap, as, aok := ps(a)
	bp, bs, bok := ps(b)
	switch {
	case aok && bok:
		s := max(as, bs)
		return &arrow.Decimal128Type{Precision: min(max(ap-as, bp-bs)+s, maxDec128Digits), Scale: s}, ""
	case kindOf(a).isFloat() || kindOf(b).isFloat():
		return arrow.PrimitiveTypes.Float64, ""
	}
	return nil, ""
}

type toDecNode struct {
	x     node
	t     *arrow.Decimal128Type
	fk    kind
	fs    int32 // scale of a decimal x
	bound decimal128.Num
	e     *CastExpr
}

func (n *toDecNode) dataType() arrow.DataType { return n.t }

func newCastToDec(x node, to *arrow.Decimal128Type, e *CastExpr) (node, error) {
	from := x.dataType()
	if arrow.TypeEqual(from, to) {
		return x, nil
	}
	fk := kindOf(from)
	if fk == kNull || isNullConst(x) {
		return nullOf(to), nil
	}
	if !(fk.isNumeric() || fk.isString() || fk == kDecimal128) {
		return nil, errorf("cannot cast %s to %s", describe(e.X, from), e.To)
	}
	n := &toDecNode{x: x, t: to, fk: fk, bound: decimal128.GetScaleMultiplier(int(to.Precision)), e: e}
	if fk == kDecimal128 {
		_, n.fs = decScale(from)
	}
	return n, nil
}

func (n *toDecNode) eval(c *evalCtx) (arrow.Array, error) {
	a, err := n.x.eval(c)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	rows := c.n
	out := newBuf(c.mem, rows*16)
	o := viewDec(out.Bytes())
	s := n.t.Scale
	fail := func(i int, v string) (arrow.Array, error) {
		out.Release()
		return nil, errorf("%s: value %s out of range of %s (row %d of the batch)", n.e, v, decTypeName(n.t.Precision, s), i)
	}
	switch {
	case n.fk.isString():
		valid := andValidity(c.mem, rows, true, a)
		if valid == nil {
			valid = newBuf(c.mem, bitmapBytes(rows))
			fillBits(valid.Bytes(), rows)
		}
		vb := valid.Bytes()
		for i := 0; i < rows; i++ {
			if !bitutil.BitIsSet(vb, i) {
				continue
			}
			var str string
			if n.fk == kString {
				str = a.(*array.String).Value(i)
			} else {
				str = a.(*array.LargeString).Value(i)
			}
			v, ok := parseDecimal(str, s)
			if ok && absBelow(v, n.bound) {
				o[i] = v
			} else {
				bitutil.ClearBit(vb, i)
			}
		}
		return makeArray(n.t, rows, valid, out), nil
	case n.fk == kDecimal128:
		v := a.(*array.Decimal128).Values()
		for i, x := range v {
			if a.IsNull(i) {
				continue
			}
			r, ok := rescale(x, n.fs, s)
			if !ok || !absBelow(r, n.bound) {
				return fail(i, x.ToString(n.fs))
			}
			o[i] = r
		}
	case n.fk.isFloat():
		f, rel := asFloat64(c.mem, a)
		defer rel()
		mul, lim := math.Pow10(int(s)), math.Pow10(int(n.t.Precision))
		for i, x := range f {
			if a.IsNull(i) {
				continue
			}
			r := math.Round(x * mul) // half away from zero
			if !(r > -lim && r < lim) {
				return fail(i, strconv.FormatFloat(x, 'g', -1, 64))
			}
			if r > -(1<<63) && r < 1<<63 {
				o[i] = decimal128.FromI64(int64(r))
			} else {
				b, _ := big.NewFloat(r).Int(nil)
				o[i] = decimal128.FromBigInt(b)
			}
		}
	default: // integers
		iv, rel := asInt64(c.mem, a)
		defer rel()
		mul := decimal128.GetScaleMultiplier(int(s))
		for i, x := range iv {
			if a.IsNull(i) {
				continue
			}
			d := decimal128.FromI64(x)
			if n.fk == kU64 {
				d = decimal128.FromU64(uint64(x))
			}
			r, ok := mulChecked(d, mul)
			if !ok || !absBelow(r, n.bound) {
				return fail(i, d.ToString(0))
			}
			o[i] = r
		}
	}
	return makeArray(n.t, rows, andValidity(c.mem, rows, false, a), out), nil
}

// rescale brings x from scale from to scale to, rounding half away from
// zero when to < from; ok is false on int128 overflow.
func rescale(x decimal128.Num, from, to int32) (decimal128.Num, bool) {
	switch {
	case to > from:
		return mulChecked(x, decimal128.GetScaleMultiplier(int(to-from)))
	case to < from:
		return divRoundPow10(x, from-to), true
	}
	return x, true
}

// divRoundPow10 returns x / 10^k rounded half away from zero, for k >= 1.
func divRoundPow10(x decimal128.Num, k int32) decimal128.Num {
	if k > 38 {
		return decimal128.Num{} // |x| < 2^127 < 10^39 / 2
	}
	neg := x.Sign() < 0
	hi, lo := abs128(x)
	if k > 19 {
		// The remainder of the first division cannot decide the rounding:
		// 10^k/2 is a multiple of 10^19.
		hi, lo = div128(hi, lo, 1e19)
		k -= 19
	}
	d := uint64(math.Pow10(int(k)))
	var r uint64
	hi, r = bits.Div64(0, hi, d)
	lo, r = bits.Div64(r, lo, d)
	if r >= d/2 {
		var c uint64
		lo, c = bits.Add64(lo, 1, 0)
		hi += c
	}
	q := decimal128.New(int64(hi), lo)
	if neg {
		q = q.Negate()
	}
	return q
}

// div128 divides the unsigned 128-bit value hi:lo by d (truncating).
func div128(hi, lo, d uint64) (uint64, uint64) {
	qh, r := bits.Div64(0, hi, d)
	ql, _ := bits.Div64(r, lo, d)
	return qh, ql
}

// parseDecimal reads decimal text (spaces, sign, digits with an optional
// point, an optional exponent) as an unscaled value at scale s, rounded
// half away from zero.
func parseDecimal(str string, s int32) (decimal128.Num, bool) {
	str = strings.TrimSpace(str)
	neg := false
	if str != "" && (str[0] == '-' || str[0] == '+') {
		neg = str[0] == '-'
		str = str[1:]
	}
	mant, exp := str, int64(0)
	if i := strings.IndexAny(str, "eE"); i >= 0 {
		e, err := strconv.ParseInt(str[i+1:], 10, 32)
		if err != nil {
			return decimal128.Num{}, false
		}
		mant, exp = str[:i], e
	}
	ip, fp, _ := strings.Cut(mant, ".")
	if ip == "" && fp == "" || !allDigits(ip) || !allDigits(fp) {
		return decimal128.Num{}, false
	}
	digits := strings.TrimLeft(ip+fp, "0")
	shift := int64(s) + exp - int64(len(fp))
	var v decimal128.Num
	switch {
	case digits == "":
	case len(digits) <= 18:
		u, _ := strconv.ParseUint(digits, 10, 64)
		v = decimal128.FromU64(u)
	case len(digits) <= maxDec128Digits:
		b, _ := new(big.Int).SetString(digits, 10)
		v = decimal128.FromBigInt(b)
	default: // rare: exact in big.Int
		if shift < -int64(len(digits))-1 {
			return decimal128.Num{}, true // rounds to zero
		}
		if shift > maxDec128Digits {
			return decimal128.Num{}, false
		}
		b, _ := new(big.Int).SetString(digits, 10)
		if shift >= 0 {
			b.Mul(b, new(big.Int).Exp(big.NewInt(10), big.NewInt(shift), nil))
		} else {
			d := new(big.Int).Exp(big.NewInt(10), big.NewInt(-shift), nil)
			var r big.Int
			b.QuoRem(b, d, &r)
			if r.Lsh(&r, 1).Cmp(d) >= 0 {
				b.Add(b, big.NewInt(1))
			}
		}
		if b.BitLen() > 126 {
			return decimal128.Num{}, false
		}
		v, shift = decimal128.FromBigInt(b), 0
	}
	switch {
	case shift > 0:
		if shift > maxDec128Digits {
			if v == (decimal128.Num{}) {
				break
			}
			return decimal128.Num{}, false
		}
		var ok bool
		if v, ok = mulChecked(v, decimal128.GetScaleMultiplier(int(shift))); !ok {
			return decimal128.Num{}, false
		}
	case shift < 0:
		v = divRoundPow10(v, int32(max(shift, -39)*-1))
	}
	if neg {
		v = v.Negate()
	}
	return v, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
