package job_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// partitionInput writes n rows of random values with NULLs (DuckDB, seeded)
// to a Parquet file: strings that need escaping in directory names,
// integers, dates, booleans, doubles.
func partitionInput(t *testing.T, path string, n int, seed float64) {
	t.Helper()
	oracle.DuckDB(t, fmt.Sprintf(`SELECT setseed(%g);
COPY (SELECT i AS id,
  CASE WHEN random() < 0.1 THEN NULL ELSE ['a', 'a/b', 'x=y', '50%%', '', 'sp ace', 'ünï', '..', '_u', 'it''s'][(random() * 9)::INTEGER + 1] END AS k,
  CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 4)::INTEGER - 2 END AS n,
  CASE WHEN random() < 0.1 THEN NULL ELSE DATE '2026-01-01' + (random() * 3)::INTEGER END AS d,
  CASE WHEN random() < 0.1 THEN NULL ELSE random() < 0.5 END AS b,
  round(random() * 100, 3) AS v
FROM range(%d) t(i)) TO '%s' (FORMAT parquet)`, seed, n, path))
}

// TestPartitionedAndSingleFileSinks runs a backfill with four sinks (a
// partitioned Parquet main sink, a partitioned CSV sink, a single JSONL
// file and a single Parquet file) at parallelism 3, and reads every
// output back with DuckDB (hive_partitioning for the directories): the
// same rows as DuckDB's over the input. A second run over other input
// replaces the main output whole, also partitions it no longer has.
func TestPartitionedAndSingleFileSinks(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	sel := "SELECT id, k, n::VARCHAR, d::VARCHAR, b::VARCHAR, v FROM "
	for run, rows := range []int{3000, 500} {
		in := filepath.Join(dir, fmt.Sprintf("in%d.parquet", run))
		partitionInput(t, in, rows, 0.25*float64(run+1))
		if run == 1 {
			// Fewer partitions: no k = 'a' rows at all.
			oracle.DuckDB(t, fmt.Sprintf("COPY (SELECT * FROM read_parquet('%s') WHERE k IS DISTINCT FROM 'a') TO '%s' (FORMAT parquet)", in, in+".2"))
			in += ".2"
		}
		out := filepath.Join(dir, "out")
		yml := fmt.Sprintf(`source:
  parquet: {path: %s, batch_size: 100}
sinks:
  - file:
      path: %s/parts
      partition_by: [k, d]
      part_size: 4KiB
      max_open_partitions: 4
  - file:
      path: %s/csv
      format: csv
      partition_by: [b, n]
  - file: {path: %s/all.jsonl, format: jsonl, single_file: true}
  - file: {path: %s/all.parquet, single_file: true}
`, in, out, out, out, out)
		runJob(t, yml, 3)
		want := oracle.DuckDB(t, sel+fmt.Sprintf("read_parquet('%s') ORDER BY id", in)).Strings()
		for _, r := range []string{
			fmt.Sprintf("read_parquet('%s/parts/**/*.parquet', hive_partitioning=true)", out),
			fmt.Sprintf("read_csv('%s/csv/**/*.csv', hive_partitioning=true, header=true, delim=',', quote='\"', escape='\"', allow_quoted_nulls=false, types={'id': 'BIGINT', 'k': 'VARCHAR', 'd': 'DATE', 'v': 'DOUBLE'})", out),
			fmt.Sprintf("read_json('%s/all.jsonl')", out),
			fmt.Sprintf("read_parquet('%s/all.parquet')", out),
		} {
			got := oracle.DuckDB(t, "SET enable_progress_bar=false; "+sel+r+" ORDER BY id").Strings()
			if len(got) != len(want) {
				t.Fatalf("run %d: %s: %d rows, want %d", run, r, len(got), len(want))
			}
			for i := range want {
				if !rowsClose(got[i], want[i]) {
					t.Fatalf("run %d: %s: row %d:\n got %q\nwant %q", run, r, i, got[i], want[i])
				}
			}
		}
		// The single files are all there is of them: no part, nothing
		// staged; the partition directories hold no partition column.
		ents, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if want := []string{"all.jsonl", "all.parquet", "csv", "parts"}; !slices.Equal(names, want) {
			t.Fatalf("run %d: %s holds %q, want %q", run, out, names, want)
		}
		cols := oracle.DuckDB(t, fmt.Sprintf("SELECT * FROM read_parquet('%s/parts/*/*/*.parquet', hive_partitioning=false) LIMIT 0", out)).Columns
		if slices.Contains(cols, "k") || slices.Contains(cols, "d") {
			t.Fatalf("run %d: the part files hold partition columns: %v", run, cols)
		}
		_, err = os.Stat(filepath.Join(out, "parts", "k=a"))
		if run == 1 && !os.IsNotExist(err) {
			t.Fatalf("run %d: the partition k=a of the first run is still there (%v)", run, err)
		}
		if run == 0 && err != nil {
			t.Fatal(err)
		}
	}
}

// TestSingleFileEmpty: a single-file sink whose job writes no row still
// writes its file (the header, for CSV).
func TestSingleFileEmpty(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	partitionInput(t, in, 50, 0.5)
	out := filepath.Join(dir, "x.csv")
	runJob(t, fmt.Sprintf("source:\n  parquet: {path: %s}\nsteps:\n  - filter: \"id < 0\"\nsink:\n  file: {path: %s, format: csv, single_file: true}\n", in, out), 2)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "id,k,n,d,b,v\n" {
		t.Fatalf("%s holds %q, want the header only", out, got)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
	if !strings.HasSuffix(out, ".csv") {
		t.Fatal(out)
	}
}

// TestPartitionedCheckpointRestore is TestDAGUnionCheckpointRestore with a
// partitioned sink (partition_by event_type, small parts, no filter):
// an unbounded run takes checkpoint 1, reads on and crashes; a run
// restored from checkpoint 1 at another parallelism drains the topics.
// DuckDB reads the output back with hive_partitioning: every row once,
// in its partition.
func TestPartitionedCheckpointRestore(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	dir := t.TempDir()
	files, topics := kafkaInputs(t, brokers, dir)
	const cols = "user_id, item_id, event_type, weight, event_time"
	want := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT %s FROM (SELECT * FROM read_parquet('%s') UNION ALL SELECT * FROM read_parquet('%s'))`,
		cols, files[0], files[1])).Strings())
	out := filepath.Join(dir, "out")
	yml := func(bounded bool) string {
		return unionJob("part-ck", brokers, topics, bounded, "", fmt.Sprintf("  - file:\n      path: %s\n      partition_by: [event_type]\n      part_size: 8KiB\n", out))
	}
	crashRestore(t, yml, 2, 3)
	got := canon(oracle.DuckDB(t, fmt.Sprintf("SET enable_progress_bar=false; SELECT %s FROM read_parquet('%s/*/*.parquet', hive_partitioning=true)", cols, out)).Strings())
	compareNamedRows(t, "partitioned", got, want)
	ents, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "event_type=") {
			t.Fatalf("%s holds %s, want partition directories only", out, e.Name())
		}
	}
}
