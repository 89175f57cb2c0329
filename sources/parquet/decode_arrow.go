package parquet

import (
	"context"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// openFile opens file fi with the source's decoder.
func (s *Source) openFile(mem memory.Allocator, fi int) (fileDecoder, error) {
	switch s.decoder {
	case DecoderArrow:
		return openArrowFile(s, mem, fi)
	default:
		return openGoFile(s, mem, fi)
	}
}

// arrowFile decodes with arrow-go's pqarrow: one pqarrow ColumnReader per
// projected column, restricted to one row group.
type arrowFile struct {
	s    *Source
	fi   int // index into s.files
	path string
	mem  memory.Allocator
	f    *os.File
	pr   *file.Reader
	fr   *pqarrow.FileReader
}

func openArrowFile(s *Source, mem memory.Allocator, fi int) (_ fileDecoder, err error) {
	info := s.files[fi]
	defer recoverErr(&err, info.path, -1, "")
	f, err := os.Open(info.path)
	if err != nil {
		return nil, fileErr(info.path, err)
	}
	// Scratch buffers of the file reader (compressed pages) live in a pool
	// released by finalizers, so they come from the Go heap; the arrays
	// handed to the caller come from mem.
	props := pq.NewReaderProperties(memory.DefaultAllocator)
	pr, err := file.NewParquetReader(f, file.WithMetadata(info.meta), file.WithReadProps(props))
	if err != nil {
		f.Close()
		return nil, wrapErr(info.path, -1, "", fmt.Errorf("%w: %s", ErrCorrupt, libErr(err)))
	}
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: int64(s.opts.BatchSize)}, mem)
	if err != nil {
		pr.Close()
		return nil, wrapErr(info.path, -1, "", err)
	}
	return &arrowFile{s: s, fi: fi, path: info.path, mem: mem, f: f, pr: pr, fr: fr}, nil
}

func (a *arrowFile) openRowGroup(ctx context.Context, rg int, skip int64) (_ groupDecoder, err error) {
	cols := a.s.columnsOf(a.fi)
	g := &arrowGroup{a: a, rg: rg, cols: make([]*pqarrow.ColumnReader, len(cols))}
	defer func() {
		if err != nil {
			g.close()
		}
	}()
	for i, c := range cols {
		if err := g.openColumn(ctx, i, c, skip); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func (a *arrowFile) close() error {
	// file.Reader.Close closes the underlying *os.File.
	return a.pr.Close()
}

type arrowGroup struct {
	a    *arrowFile
	rg   int
	cols []*pqarrow.ColumnReader
}

func (g *arrowGroup) openColumn(ctx context.Context, i int, c column, skip int64) (err error) {
	defer recoverErr(&err, g.a.path, g.rg, c.name)
	leaves := make(map[int]bool, 1)
	for _, l := range c.leafSet() {
		leaves[l] = true
	}
	cr, err := g.a.fr.GetFieldReader(ctx, c.index, leaves, []int{g.rg})
	if err != nil {
		return wrapErr(g.a.path, g.rg, c.name, err)
	}
	g.cols[i] = cr
	if skip > 0 {
		if err := cr.SeekToRow(skip); err != nil {
			return wrapErr(g.a.path, g.rg, c.name, fmt.Errorf("%w: seek to row %d: %s", ErrCorrupt, skip, libErr(err)))
		}
	}
	return nil
}

func (g *arrowGroup) next(n int) ([]arrow.Array, int, error) {
	out := make([]arrow.Array, len(g.cols))
	for i := range g.cols {
		arr, err := g.column(i, n)
		if err != nil {
			releaseAll(out)
			return nil, 0, err
		}
		out[i] = arr
	}
	return out, n, nil
}

func (g *arrowGroup) column(i, n int) (arr arrow.Array, err error) {
	c := g.a.s.columnsOf(g.a.fi)[i]
	defer recoverErr(&err, g.a.path, g.rg, c.name)
	ch, err := g.cols[i].NextBatch(int64(n))
	if err != nil {
		return nil, wrapErr(g.a.path, g.rg, c.name, fmt.Errorf("%w: %s", ErrCorrupt, libErr(err)))
	}
	defer ch.Release()
	if ch.Len() != n {
		return nil, wrapErr(g.a.path, g.rg, c.name, corruptf("decoded %d rows, want %d", ch.Len(), n))
	}
	if chunks := ch.Chunks(); len(chunks) == 1 {
		arr = chunks[0]
		arr.Retain()
	} else {
		if arr, err = array.Concatenate(chunks, g.a.mem); err != nil {
			return nil, wrapErr(g.a.path, g.rg, c.name, err)
		}
	}
	if !arrow.TypeEqual(arr.DataType(), c.field.Type) {
		arr.Release()
		return nil, wrapErr(g.a.path, g.rg, c.name, fmt.Errorf("decoded type %s, want %s", arr.DataType(), c.field.Type))
	}
	return arr, nil
}

func (g *arrowGroup) close() {
	for i, cr := range g.cols {
		if cr != nil {
			cr.Release()
			g.cols[i] = nil
		}
	}
}

func releaseAll(arrs []arrow.Array) {
	for _, a := range arrs {
		if a != nil {
			a.Release()
		}
	}
}

// recoverErr turns a panic inside a decoding library into an error naming the
// file, row group and column. Use as `defer recoverErr(&err, ...)`.
func recoverErr(err *error, path string, rg int, col string) {
	if r := recover(); r != nil {
		*err = wrapErr(path, rg, col, fmt.Errorf("%w: decoder panic: %v", ErrCorrupt, r))
	}
}
