package arrowexec

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/cespare/xxhash/v2"
)

// Hashes of keys are deterministic across processes and runs (key groups,
// and so keyed state, depend on them): no per-process seeds.

const (
	hashSeed  uint64 = 0x9e3779b97f4a7c15
	nullHash  uint64 = 0x5bd1e9955bd1e995
	hashPrime uint64 = 0x100000001b3
)

// mix64 is a strong 64-bit finalizer (splitmix64).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// HashColumns computes one 64-bit hash per row over the given key columns,
// writing into out (len(out) must equal the number of rows). It is one
// typed loop per column; nulls hash to a fixed value.
func HashColumns(cols []arrow.Array, out []uint64) error {
	for i := range out {
		out[i] = hashSeed
	}
	for _, c := range cols {
		if c.Len() != len(out) {
			return fmt.Errorf("arrowexec: hash: column has %d rows, want %d", c.Len(), len(out))
		}
		if err := hashInto(c, out); err != nil {
			return err
		}
	}
	return nil
}

func combine(h, v uint64) uint64 { return mix64((h ^ v) * hashPrime) }

func hashFixed[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](vals []T, c arrow.Array, out []uint64) {
	if c.NullN() == 0 {
		for i, v := range vals {
			out[i] = combine(out[i], uint64(v))
		}
		return
	}
	valid, off := validity(c)
	for i, v := range vals {
		x := nullHash
		if bitutil.BitIsSet(valid, off+i) {
			x = uint64(v)
		}
		out[i] = combine(out[i], x)
	}
}

func floatBits(f float64) uint64 {
	if f == 0 { // -0 and +0 are equal keys
		return 0
	}
	if f != f { // all NaNs hash alike
		return 0x7ff8000000000001
	}
	return math.Float64bits(f)
}

func hashFloat[T float32 | float64](vals []T, c arrow.Array, out []uint64) {
	if c.NullN() == 0 {
		for i, v := range vals {
			out[i] = combine(out[i], floatBits(float64(v)))
		}
		return
	}
	valid, off := validity(c)
	for i, v := range vals {
		bits := nullHash
		if bitutil.BitIsSet(valid, off+i) {
			bits = floatBits(float64(v))
		}
		out[i] = combine(out[i], bits)
	}
}

// validity returns c's validity bitmap and offset (call only when c has
// nulls).
func validity(c arrow.Array) ([]byte, int) {
	d := c.Data()
	return d.Buffers()[0].Bytes(), d.Offset()
}

type binaryLike[O int32 | int64] interface {
	arrow.Array
	ValueBytes() []byte
	ValueOffsets() []O
}

func hashBinary[O int32 | int64](c binaryLike[O], out []uint64) {
	offs := c.ValueOffsets()
	data := c.ValueBytes()
	base := offs[0]
	if c.NullN() == 0 {
		for i := range out {
			out[i] = combine(out[i], xxhash.Sum64(data[offs[i]-base:offs[i+1]-base]))
		}
		return
	}
	valid, off := validity(c)
	for i := range out {
		h := nullHash
		if bitutil.BitIsSet(valid, off+i) {
			h = xxhash.Sum64(data[offs[i]-base : offs[i+1]-base])
		}
		out[i] = combine(out[i], h)
	}
}

func hashInto(c arrow.Array, out []uint64) error {
	switch a := c.(type) {
	case *array.Int64:
		hashFixed(a.Int64Values(), c, out)
	case *array.Int32:
		hashFixed(a.Int32Values(), c, out)
	case *array.Int16:
		hashFixed(a.Int16Values(), c, out)
	case *array.Int8:
		hashFixed(a.Int8Values(), c, out)
	case *array.Uint64:
		hashFixed(a.Uint64Values(), c, out)
	case *array.Uint32:
		hashFixed(a.Uint32Values(), c, out)
	case *array.Uint16:
		hashFixed(a.Uint16Values(), c, out)
	case *array.Uint8:
		hashFixed(a.Uint8Values(), c, out)
	case *array.Float64:
		hashFloat(a.Float64Values(), c, out)
	case *array.Float32:
		hashFloat(a.Float32Values(), c, out)
	case *array.Timestamp:
		hashFixed(timestampsAsInt64(a.TimestampValues()), c, out)
	case *array.Date32:
		hashFixed(date32AsInt32(a.Date32Values()), c, out)
	case *array.Date64:
		hashFixed(date64AsInt64(a.Date64Values()), c, out)
	case *array.Boolean:
		for i := range out {
			v := uint64(0)
			if a.NullN() > 0 && a.IsNull(i) {
				v = nullHash
			} else if a.Value(i) {
				v = 1
			}
			out[i] = combine(out[i], v)
		}
	case *array.String:
		hashBinary(a, out)
	case *array.Binary:
		hashBinary(a, out)
	case *array.LargeString:
		hashBinary(a, out)
	case *array.LargeBinary:
		hashBinary(a, out)
	case *array.Dictionary:
		return hashDictionary(a, out)
	default:
		return fmt.Errorf("arrowexec: hash: unsupported key type %s", c.DataType())
	}
	return nil
}

// KeyGroupOf maps a key hash to its key group.
func KeyGroupOf(h uint64, maxParallelism int) int {
	return int(h % uint64(maxParallelism))
}

// SubtaskOfKeyGroup maps a key group to the subtask that owns it: key groups
// are split into contiguous ranges, one per subtask.
func SubtaskOfKeyGroup(kg, maxParallelism, parallelism int) int {
	return kg * parallelism / maxParallelism
}

// KeyGroupRange returns the key groups [lo, hi) owned by subtask.
func KeyGroupRange(maxParallelism, parallelism, subtask int) (lo, hi int) {
	lo = (subtask*maxParallelism + parallelism - 1) / parallelism
	hi = ((subtask+1)*maxParallelism + parallelism - 1) / parallelism
	return lo, hi
}

// hashDictionary hashes a dictionary-encoded column as its decoded values
// (so batches with different dictionaries, and plain columns, hash equal
// values alike): the value hash of each dictionary entry is computed once,
// then gathered by index.
func hashDictionary(a *array.Dictionary, out []uint64) error {
	dict := a.Dictionary()
	vals := make([]uint64, dict.Len())
	switch d := dict.(type) {
	case *array.String:
		entryHashes(d, vals)
	case *array.Binary:
		entryHashes(d, vals)
	case *array.LargeString:
		entryHashes(d, vals)
	case *array.LargeBinary:
		entryHashes(d, vals)
	default:
		return fmt.Errorf("arrowexec: hash: unsupported key type %s", a.DataType())
	}
	if a.Len() != len(out) {
		return fmt.Errorf("arrowexec: hash: column has %d rows, want %d", a.Len(), len(out))
	}
	var vb []byte
	var off int
	if a.NullN() > 0 {
		vb, off = validity(a)
	}
	if ix, ok := a.Indices().(*array.Int32); ok {
		for i, k := range ix.Int32Values() {
			h := nullHash
			if vb == nil || bitutil.BitIsSet(vb, off+i) {
				h = vals[k]
			}
			out[i] = combine(out[i], h)
		}
		return nil
	}
	for i := range out {
		h := nullHash
		if vb == nil || bitutil.BitIsSet(vb, off+i) {
			h = vals[a.GetValueIndex(i)]
		}
		out[i] = combine(out[i], h)
	}
	return nil
}

// entryHashes writes the value hash of every entry of a string or binary
// array (nullHash for NULL entries) into vals.
func entryHashes[O int32 | int64](c binaryLike[O], vals []uint64) {
	offs := c.ValueOffsets()
	data := c.ValueBytes()
	base := offs[0]
	for i := range vals {
		if c.IsNull(i) {
			vals[i] = nullHash
			continue
		}
		vals[i] = xxhash.Sum64(data[offs[i]-base : offs[i+1]-base])
	}
}
