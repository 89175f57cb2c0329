package job_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/job"
)

// TestRecommenders finds the recommend step's spec in a plan, and none in
// a plan without one; a bounded job does not serve.
func TestRecommenders(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if err := gen.WriteFile(context.Background(), input, gen.Options{Rows: 500, Users: 20, Items: 10, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		yaml string
		n    int
	}{
		{fmt.Sprintf(recommendJob, input, 3, filepath.Join(dir, "recs"), filepath.Join(dir, "out")), 1},
		{fmt.Sprintf("name: plain\nsource:\n  parquet: {path: %s}\nsink:\n  file: {path: %s, format: parquet}\n", input, filepath.Join(dir, "out2")), 0},
	} {
		spec, err := job.Parse("j.yaml", []byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		plan, err := spec.Plan(job.Options{Parallelism: 2, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		recs := plan.Recommenders()
		if len(recs) != tc.n || spec.Serves() {
			t.Fatalf("%s: %d recommenders (want %d), serves %v", spec.Name, len(recs), tc.n, spec.Serves())
		}
		if tc.n == 1 && recs[0].Options().K != 3 {
			t.Fatalf("the recommender found has k = %d, want 3", recs[0].Options().K)
		}
	}
}

// TestSpecServes: a recommend step over an unbounded Kafka source serves,
// over a bounded one it does not.
func TestSpecServes(t *testing.T) {
	const yml = "name: live\nsource:\n  kafka: {topic: t, bounded: %v, fields: [{name: user_id, type: int64}, {name: item_id, type: int64}]}\n" +
		"steps:\n  - recommend: {user: user_id, item: item_id, factors: 4, k: 3}\nsink:\n  file: {path: out}\n"
	for _, bounded := range []bool{false, true} {
		spec, err := job.Parse("live.yaml", []byte(fmt.Sprintf(yml, bounded)))
		if err != nil {
			t.Fatal(err)
		}
		if spec.Serves() == bounded {
			t.Fatalf("bounded %v: Serves() = %v", bounded, spec.Serves())
		}
	}
}
