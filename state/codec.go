package state

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Codec converts values of type T to bytes and back. Append appends the
// encoding of v to dst and returns the extended slice; Decode decodes a value
// from exactly b. Decode must not keep b (it is only valid during the call).
type Codec[T any] interface {
	Append(dst []byte, v T) []byte
	Decode(b []byte) (T, error)
}

// KeyCodec is a Codec whose encodings compare (bytes.Compare) like the
// values, so map state iterates in value order. It is used for map keys,
// which are the last component of an entry's key and need no delimiting.
type KeyCodec[T any] interface {
	Codec[T]
	// OrderPreserving is a marker method.
	OrderPreserving()
}

// Provided codecs. Int64, Float64, String and Bytes are order preserving.
var (
	Int64    KeyCodec[int64]   = int64Codec{}
	Float64  KeyCodec[float64] = float64Codec{}
	String   KeyCodec[string]  = stringCodec{}
	Bytes    KeyCodec[[]byte]  = bytesCodec{}
	Float32s Codec[[]float32]  = float32sCodec{}
	Float64s Codec[[]float64]  = float64sCodec{}
)

func errSize(what string, got, want int) error {
	return fmt.Errorf("%w: %s: %d bytes, want %d", ErrCodec, what, got, want)
}

// int64: big endian with the sign bit flipped, so it sorts numerically.
type int64Codec struct{}

func (int64Codec) OrderPreserving() {}
func (int64Codec) Append(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}
func (int64Codec) Decode(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, errSize("int64", len(b), 8)
	}
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), nil
}

// float64: IEEE bits, sign-flipped for positives and inverted for
// negatives, so it sorts numerically (-0 sorts before +0, NaN last).
type float64Codec struct{}

func (float64Codec) OrderPreserving() {}
func (float64Codec) Append(dst []byte, v float64) []byte {
	u := math.Float64bits(v)
	if u&(1<<63) != 0 {
		u = ^u
	} else {
		u |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(dst, u)
}
func (float64Codec) Decode(b []byte) (float64, error) {
	if len(b) != 8 {
		return 0, errSize("float64", len(b), 8)
	}
	u := binary.BigEndian.Uint64(b)
	if u&(1<<63) != 0 {
		u &^= 1 << 63
	} else {
		u = ^u
	}
	return math.Float64frombits(u), nil
}

type stringCodec struct{}

func (stringCodec) OrderPreserving()                        {}
func (stringCodec) Append(dst []byte, v string) []byte      { return append(dst, v...) }
func (stringCodec) Decode(b []byte) (string, error)         { return string(b), nil }
func (bytesCodec) Append(dst []byte, v []byte) []byte       { return append(dst, v...) }
func (bytesCodec) Decode(b []byte) ([]byte, error)          { return append([]byte(nil), b...), nil }
func (bytesCodec) OrderPreserving()                         {}
func (float32sCodec) Append(dst []byte, v []float32) []byte { return appendFloat32s(dst, v) }
func (float64sCodec) Append(dst []byte, v []float64) []byte { return appendFloat64s(dst, v) }
func (float32sCodec) Decode(b []byte) ([]float32, error)    { return decodeFloat32s(b) }
func (float64sCodec) Decode(b []byte) ([]float64, error)    { return decodeFloat64s(b) }

type bytesCodec struct{}
type float32sCodec struct{}
type float64sCodec struct{}

// Vectors are little-endian IEEE values, 4 or 8 bytes each.
func appendFloat32s(dst []byte, v []float32) []byte {
	for _, f := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
	}
	return dst
}

func decodeFloat32s(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%w: []float32: %d bytes is not a multiple of 4", ErrCodec, len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

func appendFloat64s(dst []byte, v []float64) []byte {
	for _, f := range v {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
	}
	return dst
}

func decodeFloat64s(b []byte) ([]float64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("%w: []float64: %d bytes is not a multiple of 8", ErrCodec, len(b))
	}
	out := make([]float64, len(b)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out, nil
}

// Fixed returns a codec for a fixed-size type (a number, bool, or an array
// or struct of them, as accepted by encoding/binary), encoded little endian.
// It uses reflection; for hot numeric paths prefer Int64/Float64.
func Fixed[T any]() (Codec[T], error) {
	var zero T
	n := binary.Size(zero)
	if n < 0 {
		return nil, fmt.Errorf("%w: Fixed: %T has no fixed size", ErrInvalidOptions, zero)
	}
	return fixedCodec[T]{size: n}, nil
}

// MustFixed is Fixed for package-level declarations; it panics if T has no
// fixed size.
func MustFixed[T any]() Codec[T] {
	c, err := Fixed[T]()
	if err != nil {
		panic(err)
	}
	return c
}

type fixedCodec[T any] struct{ size int }

func (c fixedCodec[T]) Append(dst []byte, v T) []byte {
	out, _ := binary.Append(dst, binary.LittleEndian, v) // size checked in Fixed
	return out
}

func (c fixedCodec[T]) Decode(b []byte) (T, error) {
	var v T
	if len(b) != c.size {
		return v, errSize(fmt.Sprintf("%T", v), len(b), c.size)
	}
	_, err := binary.Decode(b, binary.LittleEndian, &v)
	if err != nil {
		return v, fmt.Errorf("%w: %v", ErrCodec, err)
	}
	return v, nil
}
