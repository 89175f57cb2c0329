package parquet

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrCorrupt marks data that cannot be decoded: a bad footer, page or
	// column chunk.
	ErrCorrupt = errors.New("corrupt data")
	// ErrNotParquet marks a file that is not Parquet at all (no magic bytes,
	// no footer).
	ErrNotParquet = errors.New("not a parquet file")
	// ErrUnsupported marks a column type the chosen decoder cannot read.
	ErrUnsupported = errors.New("unsupported")
)

// Error is the error of reading one file. RowGroup is -1 and Column empty
// when they are not known.
type Error struct {
	File     string
	RowGroup int
	Column   string
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("parquet: file ")
	b.WriteString(e.File)
	if e.RowGroup >= 0 {
		fmt.Fprintf(&b, ": row group %d", e.RowGroup)
	}
	if e.Column != "" {
		fmt.Fprintf(&b, ": column %q", e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// IsCorruption reports whether err means a file's content cannot be decoded
// (as opposed to a missing file or a bad option).
func IsCorruption(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotParquet)
}

func wrapErr(path string, rg int, col string, err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	return &Error{File: path, RowGroup: rg, Column: col, Err: err}
}

// fileErr wraps an operating system error, dropping the path *fs.PathError
// repeats.
func fileErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &Error{File: path, RowGroup: -1, Err: err}
}

// corruptf returns an ErrCorrupt error with a formatted detail.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// libErr is the message of a library error without the "parquet: " prefix
// both libraries use, so messages do not stutter.
func libErr(err error) string {
	return strings.TrimPrefix(err.Error(), "parquet: ")
}
