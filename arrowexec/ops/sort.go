package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// Sort orders the rows of its (bounded) input by Keys and emits them at
// the end of input; with a limit it is a top-N: it keeps only the first N
// rows in that order, in a heap, as they arrive. The sort is stable (rows
// with equal keys keep their arrival order in a subtask).
type Sort struct {
	Keys []SortKey
	// Limit is N of a top-N; -1 sorts everything.
	Limit  int64
	keyIdx []int
	schema *arrow.Schema
}

var _ arrowexec.Spec = (*Sort)(nil)

// NewSort returns a full sort by keys.
func NewSort(keys []SortKey) *Sort { return &Sort{Keys: keys, Limit: -1} }

// NewTopN returns the first n rows in the order of keys.
func NewTopN(keys []SortKey, n int64) *Sort { return &Sort{Keys: keys, Limit: n} }

func (s *Sort) name() string {
	if s.Limit >= 0 {
		return fmt.Sprintf("top-%d", s.Limit)
	}
	return "sort"
}

// Schema binds the keys; the output schema is the input's.
func (s *Sort) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("ops: %s takes one input, have %d", s.name(), len(in))
	}
	idx, err := bindSortKeys(s.Keys, in[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name(), err)
	}
	s.keyIdx, s.schema = idx, in[0]
	return in[0], nil
}

// New returns the sort of one subtask.
func (s *Sort) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	if s.schema == nil {
		return nil, errors.New("ops: sort used before Schema")
	}
	return &sortOp{s: s, t: t, cols: make([]arrow.Array, len(s.keyIdx))}, nil
}

type sortOp struct {
	s       *Sort
	t       *arrowexec.Task
	batches []arrow.RecordBatch // retained: all input (sort) or heap rows (top-N)
	maxRows int                 // largest input batch: the size of output batches
	keys    rowKeys
	cols    []arrow.Array
	heap    []topEntry // top-N: a max-heap, the worst kept row at 0
	seq     int64
}

// topEntry is a row kept by a top-N: its key, arrival number (ties) and
// place among the retained batches.
type topEntry struct {
	key   []byte
	seq   int64
	batch int32
	row   int32
}

func (a *topEntry) less(b *topEntry) bool {
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

var _ arrowexec.Checkpointer = (*sortOp)(nil)

func (o *sortOp) Open(ctx context.Context) error {
	return restoreEach(o.t, o.s.name(), func(blob []byte) error { return o.restore(ctx, blob) })
}

func (o *sortOp) restore(ctx context.Context, blob []byte) error {
	rd, err := ipc.NewReader(bytes.NewReader(blob), ipc.WithAllocator(o.t.Mem), ipc.WithSchema(o.s.schema))
	if err != nil {
		return err
	}
	defer rd.Release()
	for rd.Next() {
		if err := o.Process(ctx, 0, rd.RecordBatch(), nil); err != nil {
			return err
		}
	}
	if err := rd.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (o *sortOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	n := int(b.NumRows())
	if n == 0 {
		return nil
	}
	o.maxRows = max(o.maxRows, n)
	if o.s.Limit < 0 {
		b.Retain()
		o.batches = append(o.batches, b)
		return nil
	}
	return o.topN(b)
}

// topN offers the rows of b to the heap.
func (o *sortOp) topN(b arrow.RecordBatch) error {
	limit := int(o.s.Limit)
	if limit == 0 {
		return nil
	}
	n := int(b.NumRows())
	for j, c := range o.s.keyIdx {
		o.cols[j] = b.Column(c)
	}
	o.keys.encode(o.cols, o.s.Keys, n)
	bi := int32(len(o.batches))
	kept := false
	for i := range n {
		k := o.keys.key(i)
		e := topEntry{key: k, seq: o.seq + int64(i), batch: bi, row: int32(i)}
		if len(o.heap) < limit {
			e.key = slices.Clone(k)
			o.heap = append(o.heap, e)
			o.siftUp(len(o.heap) - 1)
			kept = true
			continue
		}
		if !e.less(&o.heap[0]) {
			continue
		}
		e.key = append(o.heap[0].key[:0], k...)
		o.heap[0] = e
		o.siftDown(0)
		kept = true
	}
	o.seq += int64(n)
	if !kept {
		return nil
	}
	b.Retain()
	o.batches = append(o.batches, b)
	if len(o.batches) >= 32 {
		return o.compact()
	}
	return nil
}

func (o *sortOp) siftUp(i int) {
	h := o.heap
	for i > 0 {
		p := (i - 1) / 2
		if !h[p].less(&h[i]) {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (o *sortOp) siftDown(i int) {
	h := o.heap
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h[c].less(&h[c+1]) {
			c++
		}
		if !h[i].less(&h[c]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// compact gathers the heap's rows into one batch and releases the
// batches they came from.
func (o *sortOp) compact() error {
	per := make([][]int32, len(o.batches))
	for i := range o.heap {
		e := &o.heap[i]
		per[e.batch] = append(per[e.batch], e.row)
	}
	// Entries of batch j land after those of batches < j, in the order
	// per[j] lists them.
	base := make([]int32, len(o.batches))
	var parts []arrow.RecordBatch
	defer func() {
		for _, p := range parts {
			p.Release()
		}
	}()
	total := int32(0)
	for j, rows := range per {
		base[j] = total
		total += int32(len(rows))
		if len(rows) == 0 {
			continue
		}
		p, err := arrowexec.TakeRecord(o.t.Mem, o.batches[j], rows)
		if err != nil {
			return fmt.Errorf("%s: %w", o.s.name(), err)
		}
		parts = append(parts, p)
	}
	one, err := concatRecords(o.t.Mem, o.s.schema, parts)
	if err != nil {
		return fmt.Errorf("%s: %w", o.s.name(), err)
	}
	next := make([]int32, len(o.batches))
	for i := range o.heap {
		e := &o.heap[i]
		e.row = base[e.batch] + next[e.batch]
		next[e.batch]++
		e.batch = 0
	}
	o.release()
	o.batches = append(o.batches, one)
	return nil
}

// concatRecords returns bs as one batch (owned by the caller).
func concatRecords(mem memory.Allocator, schema *arrow.Schema, bs []arrow.RecordBatch) (arrow.RecordBatch, error) {
	if len(bs) == 1 {
		bs[0].Retain()
		return bs[0], nil
	}
	cols := make([]arrow.Array, schema.NumFields())
	parts := make([]arrow.Array, len(bs))
	rows := int64(0)
	for _, b := range bs {
		rows += b.NumRows()
	}
	for c := range cols {
		for i, b := range bs {
			parts[i] = b.Column(c)
		}
		a, err := array.Concatenate(parts, mem)
		if err != nil {
			for _, done := range cols[:c] {
				done.Release()
			}
			return nil, fmt.Errorf("concatenate column %s: %w", schema.Field(c).Name, err)
		}
		cols[c] = a
	}
	out := array.NewRecordBatch(schema, cols, rows)
	for _, c := range cols {
		c.Release()
	}
	return out, nil
}

// sorted returns the retained rows in order as one batch, or nil.
func (o *sortOp) sorted() (arrow.RecordBatch, error) {
	if len(o.batches) == 0 {
		return nil, nil
	}
	var perm []int32
	if o.s.Limit >= 0 {
		if err := o.compact(); err != nil {
			return nil, err
		}
		// A sorted copy: the heap stays valid (SnapshotState goes on).
		order := slices.Clone(o.heap)
		slices.SortFunc(order, func(a, b topEntry) int {
			if a.less(&b) {
				return -1
			}
			return 1
		})
		perm = make([]int32, len(order))
		for i, e := range order {
			perm[i] = e.row
		}
	}
	all, err := concatRecords(o.t.Mem, o.s.schema, o.batches)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.s.name(), err)
	}
	defer all.Release()
	if perm == nil {
		perm = o.permutation(all)
	}
	out, err := arrowexec.TakeRecord(o.t.Mem, all, perm)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.s.name(), err)
	}
	return out, nil
}

// permutation returns the row order of b, stable: an LSD radix sort of
// the normalized keys when they all have one width (no string keys),
// else a pattern-defeating quicksort comparing keys, then row numbers.
func (o *sortOp) permutation(b arrow.RecordBatch) []int32 {
	n := int(b.NumRows())
	for j, c := range o.s.keyIdx {
		o.cols[j] = b.Column(c)
	}
	o.keys.encode(o.cols, o.s.Keys, n)
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	if w := o.keys.width(); w > 0 {
		return radixSort(perm, o.keys.buf, w)
	}
	buf, offs := o.keys.buf, o.keys.offs
	slices.SortFunc(perm, func(a, b int32) int {
		if c := bytes.Compare(buf[offs[a]:offs[a+1]], buf[offs[b]:offs[b+1]]); c != 0 {
			return c
		}
		return int(a - b)
	})
	return perm
}

// radixSort orders perm (0..n-1) by the keys of width w in buf (row i at
// buf[i*w:]), least significant byte first; a byte position whose value
// is the same in every row costs one counting pass and no scatter.
func radixSort(perm []int32, buf []byte, w int) []int32 {
	n := len(perm)
	tmp := make([]int32, n)
	var count [256]int
	for p := w - 1; p >= 0; p-- {
		count = [256]int{}
		for _, r := range perm {
			count[buf[int(r)*w+p]]++
		}
		if count[buf[int(perm[0])*w+p]] == n {
			continue
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, r := range perm {
			k := buf[int(r)*w+p]
			tmp[count[k]] = r
			count[k]++
		}
		perm, tmp = tmp, perm
	}
	return perm
}

func (o *sortOp) Finish(ctx context.Context, out arrowexec.Emitter) error {
	if o.t.Suspended() {
		return nil // the rows stay in the savepoint
	}
	b, err := o.sorted()
	o.release()
	o.heap = o.heap[:0]
	if err != nil || b == nil {
		return err
	}
	defer b.Release()
	n := b.NumRows()
	step := int64(max(o.maxRows, 1))
	for lo := int64(0); lo < n; lo += step {
		if err := out.Emit(ctx, b.NewSlice(lo, min(n, lo+step))); err != nil {
			return err
		}
	}
	return nil
}

// SnapshotState writes the retained rows (top-N: the kept ones, in order)
// as an Arrow IPC stream.
func (o *sortOp) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	if len(o.batches) == 0 {
		return arrowexec.SubtaskSnapshot{}, nil
	}
	bs := o.batches
	if o.s.Limit >= 0 {
		// The kept rows in order, so a restore offering them first
		// keeps ties' order.
		b, err := o.sorted()
		if err != nil {
			return arrowexec.SubtaskSnapshot{}, err
		}
		defer b.Release()
		bs = []arrow.RecordBatch{b}
	}
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(o.s.schema), ipc.WithAllocator(o.t.Mem), ipc.WithLZ4())
	for _, b := range bs {
		if err := w.Write(b); err != nil {
			_ = w.Close()
			return arrowexec.SubtaskSnapshot{}, fmt.Errorf("%s: snapshot: %w", o.s.name(), err)
		}
	}
	if err := w.Close(); err != nil {
		return arrowexec.SubtaskSnapshot{}, fmt.Errorf("%s: snapshot: %w", o.s.name(), err)
	}
	return arrowexec.SubtaskSnapshot{Operator: buf.Bytes()}, nil
}

func (o *sortOp) release() {
	for _, b := range o.batches {
		b.Release()
	}
	o.batches = o.batches[:0]
}

func (o *sortOp) Close() error {
	o.release()
	return nil
}
