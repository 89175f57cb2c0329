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
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
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
		if l := w.Late; l == nil || l.File == nil || l.File.Path != "out/late" || l.File.Format != "jsonl" || l.File.Prefix != "late" {
			t.Fatalf("late %+v", w.Late)
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
		{"      type: tumbling\n      size: 1m\n      time: t\n      aggs: [\"mode(x)\"]\n", `w.yaml:6: step 1: window: aggregate "mode(x)": unknown aggregate function "mode" (want one of approx_distinct, arg_max, arg_min, argmax, argmin, array_agg, avg, bool_and, bool_or, count, count_distinct, first, last, list, max, max_by, median, min, min_by, quantile, quantile_cont, stddev, stddev_pop, stddev_samp, sum, var_pop, var_samp, variance)`},
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
		for _, p := range []int{1, 3, -2} {
			stateBlock := ""
			if p < 0 { // window state in Pebble
				p = -p
				stateBlock = fmt.Sprintf("      state: {backend: pebble, dir: %s}\n", filepath.Join(dir, "pebble"))
			}
			name := fmt.Sprintf("p=%d/watermark=%v/pebble=%v", p, wm != "", stateBlock != "")
			t.Run(name, func(t *testing.T) {
				out := filepath.Join(dir, fmt.Sprintf("out-%d-%v-%v", p, wm != "", stateBlock != ""))
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
%ssink:
  file: {path: %s, format: parquet}
`, input, wm, stateBlock, out)
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

// TestWindowParquetKafkaIdentical runs the same windowed job (tumbling and
// sliding, with a source watermark) over a Parquet file and over a Kafka
// topic holding the same rows across three partitions (bounded mode, real
// broker): the final results must be identical, and equal DuckDB's.
func TestWindowParquetKafkaIdentical(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if err := gen.WriteFile(context.Background(), input, gen.Options{Rows: 40_000, Users: 500, Items: 100, Seed: 5, RowGroupRows: 10_000, Span: 2 * time.Hour}, nil); err != nil {
		t.Fatal(err)
	}
	topic := kafkatest.CreateTopic(t, brokers, "windows", 3)
	if _, err := ksink.Produce(context.Background(), ksink.ProduceOptions{Brokers: []string{brokers}, Topic: topic, KeyColumn: "item_id", TimestampColumn: "event_time"}, parquetRows(t, input)); err != nil {
		t.Fatal(err)
	}
	const wm = "  watermark: {column: event_time, max_out_of_orderness: 5s, idle_timeout: 30s}\n"
	sources := map[string]string{
		"parquet": "source:\n  parquet:\n    path: " + input + "\n" + wm,
		"kafka":   "source:\n  kafka:\n    brokers: " + brokers + "\n    topic: " + topic + "\n    bounded: true" + kafkaFields + "\n" + wm,
	}
	for _, win := range []struct{ name, spec, sql string }{
		{"tumbling", "type: tumbling\n      size: 10m", "epoch_ms(event_time) // 600000 * 600000"},
		{"sliding", "type: sliding\n      size: 10m\n      slide: 5m", ""},
	} {
		results := map[string][][]string{}
		for _, name := range []string{"parquet", "kafka"} {
			out := filepath.Join(dir, "out-"+win.name+"-"+name)
			yml := fmt.Sprintf(`name: w
%ssteps:
  - window:
      %s
      key: [item_id]
      time: event_time
      aggs: ["count(*) AS views", "sum(weight) AS total", "count_distinct(user_id) AS users", "max(event_time) AS last"]
sink:
  file: {path: %s, format: parquet}
`, sources[name], win.spec, out)
			runJob(t, yml, 2)
			results[name] = canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT item_id, epoch_ms(window_start), epoch_ms(window_end), views, total, users, epoch_ms(last), is_update FROM read_parquet('%s/*.parquet')`, out)).Strings())
		}
		p, k := results["parquet"], results["kafka"]
		if len(p) != len(k) || len(p) == 0 {
			t.Fatalf("%s: parquet %d rows, kafka %d", win.name, len(p), len(k))
		}
		for i := range p {
			if !rowsClose(p[i], k[i]) {
				t.Fatalf("%s row %d:\nparquet %v\n  kafka %v", win.name, i, p[i], k[i])
			}
		}
		if win.sql != "" {
			want := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT item_id, %s AS ws, ws + 600000, count(*), sum(weight), count(DISTINCT user_id), epoch_ms(max(event_time)), false
FROM read_parquet('%s') GROUP BY ALL`, win.sql, input)).Strings())
			if len(want) != len(p) {
				t.Fatalf("%s: %d rows, DuckDB has %d", win.name, len(p), len(want))
			}
			for i := range want {
				if !rowsClose(p[i], want[i]) {
					t.Fatalf("%s row %d:\n got %v\nwant %v", win.name, i, p[i], want[i])
				}
			}
		}
	}
}

// TestWindowTopNMatchesDuckDB: the 5 most viewed items per 30 minutes
// (ties by item id), at parallelism 3, against DuckDB's ROW_NUMBER().
func TestWindowTopNMatchesDuckDB(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if err := gen.WriteFile(context.Background(), input, gen.Options{Rows: 100_000, Users: 1000, Items: 200, Seed: 11, RowGroupRows: 10_000, Span: 4 * time.Hour}, nil); err != nil {
		t.Fatal(err)
	}
	want := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT item_id, ws, views, rank FROM (
  SELECT item_id, ws, views, row_number() OVER (PARTITION BY ws ORDER BY views DESC, item_id) AS rank
  FROM (SELECT item_id, epoch_ms(event_time) // 1800000 * 1800000 AS ws, count(*) AS views FROM read_parquet('%s') GROUP BY ALL))
WHERE rank <= 5`, input)).Strings())
	out := filepath.Join(dir, "out")
	yml := fmt.Sprintf(`name: top
source:
  parquet: {path: %s}
  watermark: {column: event_time, max_out_of_orderness: 5s}
steps:
  - window:
      type: tumbling
      size: 30m
      key: [item_id]
      time: event_time
      aggs: ["count(*) AS views", "approx_distinct(user_id) AS users"]
      top: {n: 5, by: views}
sink:
  file: {path: %s, format: parquet}
`, input, out)
	spec, err := job.Parse("w.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := spec.Plan(job.Options{Parallelism: 3, NoSync: true})
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
	got := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT item_id, epoch_ms(window_start), views, rank FROM read_parquet('%s/*.parquet') WHERE NOT is_update`, out)).Strings())
	if len(got) != len(want) || len(want) == 0 {
		t.Fatalf("%d rows, DuckDB has %d", len(got), len(want))
	}
	for i := range want {
		if !rowsClose(got[i], want[i]) {
			t.Fatalf("row %d:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
}
