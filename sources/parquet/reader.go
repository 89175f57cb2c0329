package parquet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/filelist"
)

// workItem is a row group assigned to a subtask, with the rows of it already
// emitted (by this run or, after a restore, by the previous one).
type workItem struct {
	group int   // index into Source.groups
	skip  int64 // rows already emitted
	rows  int64 // rows in the row group
}

// split assigns items to p subtasks, balancing the rows left to read
// (filelist.Assign: largest first to the least loaded subtask), so the
// result depends only on the items and p. Each subtask reads its items in
// (file, row group) order; items must come in that order.
func split(items []workItem, p int) [][]workItem {
	loads := make([]int64, len(items))
	for i, it := range items {
		loads[i] = it.rows - it.skip
	}
	out := make([][]workItem, p)
	for j, idx := range filelist.Assign(loads, p) {
		for _, i := range idx {
			out[j] = append(out[j], items[i])
		}
	}
	return out
}

// Position is how far a reader got: Row rows of row group RowGroup of File
// have been emitted, and every row group of the reader before it is done.
// The zero Position means nothing was read.
type Position struct {
	File     string `json:"file"`
	RowGroup int    `json:"row_group"`
	Row      int64  `json:"row"`
}

// snapshot is the operator state of one subtask: the work it has left.
// Storing the work left (rather than a position in an assignment) lets a job
// restore with a different parallelism.
type snapshot struct {
	Version   int        `json:"version"`
	Remaining []Position `json:"remaining"`
}

// fileDecoder decodes row groups of one open file.
type fileDecoder interface {
	// openRowGroup starts reading row group rg, skipping its first skip rows.
	openRowGroup(ctx context.Context, rg int, skip int64) (groupDecoder, error)
	close() error
}

// groupDecoder decodes the projected columns of one row group.
type groupDecoder interface {
	// next consumes the next n rows and returns those that pass the
	// string filters (all n without filters): every projected column, in
	// projection order, and their number. The caller owns the arrays.
	next(n int) ([]arrow.Array, int, error)
	close()
}

// Reader reads the row groups of one subtask. It implements
// arrowexec.SourceReader and arrowexec.Checkpointer.
type Reader struct {
	s     *Source
	t     *arrowexec.Task
	mem   memory.Allocator
	items []workItem
	cur   int   // index of the current item
	done  int64 // rows of items[cur] emitted, including skipped ones

	fd     fileDecoder
	fdFile int // index into s.files of fd, or -1
	gd     groupDecoder

	counted int64 // bytes of items[cur] already added to BytesIn (or skipped)
	pos     Position
	err     error
	closed  bool
	wm      *readerWM // event-time watermarks, or nil
}

var (
	_ arrowexec.SourceReader = (*Reader)(nil)
	_ arrowexec.Checkpointer = (*Reader)(nil)
)

func newReader(s *Source, t *arrowexec.Task, items []workItem) *Reader {
	mem := t.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return &Reader{s: s, t: t, mem: mem, items: items, fdFile: -1, wm: s.newReaderWM(items)}
}

// Next returns the next batch, owned by the caller, or io.EOF. A batch holds
// at most Options.BatchSize rows of one row group.
func (r *Reader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.closed {
		return nil, fmt.Errorf("parquet: reader closed")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for {
		if r.cur >= len(r.items) {
			r.release()
			return nil, io.EOF
		}
		it := &r.items[r.cur]
		g := &r.s.groups[it.group]
		if r.gd == nil {
			if it.skip >= it.rows {
				r.advance()
				continue
			}
			if err := r.openGroup(ctx, it, g); err != nil {
				r.err = err
				return nil, err
			}
		}
		n := min(int64(r.s.opts.BatchSize), it.rows-r.done)
		if n == 0 {
			r.advance()
			continue
		}
		cols, rows, err := r.gd.next(int(n))
		if err != nil {
			r.err = err
			return nil, err
		}
		r.done += n
		r.pos.Row = r.done
		if m := r.t.Metrics; m != nil {
			b := share(g.bytes, r.done, g.rows)
			m.BytesIn.Add(b - r.counted)
			r.counted = b
		}
		if rows == 0 { // every row filtered out in the scan
			releaseAll(cols)
			continue
		}
		if cols, err = r.s.conform(ctx, r.mem, g.file, cols, rows); err != nil {
			r.err = err
			return nil, err
		}
		r.s.encodeDicts(r.mem, cols)
		rec := array.NewRecordBatch(r.s.schema, cols, int64(rows))
		for _, c := range cols {
			c.Release()
		}
		if err := r.wm.observe(rec); err != nil {
			rec.Release()
			r.err = err
			return nil, err
		}
		return rec, nil
	}
}

func (r *Reader) openGroup(ctx context.Context, it *workItem, g *rowGroup) error {
	if r.fdFile != g.file {
		if r.fd != nil {
			r.fd.close()
			r.fd, r.fdFile = nil, -1
		}
		fd, err := r.s.openFile(r.mem, g.file)
		if err != nil {
			return err
		}
		r.fd, r.fdFile = fd, g.file
	}
	gd, err := r.fd.openRowGroup(ctx, g.index, it.skip)
	if err != nil {
		return err
	}
	r.gd = gd
	r.done = it.skip
	r.counted = share(g.bytes, it.skip, g.rows)
	r.pos = Position{File: r.s.files[g.file].path, RowGroup: g.index, Row: it.skip}
	return nil
}

// advance finishes the current item.
func (r *Reader) advance() {
	if r.gd != nil {
		r.gd.close()
		r.gd = nil
	}
	it := r.items[r.cur]
	g := r.s.groups[it.group]
	r.pos = Position{File: r.s.files[g.file].path, RowGroup: g.index, Row: it.rows}
	r.cur++
	r.done = 0
}

// share returns bytes*done/rows without overflow.
func share(bytes, done, rows int64) int64 {
	if rows <= 0 || done >= rows {
		return bytes
	}
	hi, lo := bits.Mul64(uint64(bytes), uint64(done))
	q, _ := bits.Div64(hi, lo, uint64(rows))
	return int64(q)
}

// Position returns how far the reader got.
func (r *Reader) Position() Position { return r.pos }

// Seek makes the reader resume after p: row groups of this reader before
// p's row group are dropped and p.Row rows of it are skipped. p must name a
// row group of this reader. The zero Position is a no-op.
func (r *Reader) Seek(p Position) error {
	if p == (Position{}) {
		return nil
	}
	gi, ok := r.s.byKey[rgKey{p.File, p.RowGroup}]
	if !ok {
		return fmt.Errorf("parquet: seek: file %s row group %d is not read by this source", p.File, p.RowGroup)
	}
	j := slices.IndexFunc(r.items, func(it workItem) bool { return it.group == gi })
	if j < 0 {
		return fmt.Errorf("parquet: seek: file %s row group %d is not assigned to subtask %d", p.File, p.RowGroup, r.t.Subtask)
	}
	if p.Row < 0 || p.Row > r.items[j].rows {
		return fmt.Errorf("parquet: seek: file %s row group %d: row %d out of range [0, %d]", p.File, p.RowGroup, p.Row, r.items[j].rows)
	}
	if r.gd != nil {
		r.gd.close()
		r.gd = nil
	}
	r.items = r.items[j:]
	r.items[0].skip = p.Row
	r.cur, r.done, r.err = 0, 0, nil
	r.pos = p
	return nil
}

// remaining lists the work left, as positions.
func (r *Reader) remaining() []Position {
	out := []Position{}
	for i := r.cur; i < len(r.items); i++ {
		it := r.items[i]
		g := r.s.groups[it.group]
		row := it.skip
		if i == r.cur && r.gd != nil {
			row = r.done
		}
		if row >= it.rows {
			continue
		}
		out = append(out, Position{File: r.s.files[g.file].path, RowGroup: g.index, Row: row})
	}
	return out
}

// SnapshotState records the work this subtask has left. It is called between
// two batches.
func (r *Reader) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	b, err := json.Marshal(snapshot{Version: 1, Remaining: r.remaining()})
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return arrowexec.SubtaskSnapshot{Operator: b}, nil
}

// restoreItems unions the work left in the snapshots of every subtask of the
// previous run.
func (s *Source) restoreItems(states [][]byte) ([]workItem, error) {
	var items []workItem
	seen := make(map[int]bool)
	for i, b := range states {
		if len(b) == 0 {
			return nil, fmt.Errorf("parquet: restore: no state for previous subtask %d", i)
		}
		var sn snapshot
		if err := json.Unmarshal(b, &sn); err != nil {
			return nil, fmt.Errorf("parquet: restore: state of previous subtask %d: %v", i, err)
		}
		if sn.Version != 1 {
			return nil, fmt.Errorf("parquet: restore: state of previous subtask %d: unknown version %d", i, sn.Version)
		}
		for _, p := range sn.Remaining {
			gi, ok := s.byKey[rgKey{p.File, p.RowGroup}]
			if !ok {
				return nil, fmt.Errorf("parquet: restore: file %s row group %d is not read by this source", p.File, p.RowGroup)
			}
			if seen[gi] {
				return nil, fmt.Errorf("parquet: restore: file %s row group %d appears twice", p.File, p.RowGroup)
			}
			if p.Row < 0 || p.Row > s.groups[gi].rows {
				return nil, fmt.Errorf("parquet: restore: file %s row group %d: row %d out of range", p.File, p.RowGroup, p.Row)
			}
			seen[gi] = true
			items = append(items, workItem{group: gi, skip: p.Row, rows: s.groups[gi].rows})
		}
	}
	slices.SortFunc(items, func(a, b workItem) int { return a.group - b.group })
	return items, nil
}

func (r *Reader) release() {
	if r.gd != nil {
		r.gd.close()
		r.gd = nil
	}
	if r.fd != nil {
		r.fd.close()
		r.fd, r.fdFile = nil, -1
	}
}

// Close releases the open file and decoding buffers. It is safe to call twice.
func (r *Reader) Close() error {
	r.release()
	r.closed = true
	return nil
}
