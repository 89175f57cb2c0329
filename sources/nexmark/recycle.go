package nexmark

import (
	"math/bits"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// A recycler is the memory.Allocator a Reader builds its batches from: it
// keeps the buffers its batches free (when the last consumer releases
// them, on whatever goroutine) and hands them out again for later
// batches, so that a running source neither asks Go's allocator for
// megabytes per batch nor makes the garbage collector find them again.
//
// Memory it hands out is NOT zeroed: it serves only the generator, which
// writes every byte of a buffer's length (int64 columns, offsets, string
// data). Buffers are grouped by size class (8 classes per power of two, so
// at most 1/8 is wasted); it keeps at most recycleMaxBytes, freeing the
// rest to the allocator below. After close it keeps nothing: close frees
// what it holds and later frees pass straight through, so a job's checked
// allocator ends at zero once every batch is released.
type recycler struct {
	mem memory.Allocator

	mu     sync.Mutex
	free   map[int][][]byte // by class size; each of len == cap == class size
	kept   int              // bytes held in free
	closed bool
}

const (
	recycleMinBytes = 512      // smaller buffers pass through
	recycleMaxBytes = 64 << 20 // held at most
)

var _ memory.Allocator = (*recycler)(nil)

func newRecycler(mem memory.Allocator) *recycler {
	return &recycler{mem: mem, free: map[int][][]byte{}}
}

// classSize rounds n ≥ 16 up to the next of 8 steps per power of two.
func classSize(n int) int {
	shift := bits.Len(uint(n-1)) - 4 // keep the top 4 bits of n-1: 8 steps
	step := 1 << shift
	return (n + step - 1) &^ (step - 1)
}

// Allocate implements memory.Allocator. The result has length size and
// capacity its class size.
func (r *recycler) Allocate(size int) []byte {
	if size < recycleMinBytes {
		return r.mem.Allocate(size)
	}
	c := classSize(size)
	r.mu.Lock()
	if l := r.free[c]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		r.free[c] = l[:len(l)-1]
		r.kept -= c
		r.mu.Unlock()
		return b[:size]
	}
	r.mu.Unlock()
	return r.mem.Allocate(c)[:size:c]
}

// Reallocate implements memory.Allocator.
func (r *recycler) Reallocate(size int, b []byte) []byte {
	if len(b) >= recycleMinBytes && size >= recycleMinBytes && size <= cap(b) {
		return b[:size] // a recycled buffer: its capacity is its class
	}
	nb := r.Allocate(size)
	copy(nb, b)
	r.Free(b)
	return nb
}

// Free implements memory.Allocator: the buffer is kept for reuse unless
// the recycler is closed or full.
func (r *recycler) Free(b []byte) {
	if len(b) < recycleMinBytes { // passed through by Allocate
		r.mem.Free(b)
		return
	}
	c := cap(b)
	b = b[:c]
	r.mu.Lock()
	if r.closed || r.kept+c > recycleMaxBytes {
		r.mu.Unlock()
		r.mem.Free(b)
		return
	}
	r.free[c] = append(r.free[c], b)
	r.kept += c
	r.mu.Unlock()
}

// close frees every kept buffer; later frees pass through.
func (r *recycler) close() {
	r.mu.Lock()
	free := r.free
	r.free, r.kept, r.closed = map[int][][]byte{}, 0, true
	r.mu.Unlock()
	for _, l := range free {
		for _, b := range l {
			r.mem.Free(b)
		}
	}
}
