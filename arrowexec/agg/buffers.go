package agg

import (
	"math"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Typed views of Arrow buffers and builders of result arrays. Private
// versions of what the arrowexec core keeps to itself.

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

type float interface{ ~float32 | ~float64 }

type number interface{ integer | float }

// word is the physical representation of a fixed-width key: its bits.
type word interface {
	~uint8 | ~uint16 | ~uint32 | ~uint64
}

// values returns the values buffer of a fixed-width array as []T, sliced to
// the array's offset and length. No copy.
func values[T any](a arrow.Array) []T {
	d := a.Data()
	n := d.Len()
	bufs := d.Buffers()
	if n == 0 || len(bufs) < 2 || bufs[1] == nil {
		return nil
	}
	b := bufs[1].Bytes()
	var z T
	all := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/int(unsafe.Sizeof(z)))
	return all[d.Offset() : d.Offset()+n]
}

// binaryView returns the offsets (sliced to the array) and the whole data
// buffer of a string or binary array: row i is data[offs[i]:offs[i+1]].
func binaryView(a arrow.Array) (offs []int32, data []byte) {
	d := a.Data()
	bufs := d.Buffers()
	if bufs[1] != nil && d.Len() > 0 {
		b := bufs[1].Bytes()
		all := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
		offs = all[d.Offset() : d.Offset()+d.Len()+1]
	}
	if bufs[2] != nil {
		data = bufs[2].Bytes()
	}
	return offs, data
}

// validity is a null bitmap view; valid(i) is false only for null rows.
type validity struct {
	bits []byte // nil: no nulls
	off  int
}

func validityOf(a arrow.Array) validity {
	if a.NullN() == 0 {
		return validity{}
	}
	d := a.Data()
	return validity{bits: d.Buffers()[0].Bytes(), off: d.Offset()}
}

func (v validity) valid(i int) bool {
	j := v.off + i
	return v.bits[j>>3]&(1<<(j&7)) != 0
}

// boolsAsBytes unpacks a boolean array into 0/1 bytes in scratch.
func boolsAsBytes(a arrow.Array, scratch []uint8) []uint8 {
	n := a.Len()
	scratch = grow(scratch, n)
	d := a.Data()
	bits, off := d.Buffers()[1].Bytes(), d.Offset()
	for i := range scratch {
		j := off + i
		scratch[i] = (bits[j>>3] >> (j & 7)) & 1
	}
	return scratch
}

const canonicalNaN64 = 0x7ff8000000000001

// float64Bits writes the canonical bits of a's values into scratch: -0 as 0,
// every NaN alike, the equality arrowexec.HashColumns uses.
func float64Bits(a arrow.Array, scratch []uint64) []uint64 {
	vals := values[float64](a)
	scratch = grow(scratch, len(vals))
	for i, f := range vals {
		if f == 0 {
			f = 0 // -0 as +0
		}
		b := math.Float64bits(f)
		if f != f {
			b = canonicalNaN64
		}
		scratch[i] = b
	}
	return scratch
}

func float32Bits(a arrow.Array, scratch []uint32) []uint32 {
	vals := values[float32](a)
	scratch = grow(scratch, len(vals))
	for i, f := range vals {
		if f == 0 {
			f = 0
		}
		b := math.Float32bits(f)
		if f != f {
			b = 0x7fc00001
		}
		scratch[i] = b
	}
	return scratch
}

// grow returns s with length n, reusing its storage; contents unspecified.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// extend returns s with length n, the new elements zero.
func extend[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	if n <= cap(s) {
		old := len(s)
		s = s[:n]
		clear(s[old:])
		return s
	}
	ns := make([]T, n, max(n, 2*cap(s)))
	copy(ns, s)
	return ns
}

// validityBuffer builds a null bitmap for valid[lo:hi] (nil: all valid).
func validityBuffer(mem memory.Allocator, valid []bool, n int) (*memory.Buffer, int) {
	if valid == nil {
		return nil, 0
	}
	nulls := 0
	for _, v := range valid[:n] {
		if !v {
			nulls++
		}
	}
	if nulls == 0 {
		return nil, 0
	}
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(int(bitutil.BytesForBits(int64(n))))
	bits := buf.Bytes()
	clear(bits)
	for i, v := range valid[:n] {
		if v {
			bits[i>>3] |= 1 << (i & 7)
		}
	}
	return buf, nulls
}

func makeArray(dt arrow.DataType, n int, bufs []*memory.Buffer, nulls int) arrow.Array {
	d := array.NewData(dt, n, bufs, nil, nulls, 0)
	a := array.MakeFromData(d)
	d.Release()
	for _, b := range bufs {
		if b != nil {
			b.Release()
		}
	}
	return a
}

// fixedArray builds an array of type dt (whose physical values are T) from
// vals; valid == nil means no nulls.
func fixedArray[T any](mem memory.Allocator, dt arrow.DataType, vals []T, valid []bool) arrow.Array {
	n := len(vals)
	vb, nulls := validityBuffer(mem, valid, n)
	buf := memory.NewResizableBuffer(mem)
	var z T
	buf.Resize(n * int(unsafe.Sizeof(z)))
	if n > 0 {
		copy(unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(buf.Bytes()))), n), vals)
	}
	return makeArray(dt, n, []*memory.Buffer{vb, buf}, nulls)
}

// boolArray builds a boolean array from 0/1 bytes.
func boolArray(mem memory.Allocator, vals []uint8, valid []bool) arrow.Array {
	n := len(vals)
	vb, nulls := validityBuffer(mem, valid, n)
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(int(bitutil.BytesForBits(int64(n))))
	bits := buf.Bytes()
	clear(bits)
	for i, v := range vals {
		bits[i>>3] |= (v & 1) << (i & 7)
	}
	return makeArray(arrow.FixedWidthTypes.Boolean, n, []*memory.Buffer{vb, buf}, nulls)
}

// binaryArray builds a string or binary array of n rows, row i being
// data[offs[i]-offs[0] : offs[i+1]-offs[0]] after rebasing.
func binaryArray(mem memory.Allocator, dt arrow.DataType, n int, row func(i int) []byte, total int, valid []bool) (arrow.Array, error) {
	if total > math.MaxInt32 {
		return nil, errTooLarge(dt, total)
	}
	vb, nulls := validityBuffer(mem, valid, n)
	ob := memory.NewResizableBuffer(mem)
	ob.Resize((n + 1) * 4)
	offs := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(ob.Bytes()))), n+1)
	db := memory.NewResizableBuffer(mem)
	db.Resize(total)
	data := db.Bytes()
	pos := 0
	for i := 0; i < n; i++ {
		offs[i] = int32(pos)
		pos += copy(data[pos:], row(i))
	}
	offs[n] = int32(pos)
	return makeArray(dt, n, []*memory.Buffer{vb, ob, db}, nulls), nil
}
