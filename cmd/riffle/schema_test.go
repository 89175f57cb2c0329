package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestSchemaCSVMatchesDuckDB writes random CSV files (integers, decimals,
// booleans, words, RFC 3339 times, empty fields) and checks that the types
// `riffle schema` infers are the ones DuckDB's read_csv detects on the same
// file, and that the printed block, pasted into a job with a Parquet sink,
// reads every row with the values DuckDB reads.
func TestSchemaCSVMatchesDuckDB(t *testing.T) {
	oracle.Python(t)
	duck := map[string]string{"BIGINT": "int64", "DOUBLE": "float64", "BOOLEAN": "bool", "VARCHAR": "string", "TIMESTAMP WITH TIME ZONE": "timestamp"}
	for seed := uint64(1); seed <= 3; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		dir := t.TempDir()
		path := filepath.Join(dir, "in.csv")
		kinds := []string{"int", "float", "bool", "word", "time"}
		rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		var b strings.Builder
		for i, k := range kinds {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("c_" + k)
		}
		b.WriteByte('\n')
		rows := 50 + rng.IntN(200)
		for r := 0; r < rows; r++ {
			for i, k := range kinds {
				if i > 0 {
					b.WriteByte(',')
				}
				if r > 0 && rng.IntN(10) == 0 {
					continue // NULL
				}
				switch k {
				case "int":
					fmt.Fprint(&b, rng.Int64N(2_000_000)-1_000_000)
				case "float":
					fmt.Fprintf(&b, "%.3f", rng.Float64()*1000-500)
				case "bool":
					fmt.Fprint(&b, rng.IntN(2) == 0)
				case "word":
					fmt.Fprintf(&b, "w%dx", rng.IntN(1000))
				case "time":
					fmt.Fprintf(&b, "2026-0%d-1%dT0%d:00:00Z", 1+rng.IntN(9), rng.IntN(10), rng.IntN(10))
				}
			}
			b.WriteByte('\n')
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCLI(t, "schema", "--sample", "100000", path)
		if code != exitOK {
			t.Fatalf("schema: exit %d: %s", code, errOut)
		}
		got := map[string]string{}
		for _, m := range regexp.MustCompile(`\{name: (\S+), type: (\w+)\}`).FindAllStringSubmatch(out, -1) {
			got[m[1]] = m[2]
		}
		desc := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_csv('%s', header=true))", path))
		if len(desc) != len(kinds) || len(got) != len(kinds) {
			t.Fatalf("seed %d: DuckDB sees %v, riffle printed:\n%s", seed, desc, out)
		}
		for _, d := range desc {
			if want := duck[d[1]]; got[d[0]] != want {
				t.Errorf("seed %d: column %s: riffle infers %s, DuckDB %s (%s)", seed, d[0], got[d[0]], d[1], want)
			}
		}
		// The block is a job's source as printed.
		outDir := filepath.Join(dir, "out")
		jobFile := filepath.Join(dir, "job.yaml")
		body := out[strings.Index(out, "source:"):] + "sink:\n  file: {path: " + outDir + ", format: parquet}\n"
		if err := os.WriteFile(jobFile, []byte("name: schema-check\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := runCLI(t, "backfill", "--progress", "never", jobFile); code != exitOK {
			t.Fatalf("seed %d: backfill of the printed block: exit %d: %s\n%s", seed, code, errOut, body)
		}
		q := func(from string) string {
			return fmt.Sprintf("SELECT count(*), sum(c_int), round(sum(c_float), 3), count(c_word), count(c_bool), sum(epoch_ms(c_time::TIMESTAMPTZ)) FROM %s", from)
		}
		want := oracle.DuckDBStrings(t, q(fmt.Sprintf("read_csv('%s', header=true)", path)))
		have := oracle.DuckDBStrings(t, q(fmt.Sprintf("read_parquet('%s/*.parquet')", outDir)))
		if fmt.Sprint(want) != fmt.Sprint(have) {
			t.Errorf("seed %d: the job read %v, DuckDB %v", seed, have, want)
		}
	}
}

// TestSchemaParquetMatchesPyArrow prints a generated Parquet file's schema
// and checks its column names and order against pyarrow's reading.
func TestSchemaParquetMatchesPyArrow(t *testing.T) {
	oracle.Python(t)
	path := filepath.Join(t.TempDir(), "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "1000", "--progress", "never", path); code != exitOK {
		t.Fatalf("gen: exit %d: %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "schema", path)
	if code != exitOK {
		t.Fatalf("schema: exit %d: %s", code, errOut)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		names = append(names, strings.SplitN(line, ":", 2)[0])
	}
	tab := oracle.PyArrowRead(t, path, oracle.Parquet)
	if fmt.Sprint(names) != fmt.Sprint(tab.Columns) {
		t.Fatalf("riffle schema names %v, pyarrow %v", names, tab.Columns)
	}
}
