package nexmark

import (
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// strings gathers the arena strings spans into a string column: one pass
// for the offsets, one allocation, one pass of 16-byte copies (the
// arena and the data buffer have slack for the last word of a string).
func (g *Generator) strings(mem memory.Allocator, spans []span) arrow.Array {
	n := len(spans)
	offBuf := memory.NewResizableBuffer(mem)
	offBuf.Resize((n + 1) * 4)
	offs := arrow.Int32Traits.CastFromBytes(offBuf.Bytes())
	total := int32(0)
	offs[0] = 0
	for i, s := range spans {
		total += int32(s.len)
		offs[i+1] = total
	}
	dataBuf := memory.NewResizableBuffer(mem)
	dataBuf.Resize(int(total) + 16)
	data := dataBuf.Bytes()
	src := unsafe.Pointer(unsafe.SliceData(g.arena))
	dst := unsafe.Pointer(unsafe.SliceData(data))
	pos := uintptr(0)
	for _, s := range spans {
		from := unsafe.Add(src, s.off)
		to := unsafe.Add(dst, pos)
		for k := uint32(0); k < s.len; k += 16 {
			*(*[2]uint64)(unsafe.Add(to, k)) = *(*[2]uint64)(unsafe.Add(from, k))
		}
		pos += uintptr(s.len)
	}
	dataBuf.ResizeNoShrink(int(total))
	d := array.NewData(str, n, []*memory.Buffer{nil, offBuf, dataBuf}, nil, 0, 0)
	offBuf.Release()
	dataBuf.Release()
	a := array.MakeFromData(d)
	d.Release()
	return a
}
