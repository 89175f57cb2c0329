package expr

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// convNode reads a column whose Arrow type the kernels do not take as it
// is, converting it batch by batch into one they do:
//
//   - date64 (milliseconds) becomes date32 (days, floor);
//   - time32 and time64 of another unit become time64[us] (timeofday.go);
//   - a dictionary-encoded string or large_string column is decoded into
//     its value type.
//
// Expressions over such columns therefore see (and return) date32 and
// plain strings.
type convNode struct {
	col *colNode
	t   arrow.DataType
}

func (n *convNode) dataType() arrow.DataType { return n.t }

// convertedType returns the type a column of type t is read as, or nil when
// t is taken as it is or not at all.
func convertedType(t arrow.DataType) arrow.DataType {
	switch t.ID() {
	case arrow.DATE64:
		return arrow.FixedWidthTypes.Date32
	case arrow.TIME32, arrow.TIME64:
		if isTimeOfDay(t) {
			return arrow.FixedWidthTypes.Time64us
		}
	case arrow.DICTIONARY:
		d := t.(*arrow.DictionaryType)
		if k := kindOf(d.ValueType); k.isString() && kindOf(d.IndexType).isInt() {
			return d.ValueType
		}
	}
	return nil
}

func (n *convNode) eval(c *evalCtx) (arrow.Array, error) {
	a, err := n.col.eval(c)
	if err != nil {
		return nil, err
	}
	if arrow.TypeEqual(a.DataType(), n.t) {
		return a, nil // decoded already: a dictNode evaluates over the dictionary
	}
	defer a.Release()
	rows := a.Len()
	if isTimeOfDay(a.DataType()) {
		return timeToMicros(c.mem, a, rows), nil
	}
	if a.DataType().ID() == arrow.DATE64 {
		out := newBufUninit(c.mem, rows*4)
		o := viewAs[int32](out.Bytes())
		for i, ms := range values[int64](a) {
			d, _ := floorDiv(ms, 86400000)
			o[i] = int32(d)
		}
		return makeArray(n.t, rows, andValidity(c.mem, rows, false, a), out), nil
	}
	d := a.(*array.Dictionary)
	if out, ok, err := decodeByTake(c, d); ok || err != nil {
		return out, err
	}
	idx, rel := asInt64(c.mem, d.Indices())
	defer rel()
	dict := d.Dictionary()
	get := strAccessor(dict)
	valid := andValidity(c.mem, rows, true, a)
	if dict.NullN() > 0 {
		if valid == nil {
			valid = newBuf(c.mem, bitmapBytes(rows))
			fillBits(valid.Bytes(), rows)
		}
		vb := valid.Bytes()
		for i, k := range idx {
			if bitutil.BitIsSet(vb, i) && dict.IsNull(int(k)) {
				bitutil.ClearBit(vb, i)
			}
		}
	}
	return buildStrings(c.mem, n.t, rows, valid, func(dst []byte, i int) []byte {
		return append(dst, get(int(idx[i]))...)
	}), nil
}

// decodeByTake decodes a dictionary of utf8 values without NULL entries
// and int32 indices with arrowexec.TakeArray, the vectorized gather (rows
// whose index is NULL gather entry 0 and keep their NULL). ok is false
// for other dictionaries.
func decodeByTake(c *evalCtx, d *array.Dictionary) (arrow.Array, bool, error) {
	dict := d.Dictionary()
	ix, isI32 := d.Indices().(*array.Int32)
	if !isI32 || kindOf(dict.DataType()) != kString || dict.NullN() > 0 || dict.Len() == 0 {
		return nil, false, nil
	}
	pos := ix.Int32Values()
	if d.NullN() > 0 {
		pos = append([]int32(nil), pos...)
		vb, off := validity(d)
		for i := range pos {
			if !bitutil.BitIsSet(vb, off+i) {
				pos[i] = 0
			}
		}
	}
	out, err := arrowexec.TakeArray(c.mem, dict, pos)
	if err != nil || d.NullN() == 0 {
		return out, true, err
	}
	defer out.Release()
	od := out.Data()
	return makeArray(od.DataType(), od.Len(), andValidity(c.mem, od.Len(), false, d), retained(od.Buffers()[1]), retained(od.Buffers()[2])), true, nil
}

func retained(b *memory.Buffer) *memory.Buffer {
	b.Retain()
	return b
}
