package text

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMalformed marks a record that is not valid CSV or JSON (as opposed to a
// value that does not convert to its column's type).
var ErrMalformed = errors.New("malformed record")

// Error is the error of reading one file. Line is the 1-based line a record
// starts on (0 when unknown); Column is empty when the error is not about
// one column.
type Error struct {
	Format Format
	File   string
	Line   int64
	Column string
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Format))
	b.WriteString(": file ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	if e.Column != "" {
		fmt.Fprintf(&b, ": column %q", e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// reason is the message of a bad row for dead-letter lines: the error
// without the file and line, which the line holds as fields.
func (e *Error) reason() string {
	if e.Column != "" {
		return fmt.Sprintf("column %q: %s", e.Column, e.Err)
	}
	return e.Err.Error()
}
