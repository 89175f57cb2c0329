package sinks

import (
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// encoder writes the batches of one part in one format.
type encoder interface {
	// write encodes b; b is borrowed.
	write(b arrow.RecordBatch) error
	// size is the part's size so far: bytes written to the file plus bytes
	// buffered for it.
	size() int64
	// close writes the footer and flushes everything to the file. It does not
	// close the file.
	close() error
	// abort releases the encoder's memory without writing anything more.
	abort()
}

func newEncoder(o FileOptions, schema *arrow.Schema, mem memory.Allocator, w io.Writer) (encoder, error) {
	switch o.Format {
	case Parquet:
		return newParquetEncoder(o.Parquet, schema, mem, w)
	case CSV:
		return newTextEncoder(styleCSV, schema, w), nil
	case JSONL:
		return newTextEncoder(styleJSON, schema, w), nil
	}
	return nil, fmt.Errorf("unknown format %q", o.Format)
}

// checkSchema reports whether the format can write schema, at plan time.
func checkSchema(o FileOptions, schema *arrow.Schema) error {
	if schema == nil {
		return fmt.Errorf("nil input schema")
	}
	switch o.Format {
	case Parquet:
		props, arrProps := parquetProps(o.Parquet, memory.DefaultAllocator)
		if _, err := pqarrow.ToParquet(schema, props, arrProps); err != nil {
			return fmt.Errorf("schema not writable as Parquet: %w", err)
		}
	case CSV:
		for _, f := range schema.Fields() {
			if arrow.IsNested(f.Type.ID()) {
				return fmt.Errorf("column %q: nested type %s cannot be written as CSV", f.Name, f.Type)
			}
		}
	}
	return nil
}

// countingWriter counts the bytes written through it. Its target can be
// swapped for io.Discard to abort without touching the file. It has no Close
// method on purpose: pqarrow closes writers that have one.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func parquetProps(o ParquetOptions, mem memory.Allocator) (*parquet.WriterProperties, pqarrow.ArrowWriterProperties) {
	opts := []parquet.WriterProperty{
		parquet.WithAllocator(mem),
		parquet.WithCompression(codecs[o.Codec]),
		parquet.WithMaxRowGroupLength(o.RowGroupRows),
		parquet.WithDictionaryDefault(!o.NoDictionary),
		parquet.WithStats(true),
	}
	if o.Level != 0 {
		opts = append(opts, parquet.WithCompressionLevel(o.Level))
	}
	arrOpts := []pqarrow.WriterOption{pqarrow.WithAllocator(mem)}
	if !o.NoStoreSchema {
		arrOpts = append(arrOpts, pqarrow.WithStoreSchema())
	}
	return parquet.NewWriterProperties(opts...), pqarrow.NewArrowWriterProperties(arrOpts...)
}

// parquetEncoder buffers a row group in memory (pqarrow's buffered mode, so
// small batches do not make small row groups) and writes it out when it
// reaches RowGroupRows rows or RowGroupBytes compressed bytes.
type parquetEncoder struct {
	opts ParquetOptions
	bw   *bufWriter
	cw   *countingWriter
	fw   *pqarrow.FileWriter
}

func newParquetEncoder(o ParquetOptions, schema *arrow.Schema, mem memory.Allocator, w io.Writer) (*parquetEncoder, error) {
	e := &parquetEncoder{opts: o, bw: newBufWriter(w, DefaultParquetBufferSize)}
	e.cw = &countingWriter{w: e.bw}
	props, arrProps := parquetProps(o, mem)
	fw, err := pqarrow.NewFileWriter(schema, e.cw, props, arrProps)
	if err != nil {
		return nil, err
	}
	e.fw = fw
	return e, nil
}

func (e *parquetEncoder) write(b arrow.RecordBatch) error {
	if err := e.fw.WriteBuffered(b); err != nil {
		return err
	}
	if e.fw.RowGroupTotalCompressedBytes() >= e.opts.RowGroupBytes {
		return e.fw.NewBufferedRowGroupChecked()
	}
	return nil
}

func (e *parquetEncoder) size() int64 { return e.cw.n + e.fw.RowGroupTotalCompressedBytes() }

func (e *parquetEncoder) close() error {
	if err := e.fw.Close(); err != nil {
		return err
	}
	return e.bw.Flush()
}

func (e *parquetEncoder) abort() {
	e.cw.w = io.Discard
	_ = e.fw.Close()
}

// bufWriter is a minimal buffered writer (bufio.Writer without the
// ReadFrom/large-write paths we do not need), flushed explicitly.
type bufWriter struct {
	w   io.Writer
	buf []byte
}

func newBufWriter(w io.Writer, size int) *bufWriter {
	return &bufWriter{w: w, buf: make([]byte, 0, size)}
}

func (b *bufWriter) Write(p []byte) (int, error) {
	if len(b.buf)+len(p) > cap(b.buf) {
		if err := b.Flush(); err != nil {
			return 0, err
		}
		if len(p) >= cap(b.buf) {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *bufWriter) Flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}
