package sinks

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

type textStyle int

const (
	styleCSV textStyle = iota
	styleJSON
)

// colText is one column of one batch encoded as text: the values back to
// back in buf, value i at buf[ends[i]:ends[i+1]].
type colText struct {
	buf  []byte
	ends []int
}

// textEncoder writes CSV or JSON Lines. Each batch is encoded a column at a
// time into colText buffers, then rows are stitched together into out, which
// is written to the file once it holds DefaultTextBufferSize bytes.
type textEncoder struct {
	style   textStyle
	w       io.Writer
	cols    []colText
	keys    [][]byte // JSON: `{"name":` then `,"name":`
	out     []byte
	written int64
	err     error
}

func newTextEncoder(style textStyle, schema *arrow.Schema, w io.Writer) *textEncoder {
	e := &textEncoder{
		style: style,
		w:     w,
		cols:  make([]colText, schema.NumFields()),
		out:   make([]byte, 0, DefaultTextBufferSize+DefaultTextBufferSize/4),
	}
	switch style {
	case styleCSV:
		for i, f := range schema.Fields() {
			if i > 0 {
				e.out = append(e.out, ',')
			}
			e.out = appendCSVString(e.out, f.Name)
		}
		e.out = append(e.out, '\n')
	case styleJSON:
		e.keys = make([][]byte, schema.NumFields())
		for i, f := range schema.Fields() {
			sep := byte(',')
			if i == 0 {
				sep = '{'
			}
			k := appendJSONString([]byte{sep}, f.Name)
			e.keys[i] = append(k, ':')
		}
	}
	return e
}

func (e *textEncoder) write(b arrow.RecordBatch) error {
	if e.err != nil {
		return e.err
	}
	e.out = e.encode(e.out, b, nil)
	if len(e.out) >= DefaultTextBufferSize {
		return e.flush()
	}
	return nil
}

// encode appends the rows of b to out as text and, when ends is not nil,
// the offset in out where each row ends.
func (e *textEncoder) encode(out []byte, b arrow.RecordBatch, ends *[]int) []byte {
	n := int(b.NumRows())
	for c := range e.cols {
		appendColumn(&e.cols[c], b.Column(c), e.style)
	}
	switch e.style {
	case styleCSV:
		for r := 0; r < n; r++ {
			for c := range e.cols {
				if c > 0 {
					out = append(out, ',')
				}
				col := &e.cols[c]
				out = append(out, col.buf[col.ends[r]:col.ends[r+1]]...)
			}
			out = append(out, '\n')
			if ends != nil {
				*ends = append(*ends, len(out))
			}
		}
	case styleJSON:
		for r := 0; r < n; r++ {
			for c := range e.cols {
				out = append(out, e.keys[c]...)
				col := &e.cols[c]
				out = append(out, col.buf[col.ends[r]:col.ends[r+1]]...)
			}
			if len(e.cols) == 0 {
				out = append(out, '{')
			}
			out = append(out, '}', '\n')
			if ends != nil {
				*ends = append(*ends, len(out))
			}
		}
	}
	return out
}

func (e *textEncoder) flush() error {
	if len(e.out) == 0 {
		return nil
	}
	n, err := e.w.Write(e.out)
	e.written += int64(n)
	e.out = e.out[:0]
	if err != nil {
		e.err = err
	}
	return err
}

func (e *textEncoder) size() int64 { return e.written + int64(len(e.out)) }

func (e *textEncoder) close() error {
	if e.err != nil {
		return e.err
	}
	return e.flush()
}

func (e *textEncoder) abort() { e.out, e.cols = nil, nil }

// TextWriter writes record batches to an io.Writer exactly as the file
// sink writes its CSV (a header line, then one line per row) and JSON
// Lines (one object per row) parts, for files written outside a sink
// (package ml's model exports).
type TextWriter struct{ e *textEncoder }

// NewTextWriter returns a writer of batches of schema in format (CSV or
// JSONL) to w.
func NewTextWriter(format Format, schema *arrow.Schema, w io.Writer) (*TextWriter, error) {
	var style textStyle
	switch format {
	case CSV:
		style = styleCSV
	case JSONL:
		style = styleJSON
	default:
		return nil, fmt.Errorf("sinks: text writer: format %q is not csv or jsonl", format)
	}
	if err := checkSchema(FileOptions{Format: format}, schema); err != nil {
		return nil, fmt.Errorf("sinks: text writer: %w", err)
	}
	return &TextWriter{newTextEncoder(style, schema, w)}, nil
}

// Write encodes b (borrowed), writing to w whenever the buffer fills.
func (t *TextWriter) Write(b arrow.RecordBatch) error { return t.e.write(b) }

// Close writes what is buffered; it does not close w.
func (t *TextWriter) Close() error { return t.e.close() }

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

var (
	nullJSON = []byte("null")
	nullCSV  = []byte{}
)

// appendColumn encodes every value of a into dst, one typed loop per type.
func appendColumn(dst *colText, a arrow.Array, style textStyle) {
	n := a.Len()
	dst.buf = dst.buf[:0]
	if cap(dst.ends) < n+1 {
		dst.ends = make([]int, n+1)
	}
	dst.ends = dst.ends[:n+1]
	dst.ends[0] = 0
	null := nullCSV
	if style == styleJSON {
		null = nullJSON
	}
	v := validityOf(a)
	buf, ends := dst.buf, dst.ends
	switch a := a.(type) {
	case *array.Boolean:
		for i := 0; i < n; i++ {
			switch {
			case v.null(i):
				buf = append(buf, null...)
			case a.Value(i):
				buf = append(buf, "true"...)
			default:
				buf = append(buf, "false"...)
			}
			ends[i+1] = len(buf)
		}
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
		for i := 0; i < n; i++ {
			if v.null(i) {
				buf = append(buf, null...)
			} else {
				buf = appendString(buf, a.Value(i), style)
			}
			ends[i+1] = len(buf)
		}
	case *array.LargeString:
		for i := 0; i < n; i++ {
			if v.null(i) {
				buf = append(buf, null...)
			} else {
				buf = appendString(buf, a.Value(i), style)
			}
			ends[i+1] = len(buf)
		}
	case *array.StringView:
		for i := 0; i < n; i++ {
			if v.null(i) {
				buf = append(buf, null...)
			} else {
				buf = appendString(buf, a.Value(i), style)
			}
			ends[i+1] = len(buf)
		}
	case *array.Timestamp:
		typ := a.DataType().(*arrow.TimestampType)
		zulu := typ.TimeZone != ""
		quote := style == styleJSON
		for i, t := range a.TimestampValues() {
			if v.null(i) {
				buf = append(buf, null...)
			} else {
				if quote {
					buf = append(buf, '"')
				}
				buf = appendTimestamp(buf, int64(t), typ.Unit, zulu)
				if quote {
					buf = append(buf, '"')
				}
			}
			ends[i+1] = len(buf)
		}
	case *array.Date32:
		quote := style == styleJSON
		for i, d := range a.Date32Values() {
			if v.null(i) {
				buf = append(buf, null...)
			} else {
				if quote {
					buf = append(buf, '"')
				}
				buf = appendDate(buf, int64(d))
				if quote {
					buf = append(buf, '"')
				}
			}
			ends[i+1] = len(buf)
		}
	case *array.Date64:
		quote := style == styleJSON
		for i, d := range a.Date64Values() {
			if v.null(i) {
				buf = append(buf, null...)
			} else {
				if quote {
					buf = append(buf, '"')
				}
				buf = appendDate(buf, floorDiv(int64(d), 86_400_000))
				if quote {
					buf = append(buf, '"')
				}
			}
			ends[i+1] = len(buf)
		}
	default:
		// Slow path for types without a typed loop.
		for i := 0; i < n; i++ {
			switch {
			case v.null(i):
				buf = append(buf, null...)
			case style == styleJSON:
				j, err := json.Marshal(a.GetOneForMarshal(i))
				if err != nil {
					j = appendJSONString(nil, a.ValueStr(i))
				}
				buf = append(buf, j...)
			default:
				buf = appendCSVString(buf, a.ValueStr(i))
			}
			ends[i+1] = len(buf)
		}
	}
	dst.buf = buf
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

func appendFloats[T float32 | float64](buf []byte, ends []int, vals []T, bits int, v validity, null []byte, style textStyle) []byte {
	for i, x := range vals {
		f := float64(x)
		switch {
		case v.null(i):
			buf = append(buf, null...)
		case math.IsNaN(f) || math.IsInf(f, 0):
			switch {
			case style == styleJSON:
				buf = append(buf, nullJSON...)
			case math.IsNaN(f):
				buf = append(buf, "nan"...)
			case f > 0:
				buf = append(buf, "inf"...)
			default:
				buf = append(buf, "-inf"...)
			}
		default:
			buf = strconv.AppendFloat(buf, f, 'g', -1, bits)
		}
		ends[i+1] = len(buf)
	}
	return buf
}

func appendString(buf []byte, s string, style textStyle) []byte {
	if style == styleJSON {
		return appendJSONString(buf, s)
	}
	return appendCSVString(buf, s)
}

// appendCSVString appends s as one CSV field, quoted (RFC 4180) when it
// contains a comma, quote, CR or LF, or is empty (an unquoted empty field is
// a null).
func appendCSVString(buf []byte, s string) []byte {
	needs := len(s) == 0
	for i := 0; i < len(s) && !needs; i++ {
		switch s[i] {
		case ',', '"', '\n', '\r':
			needs = true
		}
	}
	if !needs {
		return append(buf, s...)
	}
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			buf = append(buf, '"', '"')
		} else {
			buf = append(buf, s[i])
		}
	}
	return append(buf, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse).
func civil(days int64) (y int64, m, d int) {
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func append2(buf []byte, v int) []byte {
	return append(buf, byte('0'+v/10), byte('0'+v%10))
}

func appendDate(buf []byte, days int64) []byte {
	y, m, d := civil(days)
	if y < 0 || y > 9999 {
		return time.Unix(days*86400, 0).UTC().AppendFormat(buf, "2006-01-02")
	}
	yy := int(y)
	buf = append2(buf, yy/100)
	buf = append2(buf, yy%100)
	buf = append(buf, '-')
	buf = append2(buf, m)
	buf = append(buf, '-')
	return append2(buf, d)
}

var unitScale = [...]struct {
	perSec int64
	digits int
}{
	arrow.Second:      {1, 0},
	arrow.Millisecond: {1e3, 3},
	arrow.Microsecond: {1e6, 6},
	arrow.Nanosecond:  {1e9, 9},
}

// appendTimestamp appends t (in unit since the epoch) as ISO-8601 with a
// fixed number of fraction digits for the unit, and "Z" when zulu.
func appendTimestamp(buf []byte, t int64, unit arrow.TimeUnit, zulu bool) []byte {
	sc := unitScale[unit]
	sec := floorDiv(t, sc.perSec)
	frac := t - sec*sc.perSec
	days := floorDiv(sec, 86400)
	sod := int(sec - days*86400)
	buf = appendDate(buf, days)
	buf = append(buf, 'T')
	buf = append2(buf, sod/3600)
	buf = append(buf, ':')
	buf = append2(buf, sod/60%60)
	buf = append(buf, ':')
	buf = append2(buf, sod%60)
	if sc.digits > 0 {
		buf = append(buf, '.')
		var tmp [9]byte
		for i := sc.digits - 1; i >= 0; i-- {
			tmp[i] = byte('0' + frac%10)
			frac /= 10
		}
		buf = append(buf, tmp[:sc.digits]...)
	}
	if zulu {
		buf = append(buf, 'Z')
	}
	return buf
}
