package sinks_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/sinks"
)

// duckSelect selects the test columns in testCols order, turning timestamps
// into epoch integers and dates into text so values compare exactly.
const duckSelect = `SELECT id, i64, f64, s, b, epoch_ms(ts::TIMESTAMPTZ) AS ts, epoch_us(tsn::TIMESTAMP) AS tsn, d::VARCHAR AS d FROM `

// wantDuckTypes are the types DuckDB detects with default options.
var wantDuckTypes = map[sinks.Format]string{
	sinks.Parquet: "id BIGINT, i64 BIGINT, f64 DOUBLE, s VARCHAR, b BOOLEAN, ts TIMESTAMP WITH TIME ZONE, tsn TIMESTAMP, d DATE",
	sinks.CSV:     "id BIGINT, i64 BIGINT, f64 DOUBLE, s VARCHAR, b BOOLEAN, ts TIMESTAMP WITH TIME ZONE, tsn TIMESTAMP, d DATE",
	// JSON carries no types: this pins what DuckDB infers (it takes
	// timestamps with "Z" for naive ones and reads the others as text).
	sinks.JSONL: "id BIGINT, i64 HUGEINT, f64 DOUBLE, s VARCHAR, b BOOLEAN, ts TIMESTAMP, tsn VARCHAR, d DATE",
}

// TestOracle writes random rows with nulls, hostile strings and timestamps
// through every format (two subtasks, rolling parts) and reads the output
// back with DuckDB, pyarrow and pandas, as a user would.
func TestOracle(t *testing.T) {
	oracle.Python(t)
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV, sinks.JSONL} {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			dir := t.TempDir()
			rows := randomRows(rand.New(rand.NewPCG(11, 12)), 3000)
			opts := smallParts(dir, f)
			opts.PartSize = 64 << 10
			spec := writeRows(t, mem, opts, rows, 2, 13)
			if len(spec.Published()) < 2 {
				t.Fatalf("want several parts, got %d", len(spec.Published()))
			}
			// A stray in-progress file of another writer must be ignored by
			// every reader.
			stray := filepath.Join(dir, ".part-00009-00000."+string(f)+".inprogress")
			if err := os.WriteFile(stray, []byte("garbage, not a complete file\n\x00"), 0o644); err != nil {
				t.Fatal(err)
			}

			g := glob(dir, f.Ext())
			var read string
			switch f {
			case sinks.Parquet:
				read = fmt.Sprintf("read_parquet('%s')", g)
			case sinks.CSV:
				read = fmt.Sprintf("read_csv('%s')", g)
			case sinks.JSONL:
				read = fmt.Sprintf("read_json('%s')", g)
			}

			// DuckDB with default options detects the intended types.
			desc := oracle.DuckDB(t, "DESCRIBE SELECT * FROM "+read)
			var types []string
			for _, r := range desc.Rows {
				types = append(types, fmt.Sprintf("%v %v", r[0], r[1]))
			}
			if got := strings.Join(types, ", "); got != wantDuckTypes[f] {
				t.Errorf("DuckDB types:\ngot  %s\nwant %s", got, wantDuckTypes[f])
			}
			duck := oracle.DuckDB(t, duckSelect+read)
			// By default DuckDB reads a quoted empty CSV field as NULL; told
			// not to, it tells "" from NULL exactly.
			compareRows(t, "duckdb", duck.Rows, rows, cmpOpts{emptyIsNull: f == sinks.CSV})
			if f == sinks.CSV {
				exact := oracle.DuckDB(t, duckSelect+fmt.Sprintf("read_csv('%s', allow_quoted_nulls=false)", g))
				compareRows(t, "duckdb allow_quoted_nulls=false", exact.Rows, rows, cmpOpts{})
			}
			if f == sinks.Parquet {
				c := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT DISTINCT compression FROM parquet_metadata('%s')", g))
				if len(c) != 1 || c[0][0] != "ZSTD" {
					t.Errorf("compression %v, want ZSTD", c)
				}
			}

			// pyarrow reads the directory as a dataset. Its CSV reader turns
			// null strings into "".
			pa := oracle.PyArrowRead(t, dir, oracle.FileFormat(f))
			compareRows(t, "pyarrow dataset", reorder(t, pa), rows, cmpOpts{emptyIsNull: f == sinks.CSV})

			// pandas reads each file with default options; its CSV reader
			// reads "" as missing.
			var pd [][]any
			for _, p := range publishedPaths(spec) {
				pd = append(pd, reorder(t, oracle.PandasRead(t, p, oracle.FileFormat(f)))...)
			}
			o := cmpOpts{}
			switch f {
			case sinks.CSV:
				o = cmpOpts{emptyIsNull: true, floatTol: 1e-15}
			case sinks.JSONL:
				// read_json defaults to precise_float=False, a fast
				// parser that keeps about 15 decimal places.
				o = cmpOpts{floatTol: 1e-12, floatAbs: 1e-14}
			}
			compareRows(t, "pandas", pd, rows, o)
		})
	}
}

// reorder returns tbl's rows with columns in testCols order.
func reorder(t *testing.T, tbl *oracle.Table) [][]any {
	t.Helper()
	idx := make([]int, len(testCols))
	for i, c := range testCols {
		idx[i] = -1
		for j, name := range tbl.Columns {
			if name == c.field.Name {
				idx[i] = j
			}
		}
		if idx[i] < 0 {
			t.Fatalf("column %s missing from %v", c.field.Name, tbl.Columns)
		}
	}
	out := make([][]any, len(tbl.Rows))
	for r, row := range tbl.Rows {
		o := make([]any, len(idx))
		for i, j := range idx {
			o[i] = row[j]
		}
		out[r] = o
	}
	return out
}

// TestOracleCodecs: DuckDB reads Parquet written with every codec.
func TestOracleCodecs(t *testing.T) {
	oracle.Python(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rows := randomRows(rand.New(rand.NewPCG(21, 21)), 500)
	var sel []string
	codecs := []string{"zstd", "snappy", "gzip", "lz4raw", "brotli", "none"}
	for _, c := range codecs {
		dir := t.TempDir()
		opts := sinks.FileOptions{Dir: dir, NoSync: true, Parquet: sinks.ParquetOptions{Codec: c}}
		writeRows(t, mem, opts, rows, 1, 1)
		sel = append(sel, fmt.Sprintf("(SELECT count(*) || '/' || sum(id) || '/' || count(s) FROM read_parquet('%s'))", glob(dir, "parquet")))
	}
	got := oracle.DuckDBStrings(t, "SELECT "+strings.Join(sel, ", "))[0]
	nonNull := 0
	for _, r := range rows {
		if r[3] != nil {
			nonNull++
		}
	}
	want := fmt.Sprintf("%d/%d/%d", len(rows), len(rows)*(len(rows)-1)/2, nonNull)
	for i, g := range got {
		if g != want {
			t.Errorf("%s: %s, want %s", codecs[i], g, want)
		}
	}
}
