package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// keyTypes are the types the key codec supports.
var keyTypes = []arrow.DataType{
	arrow.PrimitiveTypes.Int8, arrow.PrimitiveTypes.Int16, arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int64,
	arrow.PrimitiveTypes.Uint8, arrow.PrimitiveTypes.Uint16, arrow.PrimitiveTypes.Uint32, arrow.PrimitiveTypes.Uint64,
	arrow.PrimitiveTypes.Float32, arrow.PrimitiveTypes.Float64, arrow.FixedWidthTypes.Boolean,
	arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString, arrow.BinaryTypes.Binary, arrow.BinaryTypes.LargeBinary,
	&arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, arrow.FixedWidthTypes.Date32, arrow.FixedWidthTypes.Date64,
}

// keyVal is one value of the brute-force model: null, an integer (signed
// or not), a float, or bytes.
type keyVal struct {
	null bool
	i    int64
	u    uint64
	f    float64
	b    []byte
}

// randCol builds a column of n random values of type dt (few distinct
// values, so rows repeat; nulls with probability 1/5; floats with -0, +0,
// NaNs and infinities; bytes with zero bytes) and its model. With slice,
// the column is a slice of a longer array (non-zero offset).
func randCol(t *testing.T, rng *rand.Rand, mem memory.Allocator, dt arrow.DataType, n int, slice bool) (arrow.Array, []keyVal) {
	t.Helper()
	lo := 0
	total := n
	if slice {
		lo = rng.Intn(5) + 1
		total = n + lo + rng.Intn(5)
	}
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	vals := make([]keyVal, total)
	for r := range vals {
		if rng.Intn(5) == 0 {
			vals[r].null = true
			b.AppendNull()
			continue
		}
		v := &vals[r]
		small := int64(rng.Intn(7) - 3)
		switch x := b.(type) {
		case *array.Int8Builder:
			v.i = []int64{small, math.MinInt8, math.MaxInt8}[rng.Intn(3)]
			x.Append(int8(v.i))
		case *array.Int16Builder:
			v.i = []int64{small, math.MinInt16, math.MaxInt16}[rng.Intn(3)]
			x.Append(int16(v.i))
		case *array.Int32Builder:
			v.i = []int64{small, math.MinInt32, math.MaxInt32}[rng.Intn(3)]
			x.Append(int32(v.i))
		case *array.Int64Builder:
			v.i = []int64{small, math.MinInt64, math.MaxInt64}[rng.Intn(3)]
			x.Append(v.i)
		case *array.TimestampBuilder:
			v.i = small * 1000
			x.Append(arrow.Timestamp(v.i))
		case *array.Date32Builder:
			v.i = []int64{small, math.MinInt32}[rng.Intn(2)]
			x.Append(arrow.Date32(v.i))
		case *array.Date64Builder:
			v.i = small * 86400000
			x.Append(arrow.Date64(v.i))
		case *array.Uint8Builder:
			v.u = []uint64{uint64(small + 3), math.MaxUint8}[rng.Intn(2)]
			x.Append(uint8(v.u))
		case *array.Uint16Builder:
			v.u = []uint64{uint64(small + 3), math.MaxUint16}[rng.Intn(2)]
			x.Append(uint16(v.u))
		case *array.Uint32Builder:
			v.u = []uint64{uint64(small + 3), math.MaxUint32}[rng.Intn(2)]
			x.Append(uint32(v.u))
		case *array.Uint64Builder:
			v.u = []uint64{uint64(small + 3), math.MaxUint64, 1 << 63}[rng.Intn(3)]
			x.Append(v.u)
		case *array.Float32Builder:
			f := []float32{float32(small) / 2, 0, float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, -math.SmallestNonzeroFloat32}[rng.Intn(8)]
			v.f = float64(f)
			x.Append(f)
		case *array.Float64Builder:
			v.f = []float64{float64(small) / 2, 0, math.Copysign(0, -1), math.NaN(), -math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64}[rng.Intn(8)]
			x.Append(v.f)
		case *array.BooleanBuilder:
			v.i = int64(rng.Intn(2))
			x.Append(v.i == 1)
		default:
			v.b = make([]byte, rng.Intn(4))
			for j := range v.b {
				v.b[j] = []byte{0, 1, 'a', 0xff}[rng.Intn(4)]
			}
			switch x := b.(type) {
			case *array.StringBuilder:
				x.Append(string(v.b))
			case *array.LargeStringBuilder:
				x.Append(string(v.b))
			case *array.BinaryBuilder:
				x.Append(v.b)
			}
		}
	}
	a := b.NewArray()
	if !slice {
		return a, vals
	}
	defer a.Release()
	return array.NewSlice(a, int64(lo), int64(lo+n)), vals[lo : lo+n]
}

func isFloat(dt arrow.DataType) bool { return dt.ID() == arrow.FLOAT32 || dt.ID() == arrow.FLOAT64 }
func isUnsigned(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return true
	}
	return false
}
func isBytes(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
		return true
	}
	return false
}

// cmpVal compares two model values of type dt: nulls first, -0 = +0, NaN
// after every number and equal to every NaN, bytes lexicographically.
func cmpVal(dt arrow.DataType, a, b keyVal) int {
	switch {
	case a.null || b.null:
		return cmpBool(!a.null, !b.null)
	case isFloat(dt):
		an, bn := a.f != a.f, b.f != b.f
		if an || bn {
			return cmpBool(an, bn)
		}
		switch {
		case a.f < b.f:
			return -1
		case a.f > b.f:
			return 1
		}
		return 0
	case isUnsigned(dt):
		return cmpOrd(a.u, b.u)
	case isBytes(dt):
		return bytes.Compare(a.b, b.b)
	}
	return cmpOrd(a.i, b.i)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func cmpOrd[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// refEncode is the documented layout of a key (keycodec.go), written
// value by value: the oracle of EncodeKeys' bytes, which windows state has
// persisted since its first release.
func refEncode(dst []byte, dt arrow.DataType, v keyVal) []byte {
	if v.null {
		dst = append(dst, 0)
		switch {
		case isBytes(dt):
			return dst
		case dt.ID() == arrow.BOOL:
			return append(dst, 0)
		}
		return append(dst, make([]byte, 8)...)
	}
	dst = append(dst, 1)
	switch {
	case isBytes(dt):
		for _, c := range v.b {
			dst = append(dst, c)
			if c == 0 {
				dst = append(dst, 0xff)
			}
		}
		return append(dst, 0, 1)
	case dt.ID() == arrow.BOOL:
		return append(dst, byte(v.i))
	case isFloat(dt):
		f := v.f
		if f == 0 {
			f = 0
		}
		if f != f {
			f = math.NaN()
		}
		u := math.Float64bits(f)
		if u>>63 == 1 {
			u = ^u
		} else {
			u |= 1 << 63
		}
		return binary.BigEndian.AppendUint64(dst, u)
	case isUnsigned(dt):
		return binary.BigEndian.AppendUint64(dst, v.u)
	}
	return binary.BigEndian.AppendUint64(dst, uint64(v.i)^1<<63)
}

// modelOf reads row r of a decoded column into a model value.
func modelOf(a arrow.Array, r int) keyVal {
	if a.IsNull(r) {
		return keyVal{null: true}
	}
	switch x := a.(type) {
	case *array.Int8:
		return keyVal{i: int64(x.Value(r))}
	case *array.Int16:
		return keyVal{i: int64(x.Value(r))}
	case *array.Int32:
		return keyVal{i: int64(x.Value(r))}
	case *array.Int64:
		return keyVal{i: x.Value(r)}
	case *array.Timestamp:
		return keyVal{i: int64(x.Value(r))}
	case *array.Date32:
		return keyVal{i: int64(x.Value(r))}
	case *array.Date64:
		return keyVal{i: int64(x.Value(r))}
	case *array.Uint8:
		return keyVal{u: uint64(x.Value(r))}
	case *array.Uint16:
		return keyVal{u: uint64(x.Value(r))}
	case *array.Uint32:
		return keyVal{u: uint64(x.Value(r))}
	case *array.Uint64:
		return keyVal{u: x.Value(r)}
	case *array.Float32:
		return keyVal{f: float64(x.Value(r))}
	case *array.Float64:
		return keyVal{f: x.Value(r)}
	case *array.Boolean:
		if x.Value(r) {
			return keyVal{i: 1}
		}
		return keyVal{}
	case *array.String:
		return keyVal{b: []byte(x.Value(r))}
	case *array.LargeString:
		return keyVal{b: []byte(x.Value(r))}
	case *array.Binary:
		return keyVal{b: x.Value(r)}
	case *array.LargeBinary:
		return keyVal{b: x.Value(r)}
	}
	panic(fmt.Sprintf("no model for %T", a))
}

// TestKeyCodecRandom checks EncodeKeys and DecodeKeys on random key tuples
// (one to three columns of random types, with nulls, some sliced) against
// the brute-force model: the bytes are the documented layout, keys compare
// like the tuples (so equal keys are equal tuples and a null equals no
// value), equal keys hash alike, and keys decode to the values (-0 as +0,
// NaNs alike).
func TestKeyCodecRandom(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewSource(7))
	var ks Keys // reused across rounds, as operators do
	for round := 0; round < 300; round++ {
		n := rng.Intn(60)
		ncols := 1 + rng.Intn(3)
		var cols []arrow.Array
		var types []arrow.DataType
		var model [][]keyVal
		for c := 0; c < ncols; c++ {
			dt := keyTypes[rng.Intn(len(keyTypes))]
			a, vals := randCol(t, rng, mem, dt, n, rng.Intn(2) == 0)
			defer a.Release()
			cols, types, model = append(cols, a), append(types, dt), append(model, vals)
		}
		if err := EncodeKeys(cols, &ks); err != nil {
			t.Fatal(err)
		}
		if ks.Len() != n || len(ks.Hashes) != n {
			t.Fatalf("round %d: %d keys, %d hashes for %d rows", round, ks.Len(), len(ks.Hashes), n)
		}
		hashes := make([]uint64, n)
		if err := arrowexec.HashColumns(cols, hashes); err != nil {
			t.Fatal(err)
		}
		keys := make([][]byte, n)
		for r := 0; r < n; r++ {
			var want []byte
			for c, dt := range types {
				want = refEncode(want, dt, model[c][r])
			}
			keys[r] = ks.Key(r)
			if !bytes.Equal(keys[r], want) || ks.Hashes[r] != hashes[r] {
				t.Fatalf("round %d row %d %v: key %x hash %x, want %x %x", round, r, types, keys[r], ks.Hashes[r], want, hashes[r])
			}
		}
		for p := 0; p < 4*n; p++ {
			i, j := rng.Intn(n), rng.Intn(n)
			want := 0
			for c, dt := range types {
				if want = cmpVal(dt, model[c][i], model[c][j]); want != 0 {
					break
				}
			}
			if got := cmpSign(bytes.Compare(keys[i], keys[j])); got != want {
				t.Fatalf("round %d %v: rows %d, %d compare %d, want %d (%+v vs %+v)", round, types, i, j, got, want, rowOf(model, i), rowOf(model, j))
			}
			if want == 0 && ks.Hashes[i] != ks.Hashes[j] {
				t.Fatalf("round %d: equal rows %d, %d hash differently", round, i, j)
			}
		}
		dec, err := DecodeKeys(mem, types, keys)
		if err != nil {
			t.Fatal(err)
		}
		for c, a := range dec {
			if !arrow.TypeEqual(a.DataType(), types[c]) || a.Len() != n {
				t.Fatalf("round %d: decoded column %d is %s of %d rows, want %s of %d", round, c, a.DataType(), a.Len(), types[c], n)
			}
			for r := 0; r < n; r++ {
				if got := modelOf(a, r); cmpVal(types[c], got, model[c][r]) != 0 {
					t.Fatalf("round %d column %d (%s) row %d: decoded %+v, want %+v", round, c, types[c], r, got, model[c][r])
				}
			}
			a.Release()
		}
		// A truncated key is an error, not a panic.
		if n > 0 && len(keys[0]) > 1 {
			short := [][]byte{keys[0][:len(keys[0])-1]}
			if got, err := DecodeKeys(mem, types, short); err == nil {
				releaseArrays(got)
				t.Fatalf("round %d: truncated key %x decoded", round, short[0])
			}
		}
	}
}

func cmpSign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

func rowOf(model [][]keyVal, r int) []keyVal {
	var out []keyVal
	for _, m := range model {
		out = append(out, m[r])
	}
	return out
}

// TestEncodeKeyValuesNoColumns: a global key (no key columns) is the empty
// key for every row.
func TestEncodeKeyValuesNoColumns(t *testing.T) {
	var ks Keys
	if err := EncodeKeyValues(nil, 3, &ks); err != nil {
		t.Fatal(err)
	}
	if ks.Len() != 3 || len(ks.Key(0)) != 0 || len(ks.Key(2)) != 0 {
		t.Fatalf("%d keys %x %x", ks.Len(), ks.Key(0), ks.Key(2))
	}
}
