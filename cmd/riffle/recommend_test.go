package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestRecommendEndToEnd: riffle gen, riffle backfill with a recommend
// step exporting embeddings, then riffle recommend for a few users: the
// answers at the step's k equal the exported lists (read by DuckDB);
// with a larger --k the first k are the same and no item the user had in
// the input appears; --users FILE, text output and an unknown user.
func TestRecommendEndToEnd(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "30000", "--users", "500", "--items", "200", "--seed", "5",
		"--latent-factors", "4", "--progress", "never", in); code != exitOK {
		t.Fatalf("gen: code %d: %s", code, errOut)
	}
	recs := filepath.Join(dir, "recs")
	jobFile := filepath.Join(dir, "recs.yaml")
	yml := fmt.Sprintf(`name: recs
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
      k: 5
      export: {path: %s, format: parquet, embeddings: true}
sink:
  file: {path: %s, format: parquet}
`, in, recs, filepath.Join(dir, "out"))
	if err := os.WriteFile(jobFile, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "backfill", "--parallelism", "2", jobFile); code != exitOK {
		t.Fatalf("backfill: code %d: %s", code, errOut)
	}
	users := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT DISTINCT user_id FROM read_parquet('%s') ORDER BY user_id LIMIT 4", in))
	ids := []string{users[0][0], users[1][0], users[2][0], users[3][0]}
	args := []string{"recommend", "--from", recs, "--json"}
	for _, id := range ids {
		args = append(args, "--user", id)
	}
	code, out, errOut := runCLI(t, args...)
	if code != exitOK {
		t.Fatalf("recommend: code %d: %s", code, errOut)
	}
	var got []recAnswer
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != len(ids) {
		t.Fatalf("%d answers for %d users", len(got), len(ids))
	}
	exp := fmt.Sprintf("read_parquet('%s/v000001/recommendations/*.parquet')", recs)
	for i, a := range got {
		if string(a.User) != ids[i] || a.ModelVersion != 1 {
			t.Fatalf("answer %d: user %s version %d, want %s, 1", i, a.User, a.ModelVersion, ids[i])
		}
		want := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT item_id, rank, score FROM %s WHERE user_id = %s ORDER BY rank", exp, ids[i]))
		if len(want) != len(a.Recommendations) {
			t.Fatalf("user %s: %d recommendations, the export has %d", ids[i], len(a.Recommendations), len(want))
		}
		for j, r := range a.Recommendations {
			if w := want[j]; string(r.Item) != w[0] || fmt.Sprint(r.Rank) != w[1] || !floatEq(w[2], r.Score) {
				t.Fatalf("user %s rank %d: %s %d %v, export has %v", ids[i], j+1, r.Item, r.Rank, r.Score, w)
			}
		}
	}
	// --k beyond the step's k, from the embeddings, users from a file.
	uf := filepath.Join(dir, "users.txt")
	os.WriteFile(uf, []byte(ids[0]+"\n"+ids[1]+"\n"), 0o644)
	code, out, errOut = runCLI(t, "recommend", "--from", recs, "--users", uf, "--k", "12", "--json")
	if code != exitOK {
		t.Fatalf("recommend --k 12: code %d: %s", code, errOut)
	}
	var more []recAnswer
	if err := json.Unmarshal([]byte(out), &more); err != nil || len(more) != 2 {
		t.Fatalf("%v: %s", err, out)
	}
	for i, a := range more {
		if len(a.Recommendations) != 12 {
			t.Fatalf("user %s: %d recommendations, want 12", a.User, len(a.Recommendations))
		}
		for j := range got[i].Recommendations {
			if string(a.Recommendations[j].Item) != string(got[i].Recommendations[j].Item) {
				t.Fatalf("user %s: --k 12 rank %d is %s, --k 5 gave %s", a.User, j+1, a.Recommendations[j].Item, got[i].Recommendations[j].Item)
			}
		}
		var items []string
		for _, r := range a.Recommendations {
			items = append(items, string(r.Item))
		}
		had := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT count(*) FROM read_parquet('%s') WHERE user_id = %s AND item_id IN (%s)", in, a.User, strings.Join(items, ",")))
		if had[0][0] != "0" {
			t.Fatalf("user %s: %s of the recommended items are in the user's input", a.User, had[0][0])
		}
	}
	// Text output, and a user the model does not know.
	code, out, errOut = runCLI(t, "recommend", "--from", recs, "--user", ids[0], "--user", "987654321")
	if code != exitOK || !strings.Contains(out, "user "+ids[0]+" (model v000001):") || !strings.Contains(errOut, "unknown user") {
		t.Fatalf("text: code %d\n%s\n%s", code, out, errOut)
	}
	if code, _, _ := runCLI(t, "recommend", "--from", recs, "--user", "987654321"); code == exitOK {
		t.Fatal("only unknown users: want a failure")
	}
	if code, _, _ := runCLI(t, "recommend", "--from", filepath.Join(dir, "nothing"), "--user", "1"); code == exitOK {
		t.Fatal("no export: want a failure")
	}

	// Without embeddings the exported lists answer, the same ones.
	lists := filepath.Join(dir, "lists")
	yml = strings.Replace(strings.Replace(yml, recs, lists, 1), "embeddings: true", "embeddings: false", 1)
	yml = strings.Replace(yml, filepath.Join(dir, "out"), filepath.Join(dir, "out2"), 1)
	os.WriteFile(jobFile, []byte(yml), 0o644)
	if code, _, errOut := runCLI(t, "backfill", jobFile); code != exitOK {
		t.Fatalf("backfill: code %d: %s", code, errOut)
	}
	code, out, errOut = runCLI(t, "recommend", "--from", lists, "--user", ids[0], "--user", ids[1], "--json")
	if code != exitOK {
		t.Fatalf("recommend from lists: code %d: %s", code, errOut)
	}
	var fromLists []recAnswer
	if err := json.Unmarshal([]byte(out), &fromLists); err != nil || len(fromLists) != 2 {
		t.Fatalf("%v: %s", err, out)
	}
	for i, a := range fromLists {
		g, _ := json.Marshal(got[i])
		w, _ := json.Marshal(a)
		if string(g) != string(w) {
			t.Fatalf("user %s: lists answer %s, embeddings answer %s", ids[i], w, g)
		}
	}
	if code, _, errOut := runCLI(t, "recommend", "--from", lists, "--user", ids[0], "--k", "6"); code != exitUsage || !strings.Contains(errOut, "no embeddings") {
		t.Fatalf("--k beyond the lists: code %d: %s", code, errOut)
	}
}

func floatEq(s string, f float32) bool {
	var v float64
	fmt.Sscan(s, &v)
	return float32(v) == f
}

// TestRecommendSavepointRestore: a backfill held at its end stops with a
// savepoint at parallelism 2 (the recommend step trains nothing: its
// input was suspended, the interactions are in the savepoint); the same
// job resumed from it at parallelism 3 reaches its real end at once,
// trains and exports a model equal to a plain backfill's at parallelism 1
// (lists and factors, as DuckDB reads them).
func TestRecommendSavepointRestore(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "20000", "--users", "300", "--items", "150", "--seed", "8",
		"--latent-factors", "4", "--progress", "never", in); code != exitOK {
		t.Fatalf("gen: code %d: %s", code, errOut)
	}
	recs := filepath.Join(dir, "recs")
	jobFile := filepath.Join(dir, "recs.yaml")
	yml := fmt.Sprintf(`name: recs
source:
  parquet: {path: %s}
steps:
  - recommend: {user: user_id, item: item_id, factors: 6, iterations: 4, seed: 3, k: 4, export: {path: %s, embeddings: true}}
sink:
  file: {path: %s, format: parquet}
`, in, recs, filepath.Join(dir, "out"))
	if err := os.WriteFile(jobFile, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "backfill", "--parallelism", "1", "--progress", "never", jobFile); code != exitOK {
		t.Fatalf("backfill: code %d: %s", code, errOut)
	}
	ref := filepath.Join(dir, "ref")
	if err := os.Rename(recs, ref); err != nil {
		t.Fatal(err)
	}
	sp := filepath.Join(dir, "sp")
	if code, _, errOut := runCLI(t, "backfill", "--parallelism", "2", "--progress", "never", "--savepoint", sp, jobFile); code != exitOK {
		t.Fatalf("backfill --savepoint: code %d: %s", code, errOut)
	}
	if _, err := os.Stat(recs); !os.IsNotExist(err) {
		t.Fatalf("a backfill held at its end exported a model (%v)", err)
	}
	if code, _, errOut := runCLI(t, "run", "--checkpoint-dir", filepath.Join(dir, "ck"), "--from", sp, "--parallelism", "3",
		"--progress", "never", jobFile); code != exitOK {
		t.Fatalf("run --from: code %d: %s", code, errOut)
	}
	for _, q := range []string{
		"SELECT user_id, item_id, rank, score FROM read_parquet('%s/v000001/recommendations/*.parquet')",
		"SELECT id, factors::VARCHAR, seen::VARCHAR FROM read_parquet('%s/v000001/user_factors/*.parquet')",
		"SELECT id, factors::VARCHAR FROM read_parquet('%s/v000001/item_factors/*.parquet')",
	} {
		a, b := fmt.Sprintf(q, ref), fmt.Sprintf(q, recs)
		diff := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT count(*) FROM ((%s EXCEPT ALL %s) UNION ALL (%s EXCEPT ALL %s))", a, b, b, a))
		n := oracle.DuckDBStrings(t, fmt.Sprintf("SELECT count(*) FROM (%s)", a))
		if diff[0][0] != "0" || n[0][0] == "0" {
			t.Fatalf("%s: %s rows differ (of %s)", q, diff[0][0], n[0][0])
		}
	}
}
