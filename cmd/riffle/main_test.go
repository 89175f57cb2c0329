package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpOnEveryCommand(t *testing.T) {
	if code, out, _ := runCLI(t, "help"); code != exitOK || !strings.Contains(out, "backfill") {
		t.Fatalf("help: code %d, out %q", code, out)
	}
	for name := range commands {
		code, _, errOut := runCLI(t, name, "--help")
		if code != exitOK || !strings.Contains(errOut, "Usage: riffle "+name) {
			t.Errorf("%s --help: code %d, stderr %q", name, code, errOut)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	cases := [][]string{
		{"nope"},
		{"gen"},
		{"gen", "--rows", "-5", "x.parquet"},
		{"gen", "--bogus", "x.parquet"},
		{"backfill"},
		{"backfill", "--log-level", "loud", "job.yaml"},
		{"backfill", "does-not-exist.yaml"},
	}
	for _, args := range cases {
		if code, _, errOut := runCLI(t, args...); code != exitUsage {
			t.Errorf("%q: exit code %d, want %d (stderr %q)", args, code, exitUsage, errOut)
		}
	}
}

// TestGenSmall: gen --rows 10 writes exactly 10 rows, as its help says
// any positive count works.
func TestGenSmall(t *testing.T) {
	out := filepath.Join(t.TempDir(), "small.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "10", "--progress", "never", out); code != exitOK {
		t.Fatalf("gen --rows 10: exit %d: %s", code, errOut)
	}
	if n := oracle.DuckDB(t, fmt.Sprintf("SELECT count(*) FROM read_parquet('%s')", out)).Strings()[0][0]; n != "10" {
		t.Fatalf("gen --rows 10 wrote %s rows", n)
	}
}

// TestBackfillCorruptInput: a truncated input file fails the job with an
// error naming the file, exit code 1, and no output file becomes visible.
func TestBackfillCorruptInput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "300000", "--progress", "never", in); code != exitOK {
		t.Fatalf("gen: %d %s", code, errOut)
	}
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the middle of the data pages but keep the footer readable.
	for i := len(data) / 3; i < len(data)/3+4096; i++ {
		data[i] ^= 0x5a
	}
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	job := filepath.Join(dir, "job.yaml")
	os.WriteFile(job, []byte("source:\n  parquet: {path: "+in+"}\nsink:\n  file: {path: "+out+", format: csv}\n"), 0o644)
	code, _, errOut := runCLI(t, "backfill", "--progress", "never", job)
	if code != exitFailure || !strings.Contains(errOut, in) {
		t.Fatalf("exit %d, stderr %q: want exit 1 naming %s", code, errOut, in)
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		t.Errorf("left behind in the output directory: %s", e.Name())
	}
}

// TestQuickstart runs the quickstart end to end (batch, then the same
// job continuously over an embedded broker fed the same events): the batch
// and the stream results must be identical. Its summary counts the events
// scanned and those the filter pushed into the scan kept (DuckDB), it
// serves metrics with --metrics-addr, and its hint shows the SQL. Its
// recommender part exports top-10 lists that hold for every user of the
// events (DuckDB), prints those of the three most active users (DuckDB)
// as riffle recommend answers them from the export's factors, and prints
// an evaluation table that the riffle eval command it prints reproduces.
func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "quickstart", "--dir", dir, "--rows", "30000", "--stream-rows", "30000", "--progress", "never",
		"--metrics-addr", "127.0.0.1:0")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	kept := oracle.DuckDB(t, fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/events.parquet') WHERE event_type IN ('click', 'cart', 'purchase')", dir)).Strings()[0][0]
	for _, want := range []string{
		fmt.Sprintf("batch: 30000 events scanned (%s kept by the filter pushed into the scan)", kept),
		fmt.Sprintf("SELECT * FROM '%s/item-stats/*.parquet'", dir),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "serving Prometheus metrics") {
		t.Errorf("--metrics-addr ignored:\n%s", errOut)
	}
	for _, sub := range []string{"item-stats", "live-item-stats"} {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*.parquet"))
		if len(files) == 0 {
			t.Fatalf("no output files in %s; stdout %q", sub, out)
		}
	}
	q := fmt.Sprintf(`CREATE VIEW b AS SELECT * FROM read_parquet('%[1]s/item-stats/*.parquet');
CREATE VIEW s AS SELECT * FROM read_parquet('%[1]s/live-item-stats/*.parquet');
SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM s),
  (SELECT count(*) FROM (SELECT item_id, events, round(total_weight, 6), last_event FROM b EXCEPT ALL SELECT item_id, events, round(total_weight, 6), last_event FROM s)),
  (SELECT count(*) FROM (SELECT item_id, events, round(total_weight, 6), last_event FROM s EXCEPT ALL SELECT item_id, events, round(total_weight, 6), last_event FROM b))`, dir)
	res := oracle.DuckDB(t, q).Strings()
	if res[0][0] != res[0][1] || res[0][2] != "0" || res[0][3] != "0" || res[0][0] == "0" {
		t.Fatalf("batch rows, stream rows, only in batch, only in stream = %v", res[0])
	}
	checkQuickstartRecs(t, dir, out)
}

// checkQuickstartRecs checks the recommender part of the quickstart's
// output out (run with --dir dir).
func checkQuickstartRecs(t *testing.T, dir, out string) {
	t.Helper()
	events := fmt.Sprintf("read_parquet('%s/events.parquet')", dir)
	checkTopK(t, events, "user_id", "item_id", fmt.Sprintf("read_parquet('%s/recs/v000001/recommendations/*.parquet')", dir), 10)
	// The three users shown: the most active ones, as riffle recommend
	// answers them (it scores the exported factors; the quickstart shows
	// the exported lists).
	_, shown, ok := strings.Cut(out, "The three most active users' recommendations")
	if !ok {
		t.Fatalf("no recommendations shown:\n%s", out)
	}
	shown = shown[strings.Index(shown, "\n")+1:]
	shown = shown[:strings.Index(shown, "\n\n")+1]
	var users []string
	for _, line := range strings.Split(shown, "\n") {
		if u, ok := strings.CutPrefix(line, "user "); ok {
			users = append(users, strings.Fields(u)[0])
		}
	}
	want := oracle.DuckDBStrings(t, "SELECT user_id FROM "+events+" GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 3")
	if fmt.Sprint(users) != fmt.Sprint([]string{want[0][0], want[1][0], want[2][0]}) {
		t.Fatalf("users shown %v, the most active are %v", users, want)
	}
	args := []string{"recommend", "--from", filepath.Join(dir, "recs")}
	for _, u := range users {
		args = append(args, "--user", u)
	}
	code, answered, errOut := runCLI(t, args...)
	if code != exitOK || answered != shown {
		t.Fatalf("riffle recommend: exit %d\n%s\nthe quickstart showed\n%s%s", code, answered, shown, errOut)
	}
	// The evaluation table: riffle eval, run as printed, gives the same
	// rows for the model and popularity.
	_, table, ok := strings.Cut(out, "evaluated against popularity")
	if !ok {
		t.Fatalf("no evaluation table:\n%s", out)
	}
	_, cmd, ok := strings.Cut(table, "(riffle ")
	if !ok {
		t.Fatalf("no riffle eval command:\n%s", table)
	}
	cmd, _, _ = strings.Cut(cmd, "\n")
	var evalArgs []string
	for _, tok := range regexp.MustCompile(`"(?:[^"\\]|\\.)*"|\S+`).FindAllString(cmd, -1) {
		if strings.HasPrefix(tok, `"`) {
			var err error
			if tok, err = strconv.Unquote(tok); err != nil {
				t.Fatal(err)
			}
		}
		evalArgs = append(evalArgs, tok)
	}
	code, evalOut, errOut := runCLI(t, evalArgs...)
	if code != exitOK {
		t.Fatalf("%q: exit %d\n%s", evalArgs, code, errOut)
	}
	evalRows := map[string]bool{}
	for _, line := range strings.Split(evalOut, "\n") {
		evalRows[strings.Join(strings.Fields(line), " ")] = true
	}
	rows := 0
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) == 7 && (f[0] == "ials" || f[0] == "popularity") && f[1] == "10" {
			rows++
			if !evalRows[strings.Join(f, " ")] {
				t.Errorf("riffle eval lacks the quickstart's row %q:\n%s", line, evalOut)
			}
		}
	}
	if rows != 2 {
		t.Fatalf("%d rows for ials and popularity at K=10 in the quickstart's table:\n%s", rows, table)
	}
}

// TestBackfillGolden runs the golden job over the committed fixture at
// several parallelisms; the sorted CSV output must equal
// testdata/item-stats.golden.csv (cross-checked with DuckDB when written).
func TestBackfillGolden(t *testing.T) {
	root, _ := filepath.Abs("../..")
	want, err := os.ReadFile(filepath.Join(root, "testdata", "item-stats.golden.csv"))
	if err != nil {
		t.Fatal(err)
	}
	wantLines := strings.Split(strings.TrimSpace(string(want)), "\n")
	for _, p := range []string{"1", "2", "3"} {
		out := filepath.Join(t.TempDir(), "out")
		t.Chdir(root)
		code, _, errOut := runCLI(t, "backfill", "--progress", "never", "--parallelism", p, "--output", out, "testdata/item-stats.yaml")
		if code != exitOK {
			t.Fatalf("p=%s: exit %d: %s", p, code, errOut)
		}
		files, _ := filepath.Glob(filepath.Join(out, "*.csv"))
		var header string
		var rows []string
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			header = lines[0]
			rows = append(rows, lines[1:]...)
		}
		sortNumeric(rows)
		got := append([]string{header}, rows...)
		if strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
			t.Fatalf("p=%s: output differs from the golden file:\n%s", p, strings.Join(got, "\n"))
		}
	}
}

func sortNumeric(rows []string) {
	key := func(s string) int {
		n, _ := strconv.Atoi(strings.SplitN(s, ",", 2)[0])
		return n
	}
	sort.Slice(rows, func(i, j int) bool { return key(rows[i]) < key(rows[j]) })
}

// TestFlagsAfterJobFile runs the golden backfill with its flags after the
// job file (and a positional after "--"): same output as the golden file.
func TestFlagsAfterJobFile(t *testing.T) {
	root, _ := filepath.Abs("../..")
	want, err := os.ReadFile(filepath.Join(root, "testdata", "item-stats.golden.csv"))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	for _, args := range [][]string{
		{"backfill", "testdata/item-stats.yaml", "--parallelism", "3", "--output", "OUT", "--progress", "never"},
		{"backfill", "--output", "OUT", "testdata/item-stats.yaml", "--progress=never"},
		{"backfill", "--output", "OUT", "--progress", "never", "--", "testdata/item-stats.yaml"},
	} {
		out := filepath.Join(t.TempDir(), "out")
		for i := range args {
			if args[i] == "OUT" {
				args[i] = out
			}
		}
		code, _, errOut := runCLI(t, args...)
		if code != exitOK {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
		files, _ := filepath.Glob(filepath.Join(out, "*.csv"))
		var rows []string
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, strings.Split(strings.TrimSpace(string(data)), "\n")[1:]...)
		}
		sortNumeric(rows)
		wantRows := strings.Split(strings.TrimSpace(string(want)), "\n")[1:]
		if strings.Join(rows, "\n") != strings.Join(wantRows, "\n") {
			t.Errorf("%q: output differs from the golden file", args)
		}
	}
	if code, _, errOut := runCLI(t, "backfill", "--", "testdata/item-stats.yaml", "--parallelism", "3"); code != exitUsage || !strings.Contains(errOut, "have 3 arguments") {
		t.Errorf("after --, flags are positional: exit %d: %s", code, errOut)
	}
}
