package expr

import (
	"fmt"
	"math"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// kind is the physical class of a supported Arrow type.
type kind uint8

const (
	kInvalid kind = iota
	kNull
	kBool
	kI8
	kI16
	kI32
	kI64
	kU8
	kU16
	kU32
	kU64
	kF32
	kF64
	kString
	kLargeString
	kTimestamp  // int64 values in the type's unit
	kDate32     // int32 days since the epoch
	kDuration   // int64 values in the type's unit
	kDecimal128 // decimal128(p, s); see decimal.go
	kTime       // int64 microseconds since midnight: time64[us]; see timeofday.go
)

func kindOf(t arrow.DataType) kind {
	switch t.ID() {
	case arrow.NULL:
		return kNull
	case arrow.BOOL:
		return kBool
	case arrow.INT8:
		return kI8
	case arrow.INT16:
		return kI16
	case arrow.INT32:
		return kI32
	case arrow.INT64:
		return kI64
	case arrow.UINT8:
		return kU8
	case arrow.UINT16:
		return kU16
	case arrow.UINT32:
		return kU32
	case arrow.UINT64:
		return kU64
	case arrow.FLOAT32:
		return kF32
	case arrow.FLOAT64:
		return kF64
	case arrow.STRING:
		return kString
	case arrow.LARGE_STRING:
		return kLargeString
	case arrow.TIMESTAMP:
		return kTimestamp
	case arrow.DATE32:
		return kDate32
	case arrow.DURATION:
		return kDuration
	case arrow.DECIMAL128:
		return kDecimal128
	case arrow.TIME64:
		if t.(*arrow.Time64Type).Unit == arrow.Microsecond {
			return kTime
		}
	}
	return kInvalid
}

func (k kind) isInt() bool      { return k >= kI8 && k <= kU64 }
func (k kind) isSigned() bool   { return k >= kI8 && k <= kI64 }
func (k kind) isUnsigned() bool { return k >= kU8 && k <= kU64 }
func (k kind) isFloat() bool    { return k == kF32 || k == kF64 }
func (k kind) isNumeric() bool  { return k >= kI8 && k <= kF64 }
func (k kind) isString() bool   { return k == kString || k == kLargeString }

// intRange returns the value range of an integer kind as int64 and uint64
// bounds: [lo, hi] where hi is given as uint64 so that uint64 fits.
func intRange(k kind) (lo int64, hi uint64) {
	switch k {
	case kI8:
		return math.MinInt8, math.MaxInt8
	case kI16:
		return math.MinInt16, math.MaxInt16
	case kI32:
		return math.MinInt32, math.MaxInt32
	case kI64:
		return math.MinInt64, math.MaxInt64
	case kU8:
		return 0, math.MaxUint8
	case kU16:
		return 0, math.MaxUint16
	case kU32:
		return 0, math.MaxUint32
	case kU64:
		return 0, math.MaxUint64
	}
	return 0, 0
}

// castTypes are the type names accepted by CAST and ::.
var castTypes = map[string]arrow.DataType{
	"int8":      arrow.PrimitiveTypes.Int8,
	"int16":     arrow.PrimitiveTypes.Int16,
	"int32":     arrow.PrimitiveTypes.Int32,
	"int64":     arrow.PrimitiveTypes.Int64,
	"uint8":     arrow.PrimitiveTypes.Uint8,
	"uint16":    arrow.PrimitiveTypes.Uint16,
	"uint32":    arrow.PrimitiveTypes.Uint32,
	"uint64":    arrow.PrimitiveTypes.Uint64,
	"float32":   arrow.PrimitiveTypes.Float32,
	"float64":   arrow.PrimitiveTypes.Float64,
	"bool":      arrow.FixedWidthTypes.Boolean,
	"string":    arrow.BinaryTypes.String,
	"timestamp": arrow.FixedWidthTypes.Timestamp_ms,
	"date":      arrow.FixedWidthTypes.Date32,
	"time":      arrow.FixedWidthTypes.Time64us,
}

const castTypeList = "int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64, bool, string, timestamp, date, time"

// typeName prints a type the way error messages name it.
func typeName(t arrow.DataType) string {
	switch t.ID() {
	case arrow.NULL:
		return "null"
	case arrow.BOOL:
		return "bool"
	case arrow.STRING:
		return "string"
	case arrow.LARGE_STRING:
		return "large_string"
	case arrow.DATE32:
		return "date"
	case arrow.TIME64:
		if t.(*arrow.Time64Type).Unit == arrow.Microsecond {
			return "time"
		}
	case arrow.TIMESTAMP:
		return "timestamp[" + t.(*arrow.TimestampType).Unit.String() + "]"
	}
	return t.String()
}

// numeric is the set of Go types behind Arrow's fixed-width numeric columns.
type numeric interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// values views the value buffer of a fixed-width array as []T, honouring the
// array's offset. No copy.
func values[T numeric](a arrow.Array) []T {
	d := a.Data()
	n := d.Len()
	if n == 0 {
		return nil
	}
	if d.Buffers()[1] == nil {
		return make([]T, n) // all-null array without a value buffer
	}
	b := d.Buffers()[1].Bytes()
	var zero T
	all := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/int(unsafe.Sizeof(zero)))
	return all[d.Offset() : d.Offset()+n]
}

// asBytes views a typed slice as bytes.
func asBytes[T numeric](v []T) []byte {
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*int(unsafe.Sizeof(zero)))
}

// validity returns the validity bitmap and bit offset of a, or nil when a has
// no nulls.
func validity(a arrow.Array) ([]byte, int) {
	if a.NullN() == 0 {
		return nil, 0
	}
	return a.NullBitmapBytes(), a.Data().Offset()
}

// stringOffsets32 returns the offsets of a string array (already adjusted
// for the array offset, n+1 entries) and the whole data buffer they index.
func stringOffsets32(a arrow.Array) ([]int32, []byte) {
	return a.(*array.String).ValueOffsets(), dataBytes(a)
}

func stringOffsets64(a arrow.Array) ([]int64, []byte) {
	return a.(*array.LargeString).ValueOffsets(), dataBytes(a)
}

func dataBytes(a arrow.Array) []byte {
	if b := a.Data().Buffers()[2]; b != nil {
		return b.Bytes()
	}
	return nil
}

// newBuf allocates a buffer of n bytes, zeroed.
func newBuf(mem memory.Allocator, n int) *memory.Buffer {
	b := memory.NewResizableBuffer(mem)
	b.Resize(n)
	clear(b.Bytes())
	return b
}

// newBufUninit allocates a buffer of n bytes for the caller to overwrite
// entirely.
func newBufUninit(mem memory.Allocator, n int) *memory.Buffer {
	b := memory.NewResizableBuffer(mem)
	b.Resize(n)
	return b
}

// bitmapBytes is the byte length of an n-bit bitmap, rounded up to whole
// 64-bit words so word-wise loops never read past the end.
func bitmapBytes(n int) int { return (n + 63) / 64 * 8 }

// makeArray assembles an array from buffers it takes over: the references
// passed in are released.
func makeArray(t arrow.DataType, n int, bufs ...*memory.Buffer) arrow.Array {
	nulls := 0
	if bufs[0] != nil {
		nulls = array.UnknownNullCount
	}
	d := array.NewData(t, n, bufs, nil, nulls, 0)
	for _, b := range bufs {
		if b != nil {
			b.Release()
		}
	}
	a := array.MakeFromData(d)
	d.Release()
	return a
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("expr: "+format, args...)
}

func lower(s string) string { return strings.ToLower(s) }

// viewAs views a byte slice as []T. No copy.
func viewAs[T numeric](b []byte) []T {
	var zero T
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/int(unsafe.Sizeof(zero)))
}

func values32(b []byte) []int32 { return viewAs[int32](b) }
func values64(b []byte) []int64 { return viewAs[int64](b) }

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}
