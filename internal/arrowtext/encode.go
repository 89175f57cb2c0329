package arrowtext

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

// Style is the text format of rows.
type Style int

// Styles.
const (
	CSV Style = iota
	JSON
)

// column is one column of one batch encoded as text: the values back to
// back in buf, value i at buf[ends[i]:ends[i+1]]. kids are the encoded
// children of a nested or dictionary column, kept to reuse their buffers.
type column struct {
	buf  []byte
	ends []int
	kids []column
}

func (c *column) value(i int) []byte { return c.buf[c.ends[i]:c.ends[i+1]] }

// Encoder encodes the batches of one schema as rows of text. It keeps its
// buffers between batches; not safe for concurrent use.
type Encoder struct {
	f     *format
	style Style
	cols  []column
	keys  [][]byte // JSON: `{"name":` then `,"name":`
	// noHeader: CSVOptions.NoHeader.
	noHeader bool
}

// CSVOptions configure CSV text. The zero value is RFC 4180 with a header
// line: fields separated by commas, quoted with '"', a NULL an empty
// unquoted field (an empty string is quoted: "").
type CSVOptions struct {
	// Delimiter separates fields; default ','.
	Delimiter byte
	// Quote quotes fields that need it (doubled inside them); default '"'.
	Quote byte
	// Null is the text of a NULL; default "" (an empty unquoted field). A
	// string value equal to it is quoted, so that a reader that does not
	// take quoted fields for NULLs tells them apart.
	Null string
	// NoHeader leaves out the header line of column names.
	NoHeader bool
}

// withDefaults returns o with the zero delimiter and quote set.
func (o CSVOptions) withDefaults() CSVOptions {
	if o.Delimiter == 0 {
		o.Delimiter = ','
	}
	if o.Quote == 0 {
		o.Quote = '"'
	}
	return o
}

// Validate reports a delimiter or quote that would make rows ambiguous: a
// line break, a character values are written with (letters, digits,
// ".+-:/= " of numbers, times and base64), or both the same; and a Null
// holding either of them or a line break.
func (o CSVOptions) Validate() error {
	o = o.withDefaults()
	bad := func(c byte) bool {
		return c == '\n' || c == '\r' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			strings.IndexByte(".+-:/= ", c) >= 0 || c >= 0x80
	}
	switch {
	case bad(o.Delimiter):
		return fmt.Errorf("csv: delimiter %q cannot be told from values (want e.g. ',', ';', '|' or a tab)", o.Delimiter)
	case bad(o.Quote):
		return fmt.Errorf("csv: quote %q cannot be told from values (want e.g. '\"' or '\\'')", o.Quote)
	case o.Delimiter == o.Quote:
		return fmt.Errorf("csv: delimiter and quote are both %q", o.Delimiter)
	case strings.ContainsAny(o.Null, string([]byte{o.Delimiter, o.Quote, '\n', '\r'})):
		return fmt.Errorf("csv: null %q holds the delimiter, the quote or a line break", o.Null)
	}
	return nil
}

// format is how values are written: the style, and CSV's characters.
type format struct {
	style        Style
	delim, quote byte
	null         []byte // text of a NULL
	nullStr      string // CSV: the Null a string value must not look like
}

func newFormat(style Style, o CSVOptions) *format {
	if style == JSON {
		return &format{style: JSON, null: nullJSON}
	}
	o = o.withDefaults()
	return &format{style: CSV, delim: o.Delimiter, quote: o.Quote, null: []byte(o.Null), nullStr: o.Null}
}

// CheckCSV reports a column of schema that CSV cannot hold (a nested type).
func CheckCSV(schema *arrow.Schema) error {
	for _, f := range schema.Fields() {
		if arrow.IsNested(f.Type.ID()) {
			return fmt.Errorf("column %q: nested type %s cannot be written as CSV", f.Name, f.Type)
		}
	}
	return nil
}

// NewEncoder returns an encoder of batches of schema in style.
func NewEncoder(style Style, schema *arrow.Schema) *Encoder {
	return newEncoder(style, schema, CSVOptions{})
}

// NewCSVEncoder returns a CSV encoder of batches of schema with options o
// (Validate them first).
func NewCSVEncoder(schema *arrow.Schema, o CSVOptions) *Encoder {
	return newEncoder(CSV, schema, o)
}

func newEncoder(style Style, schema *arrow.Schema, o CSVOptions) *Encoder {
	e := &Encoder{f: newFormat(style, o), style: style, cols: make([]column, schema.NumFields()), noHeader: o.NoHeader}
	if style == JSON {
		e.keys = make([][]byte, schema.NumFields())
		for i, f := range schema.Fields() {
			sep := byte(',')
			if i == 0 {
				sep = '{'
			}
			k := AppendJSONString([]byte{sep}, f.Name)
			e.keys[i] = append(k, ':')
		}
	}
	return e
}

// AppendHeader appends CSV's header line (nothing for JSON).
func (e *Encoder) AppendHeader(out []byte, schema *arrow.Schema) []byte {
	if e.style != CSV || e.noHeader {
		return out
	}
	for i, f := range schema.Fields() {
		if i > 0 {
			out = append(out, e.f.delim)
		}
		out = appendCSVString(out, f.Name, e.f)
	}
	return append(out, '\n')
}

// AppendRows appends the rows of b (borrowed) to out, each ended by '\n',
// and, when ends is not nil, the offset in out where each row ends (after
// its '\n').
func (e *Encoder) AppendRows(out []byte, b arrow.RecordBatch, ends *[]int) []byte {
	n := int(b.NumRows())
	for c := range e.cols {
		encodeColumn(&e.cols[c], b.Column(c), e.f)
	}
	for r := 0; r < n; r++ {
		switch e.style {
		case CSV:
			for c := range e.cols {
				if c > 0 {
					out = append(out, e.f.delim)
				}
				out = append(out, e.cols[c].value(r)...)
			}
		case JSON:
			for c := range e.cols {
				out = append(out, e.keys[c]...)
				out = append(out, e.cols[c].value(r)...)
			}
			if len(e.cols) == 0 {
				out = append(out, '{')
			}
			out = append(out, '}')
		}
		out = append(out, '\n')
		if ends != nil {
			*ends = append(*ends, len(out))
		}
	}
	return out
}

// Release drops the encoder's buffers.
func (e *Encoder) Release() {
	for i := range e.cols {
		e.cols[i] = column{}
	}
}

// Writer writes batches to an io.Writer as text, buffering up to a size.
type Writer struct {
	e       *Encoder
	w       io.Writer
	limit   int
	out     []byte
	written int64
	err     error
}

// NewWriter returns a writer of batches of schema in style to w, which
// writes to w whenever bufSize bytes are buffered (and in Flush). CSV's
// header line is buffered at once.
func NewWriter(style Style, schema *arrow.Schema, w io.Writer, bufSize int) (*Writer, error) {
	return newWriter(style, schema, w, bufSize, CSVOptions{})
}

// NewCSVWriter is NewWriter for CSV with options o.
func NewCSVWriter(schema *arrow.Schema, w io.Writer, bufSize int, o CSVOptions) (*Writer, error) {
	return newWriter(CSV, schema, w, bufSize, o)
}

func newWriter(style Style, schema *arrow.Schema, w io.Writer, bufSize int, o CSVOptions) (*Writer, error) {
	if style == CSV {
		if err := CheckCSV(schema); err != nil {
			return nil, err
		}
		if err := o.Validate(); err != nil {
			return nil, err
		}
	}
	tw := &Writer{e: newEncoder(style, schema, o), w: w, limit: bufSize, out: make([]byte, 0, bufSize+bufSize/4)}
	tw.out = tw.e.AppendHeader(tw.out, schema)
	return tw, nil
}

// Write encodes b (borrowed), writing to w once the buffer is full.
func (w *Writer) Write(b arrow.RecordBatch) error {
	if w.err != nil {
		return w.err
	}
	w.out = w.e.AppendRows(w.out, b, nil)
	if len(w.out) >= w.limit {
		return w.Flush()
	}
	return nil
}

// Flush writes what is buffered to w.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.out) == 0 {
		return nil
	}
	n, err := w.w.Write(w.out)
	w.written += int64(n)
	w.out = w.out[:0]
	if err != nil {
		w.err = err
	}
	return err
}

// Size is the bytes written to w plus those buffered.
func (w *Writer) Size() int64 { return w.written + int64(len(w.out)) }

// Close writes what is buffered; it does not close w.
func (w *Writer) Close() error { return w.Flush() }

// Abort drops the buffers without writing anything more.
func (w *Writer) Abort() { w.out = nil; w.e.Release() }

// validity reads a null bitmap.
type validity struct {
	bm  []byte
	off int
	has bool // the array has nulls
}

func validityOf(a arrow.Array) validity {
	if a.NullN() == 0 {
		return validity{}
	}
	return validity{bm: a.NullBitmapBytes(), off: a.Data().Offset(), has: true}
}

func (v validity) null(i int) bool { return v.has && !bitutil.BitIsSet(v.bm, v.off+i) }

var nullJSON = []byte("null")

// encodeColumn encodes every value of a into dst, one typed loop per type.
func encodeColumn(dst *column, a arrow.Array, f *format) {
	style := f.style
	n := a.Len()
	dst.buf = dst.buf[:0]
	if cap(dst.ends) < n+1 {
		dst.ends = make([]int, n+1)
	}
	dst.ends = dst.ends[:n+1]
	dst.ends[0] = 0
	null := f.null
	quote := style == JSON
	v := validityOf(a)
	buf, ends := dst.buf, dst.ends
	// each runs f for every valid value, null for the others.
	each := func(f func(buf []byte, i int) []byte) {
		for i := 0; i < n; i++ {
			if v.null(i) {
				buf = append(buf, null...)
			} else {
				buf = f(buf, i)
			}
			ends[i+1] = len(buf)
		}
	}
	switch a := a.(type) {
	case *array.Null:
		for i := 0; i < n; i++ {
			buf = append(buf, null...)
			ends[i+1] = len(buf)
		}
	case *array.Boolean:
		each(func(buf []byte, i int) []byte { return strconv.AppendBool(buf, a.Value(i)) })
	case *array.Int8:
		buf = appendInts(buf, ends, a.Int8Values(), v, null)
	case *array.Int16:
		buf = appendInts(buf, ends, a.Int16Values(), v, null)
	case *array.Int32:
		buf = appendInts(buf, ends, a.Int32Values(), v, null)
	case *array.Int64:
		buf = appendInts(buf, ends, a.Int64Values(), v, null)
	case *array.Uint8:
		buf = appendUints(buf, ends, a.Uint8Values(), v, null)
	case *array.Uint16:
		buf = appendUints(buf, ends, a.Uint16Values(), v, null)
	case *array.Uint32:
		buf = appendUints(buf, ends, a.Uint32Values(), v, null)
	case *array.Uint64:
		buf = appendUints(buf, ends, a.Uint64Values(), v, null)
	case *array.Float32:
		buf = appendFloats(buf, ends, a.Float32Values(), 32, v, null, style)
	case *array.Float64:
		buf = appendFloats(buf, ends, a.Float64Values(), 64, v, null, style)
	case *array.String:
		buf = appendStrings(buf, ends, a, v, null, f)
	case *array.LargeString:
		buf = appendStrings(buf, ends, a, v, null, f)
	case *array.StringView:
		buf = appendStrings(buf, ends, a, v, null, f)
	case *array.Binary:
		each(func(buf []byte, i int) []byte { return appendBase64(buf, a.Value(i), quote) })
	case *array.LargeBinary:
		each(func(buf []byte, i int) []byte { return appendBase64(buf, a.Value(i), quote) })
	case *array.BinaryView:
		each(func(buf []byte, i int) []byte { return appendBase64(buf, a.Value(i), quote) })
	case *array.Timestamp:
		typ := a.DataType().(*arrow.TimestampType)
		zulu := typ.TimeZone != ""
		for i, t := range a.TimestampValues() {
			if v.null(i) {
				buf = append(buf, null...)
			} else {
				buf = appendQuote(buf, quote)
				buf = AppendTimestamp(buf, int64(t), typ.Unit, zulu)
				buf = appendQuote(buf, quote)
			}
			ends[i+1] = len(buf)
		}
	case *array.Date32:
		ds := a.Date32Values()
		each(func(buf []byte, i int) []byte {
			buf = appendQuote(buf, quote)
			buf = appendDate(buf, int64(ds[i]))
			return appendQuote(buf, quote)
		})
	case *array.Date64:
		ds := a.Date64Values()
		each(func(buf []byte, i int) []byte {
			buf = appendQuote(buf, quote)
			buf = appendDate(buf, floorDiv(int64(ds[i]), 86_400_000))
			return appendQuote(buf, quote)
		})
	case *array.Decimal32, *array.Decimal64, *array.Decimal128, *array.Decimal256:
		// Their exact text: a JSON number, a CSV field.
		each(func(buf []byte, i int) []byte { return append(buf, a.ValueStr(i)...) })
	case *array.Dictionary:
		kid := dst.kid(0)
		encodeColumn(kid, a.Dictionary(), f)
		each(func(buf []byte, i int) []byte { return append(buf, kid.value(a.GetValueIndex(i))...) })
	case array.ListLike:
		if _, isMap := a.(*array.Map); isMap || style != JSON {
			buf = appendMarshal(buf, ends, a, v, null, f)
			break
		}
		kid := dst.kid(0)
		encodeColumn(kid, a.ListValues(), f)
		each(func(buf []byte, i int) []byte {
			lo, hi := a.ValueOffsets(i)
			buf = append(buf, '[')
			for j := lo; j < hi; j++ {
				if j > lo {
					buf = append(buf, ',')
				}
				buf = append(buf, kid.value(int(j))...)
			}
			return append(buf, ']')
		})
	case *array.Struct:
		if style != JSON {
			buf = appendMarshal(buf, ends, a, v, null, f)
			break
		}
		st := a.DataType().(*arrow.StructType)
		keys := make([][]byte, a.NumField())
		for k := range a.NumField() {
			encodeColumn(dst.kid(k), a.Field(k), f)
			keys[k] = append(AppendJSONString(nil, st.Field(k).Name), ':')
		}
		each(func(buf []byte, i int) []byte {
			buf = append(buf, '{')
			for k := range keys {
				if k > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, keys[k]...)
				buf = append(buf, dst.kids[k].value(i)...)
			}
			return append(buf, '}')
		})
	default:
		buf = appendMarshal(buf, ends, a, v, null, f)
	}
	dst.buf = buf
}

// kid returns child column i, growing kids as needed.
func (c *column) kid(i int) *column {
	for len(c.kids) <= i {
		c.kids = append(c.kids, column{})
	}
	return &c.kids[i]
}

// appendMarshal is the slow path for types without a typed loop:
// encoding/json of arrow-go's value (its text as a string when that
// fails), ValueStr for CSV.
func appendMarshal(buf []byte, ends []int, a arrow.Array, v validity, null []byte, f *format) []byte {
	for i := 0; i < a.Len(); i++ {
		switch {
		case v.null(i):
			buf = append(buf, null...)
		case f.style == JSON:
			j, err := json.Marshal(a.GetOneForMarshal(i))
			if err != nil {
				j = AppendJSONString(nil, a.ValueStr(i))
			}
			buf = append(buf, j...)
		default:
			buf = appendCSVString(buf, a.ValueStr(i), f)
		}
		ends[i+1] = len(buf)
	}
	return buf
}

func appendStrings[A interface {
	Len() int
	Value(int) string
}](buf []byte, ends []int, a A, v validity, null []byte, f *format) []byte {
	for i := 0; i < a.Len(); i++ {
		if v.null(i) {
			buf = append(buf, null...)
		} else {
			buf = appendString(buf, a.Value(i), f)
		}
		ends[i+1] = len(buf)
	}
	return buf
}

func appendQuote(buf []byte, quote bool) []byte {
	if quote {
		return append(buf, '"')
	}
	return buf
}

func appendInts[T int8 | int16 | int32 | int64](buf []byte, ends []int, vals []T, v validity, null []byte) []byte {
	for i, x := range vals {
		if v.null(i) {
			buf = append(buf, null...)
		} else {
			buf = strconv.AppendInt(buf, int64(x), 10)
		}
		ends[i+1] = len(buf)
	}
	return buf
}

func appendUints[T uint8 | uint16 | uint32 | uint64](buf []byte, ends []int, vals []T, v validity, null []byte) []byte {
	for i, x := range vals {
		if v.null(i) {
			buf = append(buf, null...)
		} else {
			buf = strconv.AppendUint(buf, uint64(x), 10)
		}
		ends[i+1] = len(buf)
	}
	return buf
}

func appendFloats[T float32 | float64](buf []byte, ends []int, vals []T, bits int, v validity, null []byte, style Style) []byte {
	for i, x := range vals {
		f := float64(x)
		switch {
		case v.null(i):
			buf = append(buf, null...)
		case math.IsNaN(f) || math.IsInf(f, 0):
			switch {
			case style == JSON:
				buf = append(buf, nullJSON...)
			case math.IsNaN(f):
				buf = append(buf, "nan"...)
			case f > 0:
				buf = append(buf, "inf"...)
			default:
				buf = append(buf, "-inf"...)
			}
		default:
			buf = AppendFloat(buf, f, bits)
		}
		ends[i+1] = len(buf)
	}
	return buf
}

// AppendFloat appends finite f (a float64, or a float32 widened, with
// bits 32) in the shortest form that reads back to the same value, like
// encoding/json: exponent form below 1e-6 and from 1e21 on, and ".0"
// added to an integral value so that it reads back as a float.
func AppendFloat(buf []byte, f float64, bits int) []byte {
	abs := math.Abs(f)
	fmtc := byte('f')
	if abs != 0 {
		if bits == 32 {
			abs = float64(float32(abs))
		}
		if abs < 1e-6 || abs >= 1e21 {
			fmtc = 'e'
		}
	}
	start := len(buf)
	buf = strconv.AppendFloat(buf, f, fmtc, -1, bits)
	if fmtc == 'e' {
		// Like encoding/json: e-07 becomes e-7.
		n := len(buf)
		if n-start >= 4 && buf[n-4] == 'e' && buf[n-3] == '-' && buf[n-2] == '0' {
			buf[n-2] = buf[n-1]
			buf = buf[:n-1]
		}
		return buf
	}
	for _, c := range buf[start:] {
		if c == '.' {
			return buf
		}
	}
	return append(buf, '.', '0')
}

func appendBase64(buf, v []byte, quote bool) []byte {
	buf = appendQuote(buf, quote)
	buf = base64.StdEncoding.AppendEncode(buf, v)
	return appendQuote(buf, quote)
}

func appendString(buf []byte, s string, f *format) []byte {
	if f.style == JSON {
		return AppendJSONString(buf, s)
	}
	return appendCSVString(buf, s, f)
}
