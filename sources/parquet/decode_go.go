package parquet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/parquet-go/parquet-go"
	"github.com/riffle-dev/riffle/arrowexec"
)

// The parquet-go decoder reads pages of each projected column chunk with
// parquet-go and copies their decoded values (Page.Data: plain values or
// dictionary indexes plus the dictionary, and definition levels) straight
// into Arrow buffers allocated from the task's allocator. No per-value
// interface call, no parquet.Value, no row reconstruction.

// goKind is how one column is converted.
type goKind int

const (
	goUnsupported goKind = iota
	goBool
	goInt32  // INT32 into a 1, 2 or 4 byte Arrow integer type
	goInt64  // INT64 into an 8 byte Arrow type, optionally rescaled
	goFloat  // FLOAT into float32
	goDouble // DOUBLE into float64
	goBytes  // BYTE_ARRAY into string or binary
)

// goPlan is how the parquet-go decoder converts one column.
type goPlan struct {
	kind   goKind
	width  int   // Arrow value width in bytes for fixed-width kinds
	mul    int64 // timestamp rescaling: multiply by mul, or
	div    int64 // divide by div (0: none)
	maxDef byte
}

// planGo decides how to convert column c of a file with the given schema, or
// returns an ErrUnsupported error.
func planGo(sc *schema.Schema, c column) (goPlan, error) {
	col := sc.Column(c.leaf)
	p := goPlan{maxDef: byte(col.MaxDefinitionLevel())}
	if col.MaxRepetitionLevel() != 0 || col.MaxDefinitionLevel() > 1 {
		return p, fmt.Errorf("%w by the parquet-go decoder: nested column", ErrUnsupported)
	}
	phys := col.PhysicalType()
	t := c.field.Type
	unsupported := func() (goPlan, error) {
		return p, fmt.Errorf("%w by the parquet-go decoder: %s stored as %s", ErrUnsupported, t, phys)
	}
	switch phys {
	case pq.Types.Boolean:
		if t.ID() != arrow.BOOL {
			return unsupported()
		}
		p.kind = goBool
	case pq.Types.Int32:
		switch t.ID() {
		case arrow.INT8, arrow.UINT8:
			p.kind, p.width = goInt32, 1
		case arrow.INT16, arrow.UINT16:
			p.kind, p.width = goInt32, 2
		case arrow.INT32, arrow.UINT32, arrow.DATE32:
			p.kind, p.width = goInt32, 4
		default:
			return unsupported()
		}
	case pq.Types.Int64:
		switch t.ID() {
		case arrow.INT64, arrow.UINT64:
			p.kind, p.width = goInt64, 8
		case arrow.TIMESTAMP:
			mul, div, ok := timestampScale(col, t)
			if !ok {
				return unsupported()
			}
			p.kind, p.width, p.mul, p.div = goInt64, 8, mul, div
		default:
			return unsupported()
		}
	case pq.Types.Float:
		if t.ID() != arrow.FLOAT32 {
			return unsupported()
		}
		p.kind, p.width = goFloat, 4
	case pq.Types.Double:
		if t.ID() != arrow.FLOAT64 {
			return unsupported()
		}
		p.kind, p.width = goDouble, 8
	case pq.Types.ByteArray:
		if t.ID() != arrow.STRING && t.ID() != arrow.BINARY {
			return unsupported()
		}
		p.kind = goBytes
	default:
		return unsupported()
	}
	return p, nil
}

// timestampScale returns how to convert the values of an INT64 timestamp
// column to the unit of Arrow type t: multiply by mul or divide by div (both
// 0 when the units agree). Arrow writers store timestamp[s] as milliseconds.
func timestampScale(col *schema.Column, t arrow.DataType) (mul, div int64, ok bool) {
	lt, ok := col.LogicalType().(schema.TimestampLogicalType)
	tt, ok2 := t.(*arrow.TimestampType)
	if !ok || !ok2 || col.PhysicalType() != pq.Types.Int64 {
		return 0, 0, false
	}
	var from int64
	switch lt.TimeUnit() {
	case schema.TimeUnitMillis:
		from = 1e6
	case schema.TimeUnitMicros:
		from = 1e3
	case schema.TimeUnitNanos:
		from = 1
	default:
		return 0, 0, false
	}
	to := int64(tt.Unit.Multiplier())
	switch {
	case from > to:
		return from / to, 0, true
	case to > from:
		return 0, to / from, true
	}
	return 0, 0, true
}

// rescale multiplies (mul > 1) or divides (div > 1) int64 values in place.
func rescale(v []int64, mul, div int64) {
	if mul > 1 {
		for i := range v {
			v[i] *= mul
		}
	} else if div > 1 {
		for i := range v {
			v[i] /= div
		}
	}
}

// chooseDecoder resolves Options.Decoder: an explicit parquet-go decoder must
// support every projected column; the default falls back to arrow.
func chooseDecoder(name string, f fileInfo, cols []column) (string, error) {
	if name == DecoderArrow || (name == "" && DefaultDecoder == DecoderArrow) {
		return DecoderArrow, nil
	}
	for _, c := range cols {
		if _, err := planGo(f.meta.Schema, c); err != nil {
			if name == "" {
				return DecoderArrow, nil
			}
			return "", wrapErr(f.path, -1, c.name, err)
		}
	}
	return DecoderParquetGo, nil
}

type goFile struct {
	s    *Source
	path string
	mem  memory.Allocator
	f    *os.File
	pf   *parquet.File
}

func openGoFile(s *Source, mem memory.Allocator, fi int) (_ fileDecoder, err error) {
	info := s.files[fi]
	defer recoverErr(&err, info.path, -1, "")
	f, err := os.Open(info.path)
	if err != nil {
		return nil, fileErr(info.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fileErr(info.path, err)
	}
	pf, err := parquet.OpenFile(f, st.Size(),
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		f.Close()
		return nil, wrapErr(info.path, -1, "", fmt.Errorf("%w: %s", ErrCorrupt, libErr(err)))
	}
	if len(pf.RowGroups()) != info.meta.NumRowGroups() {
		f.Close()
		return nil, wrapErr(info.path, -1, "", corruptf("file changed since it was planned"))
	}
	return &goFile{s: s, path: info.path, mem: mem, f: f, pf: pf}, nil
}

func (g *goFile) close() error { return g.f.Close() }

func (g *goFile) openRowGroup(_ context.Context, rg int, skip int64) (_ groupDecoder, err error) {
	defer recoverErr(&err, g.path, rg, "")
	chunks := g.pf.RowGroups()[rg].ColumnChunks()
	gr := &goGroup{f: g, rg: rg, cols: make([]*goColumn, len(g.s.columns))}
	open := func(c column) (*goColumn, error) {
		plan, err := planGo(g.s.files[0].meta.Schema, c)
		if err != nil {
			return nil, wrapErr(g.path, rg, c.name, err)
		}
		if c.leaf >= len(chunks) {
			return nil, wrapErr(g.path, rg, c.name, corruptf("no column chunk %d", c.leaf))
		}
		return &goColumn{
			name:     c.name,
			dictOut:  c.dict,
			typ:      c.field.Type,
			nullable: c.field.Nullable || plan.maxDef > 0,
			plan:     plan,
			pages:    chunks[c.leaf].Pages(),
			skip:     skip,
		}, nil
	}
	for i, c := range g.s.columns {
		if gr.cols[i], err = open(c); err != nil {
			gr.close()
			return nil, err
		}
	}
	// Filter columns get a page reader of their own, also when projected:
	// filtering consumes rows ahead of the projected column's decoding.
	for i := range g.s.filters {
		f := &g.s.filters[i]
		c, err := open(f.col)
		if err != nil {
			gr.close()
			return nil, err
		}
		gr.filters = append(gr.filters, &goFilter{col: c, f: f})
	}
	return gr, nil
}

type goGroup struct {
	f       *goFile
	rg      int
	cols    []*goColumn
	filters []*goFilter
	keep    []bool
	sel     []int32
}

func (g *goGroup) next(n int) ([]arrow.Array, int, error) {
	sel, all, err := g.filter(n)
	if err != nil {
		return nil, 0, err
	}
	out := make([]arrow.Array, len(g.cols))
	for i, c := range g.cols {
		arr, err := c.next(g.f.mem, n)
		if err != nil {
			releaseAll(out)
			return nil, 0, wrapErr(g.f.path, g.rg, c.name, err)
		}
		if !all {
			// Gather the passing rows. The page decoding of this column is
			// shared with the filtered-out rows; the string filter columns,
			// usually the widest, are never materialized unless projected.
			taken, err := arrowexec.TakeArray(g.f.mem, arr, sel)
			arr.Release()
			if err != nil {
				releaseAll(out)
				return nil, 0, wrapErr(g.f.path, g.rg, c.name, err)
			}
			arr = taken
		}
		out[i] = arr
	}
	if all {
		return out, n, nil
	}
	return out, len(sel), nil
}

// filter runs the string filters over the next n rows. It returns the
// passing rows, or all=true when there are no filters or every row passed.
func (g *goGroup) filter(n int) (sel []int32, all bool, err error) {
	if len(g.filters) == 0 {
		return nil, true, nil
	}
	if cap(g.keep) < n {
		g.keep = make([]bool, n)
	}
	keep := g.keep[:n]
	for i := range keep {
		keep[i] = true
	}
	for _, fl := range g.filters {
		if err := fl.col.filter(n, fl, keep); err != nil {
			return nil, false, wrapErr(g.f.path, g.rg, fl.col.name, err)
		}
	}
	g.sel = g.sel[:0]
	for i, k := range keep {
		if k {
			g.sel = append(g.sel, int32(i))
		}
	}
	return g.sel, len(g.sel) == n, nil
}

func (g *goGroup) close() {
	for _, c := range g.cols {
		if c != nil {
			c.close()
		}
	}
	for _, fl := range g.filters {
		fl.col.close()
	}
}

// goFilter is one string filter over its own reader of the column's pages.
type goFilter struct {
	col *goColumn
	f   *compiledFilter
	// dict and dmask cache the filter's verdict per entry of the last
	// dictionary seen (one per column chunk, shared by its pages).
	dict  parquet.Dictionary
	dmask []bool
}

// filter consumes the next n rows of the column and clears keep[i] for rows
// that fail fl (NULLs always fail). On dictionary-encoded pages each
// dictionary entry is tested once.
func (c *goColumn) filter(n int, fl *goFilter, keep []bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: decoder panic: %v", ErrCorrupt, r)
		}
	}()
	if err := c.skipRows(); err != nil {
		return err
	}
	maxDef := c.plan.maxDef
	for filled := 0; filled < n; {
		if err := c.advance(); err != nil {
			return err
		}
		k := min(n-filled, c.pageRows-c.row)
		var defs []byte
		if c.defs != nil {
			defs = c.defs[c.row : c.row+k]
		}
		seg := keep[filled : filled+k]
		j := c.val
		if c.idx != nil {
			if d := c.page.Dictionary(); d != fl.dict || len(fl.dmask) != c.dictLen {
				fl.dict = d
				fl.dmask = fl.dmask[:0]
				for v := 0; v < c.dictLen; v++ {
					fl.dmask = append(fl.dmask, fl.f.pass(c.bdata[c.boffs[v]:c.boffs[v+1]]))
				}
			}
			dm := fl.dmask
			if defs == nil {
				for i, v := range c.idx[j : j+k] {
					seg[i] = seg[i] && dm[v]
				}
				j += k
			} else {
				for i, d := range defs {
					if d == maxDef {
						seg[i] = seg[i] && dm[c.idx[j]]
						j++
					} else {
						seg[i] = false
					}
				}
			}
		} else {
			for i := 0; i < k; i++ {
				if defs == nil || defs[i] == maxDef {
					seg[i] = seg[i] && fl.f.pass(c.bdata[c.boffs[j]:c.boffs[j+1]])
					j++
				} else {
					seg[i] = false
				}
			}
		}
		c.row += k
		c.val = j
		filled += k
	}
	return nil
}

// goColumn decodes one column chunk page by page.
type goColumn struct {
	name     string
	typ      arrow.DataType
	nullable bool
	plan     goPlan
	dictOut  bool // output dictionary<int32, typ> (dict.go)
	pages    parquet.Pages
	skip     int64 // rows to drop before the first output row

	page     parquet.Page
	pageRows int
	row      int // rows of page consumed
	val      int // non-null values of page consumed
	defs     []byte

	// Typed views of the current page: plain values, or dictionary indexes
	// plus dictionary values.
	idx     []int32
	bits    []byte
	i32     []int32
	i64     []int64
	f32     []float32
	f64     []float64
	bdata   []byte
	boffs   []uint32
	dictLen int

	// Output of the batch being built.
	valid []byte
	nulls int
	vals  []byte  // fixed-width values
	offs  []int32 // byte array offsets
	data  *memory.Buffer
	dlen  int

	// Dictionary output (dict.go): the Arrow copy of the chunk's
	// dictionary page, built once, and the page dictionary it copies.
	dictArr arrow.Array
	dictSrc parquet.Dictionary
}

func (c *goColumn) close() {
	c.releasePage()
	if c.dictArr != nil {
		c.dictArr.Release()
		c.dictArr, c.dictSrc = nil, nil
	}
	if c.pages != nil {
		c.pages.Close()
		c.pages = nil
	}
}

func (c *goColumn) releasePage() {
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
}

// nextPage loads the next page of the chunk.
func (c *goColumn) nextPage() error {
	c.releasePage()
	p, err := c.pages.ReadPage()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return corruptf("column chunk ended early")
		}
		return fmt.Errorf("%w: %s", ErrCorrupt, libErr(err))
	}
	c.page = p
	c.pageRows = int(p.NumRows())
	c.row, c.val = 0, 0
	c.defs = nil
	if c.plan.maxDef > 0 {
		c.defs = p.DefinitionLevels()
		if len(c.defs) != c.pageRows {
			return corruptf("page has %d definition levels for %d rows", len(c.defs), c.pageRows)
		}
	}
	nv := c.pageRows
	if c.defs != nil {
		nv = 0
		for _, d := range c.defs {
			if d == c.plan.maxDef {
				nv++
			}
		}
	}
	data := p.Data()
	c.idx = nil
	values := data
	if d := p.Dictionary(); d != nil {
		c.idx = data.Int32()
		if len(c.idx) < nv {
			return corruptf("page has %d dictionary indexes for %d values", len(c.idx), nv)
		}
		c.dictLen = d.Len()
		values = d.Page().Data()
		for _, j := range c.idx[:nv] {
			if uint32(j) >= uint32(c.dictLen) {
				return corruptf("dictionary index %d out of range [0, %d)", j, c.dictLen)
			}
		}
		nv = c.dictLen // the typed views below hold the dictionary
	}
	have := 0
	switch c.plan.kind {
	case goBool:
		if c.idx != nil {
			return corruptf("dictionary-encoded boolean page")
		}
		c.bits = values.Boolean()
		have = len(c.bits) * 8
	case goInt32:
		c.i32 = values.Int32()
		have = len(c.i32)
	case goInt64:
		c.i64 = values.Int64()
		have = len(c.i64)
	case goFloat:
		c.f32 = values.Float()
		have = len(c.f32)
	case goDouble:
		c.f64 = values.Double()
		have = len(c.f64)
	case goBytes:
		c.bdata, c.boffs = values.ByteArray()
		have = len(c.boffs) - 1
		if have >= 0 && int(c.boffs[have]) > len(c.bdata) {
			return corruptf("byte array offsets past page data")
		}
	}
	if have < nv {
		return corruptf("page has %d values, want %d", have, nv)
	}
	return nil
}

// countValid returns the number of non-null values among defs.
func (c *goColumn) countValid(defs []byte) int {
	n := 0
	for _, d := range defs {
		if d == c.plan.maxDef {
			n++
		}
	}
	return n
}

// advance makes sure the current page has rows left.
func (c *goColumn) advance() error {
	for c.page == nil || c.row == c.pageRows {
		if err := c.nextPage(); err != nil {
			return err
		}
	}
	return nil
}

// skipRows drops the rows before the first output row (a restore's
// position inside the row group).
func (c *goColumn) skipRows() error {
	for c.skip > 0 {
		if err := c.advance(); err != nil {
			return err
		}
		k := min(int(c.skip), c.pageRows-c.row)
		nv := k
		if c.defs != nil {
			nv = c.countValid(c.defs[c.row : c.row+k])
		}
		c.row += k
		c.val += nv
		c.skip -= int64(k)
	}
	return nil
}

// next decodes n rows into a new array allocated from mem.
func (c *goColumn) next(mem memory.Allocator, n int) (arr arrow.Array, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: decoder panic: %v", ErrCorrupt, r)
		}
	}()
	if err := c.skipRows(); err != nil {
		return nil, err
	}
	if c.dictOut {
		return c.nextDict(mem, n)
	}

	var validBuf, valsBuf, offsBuf *memory.Buffer
	defer func() {
		for _, b := range []*memory.Buffer{validBuf, valsBuf, offsBuf, c.data} {
			if b != nil {
				b.Release()
			}
		}
		c.data = nil
	}()
	validBuf = c.beginValidity(mem, n)
	switch c.plan.kind {
	case goBool:
		valsBuf = memory.NewResizableBuffer(mem)
		valsBuf.Resize(int(bitutil.BytesForBits(int64(n))))
		c.vals = valsBuf.Bytes()
		clear(c.vals)
	case goBytes:
		offsBuf = memory.NewResizableBuffer(mem)
		offsBuf.Resize((n + 1) * 4)
		c.offs = arrow.Int32Traits.CastFromBytes(offsBuf.Bytes())
		c.offs[0] = 0
		c.data = memory.NewResizableBuffer(mem)
		c.data.Reserve(n * 8)
		c.dlen = 0
	default:
		valsBuf = memory.NewResizableBuffer(mem)
		valsBuf.Resize(n * c.plan.width)
		c.vals = valsBuf.Bytes()
	}

	for filled := 0; filled < n; {
		if err := c.advance(); err != nil {
			return nil, err
		}
		k := min(n-filled, c.pageRows-c.row)
		var defs []byte
		if c.defs != nil {
			defs = c.defs[c.row : c.row+k]
		}
		nv := c.copy(filled, k, defs)
		if c.valid != nil {
			if defs == nil {
				bitutil.SetBitsTo(c.valid, int64(filled), int64(k), true)
			} else {
				for i, d := range defs {
					if d == c.plan.maxDef {
						bitutil.SetBit(c.valid, filled+i)
					}
				}
			}
		}
		c.nulls += k - nv
		c.row += k
		c.val += nv
		filled += k
	}
	if c.plan.mul > 1 || c.plan.div > 1 {
		rescale(arrow.Int64Traits.CastFromBytes(c.vals), c.plan.mul, c.plan.div)
	}

	if c.nulls == 0 && validBuf != nil {
		validBuf.Release()
		validBuf = nil
	}
	var buffers []*memory.Buffer
	if c.plan.kind == goBytes {
		c.data.ResizeNoShrink(c.dlen)
		buffers = []*memory.Buffer{validBuf, offsBuf, c.data}
	} else {
		buffers = []*memory.Buffer{validBuf, valsBuf}
	}
	d := array.NewData(c.typ, n, buffers, nil, c.nulls, 0)
	defer d.Release()
	return array.MakeFromData(d), nil
}

// copy converts k rows starting at the page's current row into output rows
// [off, off+k). defs are the rows' definition levels (nil: no nulls). It
// returns the number of non-null values consumed.
func (c *goColumn) copy(off, k int, defs []byte) int {
	switch c.plan.kind {
	case goBool:
		return c.copyBool(off, k, defs)
	case goBytes:
		return c.copyBytes(off, k, defs)
	case goInt32:
		switch c.plan.width {
		case 1:
			return copyNum(arrow.Int8Traits.CastFromBytes(c.vals), c.i32, c.idx, c.val, off, k, defs, c.plan.maxDef)
		case 2:
			return copyNum(arrow.Int16Traits.CastFromBytes(c.vals), c.i32, c.idx, c.val, off, k, defs, c.plan.maxDef)
		default:
			return copyNum(arrow.Int32Traits.CastFromBytes(c.vals), c.i32, c.idx, c.val, off, k, defs, c.plan.maxDef)
		}
	case goInt64:
		return copyNum(arrow.Int64Traits.CastFromBytes(c.vals), c.i64, c.idx, c.val, off, k, defs, c.plan.maxDef)
	case goFloat:
		return copyNum(arrow.Float32Traits.CastFromBytes(c.vals), c.f32, c.idx, c.val, off, k, defs, c.plan.maxDef)
	case goDouble:
		return copyNum(arrow.Float64Traits.CastFromBytes(c.vals), c.f64, c.idx, c.val, off, k, defs, c.plan.maxDef)
	}
	panic("unreachable")
}

type number interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~float32 | ~float64
}

// copyNum fills dst[off:off+k] from plain values src[val:] (or, with a
// dictionary, src[idx[val:]]), scattering around nulls.
func copyNum[D, S number](dst []D, src []S, idx []int32, val, off, k int, defs []byte, maxDef byte) int {
	dst = dst[off : off+k]
	if defs == nil {
		if idx != nil {
			for i, j := range idx[val : val+k] {
				dst[i] = D(src[j])
			}
		} else {
			for i, v := range src[val : val+k] {
				dst[i] = D(v)
			}
		}
		return k
	}
	j := val
	if idx != nil {
		for i, d := range defs {
			if d == maxDef {
				dst[i] = D(src[idx[j]])
				j++
			} else {
				dst[i] = 0
			}
		}
	} else {
		for i, d := range defs {
			if d == maxDef {
				dst[i] = D(src[j])
				j++
			} else {
				dst[i] = 0
			}
		}
	}
	return j - val
}

func (c *goColumn) copyBool(off, k int, defs []byte) int {
	j := c.val
	for i := 0; i < k; i++ {
		if defs != nil && defs[i] != c.plan.maxDef {
			continue
		}
		if bitutil.BitIsSet(c.bits, j) {
			bitutil.SetBit(c.vals, off+i)
		}
		j++
	}
	return j - c.val
}

func (c *goColumn) copyBytes(off, k int, defs []byte) int {
	// Two passes: sum the lengths, grow the data buffer once, then copy with
	// the buffer and offsets held in locals (no per-value growth checks).
	boffs, bdata, idx := c.boffs, c.bdata, c.idx
	maxDef := c.plan.maxDef
	need, j := 0, c.val
	for i := 0; i < k; i++ {
		if defs == nil || defs[i] == maxDef {
			v := j
			if idx != nil {
				v = int(idx[j])
			}
			need += int(boffs[v+1] - boffs[v])
			j++
		}
	}
	if c.dlen+need > 1<<31-1 {
		panic("string column batch exceeds 2 GiB")
	}
	if c.dlen+need > c.data.Cap() {
		c.data.Reserve(max(c.dlen+need, 2*c.data.Cap()))
	}
	buf := c.data.Buf()
	offs := c.offs[off+1 : off+k+1]
	dlen := c.dlen
	j = c.val
	switch {
	case defs == nil && idx != nil:
		for i, v := range idx[j : j+k] {
			dlen += copy(buf[dlen:], bdata[boffs[v]:boffs[v+1]])
			offs[i] = int32(dlen)
		}
		j += k
	default:
		for i := 0; i < k; i++ {
			if defs == nil || defs[i] == maxDef {
				v := j
				if idx != nil {
					v = int(idx[j])
				}
				dlen += copy(buf[dlen:], bdata[boffs[v]:boffs[v+1]])
				j++
			}
			offs[i] = int32(dlen)
		}
	}
	c.dlen = dlen
	return j - c.val
}

// beginValidity starts a batch of n rows of the column: no nulls yet and,
// for a nullable column, a validity bitmap of n unset bits in c.valid,
// whose buffer it returns (nil otherwise) for the caller to release.
func (c *goColumn) beginValidity(mem memory.Allocator, n int) *memory.Buffer {
	c.nulls, c.valid = 0, nil
	if !c.nullable {
		return nil
	}
	b := memory.NewResizableBuffer(mem)
	b.Resize(int(bitutil.BytesForBits(int64(n))))
	c.valid = b.Bytes()
	clear(c.valid)
	return b
}
