package job_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
)

// TestJoinStepDuckDB runs interval, window and regular join steps over two
// generated Parquet files at parallelism 1 and 3 (with source watermarks,
// the memory and the Pebble backend) and compares each output with
// DuckDB's SQL join of the same files.
func TestJoinStepDuckDB(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.parquet")
	for i, p := range []string{a, b} {
		if err := gen.WriteFile(context.Background(), p, gen.Options{Rows: int64(6_000 + 2_000*i), Users: 200, Items: 100, Seed: int64(21 + i), RowGroupRows: 1_500}, nil); err != nil {
			t.Fatal(err)
		}
	}
	cols := "l.user_id, l.item_id, l.event_type, l.weight, l.event_time, r.user_id, r.item_id, r.event_type, r.weight, r.event_time"
	from := fmt.Sprintf("read_parquet('%s') l JOIN read_parquet('%s') r", a, b)
	cases := []struct {
		name, join, sql string
	}{
		{"interval", "{type: interval, on: [[user_id, user_id]], left_time: event_time, right_time: event_time, lower: -20m, upper: 40m}",
			fmt.Sprintf("SELECT %s FROM %s ON l.user_id = r.user_id AND r.event_time BETWEEN l.event_time - INTERVAL 20 MINUTE AND l.event_time + INTERVAL 40 MINUTE", cols, from)},
		{"window", "{type: window, on: [[user_id, user_id]], left_time: event_time, right_time: event_time, size: 1h}",
			fmt.Sprintf("SELECT %s, time_bucket(INTERVAL 1 HOUR, l.event_time) AS ws, time_bucket(INTERVAL 1 HOUR, l.event_time) + INTERVAL 1 HOUR AS we FROM %s ON l.user_id = r.user_id AND time_bucket(INTERVAL 1 HOUR, l.event_time) = time_bucket(INTERVAL 1 HOUR, r.event_time)", cols, from)},
		{"regular", "{type: regular, on: [[user_id, user_id], [item_id, item_id]]}",
			fmt.Sprintf("SELECT %s FROM %s ON l.user_id = r.user_id AND l.item_id = r.item_id", cols, from)},
	}
	for _, c := range cases {
		want := canon(oracle.DuckDB(t, c.sql).Strings())
		if len(want) < 500 {
			t.Fatalf("%s: DuckDB joins only %d rows: the data exercise too little", c.name, len(want))
		}
		for _, p := range []int{1, 3} {
			for _, st := range []string{"", ", state: {backend: pebble, dir: " + filepath.Join(dir, "pebble") + "}"} {
				t.Run(fmt.Sprintf("%s/p=%d/pebble=%v", c.name, p, st != ""), func(t *testing.T) {
					out := filepath.Join(dir, fmt.Sprintf("%s-%d-%v", c.name, p, st != ""))
					yml := fmt.Sprintf(`name: join
sources:
  a: {parquet: {path: %s}, watermark: {column: event_time, max_out_of_orderness: 5s}}
  b: {parquet: {path: %s}, watermark: {column: event_time, max_out_of_orderness: 5s}}
steps:
  - name: j
    inputs: [a, b]
    join: %s
sinks:
  - file: {path: %s}
`, a, b, strings.TrimSuffix(c.join, "}")+st+"}", out)
					plan := runJob(t, yml, p)
					names := plan.OutputSchema().Fields()
					if names[5].Name != "right_user_id" || names[9].Name != "right_event_time" {
						t.Fatalf("output schema %v", plan.OutputSchema())
					}
					got := canon(oracle.DuckDB(t, fmt.Sprintf("SELECT * FROM read_parquet('%s/*.parquet')", out)).Strings())
					compareNamedRows(t, c.name, got, want)
				})
			}
		}
	}
}

// TestJoinStepErrors: a bad join step fails at parse or plan time naming
// its line.
func TestJoinStepErrors(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.parquet")
	if err := gen.WriteFile(context.Background(), a, gen.Options{Rows: 100, Users: 10, Items: 10, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	kafka := "{kafka: {brokers: 127.0.0.1:1, topic: t, format: json, fields: [{name: user_id, type: int64}, {name: event_time, type: timestamp}]}}"
	for _, c := range []struct {
		name, sources, join, inputs string
		line                        int
		want                        string
	}{
		{"types", "{parquet: {path: " + a + "}}", "{type: regular, on: [[user_id, weight]]}", "[a, b]", 8, "different types"},
		{"three inputs", "{parquet: {path: " + a + "}}", "{type: regular, on: [[user_id, user_id]]}", "[a, b, a]", 7, "name two inputs"},
		{"no ttl", kafka, "{type: regular, on: [[user_id, user_id]]}", "[a, b]", 8, "without ttl"},
		{"no watermark", kafka, "{type: interval, on: [[user_id, user_id]], left_time: event_time, right_time: event_time, lower: 0s, upper: 1s}", "[a, b]", 8, "no watermark"},
		{"no bounds", "{parquet: {path: " + a + "}}", "{type: interval, on: [[user_id, user_id]], left_time: event_time, right_time: event_time}", "[a, b]", 8, "needs lower and upper"},
		{"bad pair", "{parquet: {path: " + a + "}}", "{type: regular, on: [[user_id]]}", "[a, b]", 8, "pairs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			yml := fmt.Sprintf(`name: bad
sources:
  a: %s
  b: %s
steps:
  - name: j
    inputs: %s
    join: %s
sinks:
  - file: {path: %s}
`, c.sources, c.sources, c.inputs, c.join, filepath.Join(dir, "out"))
			spec, err := job.Parse("bad.yaml", []byte(yml))
			if err == nil {
				_, err = spec.Plan(job.Options{Parallelism: 1})
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), fmt.Sprintf("bad.yaml:%d", c.line)) {
				t.Fatalf("error %v, want one at bad.yaml:%d containing %q", err, c.line, c.want)
			}
		})
	}
}

// TestJoinCheckpointRestoreKafka runs each join over two Kafka topics with
// watermarks continuously, takes checkpoint 1 while it reads, crashes,
// and restores at another parallelism as a bounded run: the published
// output equals DuckDB's join of the rows produced, each pair once.
func TestJoinCheckpointRestoreKafka(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	dir := t.TempDir()
	files, topics := kafkaInputs(t, brokers, dir)
	cols := "l.user_id, l.item_id, l.event_type, l.weight, l.event_time, r.user_id, r.item_id, r.event_type, r.weight, r.event_time"
	from := fmt.Sprintf("read_parquet('%s') l JOIN read_parquet('%s') r", files[0], files[1])
	for _, c := range []struct {
		name, join, sql string
		p1, p2          int
	}{
		{"interval", "{type: interval, on: [[user_id, user_id]], left_time: event_time, right_time: event_time, lower: -20m, upper: 40m}",
			fmt.Sprintf("SELECT %s FROM %s ON l.user_id = r.user_id AND r.event_time BETWEEN l.event_time - INTERVAL 20 MINUTE AND l.event_time + INTERVAL 40 MINUTE", cols, from), 1, 3},
		{"window", "{type: window, on: [[user_id, user_id]], left_time: event_time, right_time: event_time, size: 1h, slide: 30m}",
			fmt.Sprintf(`SELECT %s, w AS ws, w + INTERVAL 1 HOUR AS we FROM %s ON l.user_id = r.user_id,
  (SELECT unnest([time_bucket(INTERVAL 30 MINUTE, l.event_time), time_bucket(INTERVAL 30 MINUTE, l.event_time) - INTERVAL 30 MINUTE]) AS w)
  WHERE r.event_time >= w AND r.event_time < w + INTERVAL 1 HOUR`, cols, from), 3, 2},
		{"regular", "{type: regular, on: [[user_id, user_id], [item_id, item_id]], ttl: 24h, state: {backend: pebble, dir: " + filepath.Join(dir, "pebble") + "}}",
			fmt.Sprintf("SELECT %s FROM %s ON l.user_id = r.user_id AND l.item_id = r.item_id", cols, from), 2, 1},
	} {
		t.Run(fmt.Sprintf("%s/p=%d-to-%d", c.name, c.p1, c.p2), func(t *testing.T) {
			want := canon(oracle.DuckDB(t, c.sql).Strings())
			out := filepath.Join(dir, "out-"+c.name)
			yml := func(bounded bool) string {
				src := func(topic string) string {
					return fmt.Sprintf("\n    kafka:\n      brokers: %q\n      topic: %s\n      bounded: %v\n      max_batch_rows: 100\n      start: earliest", brokers, topic, bounded) +
						indent(kafkaFields) + "\n    watermark: {column: event_time, max_out_of_orderness: 5s}"
				}
				return fmt.Sprintf(`name: join-ck
sources:
  a:%s
  b:%s
steps:
  - name: j
    inputs: [a, b]
    join: %s
sinks:
  - file: {path: %s, format: parquet}
`, src(topics[0]), src(topics[1]), c.join, out)
			}
			crashRestore(t, yml, c.p1, c.p2)
			got := canon(oracle.DuckDB(t, fmt.Sprintf("SELECT * FROM read_parquet('%s/*.parquet')", out)).Strings())
			compareNamedRows(t, c.name, got, want)
		})
	}
}

// TestLookupJoinStep runs a linear job with a lookup join against a
// Parquet table (and a filter and a projection after it on table columns:
// neither may narrow what the source reads) at p=1 and 3, compared with
// DuckDB.
func TestLookupJoinStep(t *testing.T) {
	oracle.Python(t)
	dir := t.TempDir()
	events, dims := filepath.Join(dir, "events.parquet"), filepath.Join(dir, "dims.parquet")
	if err := gen.WriteFile(context.Background(), events, gen.Options{Rows: 20_000, Users: 300, Items: 150, Seed: 4, RowGroupRows: 3_000}, nil); err != nil {
		t.Fatal(err)
	}
	// The table: one row per (item, event type) of a smaller generated file.
	oracle.DuckDB(t, fmt.Sprintf(`COPY (SELECT item_id AS id, event_type AS kind, count(*) AS n FROM read_parquet('%s') GROUP BY ALL)
TO '%s' (FORMAT parquet)`, events, dims))
	want := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT e.user_id, d.kind, d.n * 2 AS n2
FROM read_parquet('%s') e JOIN read_parquet('%s') d ON e.item_id = d.id WHERE d.kind = 'purchase' AND e.weight > 1`, events, dims)).Strings())
	if len(want) < 1000 {
		t.Fatalf("DuckDB joins only %d rows", len(want))
	}
	want2 := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT e.user_id, e.weight FROM read_parquet('%s') e JOIN read_parquet('%s') d ON e.item_id = d.id WHERE e.weight > 1`, events, dims)).Strings())
	bad := fmt.Sprintf("name: bad\nsource: {parquet: {path: %s}}\nsteps:\n  - join: {type: lookup, table: %s, on: [[item_id, kind]]}\nsink: {file: {path: %s}}\n", events, dims, dir)
	spec, err := job.Parse("bad.yaml", []byte(bad))
	if err == nil {
		_, err = spec.Plan(job.Options{Parallelism: 1})
	}
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:4") || !strings.Contains(err.Error(), "different types") {
		t.Fatalf("lookup on columns of different types: error %v, want one at bad.yaml:4", err)
	}
	for _, p := range []int{1, 3} {
		t.Run(fmt.Sprintf("p=%d", p), func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("out-%d", p))
			yml := fmt.Sprintf(`name: lookup
source: {parquet: {path: %s}}
steps:
  - filter: "weight > 1"
  - join: {type: lookup, table: %s, on: [[item_id, id]]}
  - filter: "kind = 'purchase'"
  - project: {user_id: user_id, kind: kind, n2: "n * 2"}
sink: {file: {path: %s}}
`, events, dims, out)
			runJob(t, yml, p)
			got := canon(oracle.DuckDB(t, fmt.Sprintf("SELECT * FROM read_parquet('%s/*.parquet')", out)).Strings())
			compareNamedRows(t, "lookup", got, want)
			// Only source columns after the join: the source must still
			// read the join's key.
			out2 := out + "-src"
			yml = fmt.Sprintf(`name: lookup
source: {parquet: {path: %s}}
steps:
  - filter: "weight > 1"
  - join: {type: lookup, table: %s, on: [[item_id, id]]}
  - project: {user_id: user_id, w: weight}
sink: {file: {path: %s}}
`, events, dims, out2)
			runJob(t, yml, p)
			got = canon(oracle.DuckDB(t, fmt.Sprintf("SELECT * FROM read_parquet('%s/*.parquet')", out2)).Strings())
			compareNamedRows(t, "lookup, source columns", got, want2)
		})
	}
}
