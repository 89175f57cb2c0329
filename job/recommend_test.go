package job_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
	"github.com/riffle-dev/riffle/ml"
)

const recommendJob = `name: recs
source:
  parquet: {path: %s}
steps:
  - recommend:
      user: user_id
      item: item_id
      weight: "CASE WHEN event_type = 'purchase' THEN 4 WHEN event_type = 'cart' THEN 2 ELSE 1 END"
      factors: 8
      regularization: 0.05
      alpha: 1.0
      iterations: 5
      seed: 1
      k: %d
      export: {path: %s, format: parquet, embeddings: true}
sink:
  file: {path: %s, format: parquet}
`

func TestParseRecommendStepErrors(t *testing.T) {
	base := "name: r\nsource:\n  parquet: {path: in.parquet}\nsteps:\n  - recommend:\n      user: user_id\n      item: item_id\n%s\nsink:\n  file: {path: out}\n"
	for _, c := range []struct {
		body string
		line int
		want string
	}{
		{"      factors: 0\n      k: 10", 8, "factors must be > 0, got 0"},
		{"      factors: 8\n      regularization: -0.1\n      k: 10", 9, "regularization must be ≥ 0"},
		{"      factors: 8\n      k: 0", 9, "k must be > 0, got 0"},
		{"      factors: 8\n      alpha: -1\n      k: 3", 9, "alpha must be ≥ 0"},
		{"      factors: 8\n      k: 3\n      iterations: 0", 10, "iterations must be > 0"},
		{"      factors: 8\n      k: 3\n      weight: \"CASE WHEN\"", 10, "weight:"},
		{"      factors: 8\n      k: 3\n      solver: lu", 10, `unknown solver "lu"`},
		{"      factors: 8\n      k: 3\n      colour: red", 10, `unknown key "colour"`},
		{"      factors: 8\n      k: 3\n      export: {path: out/r, format: avro}", 10, `format "avro" is not supported`},
		{"      factors: 8\n      k: 3\n      state: {backend: pebble}", 10, "pebble backend needs a dir"},
		{"      k: 3", 6, "factors: required"},
	} {
		_, err := job.Parse("r.yaml", []byte(fmt.Sprintf(base, c.body)))
		var je *job.Error
		if !errors.As(err, &je) || je.Line != c.line || !strings.Contains(je.Msg, c.want) {
			t.Errorf("%q: error %v, want line %d with %q", c.body, err, c.line, c.want)
		}
	}
	// update: keys are checked and named with their line.
	for _, c := range []struct {
		body string
		line int
		want string
	}{
		{"      factors: 8\n      k: 3\n      update:\n        every: 0", 11, "update: every must be > 0"},
		{"      factors: 8\n      k: 3\n      update:\n        everyy: 5", 11, `unknown key "everyy"; did you mean "every"? (keys here: every, interval`},
		{"      factors: 8\n      k: 3\n      update:\n        retrain_growth: 0.5", 11, "retrain_growth must be > 1"},
		{"      factors: 8\n      k: 3\n      update:\n        export_every: {checkpoints: 2}", 10, "need an export: block"},
		{"      factors: 8\n      k: 3\n      export: {path: out/r}\n      update:\n        export_every: {checkpoints: 2, interval: 1m}", 12, "checkpoints or interval, not both"},
		{"      factors: 8\n      k: 3\n      export: {path: out/r}\n      update:\n        export_every: {checkpoint: 2}", 12, `unknown key "checkpoint"; did you mean "checkpoints"? (keys here: checkpoints, interval)`},
		{"      factors: 8\n      k: 3\n      export: {path: out/r}\n      update:\n        full_every: 3", 12, "full_every applies with export_changed_only"},
		{"      factors: 8\n      k: 3\n      update:\n        interval: soon", 11, "duration"},
		{"      factors: 8\n      k: 3\n      update:\n        item_defer: -1", 11, "item_defer must be in 0..30"},
		{"      factors: 8\n      k: 3\n      update:\n        max_history: -3", 11, "max_history must be ≥ 0"},
		{"      factors: 8\n      k: 3\n      update:\n        half_life: -1", 11, "half_life must be ≥ 0"},
		{"      factors: 8\n      k: 3\n      update:\n        prequential: {k: 5, window: -1}", 11, "update: prequential: k, window and every must be ≥ 0"},
		{"      factors: 8\n      k: 3\n      update:\n        prequential: {kk: 5}", 11, `unknown key "kk"`},
	} {
		_, err := job.Parse("r.yaml", []byte(fmt.Sprintf(base, c.body)))
		var je *job.Error
		if !errors.As(err, &je) || je.Line != c.line || !strings.Contains(je.Msg, c.want) {
			t.Errorf("%q: error %v, want line %d with %q", c.body, err, c.line, c.want)
		}
	}
}

// TestPlanRecommendUpdate: a step with update: plans the streaming
// operator as one subtask behind the hash exchange (the steps before it
// keep the job's parallelism), with the options given and the defaults
// for the rest.
func TestPlanRecommendUpdate(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if err := gen.WriteFile(context.Background(), input, gen.Options{Rows: 100, Users: 10, Items: 10, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	yml := fmt.Sprintf("name: r\nsource:\n  parquet: {path: %s}\nsteps:\n  - filter: \"user_id >= 0\"\n  - recommend:\n      user: user_id\n      item: item_id\n      factors: 4\n      k: 2\n      export: {path: %s}\n      update: {interval: 5s, export_every: {interval: 1m}, export_changed_only: true, serve: false, max_history: 300, half_life: 5000, prequential: {k: 5, window: 100, every: 2}}\nsink:\n  file: {path: %s}\n",
		input, filepath.Join(dir, "recs"), filepath.Join(dir, "out"))
	spec, err := job.Parse("r.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := spec.Plan(job.Options{Parallelism: 3, Checkpointed: true})
	if err != nil {
		t.Fatal(err)
	}
	pars := map[string]int{}
	for _, n := range plan.Graph.Nodes() {
		pars[n.Name()] = n.Parallelism()
	}
	if pars["filter-1"] != 3 || pars["recommend-2"] != 1 || pars["sink"] != 1 {
		t.Fatalf("parallelism %v, want filter-1 3, recommend-2 and sink 1", pars)
	}
	o := plan.Recommend.Options()
	pq := ml.PrequentialOptions{K: 5, Window: 100, Every: 2}
	if o.Update == nil || o.Update.Prequential == nil || *o.Update.Prequential != pq {
		t.Fatalf("update %+v: want prequential %+v", o.Update, pq)
	}
	want := ml.UpdateOptions{Every: ml.DefaultUpdateEvery, Interval: 5 * time.Second, RetrainGrowth: 2, ExportInterval: time.Minute, ExportChangedOnly: true, ItemDefer: ml.DefaultItemDefer, MaxHistory: 300, HalfLife: 5000,
		Prequential: o.Update.Prequential}
	if *o.Update != want || !o.Checkpointed {
		t.Fatalf("update %+v (checkpointed %v), want %+v, checkpointed", o.Update, o.Checkpointed, want)
	}
}

// TestRecommendJob runs the recommend step over generated Parquet at
// parallelism 1 and 3 and checks, with DuckDB over the input and the
// output: one row per user and rank 1..k, k rows for every user of the
// input, no (user, item) pair of the input recommended, scores
// descending; the export's recommendations equal the sink's rows, and
// both runs give the same rows and the same factors.
func TestRecommendJob(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if err := gen.WriteFile(context.Background(), input, gen.Options{Rows: 20_000, Users: 300, Items: 120, Seed: 9, RowGroupRows: 4000}, nil); err != nil {
		t.Fatal(err)
	}
	const k = 7
	var outs []string
	for _, p := range []int{1, 3} {
		out := filepath.Join(dir, fmt.Sprintf("out-%d", p))
		recs := filepath.Join(dir, fmt.Sprintf("recs-%d", p))
		spec, err := job.Parse("recs.yaml", []byte(fmt.Sprintf(recommendJob, input, k, recs, out)))
		if err != nil {
			t.Fatal(err)
		}
		plan, err := spec.Plan(job.Options{Parallelism: p, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
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
		mem.AssertSize(t, 0)
		v, err := ml.ReadLatest(nil, recs)
		if err != nil || v != 1 {
			t.Fatalf("LATEST: version %d, %v; want 1", v, err)
		}
		sink := fmt.Sprintf("read_parquet('%s/*.parquet')", out)
		in := fmt.Sprintf("read_parquet('%s')", input)
		exp := fmt.Sprintf("read_parquet('%s/v000001/recommendations/*.parquet')", recs)
		check := func(what, sql string) {
			t.Helper()
			if rows := oracle.DuckDBStrings(t, sql); len(rows) != 0 {
				t.Fatalf("p=%d: %s: %v", p, what, rows[:min(len(rows), 5)])
			}
		}
		// k rows per user, or every item the user does not have when
		// that is fewer.
		check("users without k rows", fmt.Sprintf(`WITH had AS (SELECT user_id, count(DISTINCT item_id) AS n FROM %[2]s GROUP BY user_id),
cat AS (SELECT count(DISTINCT item_id) AS c FROM %[2]s)
SELECT s.user_id, count(*) FROM %[1]s s JOIN had USING (user_id), cat GROUP BY s.user_id, had.n, cat.c
HAVING count(*) != least(%[3]d, cat.c - had.n) OR min(rank) != 1 OR max(rank) != count(*) OR count(DISTINCT rank) != count(*)`, sink, in, k))
		check("input users missing", fmt.Sprintf("SELECT DISTINCT user_id FROM %s EXCEPT SELECT user_id FROM %s", in, sink))
		check("training items recommended", fmt.Sprintf("SELECT s.user_id, s.item_id FROM %s s JOIN %s i USING (user_id, item_id)", sink, in))
		check("scores not descending", fmt.Sprintf("SELECT * FROM (SELECT score, lag(score) OVER (PARTITION BY user_id ORDER BY rank) AS prev FROM %s) WHERE score > prev", sink))
		check("export differs from sink", fmt.Sprintf("(SELECT * FROM %s EXCEPT ALL SELECT * FROM %s) UNION ALL (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s)", sink, exp, exp, sink))
		check("model_version", fmt.Sprintf("SELECT DISTINCT model_version FROM %s WHERE model_version != 1", sink))
		outs = append(outs, strings.Join(flatten(oracle.DuckDBStrings(t, fmt.Sprintf(
			"SELECT user_id, item_id, rank, score FROM %s ORDER BY user_id, rank", sink))), "\n"))
		uf := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT id, factors::VARCHAR FROM read_parquet('%s/v000001/user_factors/*.parquet') ORDER BY id", recs))
		outs = append(outs, strings.Join(flatten(uf), "\n"))
		if _, err := os.Stat(filepath.Join(recs, "v000001", ml.ModelFile)); err != nil {
			t.Fatal(err)
		}
	}
	if outs[0] != outs[2] {
		t.Fatal("recommendations differ between parallelism 1 and 3")
	}
	if outs[1] != outs[3] {
		t.Fatal("user factors differ between parallelism 1 and 3")
	}
}

func flatten(rows [][]string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = strings.Join(r, "|")
	}
	return slices.Clip(out)
}
