package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/riffle-dev/riffle/arrowexec"
)

// wideFields are columns of every kind of Arrow type the Parquet encoder
// takes, nested ones included, each with a JSON value generator (nil: a
// null) for array.RecordFromJSON.
var wideFields = []struct {
	field arrow.Field
	val   func(i int) any
}{
	{arrow.Field{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true}, func(i int) any { return i%200 - 100 }},
	{arrow.Field{Name: "u16", Type: arrow.PrimitiveTypes.Uint16, Nullable: true}, func(i int) any { return i % 60000 }},
	{arrow.Field{Name: "i32", Type: arrow.PrimitiveTypes.Int32}, func(i int) any { return i * 7 }},
	{arrow.Field{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true}, func(i int) any { return uint64(i) * 1e12 }},
	{arrow.Field{Name: "f16", Type: arrow.FixedWidthTypes.Float16, Nullable: true}, func(i int) any { return float64(i%50) / 4 }},
	{arrow.Field{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true}, func(i int) any { return float32(i) / 3 }},
	{arrow.Field{Name: "bool", Type: arrow.FixedWidthTypes.Boolean, Nullable: true}, func(i int) any { return i%3 == 0 }},
	{arrow.Field{Name: "str", Type: arrow.BinaryTypes.String, Nullable: true}, func(i int) any { return fmt.Sprintf("s%d", i%37) }},
	{arrow.Field{Name: "lstr", Type: arrow.BinaryTypes.LargeString, Nullable: true}, func(i int) any { return strings.Repeat("x", i%11) }},
	{arrow.Field{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true}, func(i int) any { return []byte{byte(i), byte(i >> 8)} }},
	{arrow.Field{Name: "fsb", Type: &arrow.FixedSizeBinaryType{ByteWidth: 3}, Nullable: true}, func(i int) any { return []byte{1, byte(i), 3} }},
	{arrow.Field{Name: "dec", Type: &arrow.Decimal128Type{Precision: 12, Scale: 2}, Nullable: true}, func(i int) any { return fmt.Sprintf("%d.%02d", i*13, i%100) }},
	{arrow.Field{Name: "dec256", Type: &arrow.Decimal256Type{Precision: 40, Scale: 3}, Nullable: true}, func(i int) any { return fmt.Sprintf("-%d.%03d", i, i%1000) }},
	{arrow.Field{Name: "date", Type: arrow.FixedWidthTypes.Date32, Nullable: true}, func(i int) any { return fmt.Sprintf("2024-01-%02d", 1+i%28) }},
	{arrow.Field{Name: "t64", Type: arrow.FixedWidthTypes.Time64us, Nullable: true}, func(i int) any { return fmt.Sprintf("12:00:%02d.%06d", i%60, i) }},
	{arrow.Field{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}, Nullable: true}, func(i int) any { return fmt.Sprintf("2024-03-10T00:00:%02d.%09dZ", i%60, i) }},
	{arrow.Field{Name: "list", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true}, func(i int) any { return []any{i, nil, i + 1}[:i%4%3] }},
	{arrow.Field{Name: "llist", Type: arrow.LargeListOf(arrow.BinaryTypes.String), Nullable: true}, func(i int) any { return []string{"a", fmt.Sprint(i)} }},
	// No fixed-size list: pqarrow v18.8.0 cannot write a null one, and
	// writes wrong values for one when WriteBuffered splits a batch across
	// row groups (rows of the first split repeated), with or without
	// committed footers.
	{arrow.Field{Name: "st", Type: arrow.StructOf(
		arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "b", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	), Nullable: true}, func(i int) any { return map[string]any{"a": i, "b": []string{fmt.Sprint(i % 5)}} }},
	{arrow.Field{Name: "map", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32), Nullable: true}, func(i int) any {
		return []any{map[string]any{"key": "k", "value": i}, map[string]any{"key": fmt.Sprint(i % 3), "value": nil}}
	}},
	{arrow.Field{Name: "dict", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, Nullable: true}, func(i int) any { return []string{"red", "green", "blue"}[i%3] }},
}

func wideSchema() *arrow.Schema {
	fs := make([]arrow.Field, len(wideFields))
	for i, c := range wideFields {
		fs[i] = c.field
	}
	return arrow.NewSchema(fs, nil)
}

// wideBatch builds rows [lo, hi) of the wide test data; every seventh value
// of a nullable column is null.
func wideBatch(t *testing.T, mem memory.Allocator, schema *arrow.Schema, lo, hi int) arrow.RecordBatch {
	t.Helper()
	var rows []map[string]any
	for i := lo; i < hi; i++ {
		r := map[string]any{}
		for c, f := range wideFields {
			if f.field.Nullable && (i+c)%7 == 0 {
				r[f.field.Name] = nil
			} else {
				r[f.field.Name] = f.val(i)
			}
		}
		rows = append(rows, r)
	}
	js, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := array.RecordFromJSON(mem, schema, bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCommittedFooterTypes: for every kind of Arrow type, the committed
// length of the file so far followed by the committed footer is a Parquet
// file holding exactly the rows written before commit, equal to the input
// arrays; the writer then goes on, and the closed file holds all rows.
// Commits come after every few batches, with row groups also cut by
// RowGroupRows inside batches, and twice in a row (nothing to cut).
func TestCommittedFooterTypes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := wideSchema()
	if err := checkSchema(FileOptions{Format: Parquet}.EnsureDefaults(), schema); err != nil {
		t.Fatal(err)
	}
	var batches []arrow.RecordBatch
	n := 0
	for _, size := range []int{1, 50, 7, 300, 2, 120, 33, 1, 400} {
		batches = append(batches, wideBatch(t, mem, schema, n, n+size))
		n += size
	}
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	o := FileOptions{Format: Parquet}.EnsureDefaults().Parquet
	o.RowGroupRows = 64
	var out bytes.Buffer
	enc, err := newParquetEncoder(o, schema, mem, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.abort() // after close: releases nothing more
	check := func(file []byte, upto int) {
		t.Helper()
		tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(file), parquet.NewReaderProperties(mem), pqarrow.ArrowReadProperties{}, mem)
		if err != nil {
			t.Fatalf("after %d batches: %v", upto, err)
		}
		defer tbl.Release()
		want := array.NewTableFromRecords(schema, batches[:upto])
		defer want.Release()
		if tbl.NumRows() != want.NumRows() {
			t.Fatalf("after %d batches: %d rows, want %d", upto, tbl.NumRows(), want.NumRows())
		}
		for c := 0; c < int(want.NumCols()); c++ {
			g, err := array.Concatenate(tbl.Column(c).Data().Chunks(), mem)
			if err != nil {
				t.Fatal(err)
			}
			w, err := array.Concatenate(want.Column(c).Data().Chunks(), mem)
			if err != nil {
				t.Fatal(err)
			}
			// By value: the reader may name list elements differently.
			gj, err := g.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			wj, err := w.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if g.DataType().ID() != w.DataType().ID() || !bytes.Equal(gj, wj) {
				t.Errorf("after %d batches: column %s:\ngot  %s %s\nwant %s %s", upto, schema.Field(c).Name, g.DataType(), gj, w.DataType(), wj)
			}
			g.Release()
			w.Release()
		}
	}
	for i, b := range batches {
		if err := enc.write(b); err != nil {
			t.Fatal(err)
		}
		if i%3 == 2 || i == 4 {
			for range 2 {
				length, footer, err := enc.commit()
				if err != nil {
					t.Fatal(err)
				}
				if length != int64(out.Len()) {
					t.Fatalf("committed length %d, file has %d bytes", length, out.Len())
				}
				check(append(bytes.Clone(out.Bytes()), footer...), i+1)
			}
		}
	}
	if err := enc.close(); err != nil {
		t.Fatal(err)
	}
	if enc.size() != int64(out.Len()) {
		t.Errorf("size %d after close, file has %d bytes", enc.size(), out.Len())
	}
	check(out.Bytes(), len(batches))
}

// TestCommittedFooterCheck: metadata that refers to page indexes (written at
// Close, after the row groups) or to bytes past the committed length, or
// that counts other rows, is refused.
func TestCommittedFooterCheck(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := wideSchema()
	b := wideBatch(t, mem, schema, 0, 100)
	defer b.Release()
	for _, pageIndex := range []bool{false, true} {
		var out bytes.Buffer
		props := parquet.NewWriterProperties(parquet.WithAllocator(mem), parquet.WithPageIndexEnabled(pageIndex), parquet.WithStats(true))
		fw, err := pqarrow.NewFileWriter(schema, &out, props, pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem)))
		if err != nil {
			t.Fatal(err)
		}
		if err := fw.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		md, err := fw.FileMetadata()
		if err != nil {
			t.Fatal(err)
		}
		size := int64(out.Len())
		err = checkCommittedFooter(md, 0, size, 100)
		if pageIndex != errors.Is(err, errFooterNotSelfContained) {
			t.Errorf("page index %v: %v", pageIndex, err)
		}
		if !pageIndex && err != nil {
			t.Errorf("plain file refused: %v", err)
		}
		if err := checkCommittedFooter(md, 0, 100, 100); !errors.Is(err, errFooterNotSelfContained) {
			t.Errorf("page index %v: column chunks past a 100-byte committed length: %v", pageIndex, err)
		}
		if err := checkCommittedFooter(md, 0, size, 99); err == nil {
			t.Errorf("page index %v: 100 rows accepted as 99", pageIndex)
		}
	}
}

// TestCommittedFooterCap: a Parquet part whose committed footer reaches
// maxCommittedFooter at a barrier is closed there; below it, parts span
// checkpoints. Every row is published once.
func TestCommittedFooterCap(t *testing.T) {
	defer func(old int) { maxCommittedFooter = old }(maxCommittedFooter)
	maxCommittedFooter = 16 << 10
	defer SetMaxCarry(0)() // a row group per barrier grows the footer
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := wideSchema()
	spec, err := NewFile(FileOptions{Dir: t.TempDir(), Commit: CommitOnCheckpoint, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	op, err := spec.New(&arrowexec.Task{Node: "sink", Parallelism: 1, Mem: mem, Inputs: []*arrow.Schema{schema}, Metrics: &arrowexec.TaskMetrics{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := op.Open(ctx); err != nil {
		t.Fatal(err)
	}
	const nchk, per = 40, 25
	var footers []int
	for i := 0; i < nchk; i++ {
		b := wideBatch(t, mem, schema, i*per, (i+1)*per)
		err := op.Process(ctx, 0, b, nil)
		b.Release()
		if err != nil {
			t.Fatal(err)
		}
		snap, err := op.(arrowexec.Checkpointer).SnapshotState(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		var st sinkState
		if err := json.Unmarshal(snap.Operator, &st); err != nil {
			t.Fatal(err)
		}
		if o := st.Writers[0].Open; o != nil {
			footers = append(footers, len(o.Footer))
		} else {
			footers = append(footers, 0)
		}
	}
	if err := op.Finish(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}
	parts := spec.Published()
	if len(parts) < 2 || len(parts) > nchk/2 {
		t.Fatalf("%d parts for %d checkpoints (footers %v)", len(parts), nchk, footers)
	}
	var rows int64
	for i, p := range parts {
		tbl := readTable(t, mem, p.Path)
		rows += tbl.NumRows()
		if i < len(parts)-1 && tbl.NumRows() < 2*per {
			t.Errorf("%s: %d rows: closed before spanning two checkpoints", p.Path, tbl.NumRows())
		}
		tbl.Release()
	}
	if rows != nchk*per {
		t.Errorf("%d rows published, want %d", rows, nchk*per)
	}
	for i, n := range footers {
		if n >= maxCommittedFooter {
			t.Errorf("checkpoint %d: open part with a %d-byte footer", i+1, n)
		}
	}
}

func readTable(t *testing.T, mem memory.Allocator, path string) arrow.Table {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, parquet.NewReaderProperties(mem), pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tbl
}
