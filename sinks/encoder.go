package sinks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/arrowtext"
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
	case CSV, JSONL:
		return newTextEncoder(o.Format, o.CSV, schema, w)
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
		return arrowtext.CheckCSV(schema)
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
	mem  memory.Allocator
	bw   *bufWriter
	cw   *countingWriter
	fw   *pqarrow.FileWriter
	// wrote: a batch was written, so the writer has an open row group (the
	// last of its metadata) until Close.
	wrote   bool
	done    bool // closed: size is the file's
	checked int  // row groups checked by checkCommittedFooter

	// The batches (retained) that hold the rows of the open row group, so
	// that a barrier can carry them in the checkpoint instead of cutting
	// the row group (see commitCarry). tail holds tailRows rows, of which
	// the last RowGroupNumRows are the open row group's; tailBytes is
	// their buffers' size. Once tailBytes passes carryLimit the batches are
	// let go until the next cut: a barrier then cuts the row group.
	tail       []arrow.RecordBatch
	tailRows   int64
	tailBytes  int64
	carryLimit int64
	noCarry    bool
}

func newParquetEncoder(o ParquetOptions, schema *arrow.Schema, mem memory.Allocator, w io.Writer) (*parquetEncoder, error) {
	e := &parquetEncoder{opts: o, bw: newBufWriter(w, DefaultParquetBufferSize), mem: mem}
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
	if d := withoutNullEntries(e.mem, b); d != nil {
		defer d.Release()
		b = d
	}
	e.wrote = true
	if err := e.fw.WriteBuffered(b); err != nil {
		return err
	}
	if e.fw.RowGroupTotalCompressedBytes() >= e.opts.RowGroupBytes {
		if err := e.fw.NewBufferedRowGroupChecked(); err != nil {
			return err
		}
	}
	return e.track(b)
}

// track keeps the batches holding the open row group's rows after b was
// written (pqarrow may have cut row groups inside b).
func (e *parquetEncoder) track(b arrow.RecordBatch) error {
	if e.carryLimit <= 0 {
		return nil
	}
	open, err := e.fw.RowGroupNumRows()
	if err != nil {
		return err
	}
	if open == 0 {
		e.dropTail()
		e.noCarry = false
		return nil
	}
	if e.noCarry {
		return nil
	}
	b.Retain()
	e.tail = append(e.tail, b)
	e.tailRows += b.NumRows()
	e.tailBytes += arrowexec.BatchBytes(b)
	for len(e.tail) > 1 && e.tailRows-e.tail[0].NumRows() >= int64(open) {
		e.tailRows -= e.tail[0].NumRows()
		e.tailBytes -= arrowexec.BatchBytes(e.tail[0])
		e.tail[0].Release()
		e.tail[0] = nil
		e.tail = e.tail[1:]
	}
	if e.tailBytes > e.carryLimit {
		e.dropTail()
		e.noCarry = true
	}
	return nil
}

func (e *parquetEncoder) dropTail() {
	for i, b := range e.tail {
		b.Release()
		e.tail[i] = nil
	}
	e.tail, e.tailRows, e.tailBytes = e.tail[:0], 0, 0
}

// commitCarry is commit without cutting the open row group: it flushes,
// commits the closed row groups (length and footer as commit returns them;
// 0 and nil when none is closed yet) and returns the open row group's rows
// as slices of the batches that hold them, which the caller releases. The
// row group stays open, so it can span the barrier: the checkpoint carries
// its rows. ok is false, and nothing is done, when the rows cannot be
// carried (more than carryLimit bytes, or the open row group is empty):
// use commit.
func (e *parquetEncoder) commitCarry() (length int64, footer []byte, carried []arrow.RecordBatch, ok bool, err error) {
	open, err := e.fw.RowGroupNumRows()
	if err != nil || open == 0 || e.noCarry || e.carryLimit <= 0 || e.tailRows < int64(open) {
		return 0, nil, nil, false, err
	}
	if err := e.bw.Flush(); err != nil {
		return 0, nil, nil, false, err
	}
	md, err := e.fw.FileMetadata()
	if err != nil {
		return 0, nil, nil, false, err
	}
	if md.NumRowGroups() > 1 {
		if length, footer, err = e.footer(md); err != nil {
			return 0, nil, nil, false, err
		}
	}
	skip := e.tailRows - int64(open)
	for _, b := range e.tail {
		n := b.NumRows()
		if skip >= n {
			skip -= n
			continue
		}
		carried = append(carried, b.NewSlice(skip, n))
		skip = 0
	}
	return length, footer, carried, true, nil
}

func (e *parquetEncoder) size() int64 {
	if e.done {
		return e.cw.n
	}
	return e.cw.n + e.fw.RowGroupTotalCompressedBytes()
}

// close writes the footer and flushes. When the open row group is empty
// (just cut at a barrier or at RowGroupBytes) and the part already holds
// rows, pqarrow's Close would write that row group with 0 rows; the part is
// finished with its committed footer instead, which leaves it out.
func (e *parquetEncoder) close() error {
	if e.wrote {
		n, err := e.fw.RowGroupNumRows()
		if err != nil {
			return err
		}
		if n == 0 {
			_, footer, err := e.commit()
			if errors.Is(err, errFooterNotSelfContained) {
				return e.closeWriter()
			}
			if err != nil {
				return err
			}
			if _, err := e.cw.Write(footer); err != nil {
				return err
			}
			if err := e.bw.Flush(); err != nil {
				return err
			}
			e.discard()
			return nil
		}
	}
	return e.closeWriter()
}

// closeWriter closes the part the ordinary way: pqarrow writes the open row
// group and the footer.
func (e *parquetEncoder) closeWriter() error {
	e.dropTail()
	if err := e.fw.Close(); err != nil {
		return err
	}
	e.done = true
	return e.bw.Flush()
}

// errFooterNotSelfContained: the metadata of the written row groups refers
// to bytes past them, so it cannot serve as a committed footer.
var errFooterNotSelfContained = errors.New("parquet footer refers past the committed row groups")

// commit makes everything written so far complete row groups in the file:
// it closes the open row group if it holds rows (pqarrow starts the next
// one, which stays empty until the next write) and flushes the buffered
// bytes to the file (not fsynced). It returns the committed length, the
// file's size now, and the committed footer: the file metadata of the
// closed row groups (pqarrow's snapshot without the open, empty row group),
// serialized as parquet/file writes a footer (thrift metadata, its
// little-endian uint32 length, "PAR1"). The first length bytes followed by
// the footer are a complete Parquet file holding every row written so far.
// The footer is not written to the file: pqarrow keeps writing row groups
// after length. It fails with errFooterNotSelfContained when the metadata
// points at bytes past length (page indexes, bloom filters, written only at
// Close; the sink does not enable them).
func (e *parquetEncoder) commit() (int64, []byte, error) {
	if !e.wrote {
		return 0, nil, fmt.Errorf("parquet commit before the first row group")
	}
	n, err := e.fw.RowGroupNumRows()
	if err != nil {
		return 0, nil, err
	}
	if n > 0 {
		if err := e.fw.NewBufferedRowGroupChecked(); err != nil {
			return 0, nil, err
		}
	}
	if err := e.bw.Flush(); err != nil {
		return 0, nil, err
	}
	e.dropTail()
	e.noCarry = false
	md, err := e.fw.FileMetadata()
	if err != nil {
		return 0, nil, err
	}
	return e.footer(md)
}

// footer returns the committed length and the committed footer of the
// closed row groups of md, the writer's metadata snapshot, after a flush.
func (e *parquetEncoder) footer(md *metadata.FileMetaData) (int64, []byte, error) {
	length := e.cw.n
	// The last row group of the snapshot is the open one: started by the
	// first write and by every cut, finished only by the next cut or Close.
	closed := make([]int, md.NumRowGroups()-1)
	for i := range closed {
		closed[i] = i
	}
	md, err := md.Subset(closed)
	if err != nil {
		return 0, nil, err
	}
	if err := checkCommittedFooter(md, e.checked, length, int64(e.fw.NumRows())); err != nil {
		return 0, nil, err
	}
	e.checked = md.NumRowGroups()
	var buf bytes.Buffer
	mlen, err := md.WriteTo(&buf, nil)
	if err != nil {
		return 0, nil, err
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], uint32(mlen))
	copy(trailer[4:], "PAR1")
	buf.Write(trailer[:])
	return length, buf.Bytes(), nil
}

// checkCommittedFooter checks that md describes exactly rows rows and,
// from row group `from` on (the earlier ones were checked by an earlier
// commit and do not change), only bytes in [4, length): every column chunk
// lies there, and nothing refers to page indexes or bloom filters (written
// after the row groups, at Close).
func checkCommittedFooter(md *metadata.FileMetaData, from int, length, rows int64) error {
	if md.NumRows != rows {
		return fmt.Errorf("parquet committed footer: %d rows in its row groups, writer wrote %d", md.NumRows, rows)
	}
	for i := from; i < md.NumRowGroups(); i++ {
		rg := md.RowGroup(i)
		if rg.NumColumns() != md.NumColumns() {
			return fmt.Errorf("parquet committed footer: row group %d has %d of %d columns", i, rg.NumColumns(), md.NumColumns())
		}
		for j := 0; j < rg.NumColumns(); j++ {
			cc, err := rg.ColumnChunk(j)
			if err != nil {
				return err
			}
			start := cc.DataPageOffset()
			if cc.HasDictionaryPage() {
				start = min(start, cc.DictionaryPageOffset())
			}
			if cc.HasIndexPage() {
				start = min(start, cc.IndexPageOffset())
			}
			if start < 4 || start+cc.TotalCompressedSize() > length {
				return fmt.Errorf("%w: row group %d column %d at [%d, %d), committed length %d", errFooterNotSelfContained, i, j, start, start+cc.TotalCompressedSize(), length)
			}
			if cc.GetColumnIndexLocation() != nil || cc.GetOffsetIndexLocation() != nil || cc.BloomFilterOffset() != 0 {
				return fmt.Errorf("%w: row group %d column %d has a page index or bloom filter", errFooterNotSelfContained, i, j)
			}
		}
	}
	return nil
}

// discard releases the writer's memory without writing anything more to
// the file.
func (e *parquetEncoder) discard() {
	e.dropTail()
	e.done = true
	n := e.cw.n
	e.cw.w = io.Discard
	_ = e.fw.Close()
	e.cw.n = n
}

func (e *parquetEncoder) abort() { e.discard() }

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

// withoutNullEntries returns b with the NULL entries of its dictionaries
// moved to the rows' validity (the rows pointing at one become NULL rows;
// the entry stays, unreferenced), or nil when no dictionary has one:
// pqarrow cannot write a dictionary holding a NULL entry. The caller
// releases the result.
func withoutNullEntries(mem memory.Allocator, b arrow.RecordBatch) arrow.RecordBatch {
	var cols []arrow.Array
	for i := 0; i < int(b.NumCols()); i++ {
		d, ok := b.Column(i).(*array.Dictionary)
		if !ok || d.Dictionary().NullN() == 0 {
			continue
		}
		if cols == nil {
			cols = make([]arrow.Array, b.NumCols())
		}
		dict := d.Dictionary()
		id := d.Data()
		off := id.Offset() // the validity is read at the indices' offset
		valid := memory.NewResizableBuffer(mem)
		valid.Resize(int(bitutil.BytesForBits(int64(off + d.Len()))))
		vb := valid.Bytes()
		clear(vb)
		for r := 0; r < d.Len(); r++ {
			if d.IsValid(r) && dict.IsValid(d.GetValueIndex(r)) {
				bitutil.SetBit(vb, off+r)
			}
		}
		dd := dict.Data()
		nd := array.NewData(dd.DataType(), dd.Len(), append([]*memory.Buffer{nil}, dd.Buffers()[1:]...), dd.Children(), 0, dd.Offset())
		out := array.NewData(id.DataType(), id.Len(), []*memory.Buffer{valid, id.Buffers()[1]}, nil, array.UnknownNullCount, id.Offset())
		out.SetDictionary(nd)
		cols[i] = array.MakeFromData(out)
		valid.Release()
		nd.Release()
		out.Release()
	}
	if cols == nil {
		return nil
	}
	for i := range cols {
		if cols[i] == nil {
			cols[i] = b.Column(i)
			cols[i].Retain()
		}
	}
	rec := array.NewRecordBatch(b.Schema(), cols, b.NumRows())
	for _, c := range cols {
		c.Release()
	}
	return rec
}
