package job_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/job"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/errors.golden")

// errorCases are job files that must be rejected before anything runs. The
// expected messages live in testdata/errors.golden, checked by eye.
var errorCases = []struct{ name, yaml string }{
	{"empty", ``},
	{"not yaml", "name: [unclosed\n"},
	{"unknown top-level key", "name: x\nsorce:\n  parquet: {path: IN}\n"},
	{"no source", "name: x\nsink:\n  file: {path: OUT}\n"},
	{"no sink", "name: x\nsource:\n  parquet: {path: IN}\n"},
	{"unknown source kind", "source:\n  orc: {path: IN}\nsink:\n  file: {path: OUT}\n"},
	{"csv source without columns", "source:\n  csv: {path: IN}\nsink:\n  file: {path: OUT}\n"},
	{"unknown source field", "source:\n  parquet:\n    path: IN\n    colums: [a]\nsink:\n  file: {path: OUT}\n"},
	{"missing input file", "source:\n  parquet: {path: DIR/nope.parquet}\nsink:\n  file: {path: OUT}\n"},
	{"unknown step", "source:\n  parquet: {path: IN}\nsteps:\n  - order_by: [a]\nsink:\n  file: {path: OUT}\n"},
	{"filter parse error", "source:\n  parquet: {path: IN}\nsteps:\n  - filter: \"weight > \"\nsink:\n  file: {path: OUT}\n"},
	{"filter unknown column", "source:\n  parquet: {path: IN}\nsteps:\n  - filter: \"wieght > 1\"\nsink:\n  file: {path: OUT}\n"},
	{"filter type error", "source:\n  parquet: {path: IN}\nsteps:\n  - project:\n      u: user_id\n  - filter: \"u = 'x'\"\nsink:\n  file: {path: OUT}\n"},
	{"filter not boolean", "source:\n  parquet: {path: IN}\nsteps:\n  - filter: \"weight * 2\"\nsink:\n  file: {path: OUT}\n"},
	{"project unknown column", "source:\n  parquet: {path: IN}\nsteps:\n  - project:\n      a: user_id\n      b: nope + 1\nsink:\n  file: {path: OUT}\n"},
	{"bad aggregate", "source:\n  parquet: {path: IN}\nsteps:\n  - aggregate:\n      group_by: [item_id]\n      aggs: [\"mode(weight)\"]\nsink:\n  file: {path: OUT}\n"},
	{"quantile q outside [0,1]", "source:\n  parquet: {path: IN}\nsteps:\n  - aggregate:\n      group_by: [item_id]\n      aggs: [\"quantile(weight, 1.5)\"]\nsink:\n  file: {path: OUT}\n"},
	{"quantile q not a constant", "source:\n  parquet: {path: IN}\nsteps:\n  - aggregate:\n      group_by: [item_id]\n      aggs: [\"quantile(weight, weight)\"]\nsink:\n  file: {path: OUT}\n"},
	{"median of string", "source:\n  parquet: {path: IN}\nsteps:\n  - aggregate:\n      group_by: [item_id]\n      aggs: [\"median(event_type)\"]\nsink:\n  file: {path: OUT}\n"},
	{"arg_max with one argument", "source:\n  parquet: {path: IN}\nsteps:\n  - aggregate:\n      group_by: [item_id]\n      aggs: [\"arg_max(weight)\"]\nsink:\n  file: {path: OUT}\n"},
	{"arg_max with three arguments", "source:\n  parquet: {path: IN}\nsteps:\n  - aggregate:\n      group_by: [item_id]\n      aggs: [\"arg_max(user_id, event_time, weight)\"]\nsink:\n  file: {path: OUT}\n"},
	{"first without ordering column", "source:\n  parquet: {path: IN}\nsteps:\n  - aggregate:\n      group_by: [item_id]\n      aggs: [\"first(weight)\"]\nsink:\n  file: {path: OUT}\n"},
	{"list with FILTER", "source:\n  parquet: {path: IN}\nsteps:\n  - aggregate:\n      group_by: [item_id]\n      aggs: [\"list(weight) FILTER (WHERE weight > 1)\"]\nsink:\n  file: {path: OUT}\n"},
	{"window first of a string", "source:\n  parquet: {path: IN}\n  watermark: {column: event_time, max_out_of_orderness: 1s}\nsteps:\n  - window:\n      type: tumbling\n      size: 1m\n      time: event_time\n      aggs: [\"first(event_type)\"]\nsink:\n  file: {path: OUT}\n"},
	{"window quantile q outside [0,1]", "source:\n  parquet: {path: IN}\n  watermark: {column: event_time, max_out_of_orderness: 1s}\nsteps:\n  - window:\n      type: tumbling\n      size: 1m\n      time: event_time\n      aggs: [\"quantile(weight, -0.5)\"]\nsink:\n  file: {path: OUT}\n"},
	{"sum of string", "source:\n  parquet: {path: IN}\nsteps:\n  - aggregate:\n      group_by: [item_id]\n      aggs: [\"sum(event_type)\"]\nsink:\n  file: {path: OUT}\n"},
	{"unknown group column", "source:\n  parquet: {path: IN}\nsteps:\n  - aggregate:\n      group_by: [itme_id]\n      aggs: [\"count(*)\"]\nsink:\n  file: {path: OUT}\n"},
	{"bad sink format", "source:\n  parquet: {path: IN}\nsink:\n  file: {path: OUT, format: xlsx}\n"},
	{"bad part size", "source:\n  parquet: {path: IN}\nsink:\n  file: {path: OUT, part_size: lots}\n"},
	{"kafka without brokers", "source:\n  kafka:\n    topic: events\n    fields: [{name: a, type: int64}]\nsink:\n  file: {path: OUT}\n"},
	{"kafka unknown field type", "source:\n  kafka:\n    brokers: 127.0.0.1:1\n    topic: events\n    fields: [{name: a, type: decimal}]\nsink:\n  file: {path: OUT}\n"},
	{"hybrid without boundary", "source:\n  hybrid:\n    parquet: {path: IN}\n    kafka: {topic: events}\nsink:\n  file: {path: OUT}\n"},
	{"two sources", "source:\n  parquet: {path: IN}\n  kafka: {topic: events}\nsink:\n  file: {path: OUT}\n"},
	{"negative parallelism", "parallelism: -1\nsource:\n  parquet: {path: IN}\nsink:\n  file: {path: OUT}\n"},
	{"negative roll interval", "source:\n  parquet: {path: IN}\nsink:\n  file:\n    path: OUT\n    roll_interval: -1m\n"},
	{"bad roll interval", "source:\n  parquet: {path: IN}\nsink:\n  file:\n    path: OUT\n    roll_interval: soon\n"},
	{"kafka sink bad delivery", "source:\n  parquet: {path: IN}\nsink:\n  kafka:\n    brokers: 127.0.0.1:1\n    topic: out\n    delivery: twice\n"},
	{"kafka sink negative transaction timeout", "source:\n  parquet: {path: IN}\nsink:\n  kafka:\n    brokers: 127.0.0.1:1\n    topic: out\n    delivery: exactly-once\n    transaction_timeout: -1s\n"},
	{"kafka sink exactly-once without checkpoints", "source:\n  parquet: {path: IN}\nsink:\n  kafka:\n    brokers: 127.0.0.1:1\n    topic: out\n    delivery: exactly-once\n"},
	{"kafka source bad isolation", "source:\n  kafka:\n    brokers: 127.0.0.1:1\n    topic: events\n    isolation: serializable\n    fields: [{name: a, type: int64}]\nsink:\n  file: {path: OUT}\n"},
	{"sort over an unbounded source", "source:\n  kafka:\n    brokers: 127.0.0.1:1\n    topic: events\n    fields: [{name: a, type: int64}]\nsteps:\n  - filter: \"a > 1\"\n  - sort: [a DESC]\nsink:\n  file: {path: OUT}\n"},
	{"limit over an unbounded source in a DAG", "sources:\n  k:\n    kafka:\n      brokers: 127.0.0.1:1\n      topic: events\n      fields: [{name: a, type: int64}]\nsteps:\n  - limit: 3\nsinks:\n  - file: {path: OUT}\n"},
	{"bad sort key", "source:\n  parquet: {path: IN}\nsteps:\n  - sort: [weight DOWN]\nsink:\n  file: {path: OUT}\n"},
	{"sort unknown column", "source:\n  parquet: {path: IN}\nsteps:\n  - sort:\n      - user_id\n      - wieght DESC\nsink:\n  file: {path: OUT}\n"},
	{"negative limit", "source:\n  parquet: {path: IN}\nsteps:\n  - limit: -1\nsink:\n  file: {path: OUT}\n"},
	{"distinct not a list", "source:\n  parquet: {path: IN}\nsteps:\n  - distinct: user_id\nsink:\n  file: {path: OUT}\n"},
	{"distinct unknown column", "source:\n  parquet: {path: IN}\nsteps:\n  - distinct: [user_id, usr]\nsink:\n  file: {path: OUT}\n"},
	{"unnest not a list", "source:\n  parquet: {path: IN}\nsteps:\n  - unnest: weight\nsink:\n  file: {path: OUT}\n"},
	{"csv options on a parquet sink", "source:\n  parquet: {path: IN}\nsink:\n  file:\n    path: OUT\n    csv: {delimiter: \";\"}\n"},
	{"csv delimiter too long", "source:\n  parquet: {path: IN}\nsink:\n  file:\n    path: OUT\n    format: csv\n    csv: {delimiter: \"::\"}\n"},
	{"csv delimiter a digit", "source:\n  parquet: {path: IN}\nsink:\n  file:\n    path: OUT\n    format: csv\n    csv: {delimiter: \"1\"}\n"},
	{"dag cycle", "sources:\n  a: {parquet: {path: IN}}\nsteps:\n  - name: x\n    union: {}\n    inputs: [a, y]\n  - name: y\n    filter: \"weight > 1\"\n    inputs: [x]\nsinks:\n  - {from: y, file: {path: OUT}}\n"},
	{"dag unknown input", "sources:\n  a: {parquet: {path: IN}}\nsteps:\n  - name: x\n    filter: \"weight > 1\"\n    inputs: [b]\nsinks:\n  - file: {path: OUT}\n"},
	{"join keys of different types", "sources:\n  a: {parquet: {path: IN}}\n  b: {parquet: {path: IN}}\nsteps:\n  - name: j\n    inputs: [a, b]\n    join: {type: regular, on: [[user_id, event_type]]}\nsinks:\n  - file: {path: OUT}\n"},
	{"regular join without ttl over unbounded input", "sources:\n  a: {nexmark: {table: auction}}\n  b: {nexmark: {table: bid}}\nsteps:\n  - name: j\n    inputs: [a, b]\n    join: {type: regular, on: [[id, auction]]}\nsinks:\n  - file: {path: OUT}\n"},
	{"interval join over unbounded input without watermark", "sources:\n  a:\n    kafka:\n      brokers: 127.0.0.1:1\n      topic: events\n      fields: [{name: k, type: int64}, {name: t, type: timestamp}]\n  b: {nexmark: {table: bid}}\nsteps:\n  - name: j\n    inputs: [a, b]\n    join: {type: interval, on: [[k, auction]], left_time: t, right_time: date_time, lower: 0s, upper: 1s}\nsinks:\n  - file: {path: OUT}\n"},
	{"window_max without size", "source:\n  parquet: {path: IN}\nsteps:\n  - window_max: {time: event_time, by: weight}\nsink:\n  file: {path: OUT}\n"},
	{"window_max by a string", "source:\n  parquet: {path: IN}\nsteps:\n  - window_max: {size: 1m, time: event_time, by: event_type}\nsink:\n  file: {path: OUT}\n"},
	{"window_max over an unbounded source without watermark", "source:\n  kafka:\n    brokers: 127.0.0.1:1\n    topic: events\n    fields: [{name: v, type: int64}, {name: t, type: timestamp}]\nsteps:\n  - window_max: {size: 1m, time: t, by: v}\nsink:\n  file: {path: OUT}\n"},
	{"last_n over a string", "source:\n  parquet: {path: IN}\nsteps:\n  - last_n: {key: [user_id], order_by: [event_time], n: 10, aggs: [\"avg(event_type) AS a\"]}\nsink:\n  file: {path: OUT}\n"},
	{"last_n of an expression", "source:\n  parquet: {path: IN}\nsteps:\n  - last_n:\n      key: [user_id]\n      order_by: [event_time]\n      n: 10\n      aggs: [\"avg(weight * 2) AS a\"]\nsink:\n  file: {path: OUT}\n"},
	{"last_n without n", "source:\n  parquet: {path: IN}\nsteps:\n  - last_n: {key: [user_id], order_by: [event_time], aggs: [\"count(*) AS c\"]}\nsink:\n  file: {path: OUT}\n"},
	{"negative roll checkpoints", "source:\n  parquet: {path: IN}\nsink:\n  file:\n    path: OUT\n    roll_checkpoints: -2\n"},
	{"partition_by unknown column", "source:\n  parquet: {path: IN}\nsink:\n  file:\n    path: OUT\n    format: csv\n    partition_by: [event_type, evnt]\n"},
	{"partition_by a float column", "source:\n  parquet: {path: IN}\nsteps:\n  - filter: \"weight > 1\"\nsinks:\n  - file: {path: OUT}\n  - file:\n      path: DIR/b\n      partition_by: [weight]\n"},
	{"partition_by a timestamp column", "source:\n  parquet: {path: IN}\nsink:\n  file:\n    path: OUT\n    partition_by:\n      - event_time\n"},
	{"partition_by every column", "source:\n  parquet: {path: IN}\nsteps:\n  - project: {e: event_type}\nsink:\n  file: {path: OUT, partition_by: [e]}\n"},
	{"partition_by empty", "source:\n  parquet: {path: IN}\nsink:\n  file: {path: OUT, partition_by: []}\n"},
	{"partition_by twice the same column", "source:\n  parquet: {path: IN}\nsink:\n  file: {path: OUT, partition_by: [user_id, user_id]}\n"},
	{"max_open_partitions without partition_by", "source:\n  parquet: {path: IN}\nsink:\n  file: {path: OUT, max_open_partitions: 10}\n"},
	{"single_file with partition_by", "source:\n  parquet: {path: IN}\nsink:\n  file:\n    path: OUT\n    partition_by: [event_type]\n    single_file: true\n"},
	{"single_file with prefix", "source:\n  parquet: {path: IN}\nsink:\n  file:\n    path: OUT/x.parquet\n    prefix: p\n    single_file: true\n"},
	{"single_file of an unbounded job", "source:\n  kafka:\n    brokers: 127.0.0.1:1\n    topic: events\n    fields: [{name: a, type: int64}]\nsink:\n  file:\n    path: OUT/x.parquet\n    single_file: true\n"},
}

// TestExactlyOnceTimeoutVsInterval: an exactly-once Kafka sink whose
// transaction timeout is not twice the checkpoint interval fails at plan
// time, naming the transaction_timeout line (or delivery's when the
// timeout is the default), before any broker is contacted.
func TestExactlyOnceTimeoutVsInterval(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	if err := gen.WriteFile(context.Background(), in, gen.Options{Rows: 10, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		timeout  string
		interval time.Duration
		want     string
	}{
		{"    transaction_timeout: 1m\n", 40 * time.Second, "job.yaml:8: sink: kafka: topic \"out\": transaction_timeout 1m0s is shorter than twice the checkpoint interval 40s"},
		{"", 10 * time.Minute, "job.yaml:7: sink: kafka: topic \"out\": transaction_timeout 15m0s is shorter than twice the checkpoint interval 10m0s"},
	} {
		y := fmt.Sprintf("source:\n  parquet: {path: %s}\nsink:\n  kafka:\n    brokers: 127.0.0.1:1\n    topic: out\n    delivery: exactly-once\n%s", in, c.timeout)
		spec, err := job.Parse("job.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		_, err = spec.Plan(job.Options{Checkpointed: true, CheckpointInterval: c.interval})
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("interval %v, timeout %q: got %v, want %s...", c.interval, c.timeout, err, c.want)
		}
	}
}

func TestErrorMessagesGolden(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	if err := gen.WriteFile(context.Background(), in, gen.Options{Rows: 1000, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range errorCases {
		y := strings.NewReplacer("IN", in, "OUT", filepath.Join(dir, "out"), "DIR", dir).Replace(c.yaml)
		var err error
		spec, err := job.Parse("job.yaml", []byte(y))
		if err == nil {
			_, err = spec.Plan(job.Options{})
		}
		msg := "<no error>"
		if err != nil {
			msg = strings.ReplaceAll(err.Error(), dir, "$TMP")
		}
		fmt.Fprintf(&b, "# %s\n%s\n\n", c.name, msg)
	}
	golden := filepath.Join("testdata", "errors.golden")
	if *rewrite {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -rewrite to create it)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("error messages changed (run with -rewrite and review the diff):\n%s", got)
	}
}

// TestUnknownKeySuggestions checks typical typos in every kind of block:
// the answer names the YAML line and the key meant (hand-written pairs: the
// keys the message lists come from the structs' tags, the meaning does not).
func TestUnknownKeySuggestions(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"source:\n  parquet: {path: in.parquet}\nsteps:\n  - aggregate: {group-by: [k], aggs: [\"count(*) AS n\"]}\nsink:\n  file: {path: out}\n",
			`j.yaml:4: unknown key "group-by"; did you mean "group_by"?`},
		{"source:\n  parquet: {path: in.parquet, batchsize: 10}\nsink:\n  file: {path: out}\n",
			`j.yaml:2: unknown key "batchsize"; did you mean "batch_size"?`},
		{"source:\n  kafka: {brokers: b, topic: t, Group_ID: g}\nsink:\n  file: {path: out}\n",
			`j.yaml:2: unknown key "Group_ID"; did you mean "group_id"?`},
		{"source:\n  parquet: {path: in.parquet}\nsink:\n  file: {path: out, roll-interval: 1m}\n",
			`j.yaml:4: unknown key "roll-interval"; did you mean "roll_interval"?`},
		{"source:\n  parquet: {path: in.parquet}\nsteps:\n  - window: {type: tumbling, size: 1m, time: t, agg: [\"count(*) AS n\"]}\nsink:\n  file: {path: out}\n",
			`j.yaml:4: unknown key "agg"; did you mean "aggs"?`},
		{"source:\n  kafka:\n    brokers: [b]\n    topic: t\n    Group_ID: g\nsink:\n  file: {path: out}\n",
			`j.yaml:3: a list where a string is wanted; line 5: unknown key "Group_ID"; did you mean "group_id"?`},
		{"source:\n  parquet: {path: in.parquet}\nsink:\n  file: {path: out, zzz: 1}\n",
			`j.yaml:4: unknown key "zzz" (want one of: path, format,`},
	}
	for _, c := range cases {
		_, err := job.Parse("j.yaml", []byte(c.yaml))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant prefix %s", c.yaml, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "struct {") {
			t.Errorf("%q: a Go type in the message: %v", c.yaml, err)
		}
	}
}
