package nexmark

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
)

// readAll reads a bounded source with par subtasks and returns each
// subtask's batches in order. The caller releases them.
func readAll(t testing.TB, o Options, par int, mem memory.Allocator) [][]arrow.RecordBatch {
	t.Helper()
	src, err := NewSource(o)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]arrow.RecordBatch, par)
	for i := range par {
		r, err := src.Open(context.Background(), &arrowexec.Task{Node: "nexmark", Subtask: i, Parallelism: par, Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		for {
			b, err := r.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if !b.Schema().Equal(o.Table.Schema()) {
				t.Fatalf("batch schema %s, want %s", b.Schema(), o.Table.Schema())
			}
			out[i] = append(out[i], b)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func releaseAll(bs [][]arrow.RecordBatch) {
	for _, s := range bs {
		for _, b := range s {
			b.Release()
		}
	}
}

// rowStrings renders every row as text, in batch order.
func rowStrings(bs []arrow.RecordBatch) []string {
	var out []string
	for _, b := range bs {
		for i := 0; i < int(b.NumRows()); i++ {
			var sb strings.Builder
			for c, col := range b.Columns() {
				if c > 0 {
					sb.WriteByte('|')
				}
				sb.WriteString(cellString(col, i))
			}
			out = append(out, sb.String())
		}
	}
	return out
}

func cellString(col arrow.Array, i int) string {
	switch a := col.(type) {
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Timestamp:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.String:
		return strconv.Quote(a.Value(i))
	}
	panic(fmt.Sprintf("unexpected column type %s", col.DataType()))
}

// table is a bounded table read at parallelism 1, as columns.
type table struct {
	ints map[string][]int64
	strs map[string][]string
	n    int
}

func readTable(t testing.TB, o Options) *table {
	t.Helper()
	bs := readAll(t, o, 1, memory.DefaultAllocator)
	defer releaseAll(bs)
	tb := &table{ints: map[string][]int64{}, strs: map[string][]string{}}
	for _, b := range bs[0] {
		tb.n += int(b.NumRows())
		for c, f := range b.Schema().Fields() {
			switch a := b.Column(c).(type) {
			case *array.Int64:
				tb.ints[f.Name] = append(tb.ints[f.Name], a.Int64Values()...)
			case *array.Timestamp:
				for _, v := range a.TimestampValues() {
					tb.ints[f.Name] = append(tb.ints[f.Name], int64(v))
				}
			case *array.String:
				for i := 0; i < a.Len(); i++ {
					tb.strs[f.Name] = append(tb.strs[f.Name], strings.Clone(a.Value(i)))
				}
			}
		}
	}
	return tb
}

// eventNumbers lists the event numbers of kind k below n, in order
// (OutOfOrderGroupSize 1).
func eventNumbers(k Table, n int64) []int64 {
	var out []int64
	for e := int64(0); e < n; e++ {
		if Kind(e) == k {
			out = append(out, e)
		}
	}
	return out
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// timesOf returns the date_time column of b.
func timesOf(b arrow.RecordBatch) []int64 {
	col := b.Column(b.Schema().FieldIndices(EventTimeColumn)[0]).(*array.Timestamp)
	out := make([]int64, col.Len())
	for i, v := range col.TimestampValues() {
		out[i] = int64(v)
	}
	return out
}
