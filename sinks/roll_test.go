package sinks_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riffle-dev/riffle/sinks"
)

// fakeClock is a FileOptions.Clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// logLines collects the Info lines a sink logs, as JSON objects.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// published returns the "published part" lines: path -> the line.
func (l *logLines) published(t *testing.T) map[string]map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "sinks: published part" {
			out[m["path"].(string)] = m
		}
	}
	return out
}

// visible lists the published parts of dir (names readers see).
func visible(t *testing.T, dir string, f sinks.Format) []string {
	t.Helper()
	var out []string
	for _, n := range listDir(t, dir) {
		if !strings.HasPrefix(n, ".") && !strings.HasPrefix(n, "_") && strings.HasSuffix(n, "."+f.Ext()) {
			out = append(out, n)
		}
	}
	return out
}

// TestRollIntervalCheckpoints: with checkpoints and a part size the output
// never reaches, a part open for RollInterval (a fake clock) is closed at
// the next barrier and published when that checkpoint completes, not
// before; one that is not due stays open (and, Parquet, carried) across
// barriers; a barrier with no rows since the last roll publishes nothing
// (no empty parts). Every published part is logged with its path, rows and
// bytes, and the published rows are exactly the rows before the barrier
// that rolled them. RollCheckpoints rolls at every Nth barrier a part spans.
func TestRollIntervalCheckpoints(t *testing.T) {
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV, sinks.JSONL} {
		for _, byCount := range []bool{false, true} {
			name := string(f) + "/interval"
			if byCount {
				name = string(f) + "/checkpoints"
			}
			t.Run(name, func(t *testing.T) {
				mem, schema, rows, segs := segmentedInput(t, 11, uint64(len(f)), 1200, 6)
				dir := t.TempDir()
				clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
				logs := &logLines{}
				opts := twoPhaseOpts(dir, f)
				opts.PartSize = 1 << 30
				opts.Clock = clock.Now
				opts.Logger = logs.logger()
				if byCount {
					opts.RollCheckpoints = 2
				} else {
					opts.RollInterval = time.Minute
				}
				r, err := openSink(t, opts, mem, schema, 0, 1, nil)
				if err != nil {
					t.Fatal(err)
				}
				per := (len(rows) + len(segs) - 1) / len(segs)
				upTo := func(seg int) [][]any { return rows[:min(seg*per, len(rows))] }

				// Checkpoint 1: the part is 30 s old (1 barrier): not due.
				r.process(segs[0])
				clock.Advance(30 * time.Second)
				blob := r.snapshot(1)
				if err := r.notify(1); err != nil {
					t.Fatal(err)
				}
				if v := visible(t, dir, f); len(v) != 0 {
					t.Fatalf("published %v before the part was due", v)
				}
				if f == sinks.Parquet && len(carriedRows(t, mem, blob)) == 0 && len(openParts(t, blob)) == 0 {
					t.Fatalf("checkpoint 1 holds neither an open part nor carried rows")
				}

				// Checkpoint 2: 61 s old, second barrier: due either way.
				r.process(segs[1])
				clock.Advance(31 * time.Second)
				blob = r.snapshot(2)
				if v := visible(t, dir, f); len(v) != 0 {
					t.Fatalf("published %v before checkpoint 2 completed", v)
				}
				if len(openParts(t, blob)) != 0 || len(carriedRows(t, mem, blob)) != 0 {
					t.Fatalf("checkpoint 2 still holds an open part or carried rows after the roll")
				}
				if err := r.notify(2); err != nil {
					t.Fatal(err)
				}
				if v := visible(t, dir, f); len(v) != 1 {
					t.Fatalf("after checkpoint 2 completed: published %v, want 1 part", v)
				}
				checkPublishedRows(t, mem, dir, f, upTo(2))

				// Checkpoint 3: no rows since the roll: nothing to roll.
				clock.Advance(2 * time.Minute)
				r.snapshot(3)
				if err := r.notify(3); err != nil {
					t.Fatal(err)
				}
				if v := visible(t, dir, f); len(v) != 1 {
					t.Fatalf("a barrier without rows published %v", v)
				}

				// Checkpoints 4 and 5: a new part, due at the second.
				r.process(segs[2])
				r.snapshot(4)
				if err := r.notify(4); err != nil {
					t.Fatal(err)
				}
				if v := visible(t, dir, f); len(v) != 1 {
					t.Fatalf("checkpoint 4 published %v: the new part is not due", v)
				}
				r.process(segs[3])
				clock.Advance(time.Minute)
				r.snapshot(5)
				if err := r.notify(5); err != nil {
					t.Fatal(err)
				}
				if v := visible(t, dir, f); len(v) != 2 {
					t.Fatalf("after checkpoint 5: published %v, want 2 parts", v)
				}
				checkPublishedRows(t, mem, dir, f, upTo(4))

				r.process(segs[4])
				r.process(segs[5])
				r.finish()
				checkPublishedRows(t, mem, dir, f, rows)
				checkExactlyOnce(t, mem, dir, f, ids(rows))

				logged := logs.published(t)
				for _, n := range visible(t, dir, f) {
					m, ok := logged[filepath.Join(dir, n)]
					if !ok {
						t.Fatalf("published %s without a log line (logged %v)", n, logged)
					}
					if m["rows"] == nil || m["rows"].(float64) <= 0 || m["bytes"] == nil || m["bytes"].(float64) <= 0 {
						t.Fatalf("log line of %s: %v", n, m)
					}
				}
				if len(logged) != len(visible(t, dir, f)) {
					t.Fatalf("logged %d published parts, %d are published", len(logged), len(visible(t, dir, f)))
				}
			})
		}
	}
}

// TestRollIntervalNoCheckpoints: without checkpoints (CommitOnRoll) a part
// open for RollInterval is closed and published by the next batch, which
// it includes.
func TestRollIntervalNoCheckpoints(t *testing.T) {
	mem, schema, rows, segs := segmentedInput(t, 12, 1, 600, 3)
	dir := t.TempDir()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts := smallParts(dir, sinks.Parquet)
	opts.PartSize = 1 << 30
	opts.Commit = sinks.CommitOnRoll
	opts.RollInterval = time.Minute
	opts.Clock = clock.Now
	opts.Logger = slog.New(slog.DiscardHandler)
	r, err := openSink(t, opts, mem, schema, 0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.process(segs[0])
	clock.Advance(59 * time.Second)
	r.process(segs[1][:1])
	if v := visible(t, dir, sinks.Parquet); len(v) != 0 {
		t.Fatalf("published %v before the part was due", v)
	}
	clock.Advance(time.Second)
	r.process(segs[1][1:2])
	if v := visible(t, dir, sinks.Parquet); len(v) != 1 {
		t.Fatalf("a batch after the roll interval: published %v, want 1 part", v)
	}
	// The batch that found the part due went into it.
	n := 200 + segs[1][0].NumRows() + segs[1][1].NumRows()
	checkPublishedRows(t, mem, dir, sinks.Parquet, rows[:n])
	r.process(segs[1][2:])
	r.process(segs[2])
	r.finish()
	checkExactlyOnce(t, mem, dir, sinks.Parquet, ids(rows))
}
