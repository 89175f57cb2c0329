// Package deadletter is the dead-letter file of riffle's sources: the
// JSON-lines file a source appends the input it cannot decode to under the
// dead-letter error policy (Kafka messages, CSV and JSONL rows). It is the
// one home of that mechanism; each source defines the fields of its lines.
//
// A File is shared by every reader of a source: lines are written whole
// under a mutex, buffered, and flushed and fsynced by Sync (sources call it
// at every checkpoint, before the snapshot is taken) and when the last
// reader closes. Lines are at least once: after a restore, the input
// between the checkpoint and the failure is read again.
package deadletter

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/fsx"
)

// Reason classes: every dead-letter line carries one in its "class" field,
// and File counts lines by class (riffle_dead_letters_total{reason}).
const (
	// Malformed input cannot be parsed at all (not JSON, broken CSV
	// quoting, a wrong number of CSV fields).
	Malformed = "malformed"
	// MissingField input lacks a required field.
	MissingField = "missing_field"
	// BadValue input has a value that does not convert to its column's
	// type.
	BadValue = "bad_value"
)

// MetricDescs are the series sources report for their dead-letter file.
var MetricDescs = []*arrowexec.MetricDesc{deadLettersDesc}

var deadLettersDesc = &arrowexec.MetricDesc{Name: "riffle_dead_letters_total",
	Help: "Lines a source wrote to its dead-letter file, by reason class (malformed, missing_field, bad_value).",
	Kind: arrowexec.Counter, Labels: []string{"reason"}}

// File is a dead-letter file opened by reference count.
type File struct {
	// FS is the file system the file is on (nil: the operating system's);
	// set it before Open.
	FS     fsx.FS
	path   string
	prefix string
	mu     sync.Mutex
	f      fsx.File
	w      *bufio.Writer
	refs   int
	// counts holds the lines written, by class (under mu).
	counts map[string]int64
}

// New returns the dead-letter file at path; prefix ("kafka", "csv") starts
// its error messages. Nothing is opened until Open.
func New(path, prefix string) *File { return &File{path: path, prefix: prefix} }

// Path returns the file's path.
func (d *File) Path() string { return d.path }

// Open opens the file for appending (creating it) on the first reference.
func (d *File) Open() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refs == 0 {
		fs := d.FS
		if fs == nil {
			fs = fsx.OSFS
		}
		f, err := fs.Append(d.path)
		if err != nil {
			return fmt.Errorf("%s: dead-letter file: %w", d.prefix, err)
		}
		d.f, d.w = f, bufio.NewWriterSize(f, 64<<10)
	}
	d.refs++
	return nil
}

// Payload returns the payload fields of a line: payload when b is valid
// UTF-8, else payload_base64.
func Payload(b []byte) (payload, payloadBase64 *string) {
	if utf8.Valid(b) {
		p := string(b)
		return &p, nil
	}
	p := base64.StdEncoding.EncodeToString(b)
	return nil, &p
}

// Write appends rec, marshalled as JSON, as one line, and counts it under
// class (one of the reason classes; rec should hold it in its "class"
// field).
func (d *File) Write(class string, rec any) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w == nil {
		return fmt.Errorf("%s: dead-letter file %s: not open", d.prefix, d.path)
	}
	if _, err := d.w.Write(line); err != nil {
		return fmt.Errorf("%s: dead-letter file %s: %w", d.prefix, d.path, err)
	}
	if d.counts == nil {
		d.counts = map[string]int64{}
	}
	d.counts[class]++
	return nil
}

// ReportMetrics reports riffle_dead_letters_total by class: a source
// calls it from its own ReportMetrics (arrowexec.MetricsReporter). Safe
// for concurrent use; a nil File reports nothing.
func (d *File) ReportMetrics(emit func(arrowexec.Metric)) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for class, n := range d.counts {
		emit(arrowexec.Metric{Desc: deadLettersDesc, LabelValues: []string{class}, Value: float64(n)})
	}
}

// Sync flushes and fsyncs the lines written so far.
func (d *File) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.syncLocked()
}

func (d *File) syncLocked() error {
	if d.f == nil {
		return nil
	}
	if err := d.w.Flush(); err != nil {
		return fmt.Errorf("%s: dead-letter file %s: %w", d.prefix, d.path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("%s: dead-letter file %s: %w", d.prefix, d.path, err)
	}
	return nil
}

// Close drops one reference; the last one syncs and closes the file.
func (d *File) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refs--
	if d.refs > 0 || d.f == nil {
		return nil
	}
	err := d.syncLocked()
	if cerr := d.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: dead-letter file %s: %w", d.prefix, d.path, cerr)
	}
	d.f, d.w = nil, nil
	return err
}

// Policy says what a source does with input it cannot decode.
type Policy string

// The policies.
const (
	// Fail fails the job with an error naming where the input came from.
	Fail Policy = "fail"
	// Skip drops the input and counts it.
	Skip Policy = "skip"
	// DeadLetter appends the input to the dead-letter file and counts it.
	DeadLetter Policy = "dead-letter"
)

// CheckPolicy checks a policy ("" is Fail) and, for DeadLetter, that a
// dead-letter path is set.
func CheckPolicy(p Policy, path string) error {
	switch p {
	case "", Fail, Skip:
	case DeadLetter:
		if path == "" {
			return errors.New("dead-letter policy needs DeadLetterPath")
		}
	default:
		return fmt.Errorf("unknown error policy %q (want fail, skip or dead-letter)", p)
	}
	return nil
}
