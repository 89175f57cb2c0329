package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/riffle-dev/riffle/internal/coerce"
	"github.com/riffle-dev/riffle/sources/parquet"
)

func init() {
	register(command{name: "schema", short: "print the schema of Parquet, CSV or JSONL files as riffle reads them", run: runSchema})
}

func runSchema(_ context.Context, e *env, args []string) error {
	f := newFlags(e, "schema", "[flags] FILE...", `
schema prints what a job reading FILE sees. Parquet files (a list, a
directory or a glob, read together as one source) print their Arrow schema
after unification. CSV and JSONL files print a source block with the
columns inferred from the first --sample rows, ready to paste into a job
file: a column is int64 when every non-empty value is an integer, else
float64 when every one is a number, else bool, else timestamp (epoch
milliseconds or RFC 3339 strings), else string. Check the inferred types:
a sample cannot know what later rows hold.`)
	sample := f.Int("sample", 1000, "CSV and JSONL: rows read to infer the column types")
	header := f.Bool("header", true, "CSV: the first row names the columns")
	delim := f.String("delimiter", ",", "CSV: the field delimiter (one character)")
	paths, err := f.parseInterspersed(e, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usageError{errors.New("give at least one FILE")}
	}
	if *sample < 1 {
		return usageError{fmt.Errorf("--sample %d: must be at least 1", *sample)}
	}
	if len(*delim) != 1 {
		return usageError{fmt.Errorf("--delimiter %q: want one character", *delim)}
	}
	switch format(paths[0]) {
	case "csv", "jsonl":
		for _, p := range paths {
			cols, rows, err := inferText(p, format(p), *sample, *header, rune((*delim)[0]))
			if err != nil {
				return err
			}
			printTextSchema(e.stdout, p, format(p), cols, rows, *header, *delim)
		}
		return nil
	default:
		src, err := parquet.New(parquet.Options{Paths: paths})
		if err != nil {
			return usageError{err}
		}
		fmt.Fprintf(e.stdout, "# %s (Parquet, as one source)\n", strings.Join(paths, " "))
		for _, fd := range src.Schema().Fields() {
			null := ""
			if !fd.Nullable {
				null = " not null"
			}
			fmt.Fprintf(e.stdout, "%s: %s%s\n", fd.Name, fd.Type, null)
		}
		return nil
	}
}

// format tells a path's file format from its extension.
func format(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv", ".tsv", ".txt":
		return "csv"
	case ".jsonl", ".ndjson", ".json":
		return "jsonl"
	}
	return "parquet"
}

// inferred is a column whose type is narrowed as values are seen.
type inferred struct {
	name     string
	notInt   bool
	notFloat bool
	notBool  bool
	notTime  bool
	seen     bool // a non-empty value was seen
}

func (c *inferred) observe(kind coerce.Kind, v []byte) {
	if kind == coerce.Null || (kind == coerce.Str && len(v) == 0) {
		return
	}
	c.seen = true
	isInt := kind == coerce.Number && !bytes.ContainsAny(v, ".eE")
	if _, ok := coerce.ParseInt(kind, v, isInt); !ok {
		c.notInt = true
	}
	if _, ok := coerce.ParseFloat(kind, v, isInt); !ok || kind == coerce.True || kind == coerce.False {
		c.notFloat = true
	}
	if _, ok := coerce.ParseBool(kind, v); !ok {
		c.notBool = true
	}
	// Numbers parse as epoch milliseconds too: only strings make a timestamp.
	if _, ok := coerce.ParseMillis(kind, v, isInt); !ok || kind != coerce.Str {
		c.notTime = true
	}
}

func (c *inferred) typ() coerce.Type {
	switch {
	case !c.seen:
		return coerce.String
	case !c.notInt:
		return coerce.Int64
	case !c.notFloat:
		return coerce.Float64
	case !c.notBool:
		return coerce.Bool
	case !c.notTime:
		return coerce.Timestamp
	}
	return coerce.String
}

// inferText reads up to sample rows of a CSV or JSONL file.
func inferText(path, fmtName string, sample int, header bool, delim rune) ([]*inferred, int, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0, usageError{err}
	}
	defer fh.Close()
	if fmtName == "csv" {
		return inferCSV(path, fh, sample, header, delim)
	}
	return inferJSONL(path, fh, sample)
}

func inferCSV(path string, r io.Reader, sample int, header bool, delim rune) ([]*inferred, int, error) {
	cr := csv.NewReader(r)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var cols []*inferred
	rows := 0
	for rows < sample {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("csv: file %s: %w", path, err)
		}
		if cols == nil {
			for i, v := range rec {
				name := fmt.Sprintf("column%d", i+1)
				if header {
					name = strings.TrimPrefix(v, "\ufeff")
				}
				cols = append(cols, &inferred{name: name})
			}
			if header {
				continue
			}
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(cols) {
			return nil, 0, fmt.Errorf("csv: file %s: line %d: %d fields, the first row has %d", path, line, len(rec), len(cols))
		}
		for i, v := range rec {
			cols[i].observe(coerce.Str, []byte(v))
		}
		rows++
	}
	if cols == nil {
		return nil, 0, fmt.Errorf("csv: file %s: no rows", path)
	}
	return cols, rows, nil
}

func inferJSONL(path string, r io.Reader, sample int) ([]*inferred, int, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var cols []*inferred
	byName := map[string]*inferred{}
	rows := 0
	for rows < sample {
		var obj map[string]json.RawMessage
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, 0, fmt.Errorf("jsonl: file %s: object %d: %w", path, rows+1, err)
		}
		// New columns in the order of their first object, sorted by name
		// within it (encoding/json does not keep the written order).
		keys := make([]string, 0, len(obj))
		for k := range obj {
			if byName[k] == nil {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			c := &inferred{name: k}
			byName[k] = c
			cols = append(cols, c)
		}
		for k, raw := range obj {
			kind, val := jsonKind(raw)
			byName[k].observe(kind, val)
		}
		rows++
	}
	if cols == nil {
		return nil, 0, fmt.Errorf("jsonl: file %s: no objects", path)
	}
	return cols, rows, nil
}

// jsonKind returns a raw JSON value's kind and the text coerce reads.
func jsonKind(raw json.RawMessage) (coerce.Kind, []byte) {
	v := bytes.TrimSpace(raw)
	switch {
	case len(v) == 0 || string(v) == "null":
		return coerce.Null, nil
	case string(v) == "true":
		return coerce.True, v
	case string(v) == "false":
		return coerce.False, v
	case v[0] == '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			return coerce.Str, []byte(s)
		}
		return coerce.Str, v
	case v[0] == '{':
		return coerce.Object, v
	case v[0] == '[':
		return coerce.Array, v
	}
	return coerce.Number, v
}

func printTextSchema(w io.Writer, path, fmtName string, cols []*inferred, rows int, header bool, delim string) {
	fmt.Fprintf(w, "# %s: columns inferred from %d rows\nsource:\n  %s:\n    path: %s\n", path, rows, fmtName, path)
	if fmtName == "csv" {
		fmt.Fprintf(w, "    header: %t\n", header)
		if delim != "," {
			fmt.Fprintf(w, "    delimiter: %q\n", delim)
		}
	}
	fmt.Fprintln(w, "    columns:")
	for _, c := range cols {
		fmt.Fprintf(w, "      - {name: %s, type: %s}\n", yamlName(c.name), c.typ())
	}
}

// yamlName quotes a column name when YAML would not read it back as is.
func yamlName(s string) string {
	if s == "" || strings.ContainsAny(s, ":{}[],&*#?|-<>=!%@`'\"\\ \t") {
		b, _ := json.Marshal(s)
		return string(b)
	}
	return s
}
