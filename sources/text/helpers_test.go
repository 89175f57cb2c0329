package text

import (
	"context"
	"errors"
	"io"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
)

// readAll reads every subtask of src at parallelism p and returns the rows of
// each subtask, rendered as oracle.Format renders DuckDB values (timestamps
// as epoch milliseconds).
func readAll(t testing.TB, src *Source, p int, mem memory.Allocator) ([][][]string, error) {
	t.Helper()
	out := make([][][]string, p)
	for i := 0; i < p; i++ {
		r, err := src.Open(context.Background(), &arrowexec.Task{Node: "src", Subtask: i, Parallelism: p, MaxParallelism: p, Mem: mem, Metrics: &arrowexec.TaskMetrics{}})
		if err != nil {
			return nil, err
		}
		for {
			b, err := r.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				r.Close()
				return nil, err
			}
			out[i] = append(out[i], render(b)...)
			b.Release()
		}
		if err := r.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func render(b arrow.RecordBatch) [][]string {
	rows := make([][]string, b.NumRows())
	for i := range rows {
		rows[i] = make([]string, b.NumCols())
		for c := 0; c < int(b.NumCols()); c++ {
			rows[i][c] = cell(b.Column(c), i)
		}
	}
	return rows
}

func cell(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "NULL"
	}
	switch a := a.(type) {
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Timestamp:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return string(a.Value(i))
	}
	return a.ValueStr(i)
}
