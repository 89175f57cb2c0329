package eval

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/internal/coerce"
	"github.com/riffle-dev/riffle/sources"
	"github.com/riffle-dev/riffle/sources/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
	"github.com/riffle-dev/riffle/sources/text"
)

// ReadFile loads an interaction file: Parquet (a file, glob or directory, as
// the Parquet source reads them, in file and row order) or, for a path
// ending in .csv, a CSV file with a header row (comma-separated), read by
// the CSV source (sources/text) in file order. CSV column types are
// inferred from the first data row, except that integer-looking columns
// other than the user, item and time columns are read as float64 (a
// rating of 4 in the first row may be 3.5 later).
func ReadFile(ctx context.Context, path string, cols Columns) (*Dataset, error) {
	if err := cols.Validate(); err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	need, err := columnsNeeded(cols)
	if err != nil {
		return nil, err
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

// columnsNeeded lists the columns cols reads: user, item, time and those
// of the weight expression.
func columnsNeeded(cols Columns) ([]string, error) {
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
	return need, nil
}

// ReadKafka loads the interactions of a Kafka topic, JSON messages, read
// from the earliest offset to the end the topic had when reading began
// (the Kafka source, bounded), partition after partition in offset order:
// row order is offset order for a one-partition topic. The user, item and
// time fields are declared int64 and the weight expression's fields
// float64, unless types names another type for a field (coerce types:
// int64, float64, string, timestamp, ...).
func ReadKafka(ctx context.Context, brokers []string, topic string, cols Columns, types map[string]string) (*Dataset, error) {
	if err := cols.Validate(); err != nil {
		return nil, fmt.Errorf("eval: kafka topic %s: %w", topic, err)
	}
	need, err := columnsNeeded(cols)
	if err != nil {
		return nil, err
	}
	var fields []kafka.Field
	for _, n := range need {
		t := kafka.Float64
		if n == cols.User || n == cols.Item || n == cols.Time {
			t = kafka.Int64
		}
		if v, ok := types[n]; ok {
			t = kafka.Type(v)
		}
		fields = append(fields, kafka.Field{Name: n, Type: t, Required: true})
	}
	src, err := kafka.New(ctx, kafka.Options{Brokers: brokers, Topics: []string{topic}, Bounded: true, Fields: fields})
	if err != nil {
		return nil, fmt.Errorf("eval: kafka topic %s: %w", topic, err)
	}
	defer src.Close()
	return Load(ctx, "kafka topic "+topic, cols, sources.Batches(ctx, src, nil, 0))
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// readCSV reads a CSV file with a header through the CSV source
// (sources/text). Column types come from the first data row: an integer
// is int64 for the user, item and time columns and float64 for others (a
// rating of 4 in the first row may be 3.5 later), another number float64,
// an RFC 3339 time in the time column a timestamp, anything else a string.
func readCSV(ctx context.Context, path string, cols Columns, need []string) (*Dataset, error) {
	names, first, err := text.Peek(path, ',')
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	for _, n := range need {
		if !contains(names, n) {
			return nil, fmt.Errorf("eval: %s: no column %q (have %v)", path, n, names)
		}
	}
	decl := make([]text.Column, len(need))
	for i, n := range need {
		v := ""
		if j := slices.Index(names, n); first != nil && j < len(first) {
			v = strings.TrimSpace(first[j])
		}
		ids := n == cols.User || n == cols.Item || n == cols.Time
		decl[i] = text.Column{Name: n, Type: coerce.String}
		if _, err := strconv.ParseInt(v, 10, 64); err == nil && ids {
			decl[i].Type = coerce.Int64
		} else if _, err := strconv.ParseFloat(v, 64); err == nil && !ids {
			decl[i].Type = coerce.Float64
		} else if _, err := time.Parse(time.RFC3339Nano, v); err == nil && n == cols.Time {
			decl[i].Type = coerce.Timestamp
		}
	}
	src, err := text.New(text.Options{Paths: []string{path}, Header: true, Columns: decl})
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	return Load(ctx, path, cols, src.Batches(ctx, nil, 0))
}
