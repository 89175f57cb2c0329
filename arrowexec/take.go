package arrowexec

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TakeRecord gathers the rows idx of rec into a new batch (owned by the
// caller). It is the one gather kernel behind filters (selection vectors)
// and hash exchanges (per-target index lists).
func TakeRecord(mem memory.Allocator, rec arrow.RecordBatch, idx []int32) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, rec.NumCols())
	for i := range cols {
		c, err := TakeArray(mem, rec.Column(i), idx)
		if err != nil {
			for _, done := range cols[:i] {
				done.Release()
			}
			return nil, fmt.Errorf("arrowexec: take column %q: %w", rec.ColumnName(i), err)
		}
		cols[i] = c
	}
	out := array.NewRecordBatch(rec.Schema(), cols, int64(len(idx)))
	for _, c := range cols {
		c.Release()
	}
	return out, nil
}

// TakeArray gathers the values idx of a into a new array (owned by the
// caller). Fixed-width, boolean and string/binary arrays use typed gather
// loops; other types fall back to arrow's compute.Take.
func TakeArray(mem memory.Allocator, a arrow.Array, idx []int32) (arrow.Array, error) {
	d := a.Data()
	n := len(idx)
	switch dt := a.DataType().(type) {
	case *arrow.DictionaryType:
		// Gather the indices; the dictionary is shared, not copied.
		ix, err := TakeArray(mem, a.(*array.Dictionary).Indices(), idx)
		if err != nil {
			return nil, err
		}
		defer ix.Release()
		id := ix.Data()
		out := array.NewData(dt, n, id.Buffers(), nil, id.NullN(), 0)
		defer out.Release()
		out.SetDictionary(d.Dictionary())
		return array.MakeFromData(out), nil
	case arrow.FixedWidthDataType:
		if _, isBool := dt.(*arrow.BooleanType); isBool {
			return takeBool(mem, a, idx), nil
		}
		width := dt.BitWidth() / 8
		if dt.BitWidth()%8 != 0 || (width != 1 && width != 2 && width != 4 && width != 8) {
			break
		}
		validity, nulls := takeValidity(mem, a, idx)
		values := memory.NewResizableBuffer(mem)
		values.Resize(n * width)
		src := d.Buffers()[1].Bytes()
		off := d.Offset()
		dst := values.Bytes()
		switch width {
		case 1:
			gather(dst[:n], src[off:], idx)
		case 2:
			gather(view[uint16](dst, n), view[uint16](src[off*2:], d.Len()), idx)
		case 4:
			gather(view[uint32](dst, n), view[uint32](src[off*4:], d.Len()), idx)
		case 8:
			gather(view[uint64](dst, n), view[uint64](src[off*8:], d.Len()), idx)
		}
		return finish(a.DataType(), n, validity, values, nil, nulls), nil
	case *arrow.StringType, *arrow.BinaryType:
		return takeBinary(mem, a, idx), nil
	}
	idxArr := array.NewInt32Data(array.NewData(arrow.PrimitiveTypes.Int32, n,
		[]*memory.Buffer{nil, memory.NewBufferBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(idx))), n*4))}, nil, 0, 0))
	defer idxArr.Release()
	return compute.TakeArray(compute.WithAllocator(context.Background(), mem), a, idxArr)
}

func view[T any](b []byte, n int) []T {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

func gather[T any](dst, src []T, idx []int32) {
	dst = dst[:len(idx)]
	for i, j := range idx {
		dst[i] = src[j]
	}
}

func finish(dt arrow.DataType, n int, validity, values, data *memory.Buffer, nulls int) arrow.Array {
	bufs := []*memory.Buffer{validity, values}
	if data != nil {
		bufs = append(bufs, data)
	}
	ad := array.NewData(dt, n, bufs, nil, nulls, 0)
	out := array.MakeFromData(ad)
	ad.Release()
	for _, b := range bufs {
		if b != nil {
			b.Release()
		}
	}
	return out
}

// takeValidity gathers the validity bitmap; nil when no value is null.
func takeValidity(mem memory.Allocator, a arrow.Array, idx []int32) (*memory.Buffer, int) {
	if a.NullN() == 0 {
		return nil, 0
	}
	d := a.Data()
	src := d.Buffers()[0].Bytes()
	off := d.Offset()
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(int(bitutil.BytesForBits(int64(len(idx)))))
	dst := buf.Bytes()
	clear(dst)
	nulls := 0
	for i, j := range idx {
		if bitutil.BitIsSet(src, off+int(j)) {
			bitutil.SetBit(dst, i)
		} else {
			nulls++
		}
	}
	if nulls == 0 {
		buf.Release()
		return nil, 0
	}
	return buf, nulls
}

func takeBool(mem memory.Allocator, a arrow.Array, idx []int32) arrow.Array {
	d := a.Data()
	validity, nulls := takeValidity(mem, a, idx)
	values := memory.NewResizableBuffer(mem)
	values.Resize(int(bitutil.BytesForBits(int64(len(idx)))))
	dst := values.Bytes()
	clear(dst)
	src := d.Buffers()[1].Bytes()
	off := d.Offset()
	for i, j := range idx {
		if bitutil.BitIsSet(src, off+int(j)) {
			bitutil.SetBit(dst, i)
		}
	}
	return finish(a.DataType(), len(idx), validity, values, nil, nulls)
}

func takeBinary(mem memory.Allocator, a arrow.Array, idx []int32) arrow.Array {
	d := a.Data()
	validity, nulls := takeValidity(mem, a, idx)
	srcOffs := view[int32](d.Buffers()[1].Bytes()[d.Offset()*4:], d.Len()+1)
	var srcData []byte
	if d.Buffers()[2] != nil {
		srcData = d.Buffers()[2].Bytes()
	}
	offsets := memory.NewResizableBuffer(mem)
	offsets.Resize((len(idx) + 1) * 4)
	dstOffs := view[int32](offsets.Bytes(), len(idx)+1)
	total := int32(0)
	for i, j := range idx {
		dstOffs[i] = total
		total += srcOffs[j+1] - srcOffs[j]
	}
	dstOffs[len(idx)] = total
	data := memory.NewResizableBuffer(mem)
	data.Resize(int(total))
	dst := data.Bytes()
	for i, j := range idx {
		copy(dst[dstOffs[i]:dstOffs[i+1]], srcData[srcOffs[j]:srcOffs[j+1]])
	}
	return finish(a.DataType(), len(idx), validity, offsets, data, nulls)
}

// DecodeDictionary returns the values of a dictionary-encoded array, one
// per row (owned by the caller): the dictionary gathered by index with
// TakeArray, NULL where the index or the entry is NULL.
func DecodeDictionary(mem memory.Allocator, d *array.Dictionary) (arrow.Array, error) {
	idx := make([]int32, d.Len())
	for r := range idx {
		if d.IsValid(r) {
			idx[r] = int32(d.GetValueIndex(r))
		}
	}
	vals, err := TakeArray(mem, d.Dictionary(), idx)
	if err != nil || d.NullN() == 0 {
		return vals, err
	}
	defer vals.Release()
	// Rows whose index is NULL are NULL whatever entry they took.
	vd := vals.Data()
	valid := memory.NewResizableBuffer(mem)
	defer valid.Release()
	valid.Resize(int(bitutil.BytesForBits(int64(d.Len()))))
	vb := valid.Bytes()
	clear(vb)
	for r := 0; r < d.Len(); r++ {
		if d.IsValid(r) && vals.IsValid(r) {
			bitutil.SetBit(vb, r)
		}
	}
	bufs := append([]*memory.Buffer{valid}, vd.Buffers()[1:]...)
	nd := array.NewData(vd.DataType(), vd.Len(), bufs, vd.Children(), array.UnknownNullCount, vd.Offset())
	defer nd.Release()
	return array.MakeFromData(nd), nil
}
