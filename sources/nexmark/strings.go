package nexmark

import (
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// strings gathers the arena strings spans into a string column: one pass
// for the offsets, one allocation, one pass of 16-byte copies (the arena
// has arenaSlack bytes past its last string and the data buffer slack for
// the last chunk). With maxLen > 0, no span longer, every string is copied
// in the same number of chunks, so no branch depends on its length (what
// a chunk writes past a string's end the next one overwrites); with
// maxLen 0, in as many as its length needs.
func (g *Generator) strings(mem memory.Allocator, spans []span, maxLen int) arrow.Array {
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
	chunks := (maxLen + 15) / 16
	dataBuf := memory.NewResizableBuffer(mem)
	dataBuf.Resize(int(total) + 16*max(chunks, 1))
	data := dataBuf.Bytes()
	src := unsafe.Pointer(unsafe.SliceData(g.arena))
	dst := unsafe.Pointer(unsafe.SliceData(data))
	pos := uintptr(0)
	if chunks > 0 {
		for _, s := range spans {
			from := unsafe.Add(src, s.off)
			to := unsafe.Add(dst, pos)
			for k := range chunks {
				*(*[2]uint64)(unsafe.Add(to, 16*k)) = *(*[2]uint64)(unsafe.Add(from, 16*k))
			}
			pos += uintptr(s.len)
		}
	} else {
		for _, s := range spans {
			from := unsafe.Add(src, s.off)
			to := unsafe.Add(dst, pos)
			for k := uint32(0); k < s.len; k += 16 {
				*(*[2]uint64)(unsafe.Add(to, k)) = *(*[2]uint64)(unsafe.Add(from, k))
			}
			pos += uintptr(s.len)
		}
	}
	dataBuf.ResizeNoShrink(int(total))
	d := array.NewData(str, n, []*memory.Buffer{nil, offBuf, dataBuf}, nil, 0, 0)
	offBuf.Release()
	dataBuf.Release()
	a := array.MakeFromData(d)
	d.Release()
	return a
}
