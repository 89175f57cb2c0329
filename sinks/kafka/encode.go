package kafka

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// rowEncoder writes the rows of a batch as flat JSON objects, one column
// encoder per column, chosen once per schema (no per-value type switch on
// the row loop beyond the encoder's own).
type rowEncoder struct {
	schema *arrow.Schema
	keys   [][]byte // `"name":` per column, with the leading comma after the first
	encs   []colEncoder
}

// colEncoder appends value i of its column (never null) to dst.
type colEncoder func(dst []byte, i int) []byte

func newRowEncoder(schema *arrow.Schema) (*rowEncoder, error) {
	e := &rowEncoder{schema: schema}
	for i, f := range schema.Fields() {
		var k []byte
		if i > 0 {
			k = append(k, ',')
		}
		k = appendString(k, f.Name)
		k = append(k, ':')
		e.keys = append(e.keys, k)
		if !encodable(f.Type) {
			return nil, fmt.Errorf("kafka: column %q has type %s, which the JSON encoder does not support", f.Name, f.Type)
		}
	}
	return e, nil
}

func encodable(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT32, arrow.FLOAT64, arrow.BOOL, arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY,
		arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64, arrow.NULL, arrow.DICTIONARY, arrow.DECIMAL128, arrow.DECIMAL256,
		arrow.STRING_VIEW, arrow.BINARY_VIEW:
		return true
	}
	return false
}

// bind prepares the column encoders for batch b.
func (e *rowEncoder) bind(b arrow.RecordBatch) {
	e.encs = e.encs[:0]
	for _, c := range b.Columns() {
		e.encs = append(e.encs, encoderFor(c))
	}
}

// appendRow appends row i of the bound batch as a JSON object.
func (e *rowEncoder) appendRow(dst []byte, b arrow.RecordBatch, i int) []byte {
	dst = append(dst, '{')
	for c, enc := range e.encs {
		dst = append(dst, e.keys[c]...)
		if b.Column(c).IsNull(i) {
			dst = append(dst, "null"...)
		} else {
			dst = enc(dst, i)
		}
	}
	return append(dst, '}')
}

// TimeLayout is how timestamps are written: RFC 3339, milliseconds, UTC.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

func encoderFor(c arrow.Array) colEncoder {
	switch a := c.(type) {
	case *array.Int8:
		return func(d []byte, i int) []byte { return strconv.AppendInt(d, int64(a.Value(i)), 10) }
	case *array.Int16:
		return func(d []byte, i int) []byte { return strconv.AppendInt(d, int64(a.Value(i)), 10) }
	case *array.Int32:
		return func(d []byte, i int) []byte { return strconv.AppendInt(d, int64(a.Value(i)), 10) }
	case *array.Int64:
		v := a.Int64Values()
		return func(d []byte, i int) []byte { return strconv.AppendInt(d, v[i], 10) }
	case *array.Uint8:
		return func(d []byte, i int) []byte { return strconv.AppendUint(d, uint64(a.Value(i)), 10) }
	case *array.Uint16:
		return func(d []byte, i int) []byte { return strconv.AppendUint(d, uint64(a.Value(i)), 10) }
	case *array.Uint32:
		return func(d []byte, i int) []byte { return strconv.AppendUint(d, uint64(a.Value(i)), 10) }
	case *array.Uint64:
		return func(d []byte, i int) []byte { return strconv.AppendUint(d, a.Value(i), 10) }
	case *array.Float32:
		return func(d []byte, i int) []byte { return appendFloat(d, float64(a.Value(i)), 32) }
	case *array.Float64:
		v := a.Float64Values()
		return func(d []byte, i int) []byte { return appendFloat(d, v[i], 64) }
	case *array.Boolean:
		return func(d []byte, i int) []byte { return strconv.AppendBool(d, a.Value(i)) }
	case *array.String:
		return func(d []byte, i int) []byte { return appendString(d, a.Value(i)) }
	case *array.LargeString:
		return func(d []byte, i int) []byte { return appendString(d, a.Value(i)) }
	case *array.StringView:
		return func(d []byte, i int) []byte { return appendString(d, a.Value(i)) }
	case *array.Binary:
		return func(d []byte, i int) []byte { return appendBase64(d, a.Value(i)) }
	case *array.LargeBinary:
		return func(d []byte, i int) []byte { return appendBase64(d, a.Value(i)) }
	case *array.BinaryView:
		return func(d []byte, i int) []byte { return appendBase64(d, a.Value(i)) }
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return func(d []byte, i int) []byte {
			d = append(d, '"')
			d = a.Value(i).ToTime(unit).UTC().AppendFormat(d, TimeLayout)
			return append(d, '"')
		}
	case *array.Date32:
		return func(d []byte, i int) []byte {
			d = append(d, '"')
			d = a.Value(i).ToTime().AppendFormat(d, time.DateOnly)
			return append(d, '"')
		}
	case *array.Date64:
		return func(d []byte, i int) []byte {
			d = append(d, '"')
			d = a.Value(i).ToTime().AppendFormat(d, time.DateOnly)
			return append(d, '"')
		}
	case *array.Dictionary:
		dict := a.Dictionary()
		inner := encoderFor(dict)
		return func(d []byte, i int) []byte {
			if j := a.GetValueIndex(i); !dict.IsNull(j) {
				return inner(d, j)
			}
			return append(d, "null"...)
		}
	case *array.Null:
		return func(d []byte, i int) []byte { return append(d, "null"...) }
	default: // decimals: their exact text, as a JSON number
		return func(d []byte, i int) []byte { return append(d, c.ValueStr(i)...) }
	}
}

// appendFloat writes like encoding/json; NaN and infinities, which JSON
// cannot hold, become null.
func appendFloat(d []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(d, "null"...)
	}
	abs := math.Abs(f)
	fmtc := byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		fmtc = 'e'
	}
	return strconv.AppendFloat(d, f, fmtc, -1, bits)
}

func appendBase64(d []byte, v []byte) []byte {
	d = append(d, '"')
	d = base64.StdEncoding.AppendEncode(d, v)
	return append(d, '"')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string (no HTML escaping; invalid UTF-8
// becomes U+FFFD, as encoding/json does).
func appendString(d []byte, s string) []byte {
	d = append(d, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			d = append(d, s[start:i]...)
			switch c {
			case '"', '\\':
				d = append(d, '\\', c)
			case '\n':
				d = append(d, '\\', 'n')
			case '\r':
				d = append(d, '\\', 'r')
			case '\t':
				d = append(d, '\\', 't')
			default:
				d = append(d, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			d = append(d, s[start:i]...)
			d = append(d, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			d = append(d, s[start:i]...)
			d = append(d, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	d = append(d, s[start:]...)
	return append(d, '"')
}

// appendKey appends the message key of row i of column c to scratch and
// reports whether there is one (false for null, also a null dictionary
// value): strings and binaries as they are, other types as their JSON
// text without quotes.
func appendKey(c arrow.Array, i int, scratch []byte) ([]byte, bool) {
	if c.IsNull(i) {
		return scratch, false
	}
	switch a := c.(type) {
	case *array.String:
		return append(scratch, a.Value(i)...), true
	case *array.LargeString:
		return append(scratch, a.Value(i)...), true
	case *array.Binary:
		return append(scratch, a.Value(i)...), true
	case *array.LargeBinary:
		return append(scratch, a.Value(i)...), true
	case *array.Int64:
		return strconv.AppendInt(scratch, a.Value(i), 10), true
	case *array.Int32:
		return strconv.AppendInt(scratch, int64(a.Value(i)), 10), true
	case *array.Dictionary:
		return appendKey(a.Dictionary(), a.GetValueIndex(i), scratch)
	}
	return append(scratch, c.ValueStr(i)...), true
}
