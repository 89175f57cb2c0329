package job_test

import (
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/job"
)

// TestNexmarkSourceErrors: a bad nexmark: source fails at parse time,
// naming the file and line.
func TestNexmarkSourceErrors(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown table", "source:\n  nexmark: {table: bids2}\nsink:\n  file: {path: OUT}\n", `nx.yaml:2: source: nexmark: unknown table "bids2"`},
		{"watermark block", "source:\n  nexmark: {table: bid}\n  watermark: {column: date_time}\nsink:\n  file: {path: OUT}\n", "nx.yaml:2: source: a nexmark source has its own watermark"},
		{"negative delay", "source:\n  nexmark:\n    table: bid\n    watermark_delay: -1s\nsink:\n  file: {path: OUT}\n", "nx.yaml:2: source: nexmark: watermark_delay -1s"},
		{"negative events", "source:\n  nexmark: {table: person, events: -5}\nsink:\n  file: {path: OUT}\n", "nx.yaml:2: source: nexmark: events -5"},
		{"unknown field", "source:\n  nexmark: {table: bid, evnts: 5}\nsink:\n  file: {path: OUT}\n", "evnts"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := job.Parse("nx.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want it to contain %q", err, c.want)
			}
		})
	}
	s, err := job.Parse("nx.yaml", []byte("source:\n  nexmark: {table: auction, events: 5000, watermark_delay: 0s}\nsink:\n  file: {path: OUT}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Source.Nexmark; n.Table != "auction" || n.Events != 5000 || n.WatermarkDelay == nil || *n.WatermarkDelay != 0 {
		t.Fatalf("parsed %+v", n)
	}
}

// TestNexmarkJoinWatermark: the generator has its own watermark, so a
// timed join over two unbounded nexmark: sources plans (its state is
// cleaned by that watermark), while a regular join there without ttl
// fails naming the join's line.
func TestNexmarkJoinWatermark(t *testing.T) {
	const dag = `sources:
  a: {nexmark: {table: auction}}
  b: {nexmark: {table: bid}}
steps:
  - name: j
    inputs: [a, b]
    join: %s
sinks:
  - file: {path: OUT}
`
	plan := func(join string) error {
		s, err := job.Parse("nx.yaml", []byte(strings.Replace(dag, "%s", join, 1)))
		if err != nil {
			return err
		}
		p, err := s.Plan(job.Options{Parallelism: 1, OutputDir: t.TempDir()})
		if err == nil {
			err = p.Abort()
		}
		return err
	}
	if err := plan("{type: interval, on: [[id, auction]], left_time: date_time, right_time: date_time, lower: 0s, upper: 1s}"); err != nil {
		t.Fatalf("interval join over unbounded nexmark sources: %v", err)
	}
	if err := plan("{type: window, on: [[id, auction]], left_time: date_time, right_time: date_time, size: 10s}"); err != nil {
		t.Fatalf("window join over unbounded nexmark sources: %v", err)
	}
	err := plan("{type: regular, on: [[id, auction]]}")
	if err == nil || !strings.Contains(err.Error(), "nx.yaml:7: step 1: join: a regular join without ttl") {
		t.Fatalf("regular join without ttl: got %v", err)
	}
}
