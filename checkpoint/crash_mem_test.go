package checkpoint_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/fsx"
)

// errPowerCut is what every I/O operation returns once the simulated
// machine lost power.
var errPowerCut = errors.New("power cut (injected)")

// powerCut returns an ErrorFS over m that performs the first n operations
// and fails every later one, and the count of operations seen.
func powerCut(m *fsx.MemFS, n int64) (*fsx.ErrorFS, *atomic.Int64) {
	var ops atomic.Int64
	return &fsx.ErrorFS{FS: m, Inject: func(fsx.Op, string) error {
		if ops.Add(1) > n {
			return errPowerCut
		}
		return nil
	}}, &ops
}

// TestCheckpointStoreCrashes cuts the power at every I/O operation of the
// checkpoint store in turn (writing three checkpoints with Retain 1, so
// retention removes as it goes) on an in-memory FS that keeps, after the
// crash, only what was synced (fsx.MemFS.Crash). Then:
//   - the newest checkpoint left is at least the last one Checkpoint
//     reported complete (nothing committed is lost) and loads with
//     every checksum right; every checkpoint List shows verifies;
//   - a job restored from it (or started fresh when none is left) and run
//     to the end counts every key of the input exactly once: the oracle is
//     the input's key counts, so nothing is lost or duplicated.
func TestCheckpointStoreCrashes(t *testing.T) {
	const dir = "/chk"
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	source := func(gate chan struct{}) *seqSource {
		return &seqSource{Batches: 40, Rows: 16, Keys: 40, GateAt: 20, Gate: gate}
	}
	graph := func(src *seqSource, res *results) *arrowexec.Graph {
		g := arrowexec.NewGraph()
		g.SetMaxParallelism(8)
		s := g.AddSource("src", src, 2)
		g.Add("mem", &memCount{res: res, sink: true}, 2, s.HashBy("k"))
		return g
	}
	// scenario runs the job, cutting the power after n operations, takes
	// up to three checkpoints, and returns the operations done and the
	// newest checkpoint Checkpoint reported complete.
	scenario := func(t *testing.T, m *fsx.MemFS, n int64) (ops int64, committed uint64) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		efs, count := powerCut(m, n)
		opts := checkpoint.Options{Dir: dir, Interval: -1, Retain: 1, TolerableFailures: -1, FS: efs,
			JobFingerprint: fingerprint, Log: discard}
		gate := make(chan struct{}) // never opened: the job stays alive
		r, err := tryStart(graph(source(gate), newResults()), nil, opts, mem)
		if err != nil {
			if !errors.Is(err, errPowerCut) {
				t.Fatalf("cut at %d: %v", n, err)
			}
			return count.Load(), 0 // the job could not start
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for range 3 {
			if _, err := r.c.Checkpoint(ctx); err != nil {
				break
			}
			committed = uint64(r.c.Stats().Completed)
		}
		r.crash()
		return count.Load(), committed
	}

	// A run without a cut counts the operations to cut at.
	total, committed := scenario(t, fsx.NewMemFS(), 1<<62)
	if committed != 3 {
		t.Fatalf("fault-free run committed %d checkpoints, want 3", committed)
	}
	t.Logf("%d I/O operations for three checkpoints", total)
	for n := int64(0); n <= total; n++ {
		m := fsx.NewMemFS()
		_, committed := scenario(t, m, n)
		m.Crash()

		infos, err := checkpoint.ListFS(m, dir)
		if err != nil && !fsx.IsNotExist(err) {
			t.Fatalf("cut at %d: list: %v", n, err)
		}
		seen := map[uint64]bool{}
		for _, inf := range infos {
			if inf.Err != nil {
				t.Errorf("cut at %d: checkpoint %d does not verify: %v", n, inf.ID, inf.Err)
			}
			if seen[inf.ID] {
				t.Errorf("cut at %d: checkpoint %d listed twice", n, inf.ID)
			}
			seen[inf.ID] = true
		}
		chk, err := checkpoint.LatestFS(m, discard, dir)
		switch {
		case err != nil && !errors.Is(err, checkpoint.ErrNoCheckpoint):
			t.Fatalf("cut at %d: latest: %v", n, err)
		case err != nil && committed > 0:
			t.Fatalf("cut at %d: checkpoint %d was reported complete, none is left", n, committed)
		case err == nil && chk.ID() < committed:
			t.Fatalf("cut at %d: newest checkpoint %d, but %d was reported complete", n, chk.ID(), committed)
		}

		// Restore (or start fresh) and run to the end, with the gate open.
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		res := newResults()
		gate := make(chan struct{})
		close(gate)
		src := source(gate)
		opts := checkpoint.Options{Dir: t.TempDir(), Interval: -1, JobFingerprint: fingerprint, Log: discard}
		r := start(t, graph(src, res), chk, opts, mem)
		if jobErr, coordErr := r.wait(t); jobErr != nil || coordErr != nil {
			t.Fatalf("cut at %d: restored job: %v, coordinator: %v", n, jobErr, coordErr)
		}
		res.check(t, "mem", src.expected(t, 2))
		mem.AssertSize(t, 0)
		if t.Failed() {
			t.Fatalf("cut at %d (checkpoint %d reported complete)", n, committed)
		}
	}
}
