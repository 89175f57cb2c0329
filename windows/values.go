package windows

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Typed views of column values for the accumulators and top-N. Keys are
// encoded by the one key codec, state.EncodeKeys.

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

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
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
