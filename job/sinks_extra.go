package job

import (
	"fmt"

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
