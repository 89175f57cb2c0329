package text

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/deadletter"
)

// readChunk is the initial read buffer of a reader; a record longer than
// the buffer doubles it.
const readChunk = 4 << 20

// Reader reads the splits of one subtask. It implements
// arrowexec.SourceReader, arrowexec.Checkpointer,
// arrowexec.WatermarkSource and arrowexec.SuspendWatermarker.
type Reader struct {
	s      *Source
	t      *arrowexec.Task
	mem    memory.Allocator
	splits []split
	cur    int // index of the current split

	f      *os.File
	fFile  int    // index into s.files of f, or -1
	buf    []byte // bytes of the current split from file offset bufOff
	bufOff int64
	pos    int   // next record in buf
	readTo int64 // file offset up to which buf is filled
	line   int64 // line of the record at pos
	opened bool  // the current split was started

	b       batch
	wm      *arrowexec.Watermarks
	dlOpen  bool
	err     error
	pending error // a malformed record's error, returned after the rows before it
	closed  bool
}

var (
	_ arrowexec.SourceReader       = (*Reader)(nil)
	_ arrowexec.Checkpointer       = (*Reader)(nil)
	_ arrowexec.WatermarkSource    = (*Reader)(nil)
	_ arrowexec.SuspendWatermarker = (*Reader)(nil)
)

func newReader(s *Source, t *arrowexec.Task, splits []split) *Reader {
	mem := t.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	r := &Reader{s: s, t: t, mem: mem, splits: splits, fFile: -1, dlOpen: s.dl != nil}
	r.b.init(s, mem)
	if w := s.opts.Watermark; w.Column != "" {
		r.wm = arrowexec.NewWatermarks(arrowexec.WatermarkStrategy{Column: w.Column, MaxOutOfOrderness: w.MaxOutOfOrderness}, nil)
		r.wm.AddSplit(0)
	}
	return r
}

// Next returns the next batch, owned by the caller, or io.EOF. A batch
// holds at most Options.BatchSize rows of one split, in file order.
func (r *Reader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.closed {
		return nil, fmt.Errorf("%s: reader closed", r.s.opts.prefix())
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for {
		if r.cur >= len(r.splits) {
			r.closeFile()
			return nil, io.EOF
		}
		if !r.opened {
			if err := r.startSplit(); err != nil {
				r.err = err
				return nil, err
			}
		}
		if r.pending != nil {
			r.err = r.pending
			return nil, r.err
		}
		start := r.bufOff + int64(r.pos)
		rows, err := r.fill()
		if m := r.t.Metrics; m != nil {
			m.BytesIn.Add(r.bufOff + int64(r.pos) - start)
		}
		if err != nil {
			r.err = err
			return nil, err
		}
		if rows == 0 {
			if r.splitDone() {
				r.cur++
				r.opened = false
			}
			continue
		}
		rec, err := r.b.build(r, rows)
		if err != nil {
			r.err = err
			return nil, err
		}
		if rec == nil { // every row was bad
			continue
		}
		if r.wm != nil {
			if err := r.wm.Observe(0, rec.Column(r.s.schema.FieldIndices(r.s.opts.Watermark.Column)[0])); err != nil {
				rec.Release()
				r.err = err
				return nil, err
			}
		}
		return rec, nil
	}
}

func (r *Reader) path() string { return r.s.files[r.splits[r.cur].file].path }

func (r *Reader) startSplit() error {
	sp := r.splits[r.cur]
	if r.fFile != sp.file {
		r.closeFile()
		f, err := os.Open(r.s.files[sp.file].path)
		if err != nil {
			return r.s.fileErr(r.s.files[sp.file].path, err)
		}
		r.f, r.fFile = f, sp.file
	}
	if r.buf == nil {
		r.buf = make([]byte, 0, min(readChunk, max(sp.end-sp.start, 64<<10)))
	}
	r.buf, r.pos, r.bufOff, r.readTo, r.line = r.buf[:0], 0, sp.start, sp.start, sp.line
	r.opened = true
	return nil
}

func (r *Reader) splitDone() bool {
	return r.pos == len(r.buf) && r.readTo == r.splits[r.cur].end
}

// refill moves the unread bytes to the front of buf and reads more of the
// split, doubling buf when it is full of one record.
func (r *Reader) refill() error {
	sp := r.splits[r.cur]
	n := copy(r.buf, r.buf[r.pos:])
	r.bufOff += int64(r.pos)
	r.buf, r.pos = r.buf[:n], 0
	if len(r.buf) == cap(r.buf) {
		r.buf = slices.Grow(r.buf, cap(r.buf))
	}
	want := min(int64(cap(r.buf)-len(r.buf)), sp.end-r.readTo)
	got, err := r.f.ReadAt(r.buf[len(r.buf):len(r.buf)+int(want)], r.readTo)
	if int64(got) < want {
		if err == nil || err == io.EOF {
			err = fmt.Errorf("file shrank: read %d of %d bytes at offset %d", got, want, r.readTo)
		}
		return r.s.fileErr(r.path(), err)
	}
	r.buf = r.buf[:len(r.buf)+got]
	r.readTo += int64(got)
	return nil
}

// fill parses up to BatchSize records of the current split into r.b and
// returns how many. Malformed records are handled by the error policy.
func (r *Reader) fill() (int, error) {
	o := &r.s.opts
	sp := r.splits[r.cur]
	r.b.reset()
	if r.readTo < sp.end && len(r.buf)-r.pos < cap(r.buf)/4 {
		if err := r.refill(); err != nil {
			return 0, err
		}
	}
	quoting := o.Format == FormatCSV
	rows := 0
	for rows < o.BatchSize && !r.splitDone() {
		nl, inner, found := recordEnd(r.buf, r.pos, quoting)
		if !found && r.readTo < sp.end {
			if rows > 0 {
				break // emit; the next call reads on
			}
			if err := r.refill(); err != nil {
				return 0, err
			}
			continue
		}
		s, e, line := r.pos, trimCR(r.buf, r.pos, nl), r.line
		r.pos, r.line = nl, r.line+int64(inner)
		if found {
			r.pos, r.line = nl+1, r.line+1
		}
		if e == s {
			continue // blank line
		}
		var err error
		if quoting {
			err = r.b.addCSV(r, s, e, line)
		} else {
			err = r.b.addJSON(r, s, e, line)
		}
		if err != nil {
			if err := r.badRow(line, "", err, r.buf[s:e]); err != nil {
				if rows > 0 { // the rows before it may hold an earlier error
					r.pending = err
					break
				}
				return 0, err
			}
			continue
		}
		rows++
	}
	return rows, nil
}

// deadLetterRecord is one line of the dead-letter file.
type deadLetterRecord struct {
	File          string  `json:"file"`
	Line          int64   `json:"line"`
	Reason        string  `json:"reason"`
	Class         string  `json:"class"`
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 *string `json:"payload_base64,omitempty"`
}

// badRow applies the error policy to a row that cannot be decoded: the
// returned error fails the reader.
func (r *Reader) badRow(line int64, col string, err error, payload []byte) error {
	e := &Error{Format: r.s.opts.Format, File: r.path(), Line: line, Column: col, Err: err}
	switch r.s.opts.OnError {
	case OnErrorSkip:
		r.s.skipped.Add(1)
		return nil
	case OnErrorDeadLetter:
		rec := deadLetterRecord{File: e.File, Line: line, Reason: e.reason(), Class: deadletter.Malformed}
		switch {
		case errors.Is(err, errRequired):
			rec.Class = deadletter.MissingField
		case col != "":
			rec.Class = deadletter.BadValue
		}
		rec.Payload, rec.PayloadBase64 = deadletter.Payload(payload)
		if werr := r.s.dl.Write(rec.Class, rec); werr != nil {
			return werr
		}
		r.s.deadLettered.Add(1)
		return nil
	}
	return e
}

// Position is where a reader resumes a split: the record starting at byte
// Offset of File, on line Line, up to byte End.
type Position struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"`
	End    int64  `json:"end"`
	Line   int64  `json:"line"`
}

type snapshot struct {
	Version   int        `json:"version"`
	Remaining []Position `json:"remaining"`
}

// remaining lists the work left, as positions.
func (r *Reader) remaining() []Position {
	out := []Position{}
	for i := r.cur; i < len(r.splits); i++ {
		sp := r.splits[i]
		p := Position{File: r.s.files[sp.file].path, Offset: sp.start, End: sp.end, Line: sp.line}
		if i == r.cur && r.opened {
			p.Offset, p.Line = r.bufOff+int64(r.pos), r.line
		}
		if p.Offset < p.End {
			out = append(out, p)
		}
	}
	return out
}

// SnapshotState records the work this subtask has left (called between
// two batches, which end on record boundaries) after making the
// dead-letter lines written so far durable.
func (r *Reader) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	if r.dlOpen {
		if err := r.s.dl.Sync(); err != nil {
			return arrowexec.SubtaskSnapshot{}, err
		}
	}
	b, err := json.Marshal(snapshot{Version: 1, Remaining: r.remaining()})
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return arrowexec.SubtaskSnapshot{Operator: b}, nil
}

// restoreSplits unions the work left in the snapshots of every subtask of
// the previous run.
func (s *Source) restoreSplits(states [][]byte) ([]split, error) {
	p := s.opts.prefix()
	var out []split
	for i, b := range states {
		if len(b) == 0 {
			return nil, fmt.Errorf("%s: restore: no state for previous subtask %d", p, i)
		}
		var sn snapshot
		if err := json.Unmarshal(b, &sn); err != nil {
			return nil, fmt.Errorf("%s: restore: state of previous subtask %d: %v", p, i, err)
		}
		if sn.Version != 1 {
			return nil, fmt.Errorf("%s: restore: state of previous subtask %d: unknown version %d", p, i, sn.Version)
		}
		for _, pos := range sn.Remaining {
			fi, ok := s.byPath[pos.File]
			if !ok {
				return nil, fmt.Errorf("%s: restore: file %s is not read by this source", p, pos.File)
			}
			if pos.Offset < 0 || pos.Offset > pos.End || pos.End > s.files[fi].size || pos.Line < 1 {
				return nil, fmt.Errorf("%s: restore: file %s: bad range [%d, %d) line %d (file has %d bytes)", p, pos.File, pos.Offset, pos.End, pos.Line, s.files[fi].size)
			}
			out = append(out, split{file: fi, start: pos.Offset, end: pos.End, line: pos.Line})
		}
	}
	slices.SortFunc(out, func(a, b split) int {
		if a.file != b.file {
			return a.file - b.file
		}
		return int(a.start - b.start)
	})
	for i := 1; i < len(out); i++ {
		if out[i].file == out[i-1].file && out[i].start < out[i-1].end {
			return nil, fmt.Errorf("%s: restore: file %s: ranges overlap at offset %d", p, s.files[out[i].file].path, out[i].start)
		}
	}
	return out, nil
}

// SuspendWatermark implements arrowexec.SuspendWatermarker: the bounded
// out-of-orderness watermark of the rows read so far; MinWatermark without
// a strategy or before any row.
func (r *Reader) SuspendWatermark() int64 {
	if r.wm == nil {
		return arrowexec.MinWatermark
	}
	wm, _ := r.wm.Current()
	return wm
}

// CurrentWatermark implements arrowexec.WatermarkSource: text files carry
// no statistics that bound the event times still to come, so a reader
// reports no progress and the runtime's final watermark at the end of
// input fires every window once (as for unsorted Parquet files).
func (r *Reader) CurrentWatermark() (int64, bool) { return arrowexec.MinWatermark, false }

func (r *Reader) closeFile() {
	if r.f != nil {
		r.f.Close()
		r.f, r.fFile = nil, -1
	}
}

// Close releases the file and builders and drops the reader's reference to
// the dead-letter file. It is safe to call twice.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.closeFile()
	r.b.release()
	if r.dlOpen {
		r.dlOpen = false
		return r.s.dl.Close()
	}
	return nil
}

var errRequired = errors.New("required value is empty")
