package agg

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// min, max and count_distinct also take large_string / large_binary and
// dictionary-encoded string or binary columns: their string accumulators
// read a batch column through plainBinary, and min/max return the value
// type (a dictionary's values; large types stay large).

// isStringLike reports whether dt is a large string or binary type or a
// dictionary of a string or binary type.
func isStringLike(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.LARGE_STRING, arrow.LARGE_BINARY:
		return true
	case arrow.DICTIONARY:
		switch dt.(*arrow.DictionaryType).ValueType.ID() {
		case arrow.STRING, arrow.BINARY, arrow.LARGE_STRING, arrow.LARGE_BINARY:
			return true
		}
	}
	return false
}

// isValueType is isKeyType plus the string-like types (min, max,
// count_distinct).
func isValueType(dt arrow.DataType) bool { return isKeyType(dt) || isStringLike(dt) }

// valueOut is the type min and max return for an argument of type dt: a
// dictionary's value type, and utf8 or binary for the large types (one
// string type flows through the engine, as the Parquet source reads them).
func valueOut(dt arrow.DataType) arrow.DataType {
	if d, ok := dt.(*arrow.DictionaryType); ok {
		dt = d.ValueType
	}
	switch dt.ID() {
	case arrow.LARGE_STRING:
		return arrow.BinaryTypes.String
	case arrow.LARGE_BINARY:
		return arrow.BinaryTypes.Binary
	}
	return dt
}

// plainBinary returns a as a string or binary array (32-bit offsets) for
// the accumulators' loops: itself when it is one, else a decoded copy
// (dictionary) or a view with 32-bit offsets over the same bytes (large
// types). The caller releases the result.
func plainBinary(a arrow.Array) (arrow.Array, error) {
	switch a.DataType().ID() {
	case arrow.STRING, arrow.BINARY:
		a.Retain()
		return a, nil
	case arrow.DICTIONARY:
		vals, err := arrowexec.DecodeDictionary(memory.DefaultAllocator, a.(*array.Dictionary))
		if err != nil {
			return nil, err
		}
		defer vals.Release()
		return plainBinary(vals) // large values: the view below
	}
	// large_string / large_binary: 32-bit offsets relative to the first.
	d := a.Data()
	var offs []int64
	switch x := a.(type) {
	case *array.LargeString:
		offs = x.ValueOffsets()
	case *array.LargeBinary:
		offs = x.ValueOffsets()
	}
	base := offs[0]
	if offs[len(offs)-1]-base > 1<<31-1 {
		return nil, errTooLarge(a.DataType(), int(offs[len(offs)-1]-base))
	}
	ob := memory.NewResizableBuffer(memory.DefaultAllocator)
	ob.Resize(4 * len(offs))
	o := arrow.Int32Traits.CastFromBytes(ob.Bytes())
	for i, v := range offs {
		o[i] = int32(v - base)
	}
	data := memory.NewBufferBytes(d.Buffers()[2].Bytes()[base:offs[len(offs)-1]])
	t := arrow.BinaryTypes.String
	if a.DataType().ID() == arrow.LARGE_BINARY {
		t = arrow.BinaryTypes.Binary
	}
	var valid *memory.Buffer
	if a.NullN() > 0 {
		valid = memory.NewResizableBuffer(memory.DefaultAllocator)
		valid.Resize((a.Len() + 7) / 8)
		vb := valid.Bytes()
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				vb[i/8] |= 1 << (i % 8)
			}
		}
		defer valid.Release()
	}
	nd := array.NewData(t, a.Len(), []*memory.Buffer{valid, ob, data}, nil, a.NullN(), 0)
	ob.Release()
	defer nd.Release()
	return array.MakeFromData(nd), nil
}
