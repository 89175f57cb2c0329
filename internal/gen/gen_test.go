package gen_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/oracle"
)

func fileHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func write(t *testing.T, path string, o gen.Options) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o.Mem = mem
	if err := gen.WriteFile(context.Background(), path, o, nil); err != nil {
		t.Fatal(err)
	}
}

// TestDeterminism: the same seed gives the same file, byte for byte, whatever
// the parallelism; another seed gives another file.
func TestDeterminism(t *testing.T) {
	dir := t.TempDir()
	base := gen.Options{Rows: 250_000, Seed: 42, RowGroupRows: 40_000}
	var hashes []string
	for _, par := range []int{1, 2, 5} {
		o := base
		o.Parallelism = par
		p := filepath.Join(dir, fmt.Sprintf("p%d.parquet", par))
		write(t, p, o)
		hashes = append(hashes, fileHash(t, p))
	}
	if hashes[0] != hashes[1] || hashes[0] != hashes[2] {
		t.Fatalf("hashes differ across parallelism: %v", hashes)
	}
	o := base
	o.Seed = 43
	p := filepath.Join(dir, "other.parquet")
	write(t, p, o)
	if fileHash(t, p) == hashes[0] {
		t.Fatal("seed 43 wrote the same file as seed 42")
	}
}

// TestRowCounts checks rows and row groups in the file, and the progress
// callback.
func TestRowCounts(t *testing.T) {
	for _, c := range []struct {
		rows int64
		rg   int
	}{{1, 1000}, {1000, 1000}, {12_345, 1000}, {100_000, 1 << 20}} {
		t.Run(fmt.Sprint(c.rows), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "e.parquet")
			var seen []int64
			err := gen.WriteFile(context.Background(), path, gen.Options{Rows: c.rows, RowGroupRows: c.rg}, func(r int64) {
				seen = append(seen, r)
			})
			if err != nil {
				t.Fatal(err)
			}
			r, err := file.OpenParquetFile(path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			wantRG := int((c.rows + int64(c.rg) - 1) / int64(c.rg))
			if r.NumRows() != c.rows || r.NumRowGroups() != wantRG {
				t.Fatalf("rows %d row groups %d, want %d and %d", r.NumRows(), r.NumRowGroups(), c.rows, wantRG)
			}
			if len(seen) != wantRG || seen[len(seen)-1] != c.rows || !sort.SliceIsSorted(seen, func(i, j int) bool { return seen[i] < seen[j] }) {
				t.Fatalf("progress %v", seen)
			}
			if names := dirNames(t, filepath.Dir(path)); strings.Join(names, ",") != "e.parquet" {
				t.Fatalf("dir holds %v", names)
			}
		})
	}
}

func dirNames(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return n
}

// TestCancel: a cancelled WriteFile leaves neither the file nor a temporary.
func TestCancel(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	err := gen.WriteFile(ctx, filepath.Join(dir, "e.parquet"), gen.Options{Rows: 200_000, RowGroupRows: 10_000, Mem: mem}, func(r int64) {
		if r >= 50_000 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "gen: ") {
		t.Fatalf("err = %v", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("left %v", names)
	}
}

// sample is the generated data in Go slices, read back from a file.
type sample struct {
	users, items []int64
	types        []string
	weights      []float64
	times        []int64 // ms
}

func readFile(t *testing.T, path string) sample {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, nil, pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	for i, fld := range gen.Schema.Fields() {
		got := tbl.Schema().Field(i)
		if got.Name != fld.Name || !arrow.TypeEqual(got.Type, fld.Type) {
			t.Fatalf("column %d: %s %s, want %s %s", i, got.Name, got.Type, fld.Name, fld.Type)
		}
	}
	var s sample
	tr := array.NewTableReader(tbl, 1<<20)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		s.users = append(s.users, rec.Column(0).(*array.Int64).Int64Values()...)
		s.items = append(s.items, rec.Column(1).(*array.Int64).Int64Values()...)
		et := rec.Column(2).(*array.String)
		for i := 0; i < et.Len(); i++ {
			s.types = append(s.types, et.Value(i))
		}
		s.weights = append(s.weights, rec.Column(3).(*array.Float64).Float64Values()...)
		for _, v := range rec.Column(4).(*array.Timestamp).TimestampValues() {
			s.times = append(s.times, int64(v))
		}
		for c := 0; c < 5; c++ {
			if rec.Column(c).NullN() != 0 {
				t.Fatalf("column %d has nulls", c)
			}
		}
	}
	return s
}

// zipfSlope fits log(count) = a - s*log(rank) over the ranks 1..k of the
// counts of ids, counted independently of the generator.
func zipfSlope(ids []int64, k int) (s float64, top []int) {
	counts := map[int64]int{}
	for _, id := range ids {
		counts[id]++
	}
	cs := make([]int, 0, len(counts))
	for _, c := range counts {
		cs = append(cs, c)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(cs)))
	var sx, sy, sxx, sxy float64
	for r := 1; r <= k; r++ {
		x, y := math.Log(float64(r)), math.Log(float64(cs[r-1]))
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(k)
	return -(n*sxy - sx*sy) / (n*sxx - sx*sx), cs[:k]
}

// TestDistributions checks the generated file against independent counting.
func TestDistributions(t *testing.T) {
	o := gen.Options{Rows: 600_000, Users: 50_000, Items: 5_000, Seed: 7, RowGroupRows: 100_000,
		Disorder: 30 * time.Second, Span: 3 * 24 * time.Hour, ZipfS: 1.2, UserZipfS: 0.9}
	path := filepath.Join(t.TempDir(), "e.parquet")
	write(t, path, o)
	s := readFile(t, path)
	if int64(len(s.users)) != o.Rows {
		t.Fatalf("%d rows", len(s.users))
	}

	for i := range s.users {
		if s.users[i] < 0 || s.users[i] >= o.Users || s.items[i] < 0 || s.items[i] >= o.Items {
			t.Fatalf("row %d: user %d item %d out of range", i, s.users[i], s.items[i])
		}
	}

	// Zipf: the log-log slope of the top ranks is the exponent.
	for _, c := range []struct {
		name string
		ids  []int64
		s    float64
	}{{"items", s.items, o.ZipfS}, {"users", s.users, o.UserZipfS}} {
		slope, top := zipfSlope(c.ids, 50)
		if math.Abs(slope-c.s) > 0.1 {
			t.Errorf("%s: Zipf slope %.3f, want %.2f ± 0.1 (top counts %v)", c.name, slope, c.s, top[:5])
		}
		if ratio, want := float64(top[0])/float64(top[9]), math.Pow(10, c.s); math.Abs(ratio/want-1) > 0.2 {
			t.Errorf("%s: count(rank 1)/count(rank 10) = %.2f, want %.2f ± 20%%", c.name, ratio, want)
		}
		t.Logf("%s: slope %.3f (s=%.2f), top/10th %.2f", c.name, slope, c.s, float64(top[0])/float64(top[9]))
	}
	// The most popular item is not simply id 0.
	if slope, _ := zipfSlope(s.items, 2); slope == 0 {
		t.Error("degenerate item counts")
	}

	// Event types: all present, in proportion, weights derived from them.
	counts := map[string]int{}
	for i, et := range s.types {
		counts[et]++
		k := -1
		for j, name := range gen.EventTypes {
			if name == et {
				k = j
			}
		}
		if k < 0 {
			t.Fatalf("row %d: event_type %q", i, et)
		}
		if s.weights[i] != gen.DefaultWeights[k] {
			t.Fatalf("row %d: %s weight %v, want %v", i, et, s.weights[i], gen.DefaultWeights[k])
		}
	}
	for k, name := range gen.EventTypes {
		got := float64(counts[name]) / float64(o.Rows)
		if math.Abs(got-gen.DefaultEventMix[k]) > 0.005 {
			t.Errorf("%s: share %.4f, want %.4f", name, got, gen.DefaultEventMix[k])
		}
	}

	// Disorder: no event is later than the bound behind the maximum seen so
	// far, and the bound is approached.
	bound := o.Disorder.Milliseconds()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxSeen, maxLate, late := int64(math.MinInt64), int64(0), 0
	for i, ts := range s.times {
		if ts < start-bound || ts >= start+o.Span.Milliseconds() {
			t.Fatalf("row %d: time %v outside the span", i, time.UnixMilli(ts).UTC())
		}
		if ts > maxSeen {
			maxSeen = ts
		}
		if l := maxSeen - ts; l > 0 {
			late++
			maxLate = max(maxLate, l)
			if l > bound {
				t.Fatalf("row %d is %dms late, bound %dms", i, l, bound)
			}
		}
	}
	if maxLate < bound/2 || late < len(s.times)/10 {
		t.Errorf("little disorder: max lateness %dms, %d late rows", maxLate, late)
	}
	t.Logf("disorder: max lateness %dms of %dms, %d of %d rows late", maxLate, bound, late, len(s.times))

	// Daily cycle: the peak hour has well over the trough's events.
	var byHour [24]int
	for _, ts := range s.times {
		byHour[time.UnixMilli(ts).UTC().Hour()]++
	}
	if byHour[20] < 2*byHour[8] {
		t.Errorf("no daily cycle: %v", byHour)
	}
}

// TestNoDisorder: with NoDisorder event times never decrease.
func TestNoDisorder(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	g, err := gen.New(gen.Options{Rows: 300_000, Disorder: gen.NoDisorder, RowGroupRows: 70_000, Span: time.Hour, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	last := int64(math.MinInt64)
	rows := int64(0)
	err = g.Generate(context.Background(), func(rec arrow.RecordBatch) error {
		if !rec.Schema().Equal(gen.Schema) {
			return fmt.Errorf("schema %v", rec.Schema())
		}
		for _, v := range rec.Column(4).(*array.Timestamp).TimestampValues() {
			if int64(v) < last {
				return fmt.Errorf("row %d: time went back", rows)
			}
			last = int64(v)
			rows++
		}
		return nil
	}, nil)
	if err != nil || rows != 300_000 {
		t.Fatalf("err %v rows %d", err, rows)
	}
}

func TestOptions(t *testing.T) {
	g, err := gen.New(gen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := g.Options()
	if o.Rows != gen.DefaultRows || o.Disorder != gen.DefaultDisorder || o.ZipfS != gen.DefaultZipfS || o.RowGroupRows != 1<<20 || o.Parallelism < 1 {
		t.Fatalf("defaults %+v", o)
	}
	for _, bad := range []gen.Options{
		{Rows: -1}, {Users: -5}, {Span: -time.Second}, {Disorder: -2}, {ZipfS: -1}, {Diurnal: 1},
		{EventMix: [4]float64{-1, 1, 1, 1}}, {RowGroupRows: -1}, {Parallelism: -1},
	} {
		if _, err := gen.New(bad); err == nil || !strings.HasPrefix(err.Error(), "gen: ") {
			t.Errorf("New(%+v) = %v", bad, err)
		}
	}
}

// TestOracle: DuckDB and pyarrow read the file as-is with the intended types
// and count what Go counts.
func TestOracle(t *testing.T) {
	oracle.Python(t)
	path := filepath.Join(t.TempDir(), "e.parquet")
	write(t, path, gen.Options{Rows: 100_000, RowGroupRows: 30_000, Seed: 3})
	s := readFile(t, path)
	counts := map[string]int64{}
	for _, et := range s.types {
		counts[et]++
	}
	d := oracle.DuckDB(t, fmt.Sprintf("SELECT event_type, count(*), sum(weight), min(epoch_ms(event_time)) FROM read_parquet('%s') GROUP BY 1 ORDER BY 1", path))
	for _, r := range d.Rows {
		if r[1] != counts[r[0].(string)] {
			t.Errorf("duckdb %v: count %v, Go %d", r[0], r[1], counts[r[0].(string)])
		}
	}
	if len(d.Rows) != 4 {
		t.Errorf("duckdb event types %v", d.Rows)
	}
	desc := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT column_name || ' ' || column_type FROM (DESCRIBE SELECT * FROM read_parquet('%s'))", path))
	var got []string
	for _, r := range desc {
		got = append(got, r[0])
	}
	if want := "user_id BIGINT, item_id BIGINT, event_type VARCHAR, weight DOUBLE, event_time TIMESTAMP WITH TIME ZONE"; strings.Join(got, ", ") != want {
		t.Errorf("duckdb types %v, want %s", got, want)
	}
	pa := oracle.PyArrowRead(t, path, oracle.Parquet)
	if strings.Join(pa.Types, ",") != "int64,int64,string,double,timestamp[ms, tz=UTC]" || len(pa.Rows) != 100_000 {
		t.Errorf("pyarrow types %v rows %d", pa.Types, len(pa.Rows))
	}
}

// TestLarge writes 50M rows (RIFFLE_GEN_LARGE=1 only: about 20 s and 600 MB)
// and checks the file with parquet metadata and, when available, DuckDB.
func TestLarge(t *testing.T) {
	if os.Getenv("RIFFLE_GEN_LARGE") != "1" {
		t.Skip("set RIFFLE_GEN_LARGE=1 to write 50M rows")
	}
	const rows = 50_000_000
	path := filepath.Join(t.TempDir(), "e.parquet")
	start := time.Now()
	if err := gen.WriteFile(context.Background(), path, gen.Options{Rows: rows, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	st, _ := os.Stat(path)
	t.Logf("50M rows in %v (%.1fM rows/s), %.0f MB", el, rows/el.Seconds()/1e6, float64(st.Size())/1e6)
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.NumRows() != rows || r.NumRowGroups() != (rows+(1<<20)-1)/(1<<20) {
		t.Fatalf("rows %d row groups %d", r.NumRows(), r.NumRowGroups())
	}
	r.Close()
	if _, err := oracle.Available(); err == nil {
		q := time.Now()
		d := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT count(*), count(DISTINCT event_type), min(event_time)::VARCHAR, max(event_time)::VARCHAR FROM read_parquet('%s')", path))
		t.Logf("duckdb %v in %v", d, time.Since(q))
		if d[0][0] != fmt.Sprint(rows) || d[0][1] != "4" {
			t.Fatalf("duckdb %v", d)
		}
	}
}
