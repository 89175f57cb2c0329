package text

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// genJSONL writes random JSON lines: members in random order, escapes and
// non-ASCII text in strings, nulls, missing members, and undeclared members
// holding nested values.
func genJSONL(t *testing.T, rng *rand.Rand, path string, id0, rows int) int {
	t.Helper()
	var b strings.Builder
	for i := 0; i < rows; i++ {
		m := map[string]any{"id": id0 + i, "extra": map[string]any{"nested": []any{1, "two", nil}}}
		if k := rng.IntN(6); k == 0 {
			m["name"] = nil
		} else if k > 1 {
			m["name"] = strings.Repeat("é\"\\\n\t😀 x,", rng.IntN(3)) + strconv.Itoa(rng.IntN(100))
		}
		if rng.IntN(6) > 0 {
			m["x"] = rng.NormFloat64() * 1e3
		}
		if rng.IntN(6) > 0 {
			m["flag"] = rng.IntN(2) == 0
		}
		if rng.IntN(6) > 0 {
			m["ts"] = time.UnixMilli(rng.Int64N(4e12)).UTC().Format("2006-01-02T15:04:05.000Z")
		}
		if rng.IntN(6) > 0 {
			m["n32"] = rng.IntN(1<<31) - 1<<30
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		b.WriteString("{")
		for j, k := range keys {
			v, _ := json.Marshal(m[k])
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q: %s", k, v)
		}
		b.WriteString("}\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return id0 + rows
}

// TestJSONLAgainstDuckDB compares random JSON lines read in many splits with
// DuckDB's read_json of the same files with explicit types.
func TestJSONLAgainstDuckDB(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dir := t.TempDir()
	id := 0
	for i := 0; i < 3; i++ {
		id = genJSONL(t, rng, filepath.Join(dir, fmt.Sprintf("f%d.jsonl", i)), id, 100+rng.IntN(300))
	}
	want := oracle.DuckDBStrings(t, fmt.Sprintf(`SELECT id, name, x, flag, epoch_ms(CAST(ts AS TIMESTAMPTZ)), n32 FROM read_json('%s', format = 'newline_delimited',
		columns = {'id': 'BIGINT', 'name': 'VARCHAR', 'x': 'DOUBLE', 'flag': 'BOOLEAN', 'ts': 'VARCHAR', 'n32': 'INTEGER'}) ORDER BY id`, filepath.Join(dir, "*.jsonl")))
	if len(want) != id {
		t.Fatalf("duckdb read %d rows, want %d", len(want), id)
	}
	for _, p := range []int{1, 3} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		src, err := New(Options{Paths: []string{dir}, Format: FormatJSONL, Columns: testCols, SplitSize: 500, BatchSize: 33})
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(t, src, p, mem)
		mem.AssertSize(t, 0)
		if err != nil {
			t.Fatal(err)
		}
		all := slices.Concat(got...)
		slices.SortFunc(all, func(a, b []string) int {
			x, _ := strconv.Atoi(a[0])
			y, _ := strconv.Atoi(b[0])
			return x - y
		})
		if len(all) != len(want) {
			t.Fatalf("p=%d: %d rows, duckdb %d", p, len(all), len(want))
		}
		for i := range all {
			if !slices.Equal(all[i], want[i]) {
				t.Fatalf("p=%d row %d:\n got  %q\n want %q", p, i, all[i], want[i])
			}
		}
	}
	// Errors name the file and line.
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"id\": 1}\n{\"id\": 2, \"x\": \"many\"}\n{\"id\": 3,\n"), 0o644)
	src, err := New(Options{Paths: []string{bad}, Format: FormatJSONL, Columns: testCols})
	if err != nil {
		t.Fatal(err)
	}
	_, err = readAll(t, src, 1, memory.DefaultAllocator)
	if want := "jsonl: file " + bad + `: line 2: column "x": cannot convert string "many" to float64`; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	src, _ = New(Options{Paths: []string{bad}, Format: FormatJSONL, Columns: testCols, OnError: OnErrorSkip})
	if _, err := readAll(t, src, 1, memory.DefaultAllocator); err != nil || src.Stats().Skipped != 2 {
		t.Fatalf("skip: %v, stats %+v", err, src.Stats())
	}
}
