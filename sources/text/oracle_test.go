package text

import (
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

	"github.com/riffle-dev/riffle/internal/coerce"
	"github.com/riffle-dev/riffle/internal/oracle"
)

var testCols = []Column{
	{Name: "id", Type: coerce.Int64, Required: true},
	{Name: "name", Type: coerce.String},
	{Name: "x", Type: coerce.Float64},
	{Name: "flag", Type: coerce.Bool},
	{Name: "ts", Type: coerce.Timestamp},
	{Name: "n32", Type: coerce.Int32},
}

// genCSV writes a random CSV file of rows with ids from id0 and returns the
// next id. Strings hold delimiters, quotes, line breaks and non-ASCII text;
// about one value in eight is empty (NULL; a quoted "" string is the empty
// string).
func genCSV(t *testing.T, rng *rand.Rand, path string, id0, rows int, crlf, trailingNL, header bool) int {
	t.Helper()
	var b strings.Builder
	eol := "\n"
	if crlf {
		eol = "\r\n"
	}
	if header {
		b.WriteString("flag,id,\"name\",x,ts,n32,extra" + eol) // another order, and a column not declared
	}
	pieces := []string{"a", "b c", ",", "\"", "\n", "é", "日本", "x,y", "''", " "}
	for i := 0; i < rows; i++ {
		var f [7]string
		if rng.IntN(8) > 0 {
			f[0] = strconv.FormatBool(rng.IntN(2) == 0)
		}
		f[1] = strconv.Itoa(id0 + i)
		switch k := rng.IntN(8); {
		case k == 0:
			f[2] = "" // NULL
		case k == 1:
			f[2] = `""` // empty string
		case k < 4:
			f[2] = "plain" + strconv.Itoa(rng.IntN(100))
		default:
			var s strings.Builder
			for j := rng.IntN(5); j >= 0; j-- {
				s.WriteString(pieces[rng.IntN(len(pieces))])
			}
			f[2] = `"` + strings.ReplaceAll(s.String(), `"`, `""`) + `"`
		}
		if rng.IntN(8) > 0 {
			switch rng.IntN(3) {
			case 0:
				f[3] = strconv.FormatFloat(rng.NormFloat64()*1e3, 'g', -1, 64)
			case 1:
				f[3] = strconv.Itoa(rng.IntN(2000) - 1000)
			default:
				f[3] = strconv.FormatFloat(rng.Float64(), 'e', 6, 64)
			}
		}
		if rng.IntN(8) > 0 {
			ts := time.UnixMilli(rng.Int64N(4e12)).UTC()
			if rng.IntN(2) == 0 {
				f[4] = ts.Format("2006-01-02T15:04:05.000Z")
			} else {
				f[4] = ts.In(time.FixedZone("", 7200)).Format("2006-01-02T15:04:05.000-07:00")
			}
		}
		if rng.IntN(8) > 0 {
			f[5] = strconv.Itoa(rng.IntN(1<<31) - 1<<30)
		}
		f[6] = `"ignored, ""really"""`
		if !header {
			f = [7]string{f[1], f[2], f[3], f[0], f[4], f[5]}
			b.WriteString(strings.Join(f[:6], ","))
		} else {
			b.WriteString(strings.Join(f[:], ","))
		}
		if i < rows-1 || trailingNL {
			b.WriteString(eol)
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return id0 + rows
}

const duckCols = `{'flag': 'BOOLEAN', 'id': 'BIGINT', 'name': 'VARCHAR', 'x': 'DOUBLE', 'ts': 'VARCHAR', 'n32': 'INTEGER', 'extra': 'VARCHAR'}`

func duckQuery(glob string) string {
	return fmt.Sprintf(`SELECT id, name, x, flag, epoch_ms(CAST(ts AS TIMESTAMPTZ)) AS ts, n32 FROM read_csv('%s', header = true, columns = %s,
		auto_detect = false, delim = ',', quote = '"', escape = '"', allow_quoted_nulls = false) ORDER BY id`, glob, duckCols)
}

// TestCSVAgainstDuckDB reads random files (header in another column order,
// LF and CRLF, with and without a final line break, an empty and a
// header-only file) at several split sizes and parallelisms and compares
// every value with DuckDB's read_csv of the same files with explicit types.
func TestCSVAgainstDuckDB(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	id := 0
	for i := 0; i < 5; i++ {
		id = genCSV(t, rng, filepath.Join(dir, fmt.Sprintf("f%d.csv", i)), id, 50+rng.IntN(400), i%2 == 1, i != 2, true)
	}
	os.WriteFile(filepath.Join(dir, "g-empty.csv"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "h-header-only.csv"), []byte("flag,id,name,x,ts,n32,extra\n"), 0o644)
	want := oracle.DuckDBStrings(t, duckQuery(filepath.Join(dir, "f*.csv")))
	if len(want) != id {
		t.Fatalf("duckdb read %d rows, want %d", len(want), id)
	}
	for _, tc := range []struct {
		split int64
		p     int
		batch int
	}{{0, 1, 0}, {200, 3, 7}, {1000, 2, 1}, {64, 4, 50}} {
		t.Run(fmt.Sprintf("split%d/p%d/batch%d", tc.split, tc.p, tc.batch), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			src, err := New(Options{Paths: []string{dir}, Columns: testCols, Header: true, SplitSize: tc.split, BatchSize: tc.batch})
			if err != nil {
				t.Fatal(err)
			}
			if tc.split == 64 && src.Stats().Splits < 100 {
				t.Fatalf("only %d splits", src.Stats().Splits)
			}
			got, err := readAll(t, src, tc.p, mem)
			if err != nil {
				t.Fatal(err)
			}
			var all [][]string
			for _, rows := range got {
				// Each subtask reads its splits in file order: ids rise.
				for i := 1; i < len(rows); i++ {
					a, _ := strconv.Atoi(rows[i-1][0])
					b, _ := strconv.Atoi(rows[i][0])
					if b <= a {
						t.Fatalf("subtask rows out of order: id %d after %d", b, a)
					}
				}
				all = append(all, rows...)
			}
			slices.SortFunc(all, func(a, b []string) int {
				x, _ := strconv.Atoi(a[0])
				y, _ := strconv.Atoi(b[0])
				return x - y
			})
			if len(all) != len(want) {
				t.Fatalf("read %d rows, duckdb %d", len(all), len(want))
			}
			for i := range all {
				if !slices.Equal(all[i], want[i]) {
					t.Fatalf("row %d:\n got  %q\n want %q", i, all[i], want[i])
				}
			}
		})
	}
}
