package text

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/coerce"
	"github.com/riffle-dev/riffle/internal/deadletter"
	"github.com/riffle-dev/riffle/internal/fsx"
)

// Defaults of Options fields left at their zero value.
const (
	DefaultBatchSize = 65536
	DefaultSplitSize = 32 << 20
)

// Format is the file format.
type Format string

const (
	// FormatCSV reads RFC 4180 CSV: one record per line, fields separated
	// by Options.Delimiter, quoted fields may hold delimiters, newlines and
	// doubled quotes.
	FormatCSV Format = "csv"
	// FormatJSONL reads one flat JSON object per line.
	FormatJSONL Format = "jsonl"
)

// ErrorPolicy says what a reader does with a row it cannot decode
// (internal/deadletter, shared by the sources).
type ErrorPolicy = deadletter.Policy

const (
	// OnErrorFail fails the job (the default).
	OnErrorFail = deadletter.Fail
	// OnErrorSkip drops the row and counts it (Stats.Skipped).
	OnErrorSkip = deadletter.Skip
	// OnErrorDeadLetter appends the row to Options.DeadLetterPath as a
	// JSON line and counts it (Stats.DeadLettered).
	OnErrorDeadLetter = deadletter.DeadLetter
)

// Column is one declared column: its name (a CSV header name, or a JSON
// member) and its type, as the Kafka source's fields.
type Column struct {
	Name string
	Type coerce.Type
	// Required columns make a row bad when they are empty or null; other
	// columns are null then.
	Required bool
}

// Options configures a Source. Paths and Columns are required; every other
// field has a documented default.
type Options struct {
	// Paths are files, globs or directories (internal/filelist; directory
	// walks keep *.csv, *.tsv or *.txt files for CSV, *.jsonl, *.ndjson or
	// *.json for JSONL).
	Paths  []string
	Format Format // default FormatCSV
	// Columns are the declared columns, in output order. With Header, CSV
	// columns are found by name in each file's header (a subset, in any
	// order); without it, they are the fields of each record in order.
	Columns []Column
	// Header says the first record of every CSV file names its fields.
	Header bool
	// Delimiter separates CSV fields (default ',').
	Delimiter byte
	// BatchSize is the maximum number of rows per batch (default 65536).
	BatchSize int
	// SplitSize is the target byte length of a split (default 32 MiB):
	// files are cut into byte ranges that start and end on record
	// boundaries, read in parallel by the subtasks.
	SplitSize int64
	// OnError is the bad-row policy (default OnErrorFail).
	OnError ErrorPolicy
	// DeadLetterPath is the JSON-lines file OnErrorDeadLetter appends to.
	DeadLetterPath string
	// DeadLetterFS is the file system of the dead-letter file (nil: the
	// operating system's; tests inject faults).
	DeadLetterFS fsx.FS
	// Watermark names an event-time column (timestamp or int64). Text files
	// carry no statistics, so readers report no watermark until the end of
	// input (the runtime's final watermark fires every window once), as the
	// Parquet source does for unsorted files; SuspendWatermark reports the
	// bounded out-of-orderness watermark of the rows read.
	Watermark arrowexec.WatermarkStrategy
}

// EnsureDefaults returns a copy of o with defaults filled in.
func (o Options) EnsureDefaults() Options {
	if o.Format == "" {
		o.Format = FormatCSV
	}
	if o.Delimiter == 0 {
		o.Delimiter = ','
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.SplitSize <= 0 {
		o.SplitSize = DefaultSplitSize
	}
	if o.OnError == "" {
		o.OnError = OnErrorFail
	}
	return o
}

func (o Options) prefix() string {
	if o.Format == FormatJSONL {
		return "jsonl"
	}
	return "csv"
}

// Validate checks the options without reading files.
func (o Options) Validate() error {
	o = o.EnsureDefaults()
	var errs []error
	if len(o.Paths) == 0 {
		errs = append(errs, errors.New("no paths given"))
	}
	switch o.Format {
	case FormatCSV:
	case FormatJSONL:
		if o.Header {
			errs = append(errs, errors.New("jsonl has no header"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown format %q (want csv or jsonl)", o.Format))
	}
	if len(o.Columns) == 0 {
		errs = append(errs, errors.New("no columns declared"))
	}
	switch o.Delimiter {
	case '"', '\n', '\r':
		errs = append(errs, fmt.Errorf("delimiter %q cannot be a quote or a line break", o.Delimiter))
	}
	seen := map[string]bool{}
	for _, c := range o.Columns {
		if c.Name == "" {
			errs = append(errs, errors.New("column with empty name"))
		}
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("column %q declared twice", c.Name))
		}
		seen[c.Name] = true
		if _, err := coerce.ArrowType(c.Type); err != nil {
			errs = append(errs, fmt.Errorf("column %q: %w", c.Name, err))
		}
	}
	if err := deadletter.CheckPolicy(o.OnError, o.DeadLetterPath); err != nil {
		errs = append(errs, err)
	}
	if o.Watermark.Column != "" {
		if err := o.Watermark.Validate(o.schema()); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: invalid options: %w", o.prefix(), errors.Join(errs...))
	}
	return nil
}

// schema is the output schema; columns of unknown type are left out
// (Validate reports them).
func (o Options) schema() *arrow.Schema {
	fs := make([]arrow.Field, 0, len(o.Columns))
	for _, c := range o.Columns {
		if dt, err := coerce.ArrowType(c.Type); err == nil {
			fs = append(fs, arrow.Field{Name: c.Name, Type: dt, Nullable: !c.Required})
		}
	}
	return arrow.NewSchema(fs, nil)
}

func (o Options) extensions() []string {
	if o.Format == FormatJSONL {
		return []string{".jsonl", ".ndjson", ".json"}
	}
	return []string{".csv", ".tsv", ".txt"}
}
