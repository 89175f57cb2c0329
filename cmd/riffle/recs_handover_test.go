package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/ml"
)

// TestRecsBackfillThenStream: one recommend model over files then a
// topic. The backfill (riffle backfill --savepoint) learns from the
// Parquet history with update: and stops with a savepoint whose state
// holds the trained factors; a version of that model (v1) is published
// at the stop although the export schedule (every 6th checkpoint) did
// not ask for one at that checkpoint, and equals them. A job restored from the savepoint over an
// empty topic ends at once and exports its model: equal to the
// savepoint's factors bit for bit. A job restored from the same
// savepoint over a topic with new interactions exports a newer version
// (numbers never reused) whose model learned from them: the touched
// users' factors changed, the others' did not, and it counts the
// interactions of both halves.
func TestRecsBackfillThenStream(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	dir := t.TempDir()
	files := filepath.Join(dir, "files.parquet")
	stream := filepath.Join(dir, "stream.parquet")
	for _, g := range []struct{ out, rows, seed, users string }{
		{files, "20000", "31", "400"},
		{stream, "1500", "32", "100"}, // users 0..99 only: the others stay untouched
	} {
		genFile(t, g.out, "--rows", g.rows, "--seed", g.seed, "--users", g.users, "--items", "300", "--latent-factors", "8")
	}
	empty := kafkatest.CreateTopic(t, brokers, "recs-empty", 2)
	live := kafkatest.CreateTopic(t, brokers, "recs-live", 3)
	if code, _, errOut := runCLI(t, "produce", "--brokers", brokers, "--topic", live, "--key", "user_id", "--progress", "never", stream); code != exitOK {
		t.Fatal(errOut)
	}
	recs := filepath.Join(dir, "recs")
	const steps = `steps:
  - recommend:
      user: user_id
      item: item_id
      weight: "CASE WHEN event_type = 'purchase' THEN 4 WHEN event_type = 'cart' THEN 2 ELSE 1 END"
      factors: 8
      regularization: 1
      iterations: 8
      seed: 1
      k: 10
      export: {path: %s, embeddings: true, retain: 10}
      update: {every: 3000, retrain_growth: 0, export_every: {checkpoints: 6}}
sink:
  file: {path: %s, format: parquet}
`
	rest := fmt.Sprintf(steps, recs, filepath.Join(dir, "lists"))
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	backfill := write("backfill.yaml", fmt.Sprintf("name: recs-backfill\nparallelism: 2\nsource:\n  parquet: {path: %s}\n", files)+rest)
	kafkaJob := func(name, topic string) string {
		return write(name+".yaml", fmt.Sprintf(`name: %s
parallelism: 3
source:
  kafka:
    brokers: %s
    topic: %s
    start: earliest
    bounded: true
    max_batch_delay: 50ms
    fields:
      - {name: user_id, type: int64, required: true}
      - {name: item_id, type: int64, required: true}
      - {name: event_type, type: string, required: true}
`, name, brokers, topic)+rest)
	}
	sp := filepath.Join(dir, "sp")
	if code, stdout, errOut := runCLI(t, "backfill", "--progress", "never", "--savepoint", sp, backfill); code != exitOK {
		t.Fatalf("backfill --savepoint: exit %d, stdout %q\n%s", code, stdout, errOut)
	}
	c, err := checkpoint.Load(sp)
	if err != nil {
		t.Fatal(err)
	}
	spUsers, spItems, err := ml.ReadStoredFactors(context.Background(), c.RestoreState("recommend-1", 0, 1), c.Manifest.MaxParallelism)
	if err != nil {
		t.Fatal(err)
	}
	if len(spUsers) != 400 || len(spItems) == 0 {
		t.Fatalf("savepoint: factors of %d users and %d items, want the 400 users of the files", len(spUsers), len(spItems))
	}
	byID := func(m map[string][]float32) map[string][]float32 {
		out := map[string][]float32{}
		for k, v := range m {
			out[strconv.FormatInt(int64(binary.BigEndian.Uint64([]byte(k))^(1<<63)), 10)] = v
		}
		return out
	}
	spU, spI := byID(spUsers), byID(spItems)
	exported := func(want int64) (users, items map[string][]float32, m *ml.Manifest) {
		t.Helper()
		e, err := ml.OpenLatest(recs)
		if err != nil {
			t.Fatal(err)
		}
		if e.Version != want {
			t.Fatalf("LATEST names v%d, want v%d", e.Version, want)
		}
		read := func(d string) map[string][]float32 {
			f, err := e.ReadFactors(context.Background(), d, nil)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string][]float32{}
			for j, id := range f.IDs {
				out[id] = f.Factors[j*f.K : (j+1)*f.K]
			}
			return out
		}
		return read(ml.UserFactorsDir), read(ml.ItemFactorsDir), e.Manifest
	}
	sameBits := func(what string, got, want map[string][]float32) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
		}
		for id, w := range want {
			for j := range w {
				if g := got[id]; len(g) != len(w) || math.Float32bits(g[j]) != math.Float32bits(w[j]) {
					t.Fatalf("%s %s: %v, want %v bit for bit", what, id, g, w)
				}
			}
		}
	}
	// The stop barrier's version is the savepoint's model.
	u1, i1, _ := exported(1)
	sameBits("v1 user", u1, spU)
	sameBits("v1 item", i1, spI)

	code, _, errOut := runCLI(t, "run", "--progress", "never", "--checkpoint-dir", filepath.Join(dir, "ck-empty"), "--from", sp, kafkaJob("recs-empty", empty))
	if code != exitOK {
		t.Fatalf("run --from the savepoint over an empty topic: exit %d\n%s", code, errOut)
	}
	u2, i2, _ := exported(2)
	sameBits("restored user", u2, spU)
	sameBits("restored item", i2, spI)

	code, _, errOut = runCLI(t, "run", "--progress", "never", "--checkpoint-dir", filepath.Join(dir, "ck-live"), "--from", sp, kafkaJob("recs-live", live))
	if code != exitOK {
		t.Fatalf("run --from the savepoint over the topic: exit %d\n%s", code, errOut)
	}
	u3, _, m3 := exported(3)
	changed, same := 0, 0
	for id, w := range spU {
		n, _ := strconv.Atoi(id)
		d := false
		for j := range w {
			d = d || math.Float32bits(u3[id][j]) != math.Float32bits(w[j])
		}
		switch {
		case n >= 100 && d:
			t.Fatalf("user %s has no live interaction, yet its factor changed: %v -> %v", id, w, u3[id])
		case n < 100 && d:
			changed++
		case n >= 100:
			same++
		}
	}
	if changed < 90 || same != 300 {
		t.Fatalf("after the live interactions: %d of the 100 live users changed, %d of 300 others unchanged", changed, same)
	}
	if m3.InputRows != 21500 {
		t.Fatalf("v3 learned from %d interactions, want 20000 + 1500", m3.InputRows)
	}
	if strings.Contains(errOut, "ERROR") {
		t.Fatalf("errors logged:\n%s", errOut)
	}
}

// TestRecsHybrid: the hybrid source does both halves in one job: the
// files up to an event-time boundary, then the topic (bounded here, so
// the job ends): the streaming operator's model learns from every event
// of both, once, and the version it exports at the end says so.
func TestRecsHybrid(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	dir := t.TempDir()
	files := filepath.Join(dir, "files.parquet")
	stream := filepath.Join(dir, "stream.parquet")
	genFile(t, files, "--rows", "8000", "--seed", "41", "--users", "200", "--items", "150", "--latent-factors", "8",
		"--start", "2025-01-01T00:00:00Z", "--span", "24h")
	genFile(t, stream, "--rows", "2000", "--seed", "42", "--users", "200", "--items", "150", "--latent-factors", "8",
		"--start", "2025-01-02T00:00:00Z", "--span", "6h")
	topic := kafkatest.CreateTopic(t, brokers, "recs-hybrid", 2)
	if code, _, errOut := runCLI(t, "produce", "--brokers", brokers, "--topic", topic, "--key", "user_id", "--timestamp", "event_time",
		"--progress", "never", stream); code != exitOK {
		t.Fatal(errOut)
	}
	recs := filepath.Join(dir, "recs")
	jobFile := filepath.Join(dir, "hybrid.yaml")
	if err := os.WriteFile(jobFile, []byte(fmt.Sprintf(`name: recs-hybrid
parallelism: 2
source:
  hybrid:
    parquet: {path: %s}
    kafka:
      brokers: %s
      topic: %s
      start: earliest
      bounded: true
      max_batch_delay: 50ms
      fields:
        - {name: user_id, type: int64, required: true}
        - {name: item_id, type: int64, required: true}
        - {name: event_type, type: string, required: true}
        - {name: weight, type: float64, required: true}
        - {name: event_time, type: timestamp, required: true}
    boundary: {event_time: 2025-01-02T00:00:00Z, column: event_time}
steps:
  - recommend:
      user: user_id
      item: item_id
      factors: 8
      regularization: 1
      seed: 1
      k: 5
      export: {path: %s, embeddings: true}
      update: {every: 1000}
sink:
  file: {path: %s, format: parquet}
`, files, brokers, topic, recs, filepath.Join(dir, "lists"))), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "run", "--progress", "never", "--checkpoint-dir", filepath.Join(dir, "ck"), "--checkpoint-interval", "100ms", jobFile)
	if code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, errOut)
	}
	e, err := ml.OpenLatest(recs)
	if err != nil {
		t.Fatal(err)
	}
	// The boundary takes the files' events before it and the topic's
	// from it on (generated times jitter across it).
	want := oracle.DuckDBStrings(t, fmt.Sprintf(`SELECT (SELECT count(*) FROM read_parquet('%s') WHERE event_time < TIMESTAMPTZ '2025-01-02 00:00:00+00')
  + (SELECT count(*) FROM read_parquet('%s') WHERE event_time >= TIMESTAMPTZ '2025-01-02 00:00:00+00')`, files, stream))[0][0]
	if m := e.Manifest; fmt.Sprint(m.InputRows) != want || m.Users != 200 || m.Checkpoint != 0 {
		t.Fatalf("the version of the end: %d interactions of %d users (checkpoint %d), want %s of 200, published at the end",
			m.InputRows, m.Users, m.Checkpoint, want)
	}
}
