package state

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// The key codec: how the values of key columns become the bytes of a key,
// for every keyed operator (windows, top-N, count_distinct values, the
// test operators of checkpoint) and back to Arrow columns at emission.
//
// A row's key is the concatenation of its columns' encodings, each a null
// flag byte (0 null, 1 valid) followed by
//
//	integers, timestamps, dates  8 bytes: big endian, sign bit flipped for signed types
//	float32, float64             8 bytes: IEEE bits of the float64 value, sign bit
//	                             flipped for positives, all bits for negatives;
//	                             -0 as +0, every NaN alike (after all numbers)
//	boolean                      1 byte: 0 or 1
//	string, binary (large too)   the bytes with 0x00 escaped as 0x00 0xff,
//	                             terminated by 0x00 0x01
//
// A null is its flag followed by zeros of the column's fixed width (nothing
// for strings and binaries). Keys therefore compare (bytes.Compare) like the
// tuples of values, nulls first, and a null differs from every value; keys
// decode without knowing their length. Equal keys hash alike
// (arrowexec.HashColumns treats -0, +0 and the NaNs the same way).
//
// This is the layout windows state has persisted since its first release:
// changing it would make existing snapshots unreadable.
//
// Encoding runs column by column, one typed loop per column over the Arrow
// buffers, in two passes (the length of every row, then the bytes).
// Decoding (at emission, per window) is also one typed loop per column.

type keyKind uint8

const (
	kInt keyKind = iota
	kUint
	kFloat
	kBool
	kBytes
)

// keyWidth is the encoded width of a fixed-width kind, flag included.
var keyWidth = [...]int32{kInt: 9, kUint: 9, kFloat: 9, kBool: 2}

func keyKindOf(dt arrow.DataType) (keyKind, error) {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64:
		return kInt, nil
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return kUint, nil
	case arrow.FLOAT32, arrow.FLOAT64:
		return kFloat, nil
	case arrow.BOOL:
		return kBool, nil
	case arrow.STRING, arrow.BINARY, arrow.LARGE_STRING, arrow.LARGE_BINARY:
		return kBytes, nil
	}
	return 0, fmt.Errorf("unsupported key type %s (want an integer, float, boolean, string, binary, timestamp or date)", dt)
}

// CheckKeyType returns an error unless
// EncodeKeys supports columns of type dt: signed and unsigned integers,
// float32/64, boolean, string, binary, large_string, large_binary,
// timestamp, date32/64.
func CheckKeyType(dt arrow.DataType) error {
	_, err := keyKindOf(dt)
	return err
}

// EncodeKeys resets k and fills it with one row per row of the key columns:
// the hash from arrowexec.HashColumns (the one hash exchanges route by) and
// the key encoding above, with no namespace.
func EncodeKeys(cols []arrow.Array, k *Keys) error {
	if len(cols) == 0 {
		return fmt.Errorf("%w: EncodeKeys: no key columns", ErrInvalidOptions)
	}
	n := cols[0].Len()
	if err := EncodeKeyValues(cols, n, k); err != nil {
		return err
	}
	k.Hashes = grow(k.Hashes, n)
	if err := arrowexec.HashColumns(cols, k.Hashes); err != nil {
		return fmt.Errorf("state: EncodeKeys: %w", err)
	}
	return nil
}

// EncodeKeyValues is EncodeKeys of n rows without the hashes (k.Hashes is
// left empty), for callers that hash themselves or need no hash (map
// keys). No columns: n empty keys.
func EncodeKeyValues(cols []arrow.Array, n int, k *Keys) error {
	k.Hashes = k.Hashes[:0]
	k.NSOffsets, k.NSData = k.NSOffsets[:0], k.NSData[:0]
	offs := grow(k.KeyOffsets, n+1)
	clear(offs)
	// Pass 1: lengths.
	for _, c := range cols {
		if c.Len() != n {
			return fmt.Errorf("%w: EncodeKeys: key column of %d rows, want %d", ErrInvalidOptions, c.Len(), n)
		}
		kind, err := keyKindOf(c.DataType())
		if err != nil {
			return fmt.Errorf("%w: EncodeKeys: %v", ErrInvalidOptions, err)
		}
		if kind != kBytes {
			w := keyWidth[kind]
			for i := 1; i <= n; i++ {
				offs[i] += w
			}
			continue
		}
		switch a := c.(type) {
		case *array.String:
			bytesLen(offs, a.ValueOffsets(), dataBuf(a), validityOf(a))
		case *array.Binary:
			bytesLen(offs, a.ValueOffsets(), dataBuf(a), validityOf(a))
		case *array.LargeString:
			bytesLen(offs, a.ValueOffsets(), dataBuf(a), validityOf(a))
		case *array.LargeBinary:
			bytesLen(offs, a.ValueOffsets(), dataBuf(a), validityOf(a))
		}
	}
	for i := 1; i <= n; i++ {
		offs[i] += offs[i-1]
	}
	if offs[n] < 0 || int64(offs[n]) > math.MaxInt32 {
		return fmt.Errorf("%w: EncodeKeys: the keys of %d rows exceed 2 GiB", ErrInvalidOptions, n)
	}
	data := grow(k.KeyData, int(offs[n]))
	pos := grow(k.pos, n)
	copy(pos, offs[:n])
	// Pass 2: values.
	for _, c := range cols {
		v := validityOf(c)
		switch a := c.(type) {
		case *array.Int8:
			putInts(data, pos, a.Int8Values(), v)
		case *array.Int16:
			putInts(data, pos, a.Int16Values(), v)
		case *array.Int32:
			putInts(data, pos, a.Int32Values(), v)
		case *array.Int64:
			putInts(data, pos, a.Int64Values(), v)
		case *array.Timestamp:
			putInts(data, pos, a.TimestampValues(), v)
		case *array.Date32:
			putInts(data, pos, a.Date32Values(), v)
		case *array.Date64:
			putInts(data, pos, a.Date64Values(), v)
		case *array.Uint8:
			putUints(data, pos, a.Uint8Values(), v)
		case *array.Uint16:
			putUints(data, pos, a.Uint16Values(), v)
		case *array.Uint32:
			putUints(data, pos, a.Uint32Values(), v)
		case *array.Uint64:
			putUints(data, pos, a.Uint64Values(), v)
		case *array.Float32:
			putFloats(data, pos, a.Float32Values(), v)
		case *array.Float64:
			putFloats(data, pos, a.Float64Values(), v)
		case *array.Boolean:
			for i := range pos {
				p := pos[i]
				data[p], data[p+1] = 1, 0
				if v.null(i) {
					data[p] = 0
				} else if a.Value(i) {
					data[p+1] = 1
				}
				pos[i] = p + 2
			}
		case *array.String:
			putBytes(data, pos, a.ValueOffsets(), dataBuf(a), v)
		case *array.Binary:
			putBytes(data, pos, a.ValueOffsets(), dataBuf(a), v)
		case *array.LargeString:
			putBytes(data, pos, a.ValueOffsets(), dataBuf(a), v)
		case *array.LargeBinary:
			putBytes(data, pos, a.ValueOffsets(), dataBuf(a), v)
		default:
			// keyKindOf accepted a type this switch does not read.
			return fmt.Errorf("%w: EncodeKeys: unsupported key array %T", ErrInvalidOptions, c)
		}
	}
	k.KeyOffsets, k.KeyData, k.pos = offs, data, pos
	return nil
}

// validity is a null bitmap view; bits == nil: no nulls.
type validity struct {
	bits []byte
	off  int
}

func validityOf(a arrow.Array) validity {
	if a.NullN() == 0 {
		return validity{}
	}
	d := a.Data()
	return validity{bits: d.Buffers()[0].Bytes(), off: d.Offset()}
}

func (v validity) null(i int) bool { return v.bits != nil && !bitutil.BitIsSet(v.bits, v.off+i) }

// dataBuf returns the whole data buffer of a string or binary array; its
// ValueOffsets index it directly.
func dataBuf(a arrow.Array) []byte {
	if b := a.Data().Buffers()[2]; b != nil {
		return b.Bytes()
	}
	return nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

type signed interface {
	~int8 | ~int16 | ~int32 | ~int64
}
type unsigned interface {
	~uint8 | ~uint16 | ~uint32 | ~uint64
}

func putInts[T signed](data []byte, pos []int32, vals []T, v validity) {
	for i, x := range vals {
		p := pos[i]
		u := uint64(int64(x)) ^ (1 << 63)
		data[p] = 1
		if v.null(i) {
			data[p], u = 0, 0
		}
		binary.BigEndian.PutUint64(data[p+1:], u)
		pos[i] = p + 9
	}
}

func putUints[T unsigned](data []byte, pos []int32, vals []T, v validity) {
	for i, x := range vals {
		p := pos[i]
		u := uint64(x)
		data[p] = 1
		if v.null(i) {
			data[p], u = 0, 0
		}
		binary.BigEndian.PutUint64(data[p+1:], u)
		pos[i] = p + 9
	}
}

func putFloats[T float32 | float64](data []byte, pos []int32, vals []T, v validity) {
	for i, x := range vals {
		p := pos[i]
		u := orderFloat(float64(x))
		data[p] = 1
		if v.null(i) {
			data[p], u = 0, 0
		}
		binary.BigEndian.PutUint64(data[p+1:], u)
		pos[i] = p + 9
	}
}

// bytesLen adds the encoded length of every row of a string or binary
// column to offs[i+1].
func bytesLen[O int32 | int64](offs []int32, voffs []O, data []byte, v validity) {
	for i := range offs[1:] {
		if v.null(i) {
			offs[i+1]++
			continue
		}
		b := data[voffs[i]:voffs[i+1]]
		l := int32(3 + len(b))
		for _, c := range b {
			if c == 0 {
				l++
			}
		}
		offs[i+1] += l
	}
}

func putBytes[O int32 | int64](data []byte, pos []int32, voffs []O, vdata []byte, v validity) {
	for i := range pos {
		p := pos[i]
		if v.null(i) {
			data[p] = 0
			pos[i] = p + 1
			continue
		}
		data[p] = 1
		p++
		for _, c := range vdata[voffs[i]:voffs[i+1]] {
			data[p] = c
			p++
			if c == 0 {
				data[p] = escEscape
				p++
			}
		}
		data[p], data[p+1] = escByte, escTerm
		pos[i] = p + 2
	}
}

// orderFloat maps a float to bits that sort like the values, -0 as +0 and
// every NaN alike (last), as arrowexec.HashColumns groups them.
func orderFloat(f float64) uint64 {
	if f == 0 {
		f = 0
	}
	if f != f {
		f = math.NaN()
	}
	u := math.Float64bits(f)
	if u&(1<<63) != 0 {
		return ^u
	}
	return u | 1<<63
}

func unorderFloat(u uint64) float64 {
	if u&(1<<63) != 0 {
		return math.Float64frombits(u &^ (1 << 63))
	}
	return math.Float64frombits(^u)
}

// DecodeKeys decodes keys encoded by EncodeKeys from columns of the given
// types (or a prefix of such a key's columns: bytes after the last column
// are ignored) into one new array per type, allocated from mem. A key too
// short for its columns returns an error wrapping ErrCodec.
func DecodeKeys(mem memory.Allocator, types []arrow.DataType, keys [][]byte) ([]arrow.Array, error) {
	out := make([]arrow.Array, 0, len(types))
	pos := make([]int, len(keys))
	valid := make([]bool, len(keys))
	var u64 []uint64
	var raw []byte
	for ci, dt := range types {
		kind, err := keyKindOf(dt)
		if err != nil {
			releaseArrays(out)
			return nil, fmt.Errorf("%w: DecodeKeys: %v", ErrInvalidOptions, err)
		}
		fail := func(r int) ([]arrow.Array, error) {
			releaseArrays(out)
			return nil, fmt.Errorf("%w: DecodeKeys: key %d (%d bytes) too short for column %d (%s)", ErrCodec, r, len(keys[r]), ci, dt)
		}
		if kind != kBytes {
			w := int(keyWidth[kind])
			u64 = grow(u64, len(keys))
			for r, k := range keys {
				p := pos[r]
				if p+w > len(k) {
					return fail(r)
				}
				valid[r] = k[p] == 1
				if kind == kBool {
					u64[r] = uint64(k[p+1])
				} else {
					u64[r] = binary.BigEndian.Uint64(k[p+1:])
				}
				pos[r] = p + w
			}
			out = append(out, buildFixed(mem, dt, u64, valid))
			continue
		}
		b := array.NewBuilder(mem, dt)
		var bb *array.BinaryBuilder
		switch x := b.(type) {
		case *array.StringBuilder:
			bb = x.BinaryBuilder
		case *array.LargeStringBuilder:
			bb = x.BinaryBuilder
		case *array.BinaryBuilder:
			bb = x
		}
		bb.Reserve(len(keys))
		for r, k := range keys {
			p := pos[r]
			if p >= len(k) {
				b.Release()
				return fail(r)
			}
			if k[p] == 0 {
				bb.AppendNull()
				pos[r] = p + 1
				continue
			}
			var rest []byte
			raw, rest, err = decodeEscaped(raw[:0], k[p+1:])
			if err != nil {
				b.Release()
				return fail(r)
			}
			bb.Append(raw)
			pos[r] = len(k) - len(rest)
		}
		out = append(out, b.NewArray())
		b.Release()
	}
	return out, nil
}

// buildFixed builds an array of type dt from decoded words: the
// sign-flipped integers, ordered float bits or 0/1 bytes of the key
// encoding.
func buildFixed(mem memory.Allocator, dt arrow.DataType, u []uint64, valid []bool) arrow.Array {
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	switch x := b.(type) {
	case *array.Int8Builder:
		x.AppendValues(fromWords[int8](u, true), valid)
	case *array.Int16Builder:
		x.AppendValues(fromWords[int16](u, true), valid)
	case *array.Int32Builder:
		x.AppendValues(fromWords[int32](u, true), valid)
	case *array.Int64Builder:
		x.AppendValues(fromWords[int64](u, true), valid)
	case *array.TimestampBuilder:
		x.AppendValues(fromWords[arrow.Timestamp](u, true), valid)
	case *array.Date32Builder:
		x.AppendValues(fromWords[arrow.Date32](u, true), valid)
	case *array.Date64Builder:
		x.AppendValues(fromWords[arrow.Date64](u, true), valid)
	case *array.Uint8Builder:
		x.AppendValues(fromWords[uint8](u, false), valid)
	case *array.Uint16Builder:
		x.AppendValues(fromWords[uint16](u, false), valid)
	case *array.Uint32Builder:
		x.AppendValues(fromWords[uint32](u, false), valid)
	case *array.Uint64Builder:
		x.AppendValues(fromWords[uint64](u, false), valid)
	case *array.Float32Builder:
		f := make([]float32, len(u))
		for i, w := range u {
			f[i] = float32(unorderFloat(w))
		}
		x.AppendValues(f, valid)
	case *array.Float64Builder:
		f := make([]float64, len(u))
		for i, w := range u {
			f[i] = unorderFloat(w)
		}
		x.AppendValues(f, valid)
	case *array.BooleanBuilder:
		bs := make([]bool, len(u))
		for i, w := range u {
			bs[i] = w != 0
		}
		x.AppendValues(bs, valid)
	}
	return b.NewArray()
}

func fromWords[T signed | unsigned](u []uint64, signed bool) []T {
	out := make([]T, len(u))
	flip := uint64(0)
	if signed {
		flip = 1 << 63
	}
	for i, w := range u {
		out[i] = T(w ^ flip)
	}
	return out
}

func releaseArrays(as []arrow.Array) {
	for _, a := range as {
		a.Release()
	}
}
