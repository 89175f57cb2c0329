package expr

import (
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/decimal256"
)

// decimal256(p, s) columns take part in expressions as decimal128: as
// decimal128(p, s) when p <= 38 (exact: every value fits), else as
// decimal128(38, s), a value of more than 38 digits being a runtime error
// naming the column and the row. Comparisons, casts, arithmetic and
// functions are then those of decimal128 (decimal.go, decarith.go). A
// scale beyond 38 (or below 0) is a bind error.

// dec256Node reads a decimal256 column as decimal128.
type dec256Node struct {
	col *colNode
	t   *arrow.Decimal128Type
}

func (n *dec256Node) dataType() arrow.DataType { return n.t }

func newDec256Col(col *colNode) (node, error) {
	d := col.t.(*arrow.Decimal256Type)
	if d.Scale < 0 || d.Scale > maxDec128Digits {
		return nil, errorf("column %q has type %s: decimal256 scales must be 0 to %d", col.name, col.t, maxDec128Digits)
	}
	return &dec256Node{col: col, t: &arrow.Decimal128Type{Precision: min(d.Precision, maxDec128Digits), Scale: d.Scale}}, nil
}

func (n *dec256Node) eval(c *evalCtx) (arrow.Array, error) {
	a, err := n.col.eval(c)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	rows := a.Len()
	v := values256(a)
	out := newBufUninit(c.mem, rows*16)
	o := viewDec(out.Bytes())
	bound := decimal128.GetScaleMultiplier(int(n.t.Precision))
	for i, w := range v {
		// Fits int128 when the two high words extend the sign of word 1.
		ext := uint64(int64(w[1]) >> 63)
		x := decimal128.New(int64(w[1]), w[0])
		if (w[2] != ext || w[3] != ext || !absBelow(x, bound)) && !a.IsNull(i) {
			out.Release()
			return nil, errorf("column %q row %d: %s has more than %d digits (decimal256 values take part as decimal128)",
				n.col.name, i, decimal256.New(w[3], w[2], w[1], w[0]).ToString(n.t.Scale), maxDec128Digits)
		}
		o[i] = x
	}
	return makeArray(n.t, rows, andValidity(c.mem, rows, false, a), out), nil
}

// values256 views a decimal256 array's values as four little-endian
// words each. No copy.
func values256(a arrow.Array) [][4]uint64 {
	d := a.Data()
	if d.Len() == 0 || d.Buffers()[1] == nil {
		return make([][4]uint64, d.Len())
	}
	b := d.Buffers()[1].Bytes()
	all := unsafe.Slice((*[4]uint64)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/32)
	return all[d.Offset() : d.Offset()+d.Len()]
}
