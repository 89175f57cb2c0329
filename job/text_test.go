package job_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
)

// writeEventsCSV writes n random events (header user_id, item_id,
// event_type, weight, event_time; some weights empty) to path.
func writeEventsCSV(t *testing.T, path string, n int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	b.WriteString("event_time,user_id,item_id,event_type,weight\r\n")
	kinds := []string{"view", "click", "cart", `"purchase"`, `"with, comma"`}
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		w := ""
		if rng.IntN(10) > 0 {
			w = strconv.FormatFloat(float64(rng.IntN(400))/8, 'g', -1, 64)
		}
		ts := t0.Add(time.Duration(rng.Int64N(int64(3 * time.Hour)))).Format("2006-01-02T15:04:05.000Z")
		fmt.Fprintf(&b, "%s,%d,%d,%s,%s\r\n", ts, rng.IntN(300), rng.IntN(80), kinds[rng.IntN(len(kinds))], w)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

const csvColumns = `    header: true
    split_size: 8KiB
    columns:
      - {name: user_id, type: int64, required: true}
      - {name: item_id, type: int64}
      - {name: event_type, type: string}
      - {name: weight, type: float64}
      - {name: event_time, type: timestamp}
`

const duckEvents = `CREATE VIEW input AS SELECT * FROM read_csv('%s', header = true, auto_detect = false, allow_quoted_nulls = false,
	columns = {'event_time': 'TIMESTAMPTZ', 'user_id': 'BIGINT', 'item_id': 'BIGINT', 'event_type': 'VARCHAR', 'weight': 'DOUBLE'}); `

// TestBackfillCSVMatchesDuckDB plans and runs jobs over a CSV source (many
// splits, parallelism 1 and 3) and compares their output with DuckDB's
// answer over read_csv of the same file.
func TestBackfillCSVMatchesDuckDB(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "events.csv")
	writeEventsCSV(t, input, 20000, 1)
	for _, c := range e2eCases {
		want := canon(oracle.DuckDB(t, fmt.Sprintf(duckEvents, input)+c.sql).Strings())
		for _, p := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/p=%d", c.name, p), func(t *testing.T) {
				out := filepath.Join(dir, fmt.Sprintf("%s-%d", c.name, p))
				yml := fmt.Sprintf("name: %s\nsource:\n  csv:\n    path: %s\n%ssteps:%s\nsink:\n  file:\n    path: %s\n    format: parquet\n", c.name, input, csvColumns, c.steps, out)
				runAndCompare(t, yml, p, out, want)
			})
		}
	}
	// A tumbling window over the event time, with a watermark.
	out := filepath.Join(dir, "window")
	yml := fmt.Sprintf(`name: w
source:
  csv:
    path: %s
%s  watermark: {column: event_time, max_out_of_orderness: 5s}
steps:
  - window:
      type: tumbling
      size: 10m
      key: [item_id]
      time: event_time
      aggs: ["count(*) AS views", "sum(weight) AS total", "max(event_time) AS last"]
sink:
  file: {path: %s, format: parquet}
`, input, csvColumns, out)
	runJob(t, yml, 2)
	got := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT item_id, epoch_ms(window_start), views, total, epoch_ms(last) FROM read_parquet('%s/*.parquet')`, out)).Strings())
	want := canon(oracle.DuckDB(t, fmt.Sprintf(duckEvents, input)+`SELECT item_id, epoch_ms(event_time) // 600000 * 600000, count(*), sum(weight), epoch_ms(max(event_time)) FROM input GROUP BY ALL`).Strings())
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("window: %d rows, DuckDB %d", len(got), len(want))
	}
	for i := range want {
		if !rowsClose(got[i], want[i]) {
			t.Fatalf("window row %d:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
}

// TestCSVSourceErrors: bad options name the YAML line of the source; a bad
// row fails the job naming the file and line.
func TestCSVSourceErrors(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "in.csv")
	os.WriteFile(input, []byte("a,b\n1,2\n3,x\n"), 0o644)
	base := "name: e\nsource:\n  csv:\n    path: " + input + "\n    header: true\n%s\nsink:\n  file: {path: " + filepath.Join(dir, "out") + "}\n"
	for _, c := range []struct{ cols, want string }{
		{"    columns: [{name: a, type: int64}, {name: b, type: decimal}]", `e.yaml:3: csv: invalid options: column "b": unknown type "decimal"`},
		{"    columns: [{name: a, type: int64}, {name: c, type: int64}]", `e.yaml:3: csv: file ` + input + `: line 1: column "c": not in the header (have a, b)`},
		{"    delimiter: ab\n    columns: [{name: a, type: int64}]", `e.yaml:3: csv: delimiter "ab": want one character`},
		{"    colums: [{name: a, type: int64}]", `e.yaml:6: unknown key "colums"; did you mean "columns"? (keys here: path, paths, header, delimiter, columns, batch_size, split_size, on_error, dead_letter_path)`},
	} {
		spec, err := job.Parse("e.yaml", []byte(fmt.Sprintf(base, c.cols)))
		if err == nil {
			_, err = spec.Plan(job.Options{})
		}
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %s", c.cols, err, c.want)
		}
	}
	spec, err := job.Parse("e.yaml", []byte(fmt.Sprintf(base, "    columns: [{name: a, type: int64}, {name: b, type: int64}]")))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := spec.Plan(job.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	j, err := plan.Graph.Compile(arrowexec.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = j.Run(context.Background())
	if want := "csv: file " + input + `: line 3: column "b": cannot convert string "x" to int64`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("run: %v, want %s", err, want)
	}
}
