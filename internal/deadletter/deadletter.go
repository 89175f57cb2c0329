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

	"github.com/riffle-dev/riffle/internal/fsx"
)

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

// Write appends rec, marshalled as JSON, as one line.
func (d *File) Write(rec any) error {
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
	return nil
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
