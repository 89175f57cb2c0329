package oracle_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

func TestRepoRoot(t *testing.T) {
	root, err := oracle.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot %s has no go.mod: %v", root, err)
	}
}

func TestDuckDBValues(t *testing.T) {
	got := oracle.DuckDB(t, `SELECT 1::BIGINT AS i, 2.5::DOUBLE AS d, 'a,"b"' AS s, NULL AS n, true AS b,
		'nan'::DOUBLE AS nan, TIMESTAMPTZ '2024-01-02 03:04:05.678+00' AS ts, DATE '2024-02-29' AS dt`)
	if len(got.Rows) != 1 || len(got.Columns) != 8 {
		t.Fatalf("got %+v", got)
	}
	r := got.Rows[0]
	if r[0] != int64(1) || r[1] != 2.5 || r[2] != `a,"b"` || r[3] != nil || r[4] != true {
		t.Fatalf("row %#v", r)
	}
	if f, ok := r[5].(float64); !ok || !math.IsNaN(f) {
		t.Fatalf("nan: %#v", r[5])
	}
	if r[6] != "2024-01-02T03:04:05.678000Z" || r[7] != "2024-02-29" {
		t.Fatalf("temporal: %#v %#v", r[6], r[7])
	}
	if s := oracle.DuckDBStrings(t, "SELECT NULL, 3")[0]; s[0] != "NULL" || s[1] != "3" {
		t.Fatalf("strings %v", s)
	}
}

func TestReaders(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.csv")
	if err := os.WriteFile(path, []byte("a,b\n1,\"x\ny\"\n2,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// pyarrow reads an empty CSV string field as "", pandas as missing.
	for name, c := range map[string]struct {
		tbl   *oracle.Table
		empty any
	}{
		"pyarrow": {oracle.PyArrowRead(t, path, oracle.CSV), ""},
		"pandas":  {oracle.PandasRead(t, path, oracle.CSV), nil},
	} {
		r := c.tbl.Rows
		if len(r) != 2 || r[0][0] != int64(1) || r[0][1] != "x\ny" || r[1][1] != c.empty {
			t.Errorf("%s: %+v", name, c.tbl)
		}
	}
	d := oracle.DuckDB(t, "SELECT count(*) FROM read_csv('"+path+"')")
	if d.Rows[0][0] != int64(2) {
		t.Errorf("duckdb count %v", d.Rows)
	}
}

// TestDuckDBSlowQuery: DuckDB draws a progress bar on stdout for a query
// running longer than progress_bar_time (2 s by default: any big query on
// a loaded machine), which used to corrupt the oracle's JSON. The query
// sets the time to 0 so that its bar is due at once; the result must
// still decode: sum of i mod 7 over [0, 2·10^8) = 28571428·21 + 0+1+2+3.
func TestDuckDBSlowQuery(t *testing.T) {
	got := oracle.DuckDBStrings(t, "SET progress_bar_time = 0; SELECT sum(i % 7)::BIGINT FROM range(200000000) t(i)")
	if len(got) != 1 || len(got[0]) != 1 || got[0][0] != "599999994" {
		t.Fatalf("got %v, want [[599999994]]", got)
	}
}
