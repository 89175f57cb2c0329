package job_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
	"github.com/riffle-dev/riffle/windows"
)

const windowJob = `name: views
source:
  parquet: {path: in.parquet}
  watermark: {column: event_time, max_out_of_orderness: 5s, idle_timeout: 30s}
steps:
  - window:
      type: %s
      key: [item_id]
      time: event_time
      aggs: ["count(*) AS views", "approx_distinct(user_id) AS users"]
      allowed_lateness: 1m
      late_output: {path: out/late, format: jsonl}
      top: {n: 10, by: views}
sink:
  file: {path: out, format: parquet}
`

func TestParseWindowStep(t *testing.T) {
	for _, c := range []struct {
		kind string
		want windows.Options
	}{
		{"tumbling\n      size: 10m", windows.Options{Kind: windows.Tumbling, Size: 10 * time.Minute}},
		{"sliding\n      size: 10m\n      slide: 1m", windows.Options{Kind: windows.Sliding, Size: 10 * time.Minute, Slide: time.Minute}},
		{"session\n      gap: 30s", windows.Options{Kind: windows.Session, Gap: 30 * time.Second}},
	} {
		spec, err := job.Parse("w.yaml", []byte(fmt.Sprintf(windowJob, c.kind)))
		if err != nil {
			t.Fatal(err)
		}
		if wm := spec.Source.Watermark; wm == nil || wm.Column != "event_time" || wm.MaxOutOfOrderness != 5*time.Second || wm.IdleTimeout != 30*time.Second {
			t.Fatalf("watermark %+v", wm)
		}
		w := spec.Steps[0].Window
		o := w.Options
		if o.Kind != c.want.Kind || o.Size != c.want.Size || o.Slide != c.want.Slide || o.Gap != c.want.Gap {
			t.Fatalf("%s: got %+v", c.kind, o)
		}
		if o.Time != "event_time" || len(o.Keys) != 1 || o.Keys[0] != "item_id" || o.AllowedLateness != time.Minute {
			t.Fatalf("got %+v", o)
		}
		if len(o.Aggs) != 2 || o.Aggs[0] != (windows.Agg{Func: windows.Count, Column: "*", As: "views"}) ||
			o.Aggs[1] != (windows.Agg{Func: windows.ApproxDistinct, Column: "user_id", As: "users"}) {
			t.Fatalf("aggs %+v", o.Aggs)
		}
		if o.Late == nil || o.Late.Path != "out/late" || o.Late.Format != "jsonl" {
			t.Fatalf("late %+v", o.Late)
		}
		if w.Top == nil || w.Top.N != 10 || w.Top.By != "views" {
			t.Fatalf("top %+v", w.Top)
		}
	}
}

func TestWindowStepErrors(t *testing.T) {
	base := "name: x\nsource:\n  parquet: {path: in.parquet}\nsteps:\n  - window:\n%ssink:\n  file: {path: out}\n"
	for _, c := range []struct{ body, want string }{
		{"      type: weekly\n      size: 1m\n      time: t\n      aggs: [\"count(*)\"]\n", `w.yaml:6: step 1: window: unknown window type "weekly" (want tumbling, sliding or session)`},
		{"      type: tumbling\n      size: soon\n      time: t\n      aggs: [\"count(*)\"]\n", `w.yaml:6: step 1: window: size: cannot parse duration "soon" (want e.g. 10m, 30s, 500ms)`},
		{"      type: tumbling\n      size: 1m\n      aggs: [\"count(*)\"]\n", `w.yaml:6: step 1: window: no event-time column`},
		{"      type: tumbling\n      size: 1m\n      time: t\n      aggs: [\"median(x)\"]\n", `w.yaml:6: step 1: window: unknown aggregate function "median" (want count, sum, min, max, avg, count_distinct or approx_distinct)`},
		{"      type: session\n      size: 1m\n      gap: 1s\n      time: t\n      aggs: [\"count(*)\"]\n", `w.yaml:6: step 1: window: a session window takes gap, not size or slide`},
		{"      type: sliding\n      size: 1m\n      slide: 2m\n      time: t\n      aggs: [\"count(*)\"]\n", `w.yaml:6: step 1: window: slide 2m0s larger than size 1m0s would drop rows`},
		{"      type: tumbling\n      size: 1m\n      time: t\n      aggs: [\"count(*) AS n\"]\n      top: {n: 3, by: m}\n", `w.yaml:6: step 1: window: top: by "m" is not one of the aggregates`},
		{"      type: tumbling\n      size: 1m\n      time: t\n      aggs: [\"count(*)\"]\n      every: 2\n", `unknown key "every"`},
	} {
		_, err := job.Parse("w.yaml", []byte(fmt.Sprintf(base, c.body)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

// TestWindowMatchesDuckDB runs a tumbling count/sum job over generated
// Parquet (with and without a source watermark, at several parallelisms)
// and compares the output with DuckDB's GROUP BY over time buckets.
func TestWindowMatchesDuckDB(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if err := gen.WriteFile(context.Background(), input, gen.Options{Rows: 200_000, Users: 2000, Items: 300, Seed: 7, RowGroupRows: 20_000, Span: 6 * time.Hour}, nil); err != nil {
		t.Fatal(err)
	}
	want := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT item_id, epoch_ms(event_time) // 600000 * 600000 AS ws, count(*) AS views, sum(weight) AS total, count(DISTINCT user_id) AS users
FROM read_parquet('%s') GROUP BY ALL`, input)).Strings())
	for _, wm := range []string{"", "  watermark: {column: event_time, max_out_of_orderness: 5s}\n"} {
		for _, p := range []int{1, 3} {
			name := fmt.Sprintf("p=%d/watermark=%v", p, wm != "")
			t.Run(name, func(t *testing.T) {
				out := filepath.Join(dir, fmt.Sprintf("out-%d-%v", p, wm != ""))
				yml := fmt.Sprintf(`name: w
source:
  parquet: {path: %s}
%ssteps:
  - window:
      type: tumbling
      size: 10m
      key: [item_id]
      time: event_time
      aggs: ["count(*) AS views", "sum(weight) AS total", "count_distinct(user_id) AS users"]
sink:
  file: {path: %s, format: parquet}
`, input, wm, out)
				spec, err := job.Parse("w.yaml", []byte(yml))
				if err != nil {
					t.Fatal(err)
				}
				plan, err := spec.Plan(job.Options{Parallelism: p, NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				j, err := plan.Graph.Compile(arrowexec.RunOptions{Mem: mem})
				if err != nil {
					t.Fatal(err)
				}
				if err := j.Run(context.Background()); err != nil {
					t.Fatal(err)
				}
				if _, err := plan.Commit(); err != nil {
					t.Fatal(err)
				}
				got := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT item_id, epoch_ms(window_start) AS ws, views, total, users FROM read_parquet('%s/*.parquet')
WHERE NOT is_update AND window_end = window_start + INTERVAL 10 MINUTE`, out)).Strings())
				if len(got) != len(want) {
					t.Fatalf("%d rows, DuckDB has %d", len(got), len(want))
				}
				for i := range want {
					if !rowsClose(got[i], want[i]) {
						t.Fatalf("row %d:\n got %v\nwant %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}
