package job

import (
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/examples"
)

// TestHandoverExamples: the example pair parses, shares its job
// fingerprint (steps and sink) and differs in its source fingerprint, so
// the live job restores the backfill's savepoint with a fresh source.
func TestHandoverExamples(t *testing.T) {
	var fps [2]Fingerprints
	for i, name := range []string{"item-hours-backfill.yaml", "item-hours-live.yaml"} {
		data, err := examples.Jobs.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(name, data); err != nil {
			t.Fatal(err)
		}
		if fps[i], err = FingerprintsOf(data); err != nil {
			t.Fatal(err)
		}
	}
	if fps[0].Job != fps[1].Job {
		t.Errorf("job fingerprints differ: %s vs %s", fps[0].Job, fps[1].Job)
	}
	if fps[0].Source == fps[1].Source {
		t.Errorf("source fingerprints equal: %s", fps[0].Source)
	}
}

// TestFingerprints: each edit of a job file changes exactly the
// fingerprints its doc says it changes.
func TestFingerprints(t *testing.T) {
	const base = `name: fp
parallelism: 2
source:
  kafka: {brokers: [127.0.0.1:9092], topic: events, format: json, bounded: false, max_batch_rows: 1000}
  watermark: {column: event_time, max_out_of_orderness: 10s}
steps:
  - filter: "weight > 1"
  - aggregate: {group_by: [item_id], aggs: ["count(*) AS n"]}
sink:
  file: {path: out, format: parquet}
`
	want, err := FingerprintsOf([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if want.Job == "" || want.Source == "" || want.Job == want.Source {
		t.Fatalf("fingerprints %+v", want)
	}
	cases := []struct {
		name, from, to string
		job, source    bool // which fingerprint changes
	}{
		{"comment and layout", "steps:\n", "# the steps\nsteps:\n\n", false, false},
		{"name", "name: fp", "name: other", false, false},
		{"parallelism", "parallelism: 2", "parallelism: 7", false, false},
		{"bounded", "bounded: false", "bounded: true", false, false},
		{"batch rows", "max_batch_rows: 1000", "max_batch_rows: 5", false, false},
		{"flow style", `{group_by: [item_id], aggs: ["count(*) AS n"]}`, "\n      group_by: [item_id]\n      aggs: [\"count(*) AS n\"]", false, false},
		{"filter", "weight > 1", "weight > 2", true, false},
		{"sink", "format: parquet", "format: jsonl", true, false},
		{"topic", "topic: events", "topic: clicks", false, true},
		{"watermark", "10s", "20s", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			edited := strings.Replace(base, c.from, c.to, 1)
			if edited == base {
				t.Fatalf("%q not in the job", c.from)
			}
			got, err := FingerprintsOf([]byte(edited))
			if err != nil {
				t.Fatal(err)
			}
			if (got.Job != want.Job) != c.job || (got.Source != want.Source) != c.source {
				t.Fatalf("job changed %v (want %v), source changed %v (want %v)", got.Job != want.Job, c.job, got.Source != want.Source, c.source)
			}
		})
	}
	if _, err := FingerprintsOf([]byte("steps: [")); err == nil {
		t.Fatal("malformed YAML fingerprinted")
	}
}
