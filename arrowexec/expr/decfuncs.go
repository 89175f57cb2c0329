package expr

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// abs and round of decimals, as DuckDB: abs keeps the type; round(x, n)
// of a decimal(p, s) is decimal(p, n) for 0 <= n < s, decimal(p, 0) for
// n < 0 (the value rounded to a multiple of 10^-n), x itself for n >= s;
// halves round away from zero. As in DuckDB, rounding up may give one
// digit more than p (round(99::decimal(2,0), -1) is 100).

// decUnary builds a node applying f to every value of a decimal x,
// giving type t.
func decUnary(e *CallExpr, x node, t *arrow.Decimal128Type, f func(v, out []decimal128.Num)) node {
	if isNullConst(x) {
		return nullOf(t)
	}
	return &fnNode{name: e.Name, t: t, args: []node{x}, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		a := in[0]
		out := newBufUninit(c.mem, c.n*16)
		f(a.(*array.Decimal128).Values(), viewDec(out.Bytes()))
		return makeArray(t, c.n, andValidity(c.mem, c.n, false, a), out), nil
	}}
}

func bindDecAbs(e *CallExpr, x node) node {
	return decUnary(e, x, x.dataType().(*arrow.Decimal128Type), func(v, out []decimal128.Num) {
		for i, d := range v {
			out[i] = d.Abs()
		}
	})
}

func bindDecRound(e *CallExpr, x node, digits int64) node {
	p, s := decScale(x.dataType())
	if digits >= int64(s) {
		return x
	}
	ns := int32(max(digits, 0))
	cut := int32(min(int64(s)-digits, 40)) // digits to drop
	var back decimal128.Num                // 10^-digits for digits < 0
	if digits < 0 && int64(s)-digits <= 38 {
		back = decimal128.GetScaleMultiplier(int(-digits))
	}
	return decUnary(e, x, &arrow.Decimal128Type{Precision: p, Scale: ns}, func(v, out []decimal128.Num) {
		for i, d := range v {
			q := divRoundPow10(d, cut)
			if digits < 0 {
				q = q.Mul(back) // |q| <= 10^(p-s+digits)/10^... fits: no overflow
			}
			out[i] = q
		}
	})
}
