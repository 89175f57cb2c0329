package job

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/sinks"
)

// CSVSinkSpec is a file sink's csv: block (format: csv):
//
//	sink:
//	  file:
//	    path: out
//	    format: csv
//	    csv: {header: false, delimiter: ";", quote: "'", nullstr: "NULL"}
//
// By default a header line is written, fields are separated by commas and
// quoted with '"' when needed, and a NULL is an empty unquoted field while
// an empty string is written "" (so they stay distinct). With nullstr: TEXT a
// string equal to TEXT is quoted. (The key is nullstr, DuckDB's name: a
// YAML key written null is YAML's null, not the word.)
type CSVSinkSpec struct {
	Header    *bool   `yaml:"header"`    // default true
	Delimiter string  `yaml:"delimiter"` // one character; default ","
	Quote     string  `yaml:"quote"`     // one character; default '"'
	Null      *string `yaml:"nullstr"`   // text of a NULL; default "" (an empty unquoted field)
}

// options returns the sink options of c (nil: the defaults) for a sink of
// format.
func (c *CSVSinkSpec) options(format string) (sinks.CSVOptions, error) {
	var o sinks.CSVOptions
	if c == nil {
		return o, nil
	}
	if format != string(sinks.CSV) {
		return o, fmt.Errorf("csv: options for a %s sink; they need format: csv", orDefault(format, string(sinks.Parquet)))
	}
	one := func(key, v string) (byte, error) {
		if len(v) != 1 {
			return 0, fmt.Errorf("csv: %s %q: want one ASCII character", key, v)
		}
		return v[0], nil
	}
	var err error
	if c.Delimiter != "" {
		if o.Delimiter, err = one("delimiter", c.Delimiter); err != nil {
			return o, err
		}
	}
	if c.Quote != "" {
		if o.Quote, err = one("quote", c.Quote); err != nil {
			return o, err
		}
	}
	if c.Null != nil {
		o.Null = *c.Null
	}
	o.NoHeader = c.Header != nil && !*c.Header
	return o, o.Validate()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fileSinkLines are the YAML lines of a file sink's keys that plan-time
// errors point at.
type fileSinkLines struct {
	PartitionBy, SingleFile int
}

// check checks a file sink's partition_by, max_open_partitions and
// single_file (n: the sink block; what names it in messages) and notes
// their lines.
func (f *FileSinkSpec) check(file, what string, n *yaml.Node) error {
	f.Lines = fileSinkLines{PartitionBy: keyLine(n, "file", "partition_by"), SingleFile: keyLine(n, "file", "single_file")}
	errAt := func(key, format string, args ...any) error {
		return &Error{File: file, Line: keyLine(n, "file", key), Msg: what + ": " + fmt.Sprintf(format, args...)}
	}
	if f.PartitionBy != nil {
		if len(f.PartitionBy) == 0 {
			return errAt("partition_by", "partition_by: want a list of columns (e.g. partition_by: [day]), or no partition_by")
		}
		seen := map[string]bool{}
		for _, c := range f.PartitionBy {
			if c == "" || seen[c] {
				return errAt("partition_by", "partition_by: column %q is empty or given twice", c)
			}
			seen[c] = true
		}
	}
	switch {
	case f.MaxOpenPartitions < 0:
		return errAt("max_open_partitions", "max_open_partitions %d must be positive", f.MaxOpenPartitions)
	case f.MaxOpenPartitions > 0 && len(f.PartitionBy) == 0:
		return errAt("max_open_partitions", "max_open_partitions caps the open partitions of partition_by, which is not set")
	}
	if f.SingleFile {
		switch {
		case len(f.PartitionBy) > 0:
			return errAt("single_file", "single_file writes one file; partition_by writes a directory per partition: not both")
		case f.Prefix != "":
			return errAt("prefix", "prefix names part files; single_file writes one file, named by path")
		case f.PartSize != "":
			return errAt("part_size", "part_size rolls part files; single_file writes one file, never rolled")
		case f.Path == "" || strings.HasSuffix(f.Path, "/") || strings.HasPrefix(filepath.Base(f.Path), ".") || strings.HasPrefix(filepath.Base(f.Path), "_"):
			return errAt("path", "path %q: single_file wants a file name (e.g. out/result.parquet), not starting with '.' or '_'", f.Path)
		}
	}
	return nil
}

// checkSingleFile refuses single_file sinks a job cannot write, before
// anything is built: single_file writes its file when the job ends, so
// the job must be bounded, and publishes it once, so it cannot run with
// checkpoints (a restore could not take back what it holds).
func checkSingleFile(plan *Plan, s *Spec, o Options) error {
	all := append([]SinkSpec{s.Sink}, s.Sinks...)
	for _, st := range s.Steps {
		if st.Window != nil && st.Window.Late != nil {
			all = append(all, *st.Window.Late)
		}
	}
	for _, sk := range all {
		f := sk.File
		switch {
		case f == nil || !f.SingleFile:
		case !plan.sourcesBounded(s):
			return &Error{File: s.File, Line: f.Lines.SingleFile, Msg: "sink: single_file writes one file when the job ends; an unbounded job never ends: write parts (no single_file)"}
		case o.Checkpointed:
			return &Error{File: s.File, Line: f.Lines.SingleFile, Msg: "sink: single_file is published once, when the job ends; with checkpoints a restore could not take back what it holds: run it without checkpoints (riffle backfill)"}
		}
	}
	return nil
}

// sinkInput returns the edge into a sink and the sink's parallelism: a
// single_file sink runs one subtask, fed round robin.
func sinkInput(sk SinkSpec, in arrowexec.Input, par int) (arrowexec.Input, int) {
	if sk.File == nil || !sk.File.SingleFile || par == 1 {
		return in, par
	}
	return reroute(in, arrowexec.Rebalance), 1
}

// notePartitionLine remembers the partition_by line of sink node name,
// which partition errors at Build point at (sinkError).
func (plan *Plan) notePartitionLine(name string, sk SinkSpec) {
	if sk.File == nil || sk.File.Lines.PartitionBy == 0 {
		return
	}
	if plan.partitionLines == nil {
		plan.partitionLines = map[string]int{}
	}
	plan.partitionLines[name] = sk.File.Lines.PartitionBy
}

// sinkError is the error of sink node name at Build: at its partition_by
// line, naming the sink by its YAML key, for an error there; else at line
// (the sink's).
func (plan *Plan) sinkError(file, name string, line int, err error) error {
	var pe *sinks.PartitionError
	if l := plan.partitionLines[name]; l > 0 && errors.As(err, &pe) {
		return &Error{File: file, Line: l, Msg: "sink: " + pe.Error(), Err: err}
	}
	return &Error{File: file, Line: line, Msg: err.Error(), Err: err}
}
