package checkpoint_test

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/sinks"
)

// sinkGraph is src (parallelism 2) -> two-phase-commit CSV file sink (p).
func sinkGraph(t testing.TB, src *seqSource, p int, out string) *arrowexec.Graph {
	spec, err := sinks.NewFile(sinks.FileOptions{Dir: out, Format: sinks.CSV, PartSize: 8 << 10, Commit: sinks.CommitOnCheckpoint})
	if err != nil {
		t.Fatal(err)
	}
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 2)
	g.Add("sink", spec, p, s.Rebalance())
	return g
}

// readCSVColumn returns column v of every published CSV file in dir and
// the names of files still in progress.
func readCSVColumn(t testing.TB, dir string) (vs []int64, inProgress []string) {
	t.Helper()
	for _, n := range dirNames(t, dir) {
		if sinks.IsPublishLog(n) {
			continue
		}
		if strings.HasPrefix(n, ".") {
			inProgress = append(inProgress, n)
			continue
		}
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		for _, r := range recs[1:] {
			v, err := strconv.ParseInt(r[1], 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			vs = append(vs, v)
		}
	}
	return vs, inProgress
}

// TestExactlyOnceFileSink: a job writing through a two-phase-commit file
// sink crashes (no graceful anything) after some checkpoints, twice, and is
// restored from the latest checkpoint each time at another sink
// parallelism; in the end every input row is in the published files
// exactly once, and nothing is left in progress.
func TestExactlyOnceFileSink(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir, out := t.TempDir(), t.TempDir()
	log, _ := newLog()
	opts := checkpoint.Options{Dir: dir, Interval: 3 * time.Millisecond, JobFingerprint: fingerprint, Log: log}
	const batches, rows = 300, 20
	var from *checkpoint.Checkpoint
	for i, p := range []int{2, 3} {
		src := &seqSource{Batches: batches, Rows: rows, Keys: 10, GateAt: 100 * (i + 1), Gate: make(chan struct{}), Delay: 100 * time.Microsecond}
		r := start(t, sinkGraph(t, src, p, out), from, opts, mem)
		r.waitCompleted(t, 3)
		r.crash()
		var err error
		if from, err = checkpoint.Latest(dir); err != nil {
			t.Fatal(err)
		}
		t.Logf("crash %d: restoring checkpoint %d, sources at %s", i, from.ID(), from.Manifest.Sources[0].Position)
	}
	src := &seqSource{Batches: batches, Rows: rows, Keys: 10}
	r := start(t, sinkGraph(t, src, 1, out), from, opts, mem)
	if jobErr, coordErr := r.wait(t); jobErr != nil || coordErr != nil {
		t.Fatalf("job: %v, coordinator: %v", jobErr, coordErr)
	}
	got, inProgress := readCSVColumn(t, out)
	if len(inProgress) > 0 {
		t.Fatalf("left in progress: %v", inProgress)
	}
	var want []int64
	for sub := 0; sub < 2; sub++ {
		for i := 0; i < batches*rows; i++ {
			want = append(want, rowID(sub, i))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		seen := map[int64]int{}
		for _, v := range got {
			seen[v]++
		}
		miss, dup := 0, 0
		for _, v := range want {
			if seen[v] == 0 {
				miss++
			} else if seen[v] > 1 {
				dup++
			}
		}
		t.Fatalf("published %d rows, want %d: %d missing, %d duplicated", len(got), len(want), miss, dup)
	}
}
