package job_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/job"
)

// TestWindowWithoutWatermark: a window step over an unbounded source
// without a watermark would never fire, so planning refuses it, naming the
// step's line; over a bounded source its windows all fire at the end of
// input, so planning warns (slog, with the line) and goes on; with a
// watermark nothing is said. Planning refuses before it contacts a broker.
func TestWindowWithoutWatermark(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	if err := gen.WriteFile(context.Background(), in, gen.Options{Rows: 1000, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	const kafkaSrc = "  kafka:\n    brokers: 127.0.0.1:1\n    topic: events\n    fields: [{name: item_id, type: int64}, {name: event_time, type: timestamp}]\n"
	const steps = "steps:\n  - filter: \"item_id > 0\"\n  - window: {type: tumbling, size: 10m, key: [item_id], time: event_time, aggs: [\"count(*) AS n\"]}\nsink:\n  file: {path: " + "OUT}\n"
	const wm = "  watermark: {column: event_time, max_out_of_orderness: 5s}\n"
	for _, c := range []struct {
		name, source string
		err, warn    string // substrings; "" for none
	}{
		{"kafka", kafkaSrc, "w.yaml:9: step 2: window: the source is unbounded and has no watermark, so its windows would never fire; add source.watermark: {column: event_time", ""},
		{"kafka-wm-without-column", kafkaSrc + "  watermark: {max_out_of_orderness: 5s}\n", "w.yaml:10: step 2: window: the source is unbounded and has no watermark", ""},
		{"hybrid", "  hybrid:\n    parquet: {path: IN}\n    kafka: {brokers: 127.0.0.1:1, topic: events, fields: [{name: item_id, type: int64}, {name: event_time, type: timestamp}]}\n    boundary: {event_time: 2025-01-01T00:00:00Z}\n",
			"w.yaml:9: step 2: window: the source is unbounded and has no watermark", ""},
		{"parquet", "  parquet: {path: IN}\n", "", "w.yaml:6"},
		{"parquet-wm", "  parquet: {path: IN}\n" + wm, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			y := strings.NewReplacer("IN", in, "OUT", filepath.Join(dir, "out-"+c.name)).Replace("name: w\nsource:\n" + c.source + steps)
			spec, err := job.Parse("w.yaml", []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			_, err = spec.Plan(job.Options{Logger: log})
			if c.err != "" {
				var je *job.Error
				if !errors.As(err, &je) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want a *job.Error containing %q\n%s", err, c.err, y)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var warns []map[string]any
			for _, line := range bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte("\n")) {
				if len(line) == 0 {
					continue
				}
				var rec map[string]any
				if err := json.Unmarshal(line, &rec); err != nil {
					t.Fatal(err)
				}
				if rec["level"] == "WARN" {
					warns = append(warns, rec)
				}
			}
			if c.warn == "" {
				if len(warns) != 0 {
					t.Fatalf("warnings with a watermark: %v", warns)
				}
				return
			}
			if len(warns) != 1 || warns[0]["at"] != c.warn || !strings.Contains(warns[0]["msg"].(string), "without a watermark") {
				t.Fatalf("warnings %v, want one at %s\n%s", warns, c.warn, y)
			}
		})
	}
}
