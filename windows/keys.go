package windows

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Keys are encoded per row into bytes that compare (bytes.Compare) like the
// key tuples, so windows with equal ends emit in key order and top-N ties
// break deterministically. Per column: a null flag byte (0 null, 1 valid),
// then fixed-width values as 8 bytes (integers sign-flipped big endian,
// floats order-mapped IEEE bits, zeros for null) or 1 byte (bool), and
// strings and binaries escaped (0x00 -> 0x00 0xff) and terminated by
// 0x00 0x01 (nothing for null). Encoding runs column by column with one
// typed loop per column; decoding (at emission, per window, not per input
// row) the same.

type keyKind uint8

const (
	kInt keyKind = iota
	kUint
	kFloat
	kBool
	kBytes
)

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
	case arrow.STRING, arrow.BINARY:
		return kBytes, nil
	}
	return 0, fmt.Errorf("windows: unsupported key type %s", dt)
}

// rowKeys holds the encoded keys of a batch's rows.
type rowKeys struct {
	offs []int32
	data []byte
	pos  []int32
	ints []int64
}

func (k *rowKeys) key(i int) []byte { return k.data[k.offs[i]:k.offs[i+1]] }

// encode encodes every row of cols.
func (k *rowKeys) encode(cols []arrow.Array, n int) error {
	k.offs = grow(k.offs, n+1)
	for i := range k.offs {
		k.offs[i] = 0
	}
	// Pass 1: lengths.
	for _, c := range cols {
		kind, err := keyKindOf(c.DataType())
		if err != nil {
			return err
		}
		switch kind {
		case kBool:
			for i := 1; i <= n; i++ {
				k.offs[i] += 2
			}
		case kBytes:
			offs, data := binaryView(c)
			for i := 0; i < n; i++ {
				if c.IsNull(i) {
					k.offs[i+1]++
					continue
				}
				v := data[offs[i]-offs[0] : offs[i+1]-offs[0]]
				l := int32(3 + len(v))
				for _, b := range v {
					if b == 0 {
						l++
					}
				}
				k.offs[i+1] += l
			}
		default:
			for i := 1; i <= n; i++ {
				k.offs[i] += 9
			}
		}
	}
	for i := 1; i <= n; i++ {
		k.offs[i] += k.offs[i-1]
	}
	k.data = grow(k.data, int(k.offs[n]))
	k.pos = grow(k.pos, n)
	copy(k.pos, k.offs[:n])
	// Pass 2: values.
	for _, c := range cols {
		kind, _ := keyKindOf(c.DataType())
		switch kind {
		case kInt:
			k.ints = intValues(c, k.ints)
			for i, v := range k.ints {
				p := k.pos[i]
				k.data[p] = 1
				if c.IsNull(i) {
					k.data[p] = 0
					v = math.MinInt64
				}
				binary.BigEndian.PutUint64(k.data[p+1:], uint64(v)^(1<<63))
				k.pos[i] = p + 9
			}
		case kUint:
			k.ints = intValues(c, k.ints)
			for i, v := range k.ints {
				p := k.pos[i]
				k.data[p] = 1
				if c.IsNull(i) {
					k.data[p], v = 0, 0
				}
				binary.BigEndian.PutUint64(k.data[p+1:], uint64(v))
				k.pos[i] = p + 9
			}
		case kFloat:
			fs := floatValues(c, nil)
			for i, f := range fs {
				p := k.pos[i]
				k.data[p] = 1
				u := uint64(0)
				if c.IsNull(i) {
					k.data[p] = 0
				} else {
					u = orderFloat(f)
				}
				binary.BigEndian.PutUint64(k.data[p+1:], u)
				k.pos[i] = p + 9
			}
		case kBool:
			b := c.(*array.Boolean)
			for i := 0; i < n; i++ {
				p := k.pos[i]
				k.data[p], k.data[p+1] = 1, 0
				if b.IsNull(i) {
					k.data[p] = 0
				} else if b.Value(i) {
					k.data[p+1] = 1
				}
				k.pos[i] = p + 2
			}
		case kBytes:
			offs, data := binaryView(c)
			for i := 0; i < n; i++ {
				p := k.pos[i]
				if c.IsNull(i) {
					k.data[p] = 0
					k.pos[i] = p + 1
					continue
				}
				k.data[p] = 1
				p++
				for _, b := range data[offs[i]-offs[0] : offs[i+1]-offs[0]] {
					k.data[p] = b
					p++
					if b == 0 {
						k.data[p] = 0xff
						p++
					}
				}
				k.data[p], k.data[p+1] = 0, 1
				k.pos[i] = p + 2
			}
		}
	}
	return nil
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

func binaryView(a arrow.Array) ([]int32, []byte) {
	switch c := a.(type) {
	case *array.String:
		return c.ValueOffsets(), c.ValueBytes()
	case *array.Binary:
		return c.ValueOffsets(), c.ValueBytes()
	}
	return nil, nil
}

// intValues widens an integer-like column to int64 (one typed loop).
func intValues(c arrow.Array, dst []int64) []int64 {
	n := c.Len()
	dst = grow(dst, n)
	switch a := c.(type) {
	case *array.Int64:
		copy(dst, a.Int64Values())
	case *array.Int32:
		widen(a.Int32Values(), dst)
	case *array.Int16:
		widen(a.Int16Values(), dst)
	case *array.Int8:
		widen(a.Int8Values(), dst)
	case *array.Uint64:
		widen(a.Uint64Values(), dst)
	case *array.Uint32:
		widen(a.Uint32Values(), dst)
	case *array.Uint16:
		widen(a.Uint16Values(), dst)
	case *array.Uint8:
		widen(a.Uint8Values(), dst)
	case *array.Timestamp:
		widen(a.TimestampValues(), dst)
	case *array.Date32:
		widen(a.Date32Values(), dst)
	case *array.Date64:
		widen(a.Date64Values(), dst)
	case *array.Boolean:
		for i := range dst {
			dst[i] = 0
			if a.Value(i) {
				dst[i] = 1
			}
		}
	}
	return dst
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

func widen[T integer](src []T, dst []int64) {
	for i, v := range src {
		dst[i] = int64(v)
	}
}

// floatValues widens a float column to float64.
func floatValues(c arrow.Array, dst []float64) []float64 {
	switch a := c.(type) {
	case *array.Float64:
		if dst == nil {
			return a.Float64Values()
		}
		dst = grow(dst, a.Len())
		copy(dst, a.Float64Values())
	case *array.Float32:
		dst = grow(dst, a.Len())
		for i, v := range a.Float32Values() {
			dst[i] = float64(v)
		}
	}
	return dst
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// keyDecoder appends encoded keys to builders of the key columns.
type keyDecoder struct {
	types []arrow.DataType
}

// build decodes keys into one array per key column.
func (d *keyDecoder) build(mem memory.Allocator, keys [][]byte) ([]arrow.Array, error) {
	out := make([]arrow.Array, 0, len(d.types))
	pos := make([]int, len(keys))
	for _, dt := range d.types {
		b := array.NewBuilder(mem, dt)
		b.Reserve(len(keys))
		kind, _ := keyKindOf(dt)
		for r, k := range keys {
			p := pos[r]
			if p >= len(k) {
				b.Release()
				releaseAll(out)
				return nil, fmt.Errorf("windows: corrupt key")
			}
			valid := k[p] == 1
			p++
			switch kind {
			case kInt, kUint:
				u := binary.BigEndian.Uint64(k[p:])
				p += 8
				if kind == kInt {
					u ^= 1 << 63
				}
				if !valid {
					b.AppendNull()
					break
				}
				appendInt(b, int64(u))
			case kFloat:
				u := binary.BigEndian.Uint64(k[p:])
				p += 8
				if !valid {
					b.AppendNull()
					break
				}
				switch fb := b.(type) {
				case *array.Float64Builder:
					fb.Append(unorderFloat(u))
				case *array.Float32Builder:
					fb.Append(float32(unorderFloat(u)))
				}
			case kBool:
				v := k[p] == 1
				p++
				if !valid {
					b.AppendNull()
					break
				}
				b.(*array.BooleanBuilder).Append(v)
			case kBytes:
				if !valid {
					b.AppendNull()
					break
				}
				var raw []byte
				for {
					c := k[p]
					if c != 0 {
						raw = append(raw, c)
						p++
						continue
					}
					if k[p+1] == 0xff {
						raw = append(raw, 0)
						p += 2
						continue
					}
					p += 2
					break
				}
				switch bb := b.(type) {
				case *array.StringBuilder:
					bb.Append(string(raw))
				case *array.BinaryBuilder:
					bb.Append(raw)
				}
			}
			pos[r] = p
		}
		out = append(out, b.NewArray())
		b.Release()
	}
	return out, nil
}

func appendInt(b array.Builder, v int64) {
	switch x := b.(type) {
	case *array.Int64Builder:
		x.Append(v)
	case *array.Int32Builder:
		x.Append(int32(v))
	case *array.Int16Builder:
		x.Append(int16(v))
	case *array.Int8Builder:
		x.Append(int8(v))
	case *array.Uint64Builder:
		x.Append(uint64(v))
	case *array.Uint32Builder:
		x.Append(uint32(v))
	case *array.Uint16Builder:
		x.Append(uint16(v))
	case *array.Uint8Builder:
		x.Append(uint8(v))
	case *array.TimestampBuilder:
		x.Append(arrow.Timestamp(v))
	case *array.Date32Builder:
		x.Append(arrow.Date32(v))
	case *array.Date64Builder:
		x.Append(arrow.Date64(v))
	case *array.BooleanBuilder:
		x.Append(v != 0)
	}
}

func releaseAll(as []arrow.Array) {
	for _, a := range as {
		a.Release()
	}
}
