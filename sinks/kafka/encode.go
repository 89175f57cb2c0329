package kafka

import (
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Message values are encoded by internal/arrowtext (JSON style), the
// encoder of the file sinks' JSONL parts: one object per row.

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
