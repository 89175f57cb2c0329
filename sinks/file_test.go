package sinks_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/sinks"
)

var _ arrowexec.Spec = (*sinks.FileSpec)(nil)

// smallParts makes parts roll every few hundred rows.
func smallParts(dir string, f sinks.Format) sinks.FileOptions {
	return sinks.FileOptions{
		Dir: dir, Format: f, PartSize: 16 << 10, NoSync: true,
		Parquet: sinks.ParquetOptions{RowGroupRows: 200},
	}
}

func readParquetRows(t *testing.T, mem memory.Allocator, path string) [][]any {
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
	defer tbl.Release()
	if !sameFields(tbl.Schema(), testSchema()) {
		t.Fatalf("%s: schema %v, want %v", path, tbl.Schema(), testSchema())
	}
	tr := array.NewTableReader(tbl, 1<<20)
	defer tr.Release()
	var rows [][]any
	for tr.Next() {
		rows = append(rows, arrowRows(t, tr.RecordBatch().Columns())...)
	}
	return rows
}

// readCSVRows reads a CSV file with encoding/csv. encoding/csv cannot tell an
// empty string from a null, and turns \r\n inside quotes into \n.
func readCSVRows(t *testing.T, path string) [][]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var header []string
	for _, c := range testCols {
		header = append(header, c.field.Name)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != strings.Join(header, ",") {
		t.Fatalf("%s: header %v, want %v", path, recs[:min(1, len(recs))], header)
	}
	var rows [][]any
	for _, rec := range recs[1:] {
		r := make([]any, len(rec))
		for i, s := range rec {
			if s != "" {
				r[i] = s
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func readJSONLRows(t *testing.T, path string) [][]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		if len(m) != len(testCols) {
			t.Fatalf("%s: line has %d keys, want %d", path, len(m), len(testCols))
		}
		r := make([]any, len(testCols))
		for i, c := range testCols {
			v, ok := m[c.field.Name]
			if !ok {
				t.Fatalf("%s: key %q missing", path, c.field.Name)
			}
			if n, ok := v.(json.Number); ok {
				v = string(n)
			}
			r[i] = v
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func crlfToLF(rows [][]any) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		c := append([]any(nil), r...)
		if s, ok := c[3].(string); ok {
			c[3] = strings.ReplaceAll(s, "\r\n", "\n")
		}
		out[i] = c
	}
	return out
}

// TestRoundTripGo writes random rows through each format with rolling parts
// and two subtasks and reads them back with pure Go readers.
func TestRoundTripGo(t *testing.T) {
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV, sinks.JSONL} {
		t.Run(string(f), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			dir := t.TempDir()
			rows := randomRows(rand.New(rand.NewPCG(1, 2)), 3000)
			spec := writeRows(t, mem, smallParts(dir, f), rows, 2, 3)

			names := listDir(t, dir)
			if h := hidden(names); len(h) > 0 {
				t.Fatalf("hidden files left: %v", h)
			}
			paths := publishedPaths(spec)
			if len(paths) < 4 {
				t.Fatalf("want rolled parts, got %v", names)
			}
			var got [][]any
			var total int64
			for _, p := range spec.Published() {
				total += p.Rows
			}
			if total != int64(len(rows)) {
				t.Fatalf("Published rows %d, want %d", total, len(rows))
			}
			for _, p := range paths {
				switch f {
				case sinks.Parquet:
					got = append(got, readParquetRows(t, mem, p)...)
				case sinks.CSV:
					got = append(got, readCSVRows(t, p)...)
				case sinks.JSONL:
					got = append(got, readJSONLRows(t, p)...)
				}
			}
			switch f {
			case sinks.CSV:
				compareRows(t, "encoding/csv", got, crlfToLF(rows), cmpOpts{emptyIsNull: true})
			default:
				compareRows(t, "go "+string(f), got, rows, cmpOpts{})
			}
		})
	}
}

// TestNames checks the deterministic part names and that they all end in the
// format's extension.
func TestNames(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	rows := randomRows(rand.New(rand.NewPCG(5, 5)), 1500)
	opts := smallParts(dir, sinks.CSV)
	opts.Prefix = "events"
	writeRows(t, mem, opts, rows, 2, 1)
	names := listDir(t, dir)
	for st := 0; st < 2; st++ {
		for seq := 0; seq < 2; seq++ {
			want := fmt.Sprintf("events-%05d-%05d.csv", st, seq)
			found := false
			for _, n := range names {
				found = found || n == want
			}
			if !found {
				t.Errorf("missing %s in %v", want, names)
			}
		}
	}
	// Same input, same names.
	dir2 := t.TempDir()
	opts.Dir = dir2
	writeRows(t, mem, opts, rows, 2, 1)
	if a, b := strings.Join(names, " "), strings.Join(listDir(t, dir2), " "); a != b {
		t.Errorf("names differ between runs:\n%s\n%s", a, b)
	}
}

// TestAbortLeavesNothing: Close without Finish removes the open part and
// every pending part (CommitOnFinish).
func TestAbortLeavesNothing(t *testing.T) {
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV, sinks.JSONL} {
		t.Run(string(f), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			dir := t.TempDir()
			spec, err := sinks.NewFile(smallParts(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			schema := testSchema()
			rng := rand.New(rand.NewPCG(9, 9))
			batches := splitBatches(rng, mem, schema, randomRows(rng, 2000), 200)
			defer releaseAll(batches)
			ctx := context.Background()
			op, err := spec.New(task(mem, schema, 0, 1))
			if err != nil {
				t.Fatal(err)
			}
			if err := op.Open(ctx); err != nil {
				t.Fatal(err)
			}
			for _, b := range batches {
				if err := op.Process(ctx, 0, b, nil); err != nil {
					t.Fatal(err)
				}
			}
			if n := len(hidden(listDir(t, dir))); n < 2 {
				t.Fatalf("want pending and open parts in progress, have %d", n)
			}
			if n := len(listDir(t, dir)) - len(hidden(listDir(t, dir))); n != 0 {
				t.Fatalf("%d files visible before Finish", n)
			}
			if err := op.Close(); err != nil {
				t.Fatal(err)
			}
			if err := op.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if names := listDir(t, dir); len(names) != 0 {
				t.Fatalf("files left after abort: %v", names)
			}
			if len(spec.Published()) != 0 {
				t.Fatalf("published %v", spec.Published())
			}
		})
	}
}

// TestCommitOnRoll publishes each part when it rolls; an abort then removes
// only the open part.
func TestCommitOnRoll(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	opts := smallParts(dir, sinks.JSONL)
	opts.Commit = sinks.CommitOnRoll
	spec, err := sinks.NewFile(opts)
	if err != nil {
		t.Fatal(err)
	}
	schema := testSchema()
	rng := rand.New(rand.NewPCG(3, 3))
	rows := randomRows(rng, 2000)
	batches := splitBatches(rng, mem, schema, rows, 100)
	defer releaseAll(batches)
	if err := runSubtask(t, spec, task(mem, schema, 0, 1), batches, false); err != nil {
		t.Fatal(err)
	}
	names := listDir(t, dir)
	if len(hidden(names)) != 0 {
		t.Fatalf("hidden files left: %v", names)
	}
	pub := spec.Published()
	if len(pub) < 2 || len(names) != len(pub) {
		t.Fatalf("published %d parts, dir has %v", len(pub), names)
	}
	var got [][]any
	for _, p := range publishedPaths(spec) {
		got = append(got, readJSONLRows(t, p)...)
	}
	// The published parts hold a prefix of the input.
	if len(got) == 0 || len(got) >= len(rows) {
		t.Fatalf("got %d rows of %d", len(got), len(rows))
	}
	compareRows(t, "on-roll prefix", got, rows[:len(got)], cmpOpts{})
}

// TestRemovesStale: Open removes in-progress files of its own subtask left by
// a crashed run, and nothing else.
func TestRemovesStale(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	for _, n := range []string{".part-00000-00007.csv.inprogress", ".part-00001-00000.csv.inprogress", "keep.txt", "_SUCCESS"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec, err := sinks.NewFile(sinks.FileOptions{Dir: dir, Format: sinks.CSV, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := runSubtask(t, spec, task(mem, testSchema(), 0, 2), nil, true); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(listDir(t, dir), " ")
	if want := ".part-00001-00000.csv.inprogress _SUCCESS keep.txt"; got != want {
		t.Fatalf("dir %q, want %q", got, want)
	}
}

// faultFS fails the operation named op after `after` successful calls.
type faultFS struct {
	sinks.FS
	op    string
	after int64
	calls atomic.Int64
}

var errInjected = errors.New("injected fault")

func (f *faultFS) fail(op string) bool {
	return op == f.op && f.calls.Add(1) > f.after
}

func (f *faultFS) Create(name string) (sinks.File, error) {
	if f.fail("create") {
		return nil, errInjected
	}
	file, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) Rename(a, b string) error {
	if f.fail("rename") {
		return errInjected
	}
	return f.FS.Rename(a, b)
}

func (f *faultFS) SyncDir(d string) error {
	if f.fail("syncdir") {
		return errInjected
	}
	return f.FS.SyncDir(d)
}

type faultFile struct {
	sinks.File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	if f.fs.fail("write") {
		return 0, errInjected
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	if f.fs.fail("sync") {
		return errInjected
	}
	return f.File.Sync()
}

// TestFaults injects an error into every kind of file operation: the error
// names the package and a file, and after Close nothing in progress is left
// and no memory leaks.
func TestFaults(t *testing.T) {
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV, sinks.JSONL} {
		for _, op := range []string{"create", "write", "sync", "rename", "syncdir"} {
			for _, after := range []int64{0, 2} {
				if op == "syncdir" && after > 0 {
					continue // one directory sync per Finish
				}
				t.Run(fmt.Sprintf("%s/%s/%d", f, op, after), func(t *testing.T) {
					mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
					defer mem.AssertSize(t, 0)
					dir := t.TempDir()
					opts := smallParts(dir, f)
					opts.NoSync = false
					opts.FS = &faultFS{FS: sinks.OSFS, op: op, after: after}
					spec, err := sinks.NewFile(opts)
					if err != nil {
						t.Fatal(err)
					}
					schema := testSchema()
					rng := rand.New(rand.NewPCG(4, 4))
					batches := splitBatches(rng, mem, schema, randomRows(rng, 1500), 200)
					defer releaseAll(batches)
					err = runSubtask(t, spec, task(mem, schema, 0, 1), batches, true)
					if !errors.Is(err, errInjected) {
						t.Fatalf("err = %v, want injected fault", err)
					}
					if msg := err.Error(); !strings.HasPrefix(msg, "sinks: ") || !strings.Contains(msg, dir) {
						t.Fatalf("error %q does not name the package and file", msg)
					}
					if h := hidden(listDir(t, dir)); len(h) != 0 {
						t.Fatalf("in-progress files left: %v", h)
					}
				})
			}
		}
	}
}

func TestOptions(t *testing.T) {
	spec, err := sinks.NewFile(sinks.FileOptions{Dir: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	o := spec.Options()
	if o.Format != sinks.Parquet || o.Prefix != "part" || o.PartSize != 128<<20 || o.Parquet.Codec != "zstd" ||
		o.Commit != sinks.CommitOnFinish || o.Parquet.RowGroupRows != 1<<20 {
		t.Fatalf("defaults %+v", o)
	}
	for _, bad := range []sinks.FileOptions{
		{},
		{Dir: "/x", Format: "xml"},
		{Dir: "/x", Prefix: ".hidden"},
		{Dir: "/x", Prefix: "_tmp"},
		{Dir: "/x", Prefix: "a/b"},
		{Dir: "/x", PartSize: -1},
		{Dir: "/x", Commit: 7},
		{Dir: "/x", Parquet: sinks.ParquetOptions{Codec: "lzo"}},
	} {
		if _, err := sinks.NewFile(bad); err == nil || !strings.HasPrefix(err.Error(), "sinks: ") {
			t.Errorf("NewFile(%+v) = %v, want a sinks: error", bad, err)
		}
	}
}

func TestSchemaChecks(t *testing.T) {
	list := arrow.NewSchema([]arrow.Field{{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)}}, nil)
	csvSpec, _ := sinks.NewFile(sinks.FileOptions{Dir: "/x", Format: sinks.CSV})
	if _, err := csvSpec.Schema([]*arrow.Schema{list}); err == nil {
		t.Error("CSV accepted a list column")
	}
	jsonSpec, _ := sinks.NewFile(sinks.FileOptions{Dir: "/x", Format: sinks.JSONL})
	if s, err := jsonSpec.Schema([]*arrow.Schema{list}); err != nil || s != nil {
		t.Errorf("JSONL list column: %v %v", s, err)
	}
	if _, err := jsonSpec.Schema([]*arrow.Schema{list, list}); err == nil {
		t.Error("two inputs accepted")
	}
	pqSpec, _ := sinks.NewFile(sinks.FileOptions{Dir: "/x"})
	if _, err := pqSpec.Schema([]*arrow.Schema{testSchema()}); err != nil {
		t.Error(err)
	}
}

// TestTextEncoding pins the exact bytes written for special values and the
// types that only have a slow path.
func TestTextEncoding(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "u", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "America/New_York"}, Nullable: true},
		{Name: "d64", Type: arrow.FixedWidthTypes.Date64, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"", "q\"x", "bad\xffutf8"}, []bool{true, true, true})
	b.Field(1).(*array.Float32Builder).AppendValues([]float32{1.1, 0, 0}, []bool{true, true, true})
	b.Field(1).(*array.Float32Builder).Reserve(0)
	b.Field(2).(*array.Uint64Builder).AppendValues([]uint64{18446744073709551615, 0, 0}, []bool{true, false, true})
	b.Field(3).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{-1, 1_700_000_000_123_456_789, 0}, []bool{true, true, false})
	b.Field(4).(*array.Date64Builder).AppendValues([]arrow.Date64{-86_400_000, 0, 0}, []bool{true, true, false})
	b.Field(5).(*array.Decimal128Builder).AppendNull()
	b.Field(5).(*array.Decimal128Builder).AppendNull()
	b.Field(5).(*array.Decimal128Builder).AppendNull()
	rec := b.NewRecordBatch()
	defer rec.Release()
	// NaN and infinities.
	fb := array.NewFloat64Builder(mem)
	defer fb.Release()

	want := map[sinks.Format]string{
		sinks.CSV: "s,f,u,ts,d64,dec\n" +
			`"",1.1,18446744073709551615,1969-12-31T23:59:59.999999999Z,1969-12-31,` + "\n" +
			`"q""x",0.0,,2023-11-14T22:13:20.123456789Z,1970-01-01,` + "\n" +
			"bad\xffutf8,0.0,0,,,\n",
		sinks.JSONL: `{"s":"","f":1.1,"u":18446744073709551615,"ts":"1969-12-31T23:59:59.999999999Z","d64":"1969-12-31","dec":null}` + "\n" +
			`{"s":"q\"x","f":0.0,"u":null,"ts":"2023-11-14T22:13:20.123456789Z","d64":"1970-01-01","dec":null}` + "\n" +
			`{"s":"bad\ufffdutf8","f":0.0,"u":0,"ts":null,"d64":null,"dec":null}` + "\n",
	}
	for f, w := range want {
		dir := t.TempDir()
		spec, err := sinks.NewFile(sinks.FileOptions{Dir: dir, Format: f, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := runSubtask(t, spec, task(mem, schema, 0, 1), []arrow.RecordBatch{rec}, true); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "part-00000-00000."+string(f)))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != w {
			t.Errorf("%s:\ngot  %q\nwant %q", f, got, w)
		}
	}
}

// TestSpecialFloats: NaN and infinities are nan/inf/-inf in CSV and null in
// JSON.
func TestSpecialFloats(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Float64}, {Name: "b", Type: arrow.PrimitiveTypes.Int8}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	nan, inf := float64FromBits(0x7ff8000000000001), float64FromBits(0x7ff0000000000000)
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{nan, inf, -inf, 1e300}, nil)
	b.Field(1).(*array.Int8Builder).AppendValues([]int8{-128, 127, 0, 1}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	for f, w := range map[sinks.Format]string{
		sinks.CSV:   "a,b\nnan,-128\ninf,127\n-inf,0\n1e+300,1\n",
		sinks.JSONL: "{\"a\":null,\"b\":-128}\n{\"a\":null,\"b\":127}\n{\"a\":null,\"b\":0}\n{\"a\":1e+300,\"b\":1}\n",
	} {
		dir := t.TempDir()
		spec, _ := sinks.NewFile(sinks.FileOptions{Dir: dir, Format: f, NoSync: true})
		if err := runSubtask(t, spec, task(mem, schema, 0, 1), []arrow.RecordBatch{rec}, true); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(dir, "part-00000-00000."+string(f)))
		if string(got) != w {
			t.Errorf("%s: got %q, want %q", f, got, w)
		}
	}
}

// TestNoRowsNoFile: a subtask that saw no rows publishes nothing.
func TestNoRowsNoFile(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	spec, _ := sinks.NewFile(sinks.FileOptions{Dir: dir, NoSync: true})
	empty := buildBatch(mem, testSchema(), nil)
	defer empty.Release()
	if err := runSubtask(t, spec, task(mem, testSchema(), 0, 1), []arrow.RecordBatch{empty}, true); err != nil {
		t.Fatal(err)
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Fatalf("files %v", names)
	}
}

var _ io.Writer = (*faultFile)(nil)

// TestEmptyFile: with EmptyFile a subtask without rows publishes one empty
// part that a reader opens.
func TestEmptyFile(t *testing.T) {
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV, sinks.JSONL} {
		t.Run(string(f), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			dir := t.TempDir()
			spec, _ := sinks.NewFile(sinks.FileOptions{Dir: dir, Format: f, EmptyFile: true, NoSync: true})
			if err := runSubtask(t, spec, task(mem, testSchema(), 1, 2), nil, true); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(listDir(t, dir), " "); got != "part-00001-00000."+string(f) {
				t.Fatalf("dir %q", got)
			}
			p := filepath.Join(dir, "part-00001-00000."+string(f))
			switch f {
			case sinks.Parquet:
				if rows := readParquetRows(t, mem, p); len(rows) != 0 {
					t.Fatalf("%d rows", len(rows))
				}
			case sinks.CSV:
				if rows := readCSVRows(t, p); len(rows) != 0 {
					t.Fatalf("%d rows", len(rows))
				}
			case sinks.JSONL:
				if rows := readJSONLRows(t, p); len(rows) != 0 {
					t.Fatalf("%d rows", len(rows))
				}
			}
		})
	}
}

// TestSchemaMismatch: a batch whose schema differs from the input's is an
// error, not a corrupt file.
func TestSchemaMismatch(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	spec, _ := sinks.NewFile(sinks.FileOptions{Dir: dir, Format: sinks.CSV, NoSync: true})
	other := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(mem, other)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).Append(1)
	rec := b.NewRecordBatch()
	defer rec.Release()
	err := runSubtask(t, spec, task(mem, testSchema(), 0, 1), []arrow.RecordBatch{rec}, true)
	if err == nil || !strings.Contains(err.Error(), "differs from the input schema") {
		t.Fatalf("err = %v", err)
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Fatalf("left %v", names)
	}
}

// TestJSONNested: nested types go through arrow's JSON marshaling.
func TestJSONNested(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	lb := b.Field(0).(*array.ListBuilder)
	lb.Append(true)
	lb.ValueBuilder().(*array.Int32Builder).AppendValues([]int32{1, 2}, nil)
	lb.AppendNull()
	sb := b.Field(1).(*array.StructBuilder)
	sb.Append(true)
	sb.FieldBuilder(0).(*array.StringBuilder).Append("x\"y")
	sb.AppendNull()
	rec := b.NewRecordBatch()
	defer rec.Release()
	dir := t.TempDir()
	spec, _ := sinks.NewFile(sinks.FileOptions{Dir: dir, Format: sinks.JSONL, NoSync: true})
	if err := runSubtask(t, spec, task(mem, schema, 0, 1), []arrow.RecordBatch{rec}, true); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "part-00000-00000.jsonl"))
	want := `{"l":[1,2],"st":{"a":"x\"y"}}` + "\n" + `{"l":null,"st":null}` + "\n"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestOverwrite: a rerun with fewer parts and fewer subtasks leaves only its
// own output when Overwrite is set, and the earlier files otherwise.
func TestOverwrite(t *testing.T) {
	for _, overwrite := range []bool{false, true} {
		t.Run(fmt.Sprint(overwrite), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(8, 8))
			writeRows(t, mem, smallParts(dir, sinks.CSV), randomRows(rng, 3000), 3, 1)
			first := listDir(t, dir)
			for _, n := range []string{"keep.txt", "other-00000-00009.csv", ".part-00002-00003.csv.inprogress"} {
				if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			opts := smallParts(dir, sinks.CSV)
			opts.Overwrite = overwrite
			opts.PartSize = 1 << 30
			rows := randomRows(rng, 500)
			spec := writeRows(t, mem, opts, rows, 2, 2)
			got := listDir(t, dir)
			if overwrite {
				want := "keep.txt other-00000-00009.csv part-00000-00000.csv part-00001-00000.csv"
				if strings.Join(got, " ") != want {
					t.Fatalf("dir %v, want %s", got, want)
				}
				var all [][]any
				for _, p := range publishedPaths(spec) {
					all = append(all, readCSVRows(t, p)...)
				}
				compareRows(t, "rerun", all, crlfToLF(rows), cmpOpts{emptyIsNull: true})
			} else if len(got) != len(first)+2 { // + keep.txt, other-...; the stale temp is gone
				t.Fatalf("dir %v after first run %v", got, first)
			}
		})
	}
}
