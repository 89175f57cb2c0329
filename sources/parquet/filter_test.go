package parquet

import (
	"fmt"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestStringFilters checks scan-level string filters against filtering the
// written rows by hand: dictionary pages (s), plain pages and a dictionary
// that falls back to plain mid-chunk (text in a.parquet), NULLs, projected
// and unprojected filter columns, several filters, batch sizes and
// parallelism.
func TestStringFilters(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := newDataset(t, 7, mem)
	defer d.release()
	ids := d.want.Column(0).(*array.Int64)
	col := func(name string) *array.String {
		return d.want.Column(d.sc.FieldIndices(name)[0]).(*array.String)
	}
	// Pick filter values that occur in the text column, so plain pages match
	// too.
	text := col("text")
	var textVals []string
	for i := 0; i < text.Len() && len(textVals) < 40; i += 7 {
		if text.IsValid(i) {
			textVals = append(textVals, text.Value(i))
		}
	}
	cases := []struct {
		name    string
		filters []StringFilter
		columns []string
	}{
		{"s in, projected", []StringFilter{{Column: "s", Values: []string{"alpha", "", "ünïcødé"}}}, []string{"id", "s", "f64"}},
		{"s not in, unprojected", []StringFilter{{Column: "s", Values: []string{"beta"}, Not: true}}, []string{"id", "i32"}},
		{"text in (plain pages)", []StringFilter{{Column: "text", Values: textVals}}, []string{"id", "text"}},
		{"two filters", []StringFilter{{Column: "s", Values: []string{"gamma"}, Not: true}, {Column: "req_s", Values: words[:5]}}, []string{"id", "ts_ms", "bin"}},
		{"nothing passes", []StringFilter{{Column: "s", Values: []string{"no such word"}}}, []string{"id"}},
	}
	for _, c := range cases {
		// The oracle: ids of the rows that pass, by hand.
		var want []int64
		for i := 0; i < int(d.want.NumRows()); i++ {
			ok := true
			for _, f := range c.filters {
				v := col(f.Column)
				if v.IsNull(i) {
					ok = false
					break
				}
				if slices.Contains(f.Values, v.Value(i)) == f.Not {
					ok = false
				}
			}
			if ok {
				want = append(want, ids.Value(i))
			}
		}
		for _, bs := range []int{1, 7, 1024} {
			for _, par := range []int{1, 2, 4} {
				t.Run(fmt.Sprintf("%s/batch=%d/p=%d", c.name, bs, par), func(t *testing.T) {
					src, err := New(Options{Paths: []string{d.dir}, Columns: c.columns, StringFilters: c.filters, BatchSize: bs, Decoder: DecoderParquetGo})
					if err != nil {
						t.Fatal(err)
					}
					got, _ := readAll(t, src, mem, par)
					defer releaseBatches(got)
					var gotIDs []int64
					for _, sub := range got {
						for _, b := range sub {
							if b.NumRows() == 0 {
								t.Fatal("empty batch emitted")
							}
							if !b.Schema().Equal(src.Schema()) {
								t.Fatalf("schema %v, want %v", b.Schema(), src.Schema())
							}
							gotIDs = append(gotIDs, b.Column(0).(*array.Int64).Int64Values()...)
							checkRows(t, d, b)
						}
					}
					slices.Sort(gotIDs)
					if !slices.Equal(gotIDs, want) {
						t.Fatalf("%d rows pass, want %d", len(gotIDs), len(want))
					}
				})
			}
		}
	}
}

// checkRows verifies every column of b against the dataset row with the
// same id (ids are row numbers).
func checkRows(t *testing.T, d *dataset, b arrow.RecordBatch) {
	t.Helper()
	ids := b.Column(0).(*array.Int64)
	for c := 1; c < int(b.NumCols()); c++ {
		name := b.ColumnName(c)
		wantCol := d.want.Column(d.sc.FieldIndices(name)[0])
		for i := 0; i < int(b.NumRows()); i++ {
			row := int(ids.Value(i))
			if g, w := b.Column(c).ValueStr(i), wantCol.ValueStr(row); g != w {
				t.Fatalf("column %s, id %d: got %q, want %q", name, row, g, w)
			}
		}
	}
}

func TestStringFilterErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := newDataset(t, 8, mem)
	defer d.release()
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Paths: []string{d.dir}, StringFilters: []StringFilter{{Column: "nope"}}}, "parquet: filter column \"nope\" not found"},
		{Options{Paths: []string{d.dir}, StringFilters: []StringFilter{{Column: "i32"}}}, "parquet: filter column \"i32\" has type int32, want string or binary"},
		{Options{Paths: []string{d.dir}, Decoder: DecoderArrow, StringFilters: []StringFilter{{Column: "s"}}}, "parquet: string filters need the parquet-go decoder (have arrow)"},
	} {
		_, err := New(c.o)
		if err == nil || !startsWith(err.Error(), c.want) {
			t.Errorf("err = %v, want %s...", err, c.want)
		}
	}
}

func startsWith(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
