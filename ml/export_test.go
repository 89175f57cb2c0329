package ml

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// exportRun trains on evs with an export under root and returns the
// harness (closed by the caller).
func exportRun(t testing.TB, mem memory.Allocator, evs []event, root string, p, retain int) *harness {
	o := testOptions(t)
	o.Export = &ExportOptions{Path: root, Embeddings: true, Retain: retain}
	h := newHarness(t, mem, evSchemaInt, o, p, nil)
	if err := h.feed(evs, 100); err != nil {
		t.Fatal(err)
	}
	if err := h.finish(); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestExportReadBack exports a model whose factor files are cut into
// row groups of 7 rows (fixed_size_list values split across row groups:
// arrow-go's buffered writer gets these wrong) and reads everything back
// with Go and pyarrow: factors bitwise equal to the state's, each user's
// seen items equal to the input's, lists equal to the rows emitted,
// manifest counts right.
func TestExportReadBack(t *testing.T) {
	defer func(n int64) { factorRowGroupRows = n }(factorRowGroupRows)
	factorRowGroupRows = 7
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(11, 12))
	evs := genEvents(rng, 1500, 60, 40)
	root := t.TempDir()
	h := exportRun(t, mem, evs, root, 2, 0)
	defer h.close()
	wu, wi := h.factors()

	e, err := OpenLatest(root)
	if err != nil {
		t.Fatal(err)
	}
	m := e.Manifest
	users, items, pairs := map[int64]map[string]bool{}, map[int64]bool{}, 0
	for _, ev := range evs {
		if users[ev.user] == nil {
			users[ev.user] = map[string]bool{}
		}
		if !users[ev.user][fmt.Sprint(ev.item)] {
			pairs++
		}
		users[ev.user][fmt.Sprint(ev.item)] = true
		items[ev.item] = true
	}
	if e.Version != 1 || m.Users != len(users) || m.Items != len(items) || m.Interactions != pairs || m.InputRows != int64(len(evs)) || m.K != 5 || m.Config.Factors != 8 {
		t.Fatalf("manifest %+v: want version 1, %d users, %d items, %d pairs, %d rows", m, len(users), len(items), pairs, len(evs))
	}
	ctx := context.Background()
	for _, side := range []struct {
		dir  string
		want map[string][]float32
	}{{UserFactorsDir, wu}, {ItemFactorsDir, wi}} {
		// pyarrow reads the files as they are; float32 values survive
		// the trip through Python floats exactly.
		tbl := oracle.PyArrowRead(t, filepath.Join(e.dir, side.dir), oracle.Parquet)
		ids, fs := tbl.Column(t, "id"), tbl.Column(t, "factors")
		if len(ids) != len(side.want) {
			t.Fatalf("pyarrow: %d rows in %s, want %d", len(ids), side.dir, len(side.want))
		}
		for r, id := range ids {
			w := side.want[oracle.Format(id)]
			// Lists come back from the oracle as their JSON text.
			var vs []float64
			if err := json.Unmarshal([]byte(fmt.Sprint(fs[r])), &vs); err != nil {
				t.Fatalf("pyarrow: %s %v: factors %v: %v", side.dir, id, fs[r], err)
			}
			if len(vs) != len(w) {
				t.Fatalf("pyarrow: %s %v: %d factors, want %d", side.dir, id, len(vs), len(w))
			}
			for j, v := range vs {
				if math.Float32bits(float32(v)) != math.Float32bits(w[j]) {
					t.Fatalf("pyarrow: %s %v factor %d: %v, want %v", side.dir, id, j, v, w[j])
				}
			}
		}
		f, err := e.ReadFactors(ctx, side.dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]float32{}
		for i, id := range f.IDs {
			got[id] = f.Factors[i*f.K : (i+1)*f.K]
		}
		checkFactors(t, side.dir, got, side.want)
		if side.dir == UserFactorsDir {
			for i, id := range f.IDs {
				var want []string
				for it := range users[mustInt(t, id)] {
					want = append(want, it)
				}
				if !slices.Equal(slices.Sorted(slices.Values(f.Seen[i])), slices.Sorted(slices.Values(want))) {
					t.Fatalf("user %s: seen %v, want %v", id, f.Seen[i], want)
				}
			}
		}
	}
	var ids []string
	for u := range users {
		ids = append(ids, fmt.Sprint(u))
	}
	lists, err := e.Lists(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	var got []recRow
	for u, l := range lists {
		for _, r := range l {
			got = append(got, recRow{user: u, item: r.Item, rank: int32(r.Rank), score: r.Score, version: 1})
		}
	}
	slices.SortFunc(got, func(a, b recRow) int {
		if c := strings.Compare(a.user, b.user); c != 0 {
			return c
		}
		return int(a.rank - b.rank)
	})
	if want := rowsOf(h.out.batches); !slices.Equal(got, want) {
		t.Fatalf("exported lists (%d rows) differ from the emitted rows (%d)", len(got), len(want))
	}
	// DuckDB reads the recommendations with their schema.
	cols := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('%s/*.parquet'))", filepath.Join(e.dir, RecommendDir)))
	if fmt.Sprint(cols) != "[[user_id BIGINT] [item_id BIGINT] [rank INTEGER] [score FLOAT] [model_version BIGINT]]" {
		t.Fatalf("DuckDB schema %v", cols)
	}
}

// TestExportText: with format csv or jsonl the lists are written as the
// file sink writes those formats; DuckDB reads them back equal to the
// rows emitted (scores bitwise, as float32), the manifest names the
// format and its files, the factors stay Parquet and readable, and
// Export.Lists refuses the text files rather than misread them.
func TestExportText(t *testing.T) {
	oracle.Python(t)
	for _, format := range []string{"csv", "jsonl"} {
		t.Run(format, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rng := rand.New(rand.NewPCG(21, 22))
			evs := genEvents(rng, 1200, 50, 30)
			root := t.TempDir()
			o := testOptions(t)
			o.Export = &ExportOptions{Path: root, Format: format, Embeddings: true}
			h := newHarness(t, mem, evSchemaInt, o, 2, nil)
			defer h.close()
			if err := h.feed(evs, 100); err != nil {
				t.Fatal(err)
			}
			if err := h.finish(); err != nil {
				t.Fatal(err)
			}
			e, err := OpenLatest(root)
			if err != nil {
				t.Fatal(err)
			}
			if e.Manifest.Format != format || !slices.Contains(e.Manifest.Files, "recommendations/part-00000."+format) {
				t.Fatalf("manifest format %q, files %v", e.Manifest.Format, e.Manifest.Files)
			}
			read := map[string]string{"csv": "read_csv", "jsonl": "read_json"}[format]
			rows := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT user_id, item_id, rank, score, model_version FROM %s('%s/*.%s')", read, filepath.Join(e.dir, RecommendDir), format))
			var got []recRow
			for _, r := range rows {
				score, err := strconv.ParseFloat(r[3], 32)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, recRow{user: r[0], item: r[1], rank: int32(mustInt(t, r[2])), score: float32(score), version: mustInt(t, r[4])})
			}
			slices.SortFunc(got, func(a, b recRow) int {
				if c := strings.Compare(a.user, b.user); c != 0 {
					return c
				}
				return int(a.rank - b.rank)
			})
			if want := rowsOf(h.out.batches); len(want) == 0 || !slices.Equal(got, want) {
				t.Fatalf("DuckDB read %d rows from the %s lists, want the %d emitted (first %v vs %v)", len(got), format, len(want), got[:min(3, len(got))], want[:min(3, len(want))])
			}
			if f, err := e.ReadFactors(context.Background(), ItemFactorsDir, nil); err != nil || len(f.IDs) == 0 {
				t.Fatalf("item factors: %v", err)
			}
			if _, err := e.Lists(context.Background(), []string{got[0].user}); err == nil || !strings.Contains(err.Error(), format) {
				t.Fatalf("Lists over %s files: %v", format, err)
			}
		})
	}
}

func mustInt(t *testing.T, s string) int64 {
	var v int64
	if _, err := fmt.Sscan(s, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestExportRetain exports four versions with retain 2: the two newest
// stay, LATEST names the newest.
func TestExportRetain(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	root := t.TempDir()
	for i := 1; i <= 4; i++ {
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		h := exportRun(t, mem, genEvents(rng, 300, 20, 30), root, 1, 2)
		h.close()
	}
	vs, err := versionsOnDisk(nil, root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vs, []int64{3, 4}) {
		t.Fatalf("versions %v, want [3 4]", vs)
	}
	if v, err := ReadLatest(nil, root); v != 4 || err != nil {
		t.Fatalf("LATEST %d, %v; want 4", v, err)
	}
}

const crashChildEnv = "RIFFLE_EXPORT_CRASH_CHILD"

// TestExportCrashChild is the child process of TestExportCrash: it
// exports into the directory named by the environment and, at the
// export stage named there, prints it and waits to be killed.
func TestExportCrashChild(t *testing.T) {
	spec := os.Getenv(crashChildEnv)
	if spec == "" {
		t.Skip("child of TestExportCrash")
	}
	root, stage, _ := strings.Cut(spec, "|")
	exportHook = func(s string) {
		if s == stage {
			fmt.Printf("AT %s\n", s)
			os.Stdout.Sync()
			select {} // killed here
		}
	}
	rng := rand.New(rand.NewPCG(21, 22))
	h := exportRun(t, memory.NewGoAllocator(), genEvents(rng, 2000, 80, 50), root, 2, 0)
	h.close()
	fmt.Println("DONE")
}

// TestExportCrash SIGKILLs a process exporting version 2 at each stage of
// the export (a part file written, all files written, the version
// renamed, LATEST replaced) and checks that LATEST names a complete
// version (every file of its manifest readable) and that no incomplete
// version is visible; a later export succeeds and cleans up.
func TestExportCrash(t *testing.T) {
	for _, stage := range []string{"part", "files", "version", "latest"} {
		t.Run(stage, func(t *testing.T) {
			root := t.TempDir()
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			rng := rand.New(rand.NewPCG(1, 1))
			exportRun(t, mem, genEvents(rng, 500, 30, 30), root, 1, 0).close()

			cmd := exec.Command(os.Args[0], "-test.run=^TestExportCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+root+"|"+stage)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			reached := false
			for sc.Scan() {
				if sc.Text() == "AT "+stage {
					reached = true
					break
				}
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			if !reached {
				t.Fatalf("the child never reached stage %s", stage)
			}
			latest, err := ReadLatest(nil, root)
			if err != nil {
				t.Fatal(err)
			}
			wantLatest := int64(1)
			if stage == "latest" {
				wantLatest = 2
			}
			if latest != wantLatest {
				t.Fatalf("after a kill at %s LATEST is v%d, want v%d", stage, latest, wantLatest)
			}
			vs, err := versionsOnDisk(nil, root)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vs {
				checkComplete(t, root, v)
			}
			if (stage == "part" || stage == "files") && len(vs) != 1 {
				t.Fatalf("a kill at %s left versions %v visible, want [1]", stage, vs)
			}
			// The next export goes on from there.
			rng = rand.New(rand.NewPCG(2, 2))
			exportRun(t, mem, genEvents(rng, 500, 30, 30), root, 1, 0).close()
			mem.AssertSize(t, 0)
			after, err := ReadLatest(nil, root)
			if err != nil || after != vs[len(vs)-1]+1 {
				t.Fatalf("next export: LATEST v%d (%v), want v%d", after, err, vs[len(vs)-1]+1)
			}
			checkComplete(t, root, after)
			ents, _ := os.ReadDir(root)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), exportTempPrefix) {
					t.Fatalf("leftover %s after the next export", e.Name())
				}
			}
		})
	}
}

// checkComplete checks that every file version v's manifest lists reads
// back (Parquet footers intact) and that the version holds no other file.
func checkComplete(t *testing.T, root string, v int64) {
	t.Helper()
	m, err := ReadManifest(nil, root, v)
	if err != nil {
		t.Fatalf("version %d: %v", v, err)
	}
	e := &Export{Root: root, Version: v, Manifest: m, dir: filepath.Join(root, VersionName(v)), mem: memory.NewGoAllocator()}
	if _, err := e.ReadFactors(context.Background(), UserFactorsDir, nil); err != nil {
		t.Fatalf("version %d: %v", v, err)
	}
	if _, err := e.Lists(context.Background(), []string{"0"}); err != nil {
		t.Fatalf("version %d: %v", v, err)
	}
	var files []string
	filepath.WalkDir(e.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != ModelFile {
			rel, _ := filepath.Rel(e.dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(files)
	if want := slices.Sorted(slices.Values(m.Files)); !slices.Equal(files, want) {
		t.Fatalf("version %d holds %v, its manifest lists %v", v, files, want)
	}
}
