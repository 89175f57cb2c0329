// Package coerce is the one home of riffle's text-to-column coercions: the
// declared column types of the sources that decode text (Kafka JSON and CSV
// messages, CSV and JSONL files) and the rules that turn one value, as
// text of a known JSON kind, into a value of that type.
//
//	int64, int32  integers; numbers with an integral value (12.0, 1e3);
//	              strings holding a decimal integer ("12", " -3 ")
//	float64       numbers (out of range: ±Inf); strings holding a number
//	string        strings; numbers as their literal text; true/false
//	bool          true/false; the strings "true"/"false"
//	timestamp     numbers as epoch milliseconds (fractions floored); strings
//	              holding epoch milliseconds or RFC 3339 (any offset)
//	binary        strings (their UTF-8 bytes)
//
// A CSV field is a value of kind String. The functions take byte slices and
// never allocate on success, so sources call them in per-column loops.
package coerce

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
)

// Type is the declared type of a column.
type Type string

// The declared types.
const (
	Int64     Type = "int64"
	Int32     Type = "int32"
	Float64   Type = "float64"
	String    Type = "string"
	Bool      Type = "bool"
	Timestamp Type = "timestamp" // milliseconds since the epoch, UTC
	Binary    Type = "binary"
)

// ArrowType returns the Arrow type of t.
func ArrowType(t Type) (arrow.DataType, error) {
	switch t {
	case Int64:
		return arrow.PrimitiveTypes.Int64, nil
	case Int32:
		return arrow.PrimitiveTypes.Int32, nil
	case Float64:
		return arrow.PrimitiveTypes.Float64, nil
	case String:
		return arrow.BinaryTypes.String, nil
	case Bool:
		return arrow.FixedWidthTypes.Boolean, nil
	case Timestamp:
		return &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, nil
	case Binary:
		return arrow.BinaryTypes.Binary, nil
	}
	return nil, fmt.Errorf("unknown type %q (want int64, int32, float64, string, bool, timestamp or binary)", t)
}

// Kind is the JSON kind of a value's text.
type Kind uint8

// The kinds.
const (
	Null Kind = iota
	False
	True
	Number
	Str
	Object
	Array
)

func (k Kind) String() string {
	return [...]string{"null", "false", "true", "number", "string", "object", "array"}[k]
}

// ParseInt converts a value to int64 (isInt: a number literal without fraction
// or exponent).
func ParseInt(kind Kind, val []byte, isInt bool) (int64, bool) {
	switch kind {
	case Number:
		return parseIntNumber(val, isInt)
	case Str:
		return parseIntString(val)
	}
	return 0, false
}

// ParseInt32 converts a value to an int64 in int32's range.
func ParseInt32(kind Kind, val []byte, isInt bool) (int64, bool) {
	n, ok := ParseInt(kind, val, isInt)
	if ok && (n < math.MinInt32 || n > math.MaxInt32) {
		return 0, false
	}
	return n, ok
}

// ParseFloat converts a value to float64.
func ParseFloat(kind Kind, val []byte, isInt bool) (float64, bool) {
	switch kind {
	case Number, Str:
		if kind == Number && isInt && len(val) < 16 {
			n, _ := parseIntNumber(val, true)
			return float64(n), true
		}
		f, err := strconv.ParseFloat(unsafeString(bytes.TrimSpace(val)), 64)
		if err != nil && !isRangeErr(err) {
			return 0, false
		}
		return f, true
	}
	return 0, false
}

// ParseBool converts a value to bool.
func ParseBool(kind Kind, val []byte) (bool, bool) {
	switch kind {
	case True:
		return true, true
	case False:
		return false, true
	case Str:
		switch string(val) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// ParseMillis converts a value to epoch milliseconds.
func ParseMillis(kind Kind, val []byte, isInt bool) (int64, bool) {
	switch kind {
	case Number:
		return parseMillis(val, isInt)
	case Str:
		if n, ok := parseIntString(val); ok {
			return n, true
		}
		return parseRFC3339(val)
	}
	return 0, false
}

// Text reports whether a value of kind may be stored as its text in a
// column of type t (String or Binary). True and False are stored as
// "true" and "false" (see Literal).
func Text(t Type, kind Kind) bool {
	switch t {
	case String:
		return kind == Str || kind == Number || kind == True || kind == False
	case Binary:
		return kind == Str
	}
	return false
}

// Literal is the text of True (Literal[:4]) and False (Literal[4:]).
const Literal = "truefalse"

// TypeError is the reason a value of field name does not convert to t.
func TypeError(name string, t Type, kind Kind, val []byte) error {
	return fmt.Errorf("field %q: %w", name, ConvertError(t, kind, val))
}

// ConvertError is the reason a value does not convert to t, without the
// column's name.
func ConvertError(t Type, kind Kind, val []byte) error {
	switch kind {
	case Str:
		return fmt.Errorf("cannot convert string %s to %s", strconv.Quote(Trunc(val)), t)
	case Number:
		return fmt.Errorf("cannot convert number %s to %s", Trunc(val), t)
	}
	return fmt.Errorf("cannot convert %s to %s", kind, t)
}

// Trunc is b as a string, cut to 64 bytes for messages.
func Trunc(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// parseIntNumber converts a JSON number to int64: integers exactly, other
// forms (1.0, 1e3) when they hold an integral value in range.
func parseIntNumber(v []byte, isInt bool) (int64, bool) {
	if isInt {
		neg := v[0] == '-'
		digits := v
		if neg {
			digits = v[1:]
		}
		if len(digits) <= 18 {
			var n int64
			for _, c := range digits {
				n = n*10 + int64(c-'0')
			}
			if neg {
				n = -n
			}
			return n, true
		}
		n, err := strconv.ParseInt(unsafeString(v), 10, 64)
		return n, err == nil
	}
	f, err := strconv.ParseFloat(unsafeString(v), 64)
	if err != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

// parseIntString accepts a string holding an optionally signed decimal
// integer, surrounding spaces allowed. Plain digits take a fast path.
func parseIntString(v []byte) (int64, bool) {
	if n := len(v); n > 0 && n <= 18 {
		var x int64
		i := 0
		if v[0] == '-' {
			i = 1
		}
		fast := i < n
		for j := i; j < n; j++ {
			c := v[j] - '0'
			if c > 9 {
				fast = false
				break
			}
			x = x*10 + int64(c)
		}
		if fast {
			if i == 1 {
				x = -x
			}
			return x, true
		}
	}
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(unsafeString(v), 10, 64)
	return n, err == nil
}

// parseMillis converts a JSON number of epoch milliseconds (fractions are
// floored).
func parseMillis(v []byte, isInt bool) (int64, bool) {
	if n, ok := parseIntNumber(v, isInt); ok {
		return n, true
	}
	f, err := strconv.ParseFloat(unsafeString(v), 64)
	if err != nil || math.IsNaN(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(math.Floor(f)), true
}

// naiveLayout is ISO 8601 without a zone, as riffle writes a timestamp
// without a time zone (internal/arrowtext); it is read as UTC.
const naiveLayout = "2006-01-02T15:04:05.999999999"

func parseRFC3339(v []byte) (int64, bool) {
	t, err := time.Parse(time.RFC3339Nano, unsafeString(v))
	if err != nil {
		if t, err = time.Parse(naiveLayout, unsafeString(v)); err != nil {
			return 0, false
		}
	}
	return t.UnixMilli(), true
}
