package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/checkpoint"
)

// windowSavepoint writes a savepoint of a windowed backfill over a small
// generated file (window state in memory: key group blobs) and returns
// its path.
func windowSavepoint(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "events.parquet")
	if code, _, errOut := runCLI(t, "gen", "--rows", "5000", "--items", "200", "--progress", "never", in); code != exitOK {
		t.Fatal(errOut)
	}
	jobFile := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(jobFile, fmt.Appendf(nil, `name: ck-list
parallelism: 2
source:
  parquet: {path: %s}
  watermark: {column: event_time, max_out_of_orderness: 10s}
steps:
  - window: {type: tumbling, size: 1h, key: [item_id], time: event_time, aggs: ["count(*) AS n"]}
sink:
  file: {path: %s, format: csv}
`, in, filepath.Join(dir, "out")), 0o644); err != nil {
		t.Fatal(err)
	}
	sp := filepath.Join(dir, "sp")
	if code, _, errOut := runCLI(t, "backfill", "--progress", "never", "--savepoint", sp, jobFile); code != exitOK {
		t.Fatalf("backfill --savepoint: exit %d\n%s", code, errOut)
	}
	return sp
}

// TestCheckpointsListVerifies: 'riffle checkpoints list' accepts a
// savepoint directory and verifies every file of it: a bit flipped in, or
// a truncated, key group file shows the checkpoint as corrupt, naming the
// file and the reason; with --verify the exit status is then 1.
func TestCheckpointsListVerifies(t *testing.T) {
	sp := windowSavepoint(t)
	code, out, errOut := runCLI(t, "checkpoints", "list", "--verify", sp)
	if code != exitOK || !strings.Contains(out, "savepoint") || !strings.Contains(out, sp) {
		t.Fatalf("list of an intact savepoint: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	kgs, _ := filepath.Glob(filepath.Join(sp, "window-*", "*", checkpoint.KeyGroupFileName))
	if len(kgs) == 0 {
		t.Fatalf("no key group file in the savepoint %s", sp)
	}
	orig, err := os.ReadFile(kgs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		reason string
	}{
		{"bit flipped", func() []byte { b := append([]byte(nil), orig...); b[len(b)/2] ^= 0x08; return b }(), "checksum mismatch"},
		{"truncated", orig[:len(orig)-3], fmt.Sprintf("size %d, manifest says %d", len(orig)-3, len(orig))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(kgs[0], tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(kgs[0], orig, 0o644)
			code, out, _ := runCLI(t, "checkpoints", "list", sp)
			if code != exitOK || !strings.Contains(out, "CORRUPT") || !strings.Contains(out, "corrupt: "+sp) || !strings.Contains(out, kgs[0]) || !strings.Contains(out, tc.reason) {
				t.Fatalf("list: exit %d, stdout %q: want exit 0 and the checkpoint corrupt naming %s: %s", code, out, kgs[0], tc.reason)
			}
			code, out, errOut := runCLI(t, "checkpoints", "list", sp, "--verify")
			if code != exitFailure || !strings.Contains(out, tc.reason) || !strings.Contains(errOut, "1 of 1 checkpoints") {
				t.Fatalf("list --verify: exit %d, stdout %q, stderr %q: want exit 1", code, out, errOut)
			}
		})
	}
}
