package sinks_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/sinks"
)

// TestSingleFile: FileName writes one file, whatever PartSize says, with
// every row in order; it refuses a second subtask and other commit modes.
func TestSingleFile(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	rows := randomRows(rand.New(rand.NewPCG(61, 62)), 2000)
	opts := smallParts(dir, sinks.JSONL)
	opts.PartSize = 1 << 10
	opts.FileName = "all.jsonl"
	spec := writeRows(t, mem, opts, rows, 1, 63)
	if got := listDir(t, dir); !slices.Equal(got, []string{"all.jsonl"}) {
		t.Fatalf("%s holds %v, want all.jsonl only", dir, got)
	}
	got := readJSONLRows(t, filepath.Join(dir, "all.jsonl"))
	if len(got) != len(rows) {
		t.Fatalf("%d rows, want %d", len(got), len(rows))
	}
	for i, r := range got {
		if id := fmt.Sprint(r[0]); id != fmt.Sprint(i) {
			t.Fatalf("row %d has id %v", i, r[0])
		}
	}
	if p := spec.Published(); len(p) != 1 || p[0].Rows != int64(len(rows)) {
		t.Fatalf("published %+v", p)
	}
	if _, err := spec.New(task(mem, testSchema(), 0, 2)); err == nil || !strings.Contains(err.Error(), "parallelism 1") {
		t.Fatalf("a second subtask: %v", err)
	}
	for _, c := range []sinks.CommitMode{sinks.CommitOnRoll, sinks.CommitOnCheckpoint} {
		if _, err := sinks.NewFile(sinks.FileOptions{Dir: dir, FileName: "x.parquet", Commit: c}); err == nil {
			t.Fatalf("FileName with %v accepted", c)
		}
	}
}
