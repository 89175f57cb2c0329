package text

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/deadletter"
	"github.com/riffle-dev/riffle/internal/filelist"
	"github.com/riffle-dev/riffle/sources"
)

// fileInfo is what New learned about one file.
type fileInfo struct {
	path string
	// pos[c] is the index of declared column c among the fields of a
	// record (CSV); nfields is the number of fields every record must
	// have.
	pos     []int
	nfields int
	size    int64
}

// Source reads CSV or JSONL files as Arrow record batches. It implements
// arrowexec.Source; see the package documentation for its contract.
type Source struct {
	opts   Options
	schema *arrow.Schema
	files  []fileInfo
	splits []split
	bytes  int64
	dl     *deadletter.File
	byPath map[string]int

	skipped, deadLettered atomic.Int64
}

var _ arrowexec.Source = (*Source)(nil)

// New resolves the paths, reads each file's header and cuts the files into
// splits on record boundaries (one pass over every file; see scan.go).
func New(opts Options) (*Source, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.EnsureDefaults()
	s := &Source{opts: opts, schema: opts.schema(), byPath: map[string]int{}}
	paths, err := filelist.Resolve(opts.Paths, filelist.Options{Prefix: opts.prefix(), Extensions: opts.extensions(), FileErr: s.fileErr})
	if err != nil {
		return nil, err
	}
	for fi, p := range paths {
		header, splits, size, err := s.scanFile(fi, p)
		if err != nil {
			return nil, err
		}
		info := fileInfo{path: p, size: size}
		if opts.Format == FormatCSV {
			if info.pos, info.nfields, err = s.mapColumns(p, header, len(splits) > 0); err != nil {
				return nil, err
			}
		}
		s.byPath[p] = len(s.files)
		s.files = append(s.files, info)
		for _, sp := range splits {
			s.bytes += sp.end - sp.start
		}
		s.splits = append(s.splits, splits...)
	}
	if opts.OnError == OnErrorDeadLetter {
		s.dl = deadletter.New(opts.DeadLetterPath, opts.prefix())
		s.dl.FS = opts.DeadLetterFS
	}
	return s, nil
}

// mapColumns finds the declared columns among a CSV file's fields.
func (s *Source) mapColumns(path string, header []string, hasRows bool) ([]int, int, error) {
	cols := s.opts.Columns
	pos := make([]int, len(cols))
	if !s.opts.Header {
		for i := range pos {
			pos[i] = i
		}
		return pos, len(cols), nil
	}
	if header == nil {
		if hasRows {
			return nil, 0, &Error{Format: s.opts.Format, File: path, Line: 1, Err: errors.New("empty header line")}
		}
		return pos, len(cols), nil // empty file: no rows to map
	}
	for i, c := range cols {
		pos[i] = -1
		for j, h := range header {
			if h == c.Name {
				if pos[i] >= 0 {
					return nil, 0, &Error{Format: s.opts.Format, File: path, Line: 1, Err: fmt.Errorf("header names column %q twice", c.Name)}
				}
				pos[i] = j
			}
		}
		if pos[i] < 0 {
			return nil, 0, &Error{Format: s.opts.Format, File: path, Line: 1, Column: c.Name,
				Err: fmt.Errorf("not in the header (have %s)", strings.Join(header, ", "))}
		}
	}
	return pos, len(header), nil
}

func (s *Source) fileErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &Error{Format: s.opts.Format, File: path, Err: err}
}

// Schema returns the schema of every batch: the declared columns.
func (s *Source) Schema() *arrow.Schema { return s.schema }

// Stats is what a source read and dropped.
type Stats struct {
	Files, Splits int
	Bytes         int64 // bytes of records (headers excluded)
	Skipped       int64 // bad rows dropped under OnErrorSkip
	DeadLettered  int64 // bad rows written to the dead-letter file
}

// Stats returns the total work and the bad rows met so far.
func (s *Source) Stats() Stats {
	return Stats{Files: len(s.files), Splits: len(s.splits), Bytes: s.bytes, Skipped: s.skipped.Load(), DeadLettered: s.deadLettered.Load()}
}

// WithWatermark returns a source over the same files and splits with
// another watermark strategy.
func (s *Source) WithWatermark(w arrowexec.WatermarkStrategy) (*Source, error) {
	o := s.opts
	o.Watermark = w
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Source{opts: o, schema: s.schema, files: s.files, splits: s.splits, bytes: s.bytes, dl: s.dl, byPath: s.byPath}, nil
}

// Open returns the reader of subtask t.Subtask: the splits assigned to it,
// or, when t.Restore is set, its share of the work left in the snapshots of
// the previous run.
func (s *Source) Open(ctx context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	if t.Parallelism <= 0 || t.Subtask < 0 || t.Subtask >= t.Parallelism {
		return nil, fmt.Errorf("%s: invalid subtask %d of %d", s.opts.prefix(), t.Subtask, t.Parallelism)
	}
	all := s.splits
	if t.Restore != nil {
		var err error
		if all, err = s.restoreSplits(t.Restore.Operator); err != nil {
			return nil, err
		}
	}
	loads := make([]int64, len(all))
	for i, sp := range all {
		loads[i] = sp.end - sp.start
	}
	var mine []split
	for _, i := range filelist.Assign(loads, t.Parallelism)[t.Subtask] {
		mine = append(mine, all[i])
	}
	if s.dl != nil {
		if err := s.dl.Open(); err != nil {
			return nil, err
		}
	}
	return newReader(s, t, mine), nil
}

// Batches reads every row in order with one reader, as borrowed batches
// (sources.Batches).
func (s *Source) Batches(ctx context.Context, mem memory.Allocator, limit int64) iter.Seq2[arrow.RecordBatch, error] {
	return sources.Batches(ctx, s, mem, limit)
}

// Peek returns the fields of the first record of a CSV file and those of
// the record after it (nil when there is none), for tools that pick column
// types from a file's first row (riffle eval). Records are read as the
// source reads them; both must fit in the first MiB.
func Peek(path string, delimiter byte) (first, second []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	buf := make([]byte, scanBlock)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, nil, err
	}
	buf = buf[:n]
	pos := 0
	if bytes.HasPrefix(buf, bom) {
		pos = len(bom)
	}
	var recs [][]string
	for len(recs) < 2 && pos < len(buf) {
		nl, _, found := recordEnd(buf, pos, true)
		e := trimCR(buf, pos, nl)
		if e > pos {
			fields, arena, err := splitCSV(buf, pos, e, delimiter, nil, nil)
			if err != nil {
				return nil, nil, fmt.Errorf("csv: file %s: %w", path, err)
			}
			rec := make([]string, len(fields))
			for i, fl := range fields {
				rec[i] = string(fieldBytes(buf, arena, fl))
			}
			recs = append(recs, rec)
		}
		if !found {
			break
		}
		pos = nl + 1
	}
	for len(recs) < 2 {
		recs = append(recs, nil)
	}
	return recs[0], recs[1], nil
}

var _ arrowexec.MetricsReporter = (*Source)(nil)

// ReportMetrics implements arrowexec.MetricsReporter: the dead letters by
// reason class.
func (s *Source) ReportMetrics(emit func(arrowexec.Metric)) { s.dl.ReportMetrics(emit) }
