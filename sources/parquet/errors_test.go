package parquet

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/riffle-dev/riffle/arrowexec"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/")

// errorCase builds a bad input under dir and returns the error reading it
// produces (nil if none).
type errorCase struct {
	name string
	run  func(t *testing.T, dir string, mem memory.Allocator) error
}

// goodFile writes a small valid file with two row groups.
func goodFile(t *testing.T, path string) {
	mem := memory.NewGoAllocator()
	rng := rand.New(rand.NewPCG(21, 22))
	a, b := pruneRecord(rng, mem, 300), pruneRecord(rng, mem, 300)
	defer a.Release()
	defer b.Release()
	writeFile(t, path, pruneSchema, []arrow.RecordBatch{a, b})
}

// chunkRange returns the byte range of a column chunk in a file.
func chunkRange(t *testing.T, path string, rg int, col string) (off, size int64) {
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	md := r.MetaData()
	cc, err := md.RowGroup(rg).ColumnChunk(md.Schema.ColumnIndexByName(col))
	if err != nil {
		t.Fatal(err)
	}
	off = cc.DataPageOffset()
	if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 {
		off = min(off, cc.DictionaryPageOffset())
	}
	return off, cc.TotalCompressedSize()
}

// patch overwrites bytes of a file.
func patch(t *testing.T, path string, off int64, b []byte) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func ff(n int) []byte { return []byte(strings.Repeat("\xff", n)) }

// readErr opens a source over paths and reads it to the end with one
// subtask, returning the first error.
func readErr(paths []string, dec string, mem memory.Allocator) error {
	src, err := New(Options{Paths: paths, Decoder: dec, BatchSize: 128})
	if err != nil {
		return err
	}
	r, err := src.Open(context.Background(), &arrowexec.Task{Parallelism: 1, Mem: mem})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		b, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		b.Release()
	}
}

func newErr(opts Options) error {
	_, err := New(opts)
	return err
}

var errorCases = []errorCase{
	{"missing file", func(t *testing.T, dir string, _ memory.Allocator) error {
		return newErr(Options{Paths: []string{filepath.Join(dir, "missing.parquet")}})
	}},
	{"glob without matches", func(t *testing.T, dir string, _ memory.Allocator) error {
		return newErr(Options{Paths: []string{filepath.Join(dir, "nothing-*.parquet")}})
	}},
	{"directory without parquet files", func(t *testing.T, dir string, _ memory.Allocator) error {
		os.WriteFile(filepath.Join(dir, "_SUCCESS"), nil, 0o644)
		os.WriteFile(filepath.Join(dir, ".hidden.parquet"), nil, 0o644)
		return newErr(Options{Paths: []string{dir}})
	}},
	{"not a parquet file", func(t *testing.T, dir string, _ memory.Allocator) error {
		p := filepath.Join(dir, "text.parquet")
		os.WriteFile(p, []byte("id,name\n1,alpha\n2,beta\n"), 0o644)
		return newErr(Options{Paths: []string{p}})
	}},
	{"empty file", func(t *testing.T, dir string, _ memory.Allocator) error {
		p := filepath.Join(dir, "empty.parquet")
		os.WriteFile(p, nil, 0o644)
		return newErr(Options{Paths: []string{p}})
	}},
	{"truncated file (cut in half)", func(t *testing.T, dir string, _ memory.Allocator) error {
		p := filepath.Join(dir, "half.parquet")
		goodFile(t, p)
		st, _ := os.Stat(p)
		os.Truncate(p, st.Size()/2)
		return newErr(Options{Paths: []string{p}})
	}},
	{"corrupt footer", func(t *testing.T, dir string, _ memory.Allocator) error {
		p := filepath.Join(dir, "footer.parquet")
		goodFile(t, p)
		st, _ := os.Stat(p)
		patch(t, p, st.Size()-8-40, ff(16))
		return newErr(Options{Paths: []string{p}})
	}},
	{"column chunks cut out, footer intact", func(t *testing.T, dir string, _ memory.Allocator) error {
		p := filepath.Join(dir, "cut.parquet")
		goodFile(t, p)
		b, _ := os.ReadFile(p)
		footer := int64(b[len(b)-8]) | int64(b[len(b)-7])<<8 | int64(b[len(b)-6])<<16 | int64(b[len(b)-5])<<24
		cut := append(append([]byte{}, b[:len(b)/4]...), b[int64(len(b))-8-footer:]...)
		os.WriteFile(p, cut, 0o644)
		return newErr(Options{Paths: []string{p}})
	}},
	{"schemas differ", func(t *testing.T, dir string, _ memory.Allocator) error {
		goodFile(t, filepath.Join(dir, "a.parquet"))
		mem := memory.NewGoAllocator()
		sc := arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
		r := randomRecord(rand.New(rand.NewPCG(1, 1)), mem, sc, 0, 10, 0)
		defer r.Release()
		writeFile(t, filepath.Join(dir, "b.parquet"), sc, []arrow.RecordBatch{r})
		return newErr(Options{Paths: []string{dir}})
	}},
	{"projected column missing", func(t *testing.T, dir string, _ memory.Allocator) error {
		p := filepath.Join(dir, "good.parquet")
		goodFile(t, p)
		return newErr(Options{Paths: []string{p}, Columns: []string{"k", "nope"}})
	}},
	{"predicate column missing", func(t *testing.T, dir string, _ memory.Allocator) error {
		p := filepath.Join(dir, "good.parquet")
		goodFile(t, p)
		return newErr(Options{Paths: []string{p}, Predicates: []Predicate{{"nope", "=", int64(1)}}})
	}},
	{"predicate value of the wrong type", func(t *testing.T, dir string, _ memory.Allocator) error {
		p := filepath.Join(dir, "good.parquet")
		goodFile(t, p)
		return newErr(Options{Paths: []string{p}, Predicates: []Predicate{{"ts", ">", "yesterday"}}})
	}},
	{"predicate operator unknown", func(t *testing.T, dir string, _ memory.Allocator) error {
		return newErr(Options{Paths: []string{dir}, Predicates: []Predicate{{"k", "!=", int64(1)}}})
	}},
	{"unknown decoder", func(t *testing.T, dir string, _ memory.Allocator) error {
		return newErr(Options{Paths: []string{dir}, Decoder: "duckdb"})
	}},
}

// Page corruption is found while reading, so these run with both decoders.
var pageCases = []errorCase{
	{"page header overwritten", func(t *testing.T, dir string, _ memory.Allocator) error {
		p := filepath.Join(dir, "header.parquet")
		goodFile(t, p)
		off, _ := chunkRange(t, p, 1, "f")
		patch(t, p, off, ff(16))
		return nil
	}},
	{"bytes flipped inside a compressed page", func(t *testing.T, dir string, _ memory.Allocator) error {
		p := filepath.Join(dir, "page.parquet")
		goodFile(t, p)
		off, size := chunkRange(t, p, 1, "f")
		patch(t, p, off+size-24, ff(8))
		return nil
	}},
	{"dictionary page corrupted", func(t *testing.T, dir string, _ memory.Allocator) error {
		p := filepath.Join(dir, "dict.parquet")
		goodFile(t, p)
		off, _ := chunkRange(t, p, 0, "s")
		patch(t, p, off+20, ff(12))
		return nil
	}},
}

func TestErrorsGolden(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var out strings.Builder
	record := func(name string, dir string, err error) {
		msg := "<no error>"
		if err != nil {
			msg = strings.ReplaceAll(err.Error(), dir, "$DIR")
			if !strings.HasPrefix(err.Error(), "parquet: ") {
				t.Errorf("%s: error without parquet: prefix: %v", name, err)
			}
		}
		fmt.Fprintf(&out, "## %s\n%s\n\n", name, msg)
	}
	for _, c := range errorCases {
		dir := t.TempDir()
		record(c.name, dir, c.run(t, dir, mem))
	}
	for _, c := range pageCases {
		for _, dec := range []string{DecoderArrow, DecoderParquetGo} {
			dir := t.TempDir()
			c.run(t, dir, mem)
			err := readErr([]string{dir}, dec, mem)
			if err != nil && !IsCorruption(err) {
				t.Errorf("%s (%s): not classified as corruption: %v", c.name, dec, err)
			}
			record(c.name+" ("+dec+")", dir, err)
		}
	}
	golden := filepath.Join("testdata", "errors.golden")
	if *rewrite {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -rewrite to create it)", err)
	}
	if got := out.String(); got != string(want) {
		t.Errorf("errors differ from %s (run with -rewrite to accept):\n%s", golden, diffLines(string(want), got))
	}
}

// diffLines is a minimal line diff for golden failures.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// TestRandomCorruption flips random bytes of a valid file and reads it with
// both decoders: any outcome but a panic or a leak is fine, and errors must
// name the file.
func TestRandomCorruption(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.bin")
	goodFile(t, good)
	orig, _ := os.ReadFile(good)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RIFFLE_CORRUPTION_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RIFFLE_CORRUPTION_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with RIFFLE_CORRUPTION_SEED=%d)", seed, seed) // shown on failure
	rng := rand.New(rand.NewPCG(seed, 7))
	p := filepath.Join(dir, "x.parquet")
	for i := 0; i < 100; i++ {
		b := append([]byte{}, orig...)
		at := rng.IntN(len(b) - 8) // keep the trailing magic
		for j := 0; j < 1+rng.IntN(4); j++ {
			if at+j < len(b)-8 {
				b[at+j] ^= byte(1 + rng.IntN(255))
			}
		}
		os.WriteFile(p, b, 0o644)
		for _, dec := range []string{DecoderArrow, DecoderParquetGo} {
			err := readErr([]string{p}, dec, mem)
			if err != nil && !strings.HasPrefix(err.Error(), "parquet: file "+p) {
				t.Fatalf("flip at %d (%s): error does not name the file: %v", at, dec, err)
			}
		}
	}
}

func TestUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "locked.parquet")
	goodFile(t, p)
	os.Chmod(p, 0)
	err := newErr(Options{Paths: []string{p}})
	want := "parquet: file " + p + ": permission denied"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}
