package agg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
)

// TestJobWithCoordinator runs the aggregate job under the real checkpoint
// coordinator (periodic checkpoints written to disk, key group blobs
// included), crashes it after some checkpoints, and restores it from the
// latest checkpoint on disk at other parallelisms: the result must equal
// the oracle's.
func TestJobWithCoordinator(t *testing.T) {
	cases := []struct {
		gb      []string
		twoStep bool
	}{
		{[]string{"k_utf8"}, false},
		{[]string{"k_int32", "k_utf8", "k_timestamp"}, true},
		{nil, true},
		{nil, false},
		{[]string{"k_float64"}, true},
	}
	for i, c := range cases {
		jp := jobPlan{gb: c.gb, twoStep: c.twoStep, maxPar: 32, aggs: allAggs()}
		if jp.twoStep {
			jp.aggs = decomposable(jp.aggs)
		}
		t.Run(fmt.Sprintf("twostep=%v/by=%s", c.twoStep, strings.Join(c.gb, ",")), func(t *testing.T) {
			testWithCoordinator(t, rand.New(rand.NewPCG(31, uint64(i))), jp)
		})
	}
}

// coordinated is a job running under a coordinator.
type coordinated struct {
	c         *checkpoint.Coordinator
	jobDone   chan error
	coordDone chan error
	cancelJob context.CancelFunc
	stopCoord context.CancelFunc
}

func runCoordinated(t *testing.T, g *arrowexec.Graph, from *checkpoint.Checkpoint, opts checkpoint.Options, mem memory.Allocator) *coordinated {
	t.Helper()
	c, err := checkpoint.NewCoordinator(opts)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := c.RunOptions(g, from, arrowexec.RunOptions{Mem: mem, QueueDepth: 2, Log: opts.Log})
	if err != nil {
		t.Fatal(err)
	}
	job, err := g.Compile(ro)
	if err != nil {
		t.Fatal(err)
	}
	r := &coordinated{c: c, jobDone: make(chan error, 1), coordDone: make(chan error, 1)}
	jctx, cancelJob := context.WithCancel(context.Background())
	cctx, stopCoord := context.WithCancel(context.Background())
	r.cancelJob, r.stopCoord = cancelJob, stopCoord
	go func() {
		err := c.Run(cctx, job)
		if err != nil {
			cancelJob()
		}
		r.coordDone <- err
	}()
	go func() { r.jobDone <- job.Run(jctx) }()
	return r
}

// stop cancels the job (a crash, unless it already ended) and then the
// coordinator; it returns the job's error.
func (r *coordinated) stop() error {
	r.cancelJob()
	err := <-r.jobDone
	r.stopCoord()
	if cerr := <-r.coordDone; cerr != nil && !errors.Is(cerr, context.Canceled) {
		return cerr
	}
	return err
}

func testWithCoordinator(t *testing.T, rng *rand.Rand, jp jobPlan) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cols := genData(rng, 3000, 500)
	rec := record(mem, cols)
	defer rec.Release()
	batches := randomBatches(rng, rec, 40)
	defer releaseAll(batches)
	src := &splitSource{schema: rec.Schema(), batches: batches, nSplits: 4, delay: 300 * time.Microsecond}
	want := project(oracle(cols, jp.gb, allAggs()), len(jp.gb), allAggs(), jp.aggs)
	opts := checkpoint.Options{Dir: t.TempDir(), Interval: 2 * time.Millisecond, JobFingerprint: "agg-test",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	sink1 := &sinkSpec{}
	defer sink1.release()
	r1 := runCoordinated(t, jp.graph(t, src, sink1, 3, 3), nil, opts, mem)
	deadline := time.Now().Add(30 * time.Second)
wait:
	for r1.c.Stats().Completed < 3 && time.Now().Before(deadline) {
		select {
		case err := <-r1.jobDone:
			r1.jobDone <- err // ended before the crash
			break wait
		case <-time.After(time.Millisecond):
		}
	}
	if err := r1.stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("run 1: %v", err)
	}
	chk, err := checkpoint.Latest(opts.Dir)
	if err != nil {
		t.Fatalf("no checkpoint after run 1 (%+v): %v", r1.c.Stats(), err)
	}

	sink2 := &sinkSpec{}
	defer sink2.release()
	g2 := jp.graph(t, src, sink2, 2, 4)
	r2 := runCoordinated(t, g2, chk, opts, mem)
	select {
	case err := <-r2.jobDone:
		r2.jobDone <- err
	case <-time.After(60 * time.Second):
		t.Error("run 2 did not end")
	}
	if err := r2.stop(); err != nil {
		t.Fatalf("run 2 (from checkpoint %d): %v", chk.ID(), err)
	}
	check(t, fmt.Sprintf("restored from checkpoint %d", chk.ID()), sink2.batches, want, len(jp.gb), MaxBatchSize, g2.Node("agg-1").Schema())
	t.Logf("restored from checkpoint %d of %+v", chk.ID(), r1.c.Stats())
}
