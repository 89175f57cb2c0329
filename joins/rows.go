package joins

import (
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Row encoding of the rows kept in state: per column a validity byte (0
// null, 1 valid) and, when valid, the value: fixed-width types as their
// little-endian bytes (the Arrow buffer's own), booleans as one byte,
// strings and binaries as a uint32 length and the bytes. Encoding and
// decoding go column by column with one typed loop each (rows are cut at
// precomputed offsets), not value by value through an interface.

// colKind is how a column is encoded.
type colKind uint8

const (
	kindFixed colKind = iota // fixed-width values, width bytes each
	kindBool
	kindVar // string or binary (int32 offsets)
)

type colCodec struct {
	kind  colKind
	width int
	dt    arrow.DataType
}

// rowCodec encodes rows of one schema.
type rowCodec struct {
	cols []colCodec
	// scratch
	sizes []int
	curs  []int
}

func newRowCodec(s *arrow.Schema) (*rowCodec, error) {
	rc := &rowCodec{}
	for _, f := range s.Fields() {
		c := colCodec{dt: f.Type}
		switch dt := f.Type.(type) {
		case *arrow.BooleanType:
			c.kind = kindBool
		case *arrow.StringType, *arrow.BinaryType:
			c.kind = kindVar
		case arrow.FixedWidthDataType:
			c.kind, c.width = kindFixed, dt.BitWidth()/8
			if c.width == 0 || dt.BitWidth()%8 != 0 {
				return nil, fmt.Errorf("joins: column %q: type %s cannot be kept in join state", f.Name, f.Type)
			}
		default:
			return nil, fmt.Errorf("joins: column %q: type %s cannot be kept in join state", f.Name, f.Type)
		}
		rc.cols = append(rc.cols, c)
	}
	return rc, nil
}

// encode appends to dst, for every row i of b, prefix(i) followed by the
// row's encoding, and returns dst and the end offset of each row in it
// (ends[i]; row i starts at ends[i-1], or at len(dst) on entry for i = 0).
// prefixLen is the length prefix writes.
func (rc *rowCodec) encode(dst []byte, b arrow.RecordBatch, prefixLen int, prefix func(dst []byte, i int), ends []int) ([]byte, []int) {
	n := int(b.NumRows())
	rc.sizes = grow(rc.sizes, n)
	for i := range rc.sizes {
		rc.sizes[i] = prefixLen + len(rc.cols)
	}
	for c, cc := range rc.cols {
		col := b.Column(c)
		switch cc.kind {
		case kindFixed:
			addValid(rc.sizes, col, cc.width)
		case kindBool:
			addValid(rc.sizes, col, 1)
		case kindVar:
			offs := varOffsets(col)
			for i := 0; i < n; i++ {
				if col.IsValid(i) {
					rc.sizes[i] += 4 + int(offs[i+1]-offs[i])
				}
			}
		}
	}
	base := len(dst)
	ends = grow(ends, n)
	rc.curs = grow(rc.curs, n)
	at := base
	for i, sz := range rc.sizes {
		rc.curs[i] = at + prefixLen
		at += sz
		ends[i] = at
	}
	dst = growLen(dst, at)
	for i := 0; i < n; i++ {
		start := base
		if i > 0 {
			start = ends[i-1]
		}
		prefix(dst[start:start+prefixLen], i)
	}
	cur := rc.curs
	for c, cc := range rc.cols {
		col := b.Column(c)
		switch cc.kind {
		case kindFixed:
			d := col.Data()
			vals := d.Buffers()[1].Bytes()[d.Offset()*cc.width:]
			w := cc.width
			for i := 0; i < n; i++ {
				if col.IsNull(i) {
					dst[cur[i]] = 0
					cur[i]++
					continue
				}
				dst[cur[i]] = 1
				copy(dst[cur[i]+1:cur[i]+1+w], vals[i*w:(i+1)*w])
				cur[i] += 1 + w
			}
		case kindBool:
			a := col.(*array.Boolean)
			for i := 0; i < n; i++ {
				if a.IsNull(i) {
					dst[cur[i]] = 0
					cur[i]++
					continue
				}
				dst[cur[i]] = 1
				dst[cur[i]+1] = 0
				if a.Value(i) {
					dst[cur[i]+1] = 1
				}
				cur[i] += 2
			}
		case kindVar:
			offs := varOffsets(col)
			data := varData(col)
			for i := 0; i < n; i++ {
				if col.IsNull(i) {
					dst[cur[i]] = 0
					cur[i]++
					continue
				}
				v := data[offs[i]:offs[i+1]]
				dst[cur[i]] = 1
				binary.LittleEndian.PutUint32(dst[cur[i]+1:], uint32(len(v)))
				copy(dst[cur[i]+5:], v)
				cur[i] += 5 + len(v)
			}
		}
	}
	return dst, ends
}

// decode builds one array per column from rows (each a row encoding
// without its prefix), owned by the caller.
func (rc *rowCodec) decode(mem memory.Allocator, rows [][]byte) ([]arrow.Array, error) {
	n := len(rows)
	rc.curs = grow(rc.curs, n)
	cur := rc.curs
	for i := range cur {
		cur[i] = 0
	}
	out := make([]arrow.Array, 0, len(rc.cols))
	fail := func(c int) ([]arrow.Array, error) {
		for _, a := range out {
			a.Release()
		}
		return nil, fmt.Errorf("joins: corrupt row in state (column %d)", c)
	}
	for c, cc := range rc.cols {
		// Validity first (and the bounds of every value).
		valid := memory.NewResizableBuffer(mem)
		valid.Resize(int(bitutil.BytesForBits(int64(n))))
		vb := valid.Bytes()
		for i := range vb {
			vb[i] = 0
		}
		nulls := 0
		var built arrow.Array
		switch cc.kind {
		case kindFixed, kindBool:
			w := cc.width
			if cc.kind == kindBool {
				w = 1
			}
			vals := memory.NewResizableBuffer(mem)
			if cc.kind == kindBool {
				vals.Resize(int(bitutil.BytesForBits(int64(n))))
			} else {
				vals.Resize(n * w)
			}
			db := vals.Bytes()
			for i := range db {
				db[i] = 0
			}
			for i, r := range rows {
				p := cur[i]
				if p >= len(r) {
					valid.Release()
					vals.Release()
					return fail(c)
				}
				if r[p] == 0 {
					nulls++
					cur[i] = p + 1
					continue
				}
				if p+1+w > len(r) {
					valid.Release()
					vals.Release()
					return fail(c)
				}
				bitutil.SetBit(vb, i)
				if cc.kind == kindBool {
					if r[p+1] != 0 {
						bitutil.SetBit(db, i)
					}
				} else {
					copy(db[i*w:(i+1)*w], r[p+1:p+1+w])
				}
				cur[i] = p + 1 + w
			}
			built = makeArray(cc.dt, n, nulls, valid, vals, nil)
		case kindVar:
			offBuf := memory.NewResizableBuffer(mem)
			offBuf.Resize((n + 1) * 4)
			offs := arrow.Int32Traits.CastFromBytes(offBuf.Bytes())
			total := 0
			for i, r := range rows {
				offs[i] = int32(total)
				p := cur[i]
				if p >= len(r) {
					valid.Release()
					offBuf.Release()
					return fail(c)
				}
				if r[p] == 0 {
					nulls++
					continue
				}
				if p+5 > len(r) {
					valid.Release()
					offBuf.Release()
					return fail(c)
				}
				l := int(binary.LittleEndian.Uint32(r[p+1:]))
				if p+5+l > len(r) {
					valid.Release()
					offBuf.Release()
					return fail(c)
				}
				bitutil.SetBit(vb, i)
				total += l
			}
			offs[n] = int32(total)
			data := memory.NewResizableBuffer(mem)
			data.Resize(total)
			db := data.Bytes()
			for i, r := range rows {
				p := cur[i]
				if r[p] == 0 {
					cur[i] = p + 1
					continue
				}
				l := int(binary.LittleEndian.Uint32(r[p+1:]))
				copy(db[offs[i]:], r[p+5:p+5+l])
				cur[i] = p + 5 + l
			}
			built = makeArray(cc.dt, n, nulls, valid, offBuf, data)
		}
		out = append(out, built)
	}
	return out, nil
}

// makeArray wraps the buffers (taking over their references) in an array.
func makeArray(dt arrow.DataType, n, nulls int, valid, values, data *memory.Buffer) arrow.Array {
	if nulls == 0 {
		valid.Release()
		valid = nil
	}
	bufs := []*memory.Buffer{valid, values}
	if data != nil {
		bufs = append(bufs, data)
	}
	d := array.NewData(dt, n, bufs, nil, nulls, 0)
	for _, b := range bufs {
		if b != nil {
			b.Release()
		}
	}
	a := array.MakeFromData(d)
	d.Release()
	return a
}

// addValid adds w to sizes[i] for every valid row of col.
func addValid(sizes []int, col arrow.Array, w int) {
	if col.NullN() == 0 {
		for i := range sizes {
			sizes[i] += w
		}
		return
	}
	for i := range sizes {
		if col.IsValid(i) {
			sizes[i] += w
		}
	}
}

// varOffsets returns the value offsets of a string or binary column
// (relative to varData).
func varOffsets(col arrow.Array) []int32 {
	switch a := col.(type) {
	case *array.String:
		return rebase(a.ValueOffsets())
	case *array.Binary:
		return rebase(a.ValueOffsets())
	}
	return nil
}

func rebase(offs []int32) []int32 {
	if len(offs) == 0 || offs[0] == 0 {
		return offs
	}
	out := make([]int32, len(offs))
	for i, o := range offs {
		out[i] = o - offs[0]
	}
	return out
}

func varData(col arrow.Array) []byte {
	switch a := col.(type) {
	case *array.String:
		offs := a.ValueOffsets()
		return a.ValueBytes()[:offs[len(offs)-1]-offs[0]]
	case *array.Binary:
		offs := a.ValueOffsets()
		return a.ValueBytes()[:offs[len(offs)-1]-offs[0]]
	}
	return nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func growLen(s []byte, n int) []byte {
	if cap(s) < n {
		ns := make([]byte, n, 2*n)
		copy(ns, s)
		return ns
	}
	return s[:n]
}
