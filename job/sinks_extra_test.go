package job_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestCSVSinkOptionsReadByDuckDB writes random rows with NULLs, empty
// strings, strings holding the delimiter, the quote, line breaks and the
// null text, through CSV sinks with several options, and reads them back
// with DuckDB's read_csv given the same options: equal to the input, NULL
// and empty string apart.
func TestCSVSinkOptionsReadByDuckDB(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "in.parquet")
	oracle.DuckDB(t, fmt.Sprintf(`SELECT setseed(0.5);
COPY (SELECT i AS id,
  CASE WHEN random() < 0.2 THEN NULL ELSE ['', 'a', 'a;b', 'a,b', 'it''s', 'say "hi"', 'NULL', 'x'||chr(10)||'y', '|', ' sp '][(random() * 9)::INTEGER + 1] END AS s,
  CASE WHEN random() < 0.2 THEN NULL ELSE (random() * 100)::INTEGER - 50 END AS n,
  CASE WHEN random() < 0.2 THEN NULL ELSE round(random() * 10, 2) END AS f,
  CASE WHEN random() < 0.2 THEN NULL ELSE TIMESTAMP '2026-01-01' + INTERVAL (i) SECOND END AS ts
FROM range(500) t(i)) TO '%s' (FORMAT parquet)`, input))
	want := canon(nullApart(oracle.DuckDB(t, fmt.Sprintf("SELECT * FROM read_parquet('%s')", input))))
	for _, c := range []struct {
		name, csv, read string
	}{
		{"default", ``, `header = true, allow_quoted_nulls = false`},
		{"semicolon-single-quote-NULL", `
    csv: {delimiter: ";", quote: "'", nullstr: "NULL"}`, `delim = ';', quote = '''', escape = '''', nullstr = 'NULL', header = true, allow_quoted_nulls = false`},
		{"tab-no-header", `
    csv: {delimiter: "\t", header: false, nullstr: "\\N"}`, `delim = '\t', quote = '"', escape = '"', nullstr = '\N', header = false, allow_quoted_nulls = false`},
		{"pipe", `
    csv: {delimiter: "|"}`, `delim = '|', header = true, allow_quoted_nulls = false`},
	} {
		for _, p := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/p=%d", c.name, p), func(t *testing.T) {
				out := filepath.Join(dir, fmt.Sprintf("%s-%d", c.name, p))
				yml := fmt.Sprintf("source:\n  parquet:\n    path: %s\n    batch_size: 37\nsink:\n  file:\n    path: %s\n    format: csv%s\n", input, out, c.csv)
				runJob(t, yml, p)
				got := canon(nullApart(oracle.DuckDB(t, fmt.Sprintf(`SELECT * FROM read_csv('%s/*.csv', %s,
  columns = {'id': 'BIGINT', 's': 'VARCHAR', 'n': 'INTEGER', 'f': 'DOUBLE', 'ts': 'TIMESTAMP'})`, out, c.read))))
				if len(got) != len(want) {
					t.Fatalf("%d rows, want %d", len(got), len(want))
				}
				for i := range want {
					if !rowsClose(got[i], want[i]) {
						t.Fatalf("row %d:\n got %q\nwant %q", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// nullApart renders t's rows like Table.Strings, but a NULL as "<NULL>"
// so that it differs from the string "NULL".
func nullApart(t *oracle.Table) [][]string {
	out := t.Strings()
	for i, r := range t.Rows {
		for j, v := range r {
			if v == nil {
				out[i][j] = "<NULL>"
			}
		}
	}
	return out
}
