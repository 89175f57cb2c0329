package eval

import (
	"bufio"
	"context"
	stdcsv "encoding/csv"
	"fmt"
	"io"
	"iter"
	"os"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/csv"

	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/sources/parquet"
)

// ReadFile loads an interaction file: Parquet (a file, glob or directory, as
// the Parquet source reads them, in file and row order) or, for a path
// ending in .csv, a CSV file with a header row (comma-separated). CSV
// column types are inferred from the first data row, except that
// integer-looking columns other than the user, item and time columns are
// read as float64 (a rating of 4 in the first row may be 3.5 later).
func ReadFile(ctx context.Context, path string, cols Columns) (*Dataset, error) {
	if err := cols.Validate(); err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	need := []string{cols.User, cols.Item, cols.Time}
	if cols.Weight != "" {
		e, err := expr.Parse(cols.Weight)
		if err != nil {
			return nil, fmt.Errorf("eval: weight %q: %w", cols.Weight, err)
		}
		for _, c := range expr.Columns(e) {
			if !contains(need, c) {
				need = append(need, c)
			}
		}
	}
	if strings.HasSuffix(strings.ToLower(path), ".csv") {
		return readCSV(ctx, path, cols, need)
	}
	src, err := parquet.New(parquet.Options{Paths: []string{path}, Columns: need})
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	return Load(ctx, path, cols, src.Batches(ctx, nil, 0))
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func readCSV(ctx context.Context, path string, cols Columns, need []string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	header, err := br.ReadString('\n')
	if err != nil && !(err == io.EOF && header != "") {
		return nil, fmt.Errorf("eval: %s: reading the header: %w", path, err)
	}
	// The header's names, to check the columns.
	names, err := stdcsv.NewReader(strings.NewReader(header)).Read()
	if err != nil {
		return nil, fmt.Errorf("eval: %s: header: %w", path, err)
	}
	for _, n := range need {
		if !contains(names, n) {
			return nil, fmt.Errorf("eval: %s: no column %q (have %v)", path, n, names)
		}
	}
	// The CSV reader infers types from the first data row and cannot do
	// without one: a file with none is an empty log.
	for {
		b, err := br.Peek(1)
		if err == io.EOF {
			return Load(ctx, path, cols, func(func(arrow.RecordBatch, error) bool) {})
		}
		if err != nil {
			return nil, fmt.Errorf("eval: %s: %w", path, err)
		}
		if b[0] != '\n' && b[0] != '\r' {
			break
		}
		br.Discard(1)
	}
	first, err := br.ReadString('\n')
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	// A column other than the ids and the time whose first value is an
	// integer is read as float64: a rating of 4 may be 3.5 further down.
	types := map[string]arrow.DataType{}
	if vals, err := stdcsv.NewReader(strings.NewReader(first)).Read(); err == nil && len(vals) == len(names) {
		for i, n := range names {
			if _, err := strconv.ParseInt(vals[i], 10, 64); err == nil && n != cols.User && n != cols.Item && n != cols.Time {
				types[n] = arrow.PrimitiveTypes.Float64
			}
		}
	}
	r := csv.NewInferringReader(io.MultiReader(strings.NewReader(header), strings.NewReader(first), br), csv.WithHeader(true), csv.WithChunk(1<<16),
		csv.WithIncludeColumns(need), csv.WithColumnTypes(types))
	defer r.Release()
	batches := func(yield func(arrow.RecordBatch, error) bool) {
		for r.Next() {
			if !yield(r.RecordBatch(), nil) {
				return
			}
		}
		if err := r.Err(); err != nil {
			yield(nil, err)
		}
	}
	return Load(ctx, path, cols, iter.Seq2[arrow.RecordBatch, error](batches))
}
