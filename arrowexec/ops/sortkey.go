package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// SortKey is one column of a sort order: ascending unless Desc, NULLs
// last unless NullsFirst (DuckDB's default for both directions).
type SortKey struct {
	Column     string
	Desc       bool
	NullsFirst bool
}

func (k SortKey) String() string {
	s := k.Column
	if k.Desc {
		s += " DESC"
	}
	if k.NullsFirst {
		s += " NULLS FIRST"
	}
	return s
}

// ParseSortKey parses "col [ASC|DESC] [NULLS FIRST|NULLS LAST]" (keywords
// in any case).
func ParseSortKey(s string) (SortKey, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return SortKey{}, fmt.Errorf("empty sort key")
	}
	k := SortKey{Column: f[0]}
	rest := f[1:]
	if len(rest) > 0 {
		switch strings.ToUpper(rest[0]) {
		case "ASC":
			rest = rest[1:]
		case "DESC":
			k.Desc = true
			rest = rest[1:]
		}
	}
	if len(rest) == 2 && strings.EqualFold(rest[0], "NULLS") {
		switch strings.ToUpper(rest[1]) {
		case "FIRST":
			k.NullsFirst = true
			rest = nil
		case "LAST":
			rest = nil
		}
	}
	if len(rest) > 0 {
		return SortKey{}, fmt.Errorf("sort key %q: want column [ASC|DESC] [NULLS FIRST|NULLS LAST]", s)
	}
	return k, nil
}

// sortable says whether a column of type dt can be a sort key.
func sortable(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT32, arrow.FLOAT64, arrow.DATE32, arrow.DATE64,
		arrow.TIMESTAMP, arrow.TIME32, arrow.TIME64, arrow.DURATION,
		arrow.DECIMAL128, arrow.STRING, arrow.LARGE_STRING,
		arrow.BINARY, arrow.LARGE_BINARY:
		return true
	}
	return false
}

// bindSortKeys resolves keys against sc.
func bindSortKeys(keys []SortKey, sc *arrow.Schema) ([]int, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("no sort keys")
	}
	idx := make([]int, len(keys))
	for i, k := range keys {
		f := sc.FieldIndices(k.Column)
		if len(f) != 1 {
			return nil, fmt.Errorf("sort key %s: unknown or ambiguous column (available: %s)", k.Column, columnNames(sc))
		}
		if dt := sc.Field(f[0]).Type; !sortable(dt) {
			return nil, fmt.Errorf("sort key %s: type %s cannot be sorted", k.Column, dt)
		}
		idx[i] = f[0]
	}
	return idx, nil
}

func columnNames(sc *arrow.Schema) string {
	names := make([]string, sc.NumFields())
	for i, f := range sc.Fields() {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// rowKeys holds one byte string per row whose bytewise order is the sort
// order ("normalized keys"): each key column contributes a NULL marker
// byte and then its value in an order-preserving big-endian form, every
// byte inverted for DESC. Strings are escaped (0x00 -> 0x00 0x01) and end
// with 0x00 0x00, so a prefix sorts first. Floats order as DuckDB's:
// -0 equals 0 and NaN sorts above +Inf. Rows are compared with one
// bytes.Compare, whatever the key types.
type rowKeys struct {
	buf  []byte
	offs []int // row i is buf[offs[i]:offs[i+1]]
	pos  []int // write cursor per row (scratch)
	// fixed: every key column has a fixed width (no strings).
	fixed bool
}

func (r *rowKeys) key(i int) []byte { return r.buf[r.offs[i]:r.offs[i+1]] }

// width returns the width every key has, or 0 when widths vary (string
// keys) or there are no rows.
func (r *rowKeys) width() int {
	if !r.fixed || len(r.offs) < 2 {
		return 0
	}
	return r.offs[1] - r.offs[0]
}

// encode computes the keys of the n rows of cols, one column at a time.
func (r *rowKeys) encode(cols []arrow.Array, keys []SortKey, n int) {
	r.offs = grow(r.offs, n+1)
	r.pos = grow(r.pos, n)
	for i := range r.offs {
		r.offs[i] = 0
	}
	// Widths: fixed per column, or per row for strings.
	fixed := 0
	r.fixed = true
	for _, c := range cols {
		switch a := c.(type) {
		case *array.String:
			addBinaryWidths(r.offs, a.ValueOffsets(), a.ValueBytes(), c)
			r.fixed = false
		case *array.LargeString:
			addBinaryWidths(r.offs, a.ValueOffsets(), a.ValueBytes(), c)
			r.fixed = false
		case *array.Binary:
			addBinaryWidths(r.offs, a.ValueOffsets(), a.ValueBytes(), c)
			r.fixed = false
		case *array.LargeBinary:
			addBinaryWidths(r.offs, a.ValueOffsets(), a.ValueBytes(), c)
			r.fixed = false
		default:
			fixed += 1 + fixedWidth(c.DataType())
		}
	}
	total := 0
	for i := 0; i < n; i++ {
		w := r.offs[i] + fixed
		r.offs[i] = total
		r.pos[i] = total
		total += w
	}
	r.offs[n] = total
	r.buf = grow(r.buf, total)
	for j, c := range cols {
		r.put(c, keys[j], n)
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func fixedWidth(dt arrow.DataType) int {
	switch dt.ID() {
	case arrow.BOOL:
		return 1
	case arrow.DECIMAL128:
		return 16
	}
	return 8
}

// addBinaryWidths adds each row's escaped length (+2 terminator, 1 NULL
// marker) to w.
func addBinaryWidths[O int32 | int64](w []int, offs []O, data []byte, c arrow.Array) {
	bm, off := c.NullBitmapBytes(), c.Data().Offset()
	base := offs[0] // data starts at the first row's offset
	for i := range c.Len() {
		if bm != nil && !bitutil.BitIsSet(bm, off+i) {
			w[i]++
			continue
		}
		v := data[offs[i]-base : offs[i+1]-base]
		w[i] += 3 + len(v)
		for _, b := range v {
			if b == 0 {
				w[i]++
			}
		}
	}
}

func (r *rowKeys) put(c arrow.Array, k SortKey, n int) {
	var inv byte
	if k.Desc {
		inv = 0xFF
	}
	null, valid := byte(2), byte(1)
	if k.NullsFirst {
		null = 0
	}
	bm, off := c.NullBitmapBytes(), c.Data().Offset()
	if c.NullN() == 0 {
		bm = nil
	}
	switch a := c.(type) {
	case *array.String:
		putBinary(r, a.ValueOffsets(), a.ValueBytes(), bm, off, n, inv, null, valid)
	case *array.LargeString:
		putBinary(r, a.ValueOffsets(), a.ValueBytes(), bm, off, n, inv, null, valid)
	case *array.Binary:
		putBinary(r, a.ValueOffsets(), a.ValueBytes(), bm, off, n, inv, null, valid)
	case *array.LargeBinary:
		putBinary(r, a.ValueOffsets(), a.ValueBytes(), bm, off, n, inv, null, valid)
	case *array.Boolean:
		for i := range n {
			p := r.pos[i]
			if bm != nil && !bitutil.BitIsSet(bm, off+i) {
				r.buf[p], r.buf[p+1] = null, 0
			} else {
				var v byte
				if a.Value(i) {
					v = 1
				}
				r.buf[p], r.buf[p+1] = valid, v^inv
			}
			r.pos[i] = p + 2
		}
	case *array.Float32:
		putFixed(r, a.Float32Values(), floatKey[float32], bm, off, n, inv, null, valid)
	case *array.Float64:
		putFixed(r, a.Float64Values(), floatKey[float64], bm, off, n, inv, null, valid)
	case *array.Decimal128:
		vals := a.Values()
		for i := range n {
			p := r.pos[i]
			if bm != nil && !bitutil.BitIsSet(bm, off+i) {
				r.buf[p] = null
				clear(r.buf[p+1 : p+17])
			} else {
				r.buf[p] = valid
				putDecimal(r.buf[p+1:p+17], vals[i], inv)
			}
			r.pos[i] = p + 17
		}
	default:
		if n == 0 {
			return
		}
		switch dt := c.DataType().(type) {
		case arrow.FixedWidthDataType:
			raw := c.Data().Buffers()[1].Bytes()
			switch dt.BitWidth() {
			case 8:
				if isSigned(dt) {
					putFixed(r, typed[int8](raw, off+n)[off:], intKey[int8], bm, off, n, inv, null, valid)
				} else {
					putFixed(r, typed[uint8](raw, off+n)[off:], uintKey[uint8], bm, off, n, inv, null, valid)
				}
			case 16:
				if isSigned(dt) {
					putFixed(r, typed[int16](raw, off+n)[off:], intKey[int16], bm, off, n, inv, null, valid)
				} else {
					putFixed(r, typed[uint16](raw, off+n)[off:], uintKey[uint16], bm, off, n, inv, null, valid)
				}
			case 32:
				if isSigned(dt) {
					putFixed(r, typed[int32](raw, off+n)[off:], intKey[int32], bm, off, n, inv, null, valid)
				} else {
					putFixed(r, typed[uint32](raw, off+n)[off:], uintKey[uint32], bm, off, n, inv, null, valid)
				}
			case 64:
				if isSigned(dt) {
					putFixed(r, typed[int64](raw, off+n)[off:], intKey[int64], bm, off, n, inv, null, valid)
				} else {
					putFixed(r, typed[uint64](raw, off+n)[off:], uintKey[uint64], bm, off, n, inv, null, valid)
				}
			}
		}
	}
}

// isSigned says whether an integer-stored type orders as signed (every
// temporal type does).
func isSigned(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return false
	}
	return true
}

func intKey[T int8 | int16 | int32 | int64](v T) uint64      { return uint64(int64(v)) ^ (1 << 63) }
func uintKey[T uint8 | uint16 | uint32 | uint64](v T) uint64 { return uint64(v) }

func floatKey[T float32 | float64](v T) uint64 {
	f := float64(v)
	switch {
	case f != f:
		return math.MaxUint64 // NaN above +Inf
	case f == 0:
		f = 0 // -0 equals 0
	}
	b := math.Float64bits(f)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

func putDecimal(dst []byte, v decimal128.Num, inv byte) {
	binary.BigEndian.PutUint64(dst, uint64(v.HighBits())^(1<<63))
	binary.BigEndian.PutUint64(dst[8:], v.LowBits())
	if inv != 0 {
		for i := range dst {
			dst[i] ^= inv
		}
	}
}

// putFixed writes a NULL marker and 8 key bytes per row.
func putFixed[T any](r *rowKeys, vals []T, enc func(T) uint64, bm []byte, off, n int, inv, null, valid byte) {
	mask := uint64(0)
	if inv != 0 {
		mask = math.MaxUint64
	}
	buf, pos := r.buf, r.pos[:n]
	for i, p := range pos {
		if bm != nil && !bitutil.BitIsSet(bm, off+i) {
			buf[p] = null
			binary.BigEndian.PutUint64(buf[p+1:], 0)
		} else {
			buf[p] = valid
			binary.BigEndian.PutUint64(buf[p+1:], enc(vals[i])^mask)
		}
		pos[i] = p + 9
	}
}

func putBinary[O int32 | int64](r *rowKeys, offs []O, data []byte, bm []byte, off, n int, inv, null, valid byte) {
	buf, pos := r.buf, r.pos[:n]
	base := offs[0] // data starts at the first row's offset
	for i, p := range pos {
		if bm != nil && !bitutil.BitIsSet(bm, off+i) {
			buf[p] = null
			pos[i] = p + 1
			continue
		}
		buf[p] = valid
		p++
		for _, b := range data[offs[i]-base : offs[i+1]-base] {
			if b == 0 {
				buf[p], buf[p+1] = inv, 1^inv
				p += 2
				continue
			}
			buf[p] = b ^ inv
			p++
		}
		buf[p], buf[p+1] = inv, inv
		pos[i] = p + 2
	}
}

// typed views the first n elements of a values buffer as []T.
func typed[T any](b []byte, n int) []T {
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)
}
