package text

import (
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/internal/coerce"
)

// cells are the raw values of one column in a batch, one per row: the
// bytes at buf[off:off+n] (or arena[-1-off:][:n] when off < 0; n < 0:
// null or missing) and, for JSON, their kind and whether a number is an
// integer literal. CSV values are of kind string.
type cells struct {
	off, n []int32
	kind   []coerce.Kind
	isInt  []bool
}

// batch collects the raw values of up to BatchSize rows, then converts them
// column by column: one typed loop per column, the type switch outside it.
type batch struct {
	cols   []coerce.Type
	names  []string
	req    []bool
	cells  []cells
	fields []field
	arena  []byte
	line   []int64 // line of each row
	span   [][2]int32
	bad    []bool
	nbad   int

	scr []scratch // per column

	builders []array.Builder
	schema   *arrow.Schema
	json     jsonRow
}

func (b *batch) init(s *Source, mem memory.Allocator) {
	b.schema = s.schema
	for i, c := range s.opts.Columns {
		b.cols = append(b.cols, c.Type)
		b.names = append(b.names, c.Name)
		b.req = append(b.req, c.Required)
		b.builders = append(b.builders, array.NewBuilder(mem, s.schema.Field(i).Type))
	}
	b.cells = make([]cells, len(b.cols))
	b.scr = make([]scratch, len(b.cols))
	b.json.init(s.opts.Columns)
}

func (b *batch) release() {
	for _, bl := range b.builders {
		bl.Release()
	}
	b.builders = nil
}

func (b *batch) reset() {
	for i := range b.cells {
		c := &b.cells[i]
		c.off, c.n, c.kind, c.isInt = c.off[:0], c.n[:0], c.kind[:0], c.isInt[:0]
	}
	b.arena, b.line, b.span = b.arena[:0], b.line[:0], b.span[:0]
}

// addCSV splits the record buf[s:e] and keeps the declared fields.
func (b *batch) addCSV(r *Reader, s, e int, line int64) error {
	fi := &r.s.files[r.splits[r.cur].file]
	var err error
	b.fields, b.arena, err = splitCSV(r.buf, s, e, r.s.opts.Delimiter, b.fields, b.arena)
	if err != nil {
		return err
	}
	if len(b.fields) != fi.nfields {
		return fmt.Errorf("%w: %d fields, want %d", ErrMalformed, len(b.fields), fi.nfields)
	}
	for c, p := range fi.pos {
		f := b.fields[p]
		b.cells[c].off = append(b.cells[c].off, f.off)
		b.cells[c].n = append(b.cells[c].n, f.n)
	}
	b.line = append(b.line, line)
	b.span = append(b.span, [2]int32{int32(s), int32(e)})
	return nil
}

// value returns the bytes of row i of column c.
func (b *batch) value(buf []byte, c *cells, i int) []byte {
	off, n := c.off[i], c.n[i]
	if off < 0 {
		o := -1 - off
		return b.arena[o : o+n]
	}
	return buf[off : off+n]
}

// markBad applies the error policy to row i, bad because of column c.
func (b *batch) markBad(r *Reader, i, c int, err error) error {
	if b.bad[i] {
		return nil // one reason per row
	}
	sp := b.span[i]
	if err := r.badRow(b.line[i], b.names[c], err, r.buf[sp[0]:sp[1]]); err != nil {
		return err
	}
	b.bad[i] = true
	b.nbad++
	return nil
}

// kindOf returns the kind of row i and whether it is an integer literal.
func (c *cells) kindOf(i int) (coerce.Kind, bool) {
	if c.kind == nil || len(c.kind) == 0 {
		return coerce.Str, false
	}
	return c.kind[i], c.isInt[i]
}

// scratch holds the converted values of one fixed-width column.
type scratch struct {
	i64   []int64
	i32   []int32
	f64   []float64
	bools []bool
	valid []bool
	nulls int
}

// parseCol converts column c of rows into vals and valid; empty and null
// values are null. It returns the number of nulls.
func parseCol[T any](b *batch, r *Reader, c, rows int, vals []T, valid []bool, parse func(coerce.Kind, []byte, bool) (T, bool)) (int, error) {
	cl := &b.cells[c]
	nulls := 0
	json := len(cl.kind) > 0
	for i := 0; i < rows; i++ {
		// CSV: an empty field is null; JSON: null or missing (an empty
		// string does not convert, as in the Kafka source).
		if n := cl.n[i]; n < 0 || (n == 0 && !json) {
			valid[i] = false
			nulls++
			if b.req[c] {
				if err := b.markBad(r, i, c, errRequired); err != nil {
					return 0, err
				}
			}
			continue
		}
		kind, isInt := cl.kindOf(i)
		v, ok := parse(kind, b.value(r.buf, cl, i), isInt)
		if !ok {
			if err := b.markBad(r, i, c, coerce.ConvertError(b.cols[c], kind, b.value(r.buf, cl, i))); err != nil {
				return 0, err
			}
		}
		vals[i], valid[i] = v, true
	}
	return nulls, nil
}

func parseBool(k coerce.Kind, v []byte, _ bool) (bool, bool) { return coerce.ParseBool(k, v) }

// compact keeps the rows that are not bad, in order.
func compact[T any](vals []T, bad []bool) []T {
	w := 0
	for i, v := range vals {
		if !bad[i] {
			vals[w] = v
			w++
		}
	}
	return vals[:w]
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// convert converts fixed-width column c into its scratch.
func (b *batch) convert(r *Reader, c, rows int) error {
	sc := &b.scr[c]
	sc.valid = grow(sc.valid, rows)
	var err error
	switch b.cols[c] {
	case coerce.Int64:
		sc.i64 = grow(sc.i64, rows)
		sc.nulls, err = parseCol(b, r, c, rows, sc.i64, sc.valid, coerce.ParseInt)
	case coerce.Timestamp:
		sc.i64 = grow(sc.i64, rows)
		sc.nulls, err = parseCol(b, r, c, rows, sc.i64, sc.valid, coerce.ParseMillis)
	case coerce.Int32:
		sc.i64 = grow(sc.i64, rows)
		sc.nulls, err = parseCol(b, r, c, rows, sc.i64, sc.valid, coerce.ParseInt32)
	case coerce.Float64:
		sc.f64 = grow(sc.f64, rows)
		sc.nulls, err = parseCol(b, r, c, rows, sc.f64, sc.valid, coerce.ParseFloat)
	case coerce.Bool:
		sc.bools = grow(sc.bools, rows)
		sc.nulls, err = parseCol(b, r, c, rows, sc.bools, sc.valid, parseBool)
	}
	return err
}

// checkText checks string column c: JSON values of a kind that has no
// text, and empty required values, make their row bad.
func (b *batch) checkText(r *Reader, c, rows int) error {
	cl := &b.cells[c]
	for i := 0; i < rows; i++ {
		if cl.n[i] < 0 {
			if b.req[c] {
				if err := b.markBad(r, i, c, errRequired); err != nil {
					return err
				}
			}
			continue
		}
		if len(cl.kind) > 0 && !coerce.Text(b.cols[c], cl.kind[i]) {
			if err := b.markBad(r, i, c, coerce.ConvertError(b.cols[c], cl.kind[i], b.value(r.buf, cl, i))); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendText appends the good rows of string or binary column c.
func (b *batch) appendText(r *Reader, c, rows int, bl *array.BinaryBuilder) {
	cl := &b.cells[c]
	total := 0
	for i := 0; i < rows; i++ {
		if n := cl.n[i]; n > 0 && !b.bad[i] {
			total += int(n)
		}
	}
	bl.Reserve(rows - b.nbad)
	bl.ReserveData(total)
	for i := 0; i < rows; i++ {
		switch {
		case b.bad[i]:
		case cl.n[i] < 0:
			bl.AppendNull()
		default:
			bl.Append(b.value(r.buf, cl, i))
		}
	}
}

// build converts the rows collected by fill into a batch (nil when every
// row was bad): each column in one typed loop, then bad rows (known only
// once every column is converted) are dropped from all of them.
func (b *batch) build(r *Reader, rows int) (arrow.RecordBatch, error) {
	b.bad = grow(b.bad, rows)
	clear(b.bad)
	b.nbad = 0
	for c, t := range b.cols {
		var err error
		if t == coerce.String || t == coerce.Binary {
			err = b.checkText(r, c, rows)
		} else {
			err = b.convert(r, c, rows)
		}
		if err != nil {
			return nil, err
		}
	}
	if b.nbad == rows {
		return nil, nil
	}
	cols := make([]arrow.Array, len(b.cols))
	for c, t := range b.cols {
		bl := b.builders[c]
		sc := &b.scr[c]
		valid := sc.valid
		if b.nbad > 0 && t != coerce.String && t != coerce.Binary {
			sc.i64, sc.f64, sc.bools = compactIf(sc.i64, b.bad), compactIf(sc.f64, b.bad), compactIf(sc.bools, b.bad)
			valid = compact(valid, b.bad)
			sc.nulls = 0
			for _, v := range valid {
				if !v {
					sc.nulls++
				}
			}
		}
		if sc.nulls == 0 {
			valid = nil
		}
		switch t {
		case coerce.Int64:
			bl.(*array.Int64Builder).AppendValues(sc.i64, valid)
		case coerce.Timestamp:
			ts := unsafe.Slice((*arrow.Timestamp)(unsafe.SliceData(sc.i64)), len(sc.i64))
			bl.(*array.TimestampBuilder).AppendValues(ts, valid)
		case coerce.Int32:
			sc.i32 = grow(sc.i32, len(sc.i64))
			for i, v := range sc.i64 {
				sc.i32[i] = int32(v)
			}
			bl.(*array.Int32Builder).AppendValues(sc.i32, valid)
		case coerce.Float64:
			bl.(*array.Float64Builder).AppendValues(sc.f64, valid)
		case coerce.Bool:
			bl.(*array.BooleanBuilder).AppendValues(sc.bools, valid)
		case coerce.String:
			b.appendText(r, c, rows, bl.(*array.StringBuilder).BinaryBuilder)
		case coerce.Binary:
			b.appendText(r, c, rows, bl.(*array.BinaryBuilder))
		}
		cols[c] = bl.NewArray()
	}
	rec := array.NewRecordBatch(b.schema, cols, int64(rows-b.nbad))
	for _, a := range cols {
		a.Release()
	}
	return rec, nil
}

// compactIf compacts vals when it holds a column's values (len = rows).
func compactIf[T any](vals []T, bad []bool) []T {
	if len(vals) != len(bad) {
		return vals
	}
	return compact(vals, bad)
}
