package arrowexec_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
)

// tracker is an operator that counts rows, snapshots the count into a
// file in its checkpoint directory (like a Pebble-backed operator) and
// records every lifecycle call.
type tracker struct {
	t    *arrowexec.Task
	log  *eventLog
	rows int64
	done bool
}

type eventLog struct {
	mu     sync.Mutex
	events []string
	snaps  map[string]map[uint64]string // node/subtask -> id -> state
	dirs   map[string]uint64            // snapshot directory -> id it was asked for
}

func newEventLog() *eventLog {
	return &eventLog{snaps: map[string]map[uint64]string{}, dirs: map[string]uint64{}}
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *eventLog) has(ev string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.events, ev)
}

func (o *tracker) Open(context.Context) error { return nil }
func (o *tracker) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	o.rows += b.NumRows()
	b.Retain()
	return out.Emit(ctx, b)
}
func (o *tracker) Finish(context.Context, arrowexec.Emitter) error {
	o.done = true
	o.log.add("%s/%d finish", o.t.Node, o.t.Subtask)
	return nil
}
func (o *tracker) Close() error {
	o.log.add("%s/%d close", o.t.Node, o.t.Subtask)
	return nil
}
func (o *tracker) SnapshotState(_ context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	dir, err := o.t.SnapshotDir(id)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	state := fmt.Sprintf("rows=%d finished=%v dir=%s", o.rows, o.done, dir)
	return arrowexec.SubtaskSnapshot{Operator: []byte(state)}, nil
}
func (o *tracker) NotifyCheckpointComplete(_ context.Context, id uint64) error {
	o.log.add("%s/%d complete %d", o.t.Node, o.t.Subtask, id)
	return nil
}

type trackerSpec struct{ log *eventLog }

func (trackerSpec) Schema(in []*arrow.Schema) (*arrow.Schema, error) { return in[0], nil }
func (s trackerSpec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	return &tracker{t: t, log: s.log}, nil
}

// TestFinishedSubtasksTakePartInCheckpoints: a branch of the job whose
// bounded source ended keeps answering checkpoints, so checkpoints go on
// completing while the other branch runs: the finished operator snapshots
// its state after Finish, for the right checkpoint id and directory, gets
// the completions, and is closed only when the whole job ends.
func TestFinishedSubtasksTakePartInCheckpoints(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	bld := array.NewInt64Builder(mem)
	for i := range 10 {
		bld.Append(int64(i))
	}
	col := bld.NewArray()
	bld.Release()
	b := array.NewRecordBatch(timeSchema, []arrow.Array{col}, 10)
	col.Release()
	short := exectest.NewSource(timeSchema, []arrow.RecordBatch{b})
	b.Release()
	defer short.Release()
	sink := exectest.NewSink()
	defer sink.Release()

	log := newEventLog()
	g := arrowexec.NewGraph()
	s1 := g.AddSource("short", short, 1)
	s2 := g.AddSource("long", endless{}, 1)
	o1 := g.Add("op_short", trackerSpec{log}, 1, s1.Forward())
	o2 := g.Add("op_long", trackerSpec{log}, 1, s2.Forward())
	g.Add("sink", sink, 1, o1.Rebalance(), o2.Rebalance())
	root := t.TempDir()
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem,
		SnapshotDir: func(node string, subtask int, id uint64) (string, error) {
			dir := fmt.Sprintf("%s/chk-%d/%s-%d", root, id, node, subtask)
			log.mu.Lock()
			log.dirs[dir] = id
			log.mu.Unlock()
			return dir, nil
		},
		OnSnapshot: func(node string, subtask int, id uint64, snap arrowexec.SubtaskSnapshot) error {
			log.mu.Lock()
			defer log.mu.Unlock()
			k := fmt.Sprintf("%s/%d", node, subtask)
			if log.snaps[k] == nil {
				log.snaps[k] = map[uint64]string{}
			}
			if _, dup := log.snaps[k][id]; dup {
				return fmt.Errorf("%s reported checkpoint %d twice", k, id)
			}
			log.snaps[k][id] = string(snap.Operator)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !log.has("op_short/0 finish") {
		if time.Now().After(deadline) {
			t.Fatal("op_short never finished")
		}
		time.Sleep(time.Millisecond)
	}
	const n = 3
	for id := uint64(1); id <= n; id++ {
		if err := job.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	// Every subtask reports every checkpoint.
	nodes := []string{"short/0", "long/0", "op_short/0", "op_long/0", "sink/0"}
	for {
		log.mu.Lock()
		missing := ""
		for _, k := range nodes {
			for id := uint64(1); id <= n; id++ {
				if _, ok := log.snaps[k][id]; !ok && missing == "" {
					missing = fmt.Sprintf("%s checkpoint %d", k, id)
				}
			}
		}
		log.mu.Unlock()
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot from %s", missing)
		}
		time.Sleep(time.Millisecond)
	}
	log.mu.Lock()
	for id := uint64(1); id <= n; id++ {
		want := fmt.Sprintf("rows=10 finished=true dir=%s/chk-%d/op_short-0", root, id)
		if got := log.snaps["op_short/0"][id]; got != want {
			t.Errorf("op_short checkpoint %d: state %q, want %q", id, got, want)
		}
	}
	log.mu.Unlock()
	job.NotifyCheckpointComplete(2)
	for !log.has("op_short/0 complete 2") || !log.has("op_long/0 complete 2") {
		if time.Now().After(deadline) {
			t.Fatal("checkpoint completion not delivered to every operator")
		}
		time.Sleep(time.Millisecond)
	}
	if log.has("op_short/0 close") {
		t.Fatal("the finished operator was closed while the job still ran")
	}
	job.Stop(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !log.has("op_short/0 close") || !log.has("op_long/0 close") {
		t.Fatalf("operators not closed at the end: %v", log.events)
	}
}

// TestHoldAtEnd: with HoldAtEnd, bounded sources suspend at the end of
// their input: they emit the watermark of the rows they read (a source
// that read nothing is idle and does not hold the minimum back, nor does
// the operator behind it on a forward edge, which becomes idle in turn),
// never the final watermark, SourcesAtEnd is closed, and a
// stop-with-savepoint barrier then ends the job with every source's state
// at the end of its input.
func TestHoldAtEnd(t *testing.T) {
	for _, p := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("p=%d", p), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rng := rand.New(rand.NewPCG(3, uint64(p)))
			// Two batches of event times; with p=3 one subtask reads none.
			var batches []arrow.RecordBatch
			maxT := map[int]int64{}
			for i := range 2 {
				bld := array.NewInt64Builder(mem)
				for range 100 {
					v := rng.Int64N(1_000_000)
					bld.Append(v)
					maxT[i%p] = max(maxT[i%p], v)
				}
				col := bld.NewArray()
				bld.Release()
				batches = append(batches, array.NewRecordBatch(timeSchema, []arrow.Array{col}, 100))
				col.Release()
			}
			src := exectest.NewSource(timeSchema, batches)
			src.EventTime, src.Lag = 0, 1000
			release(batches)
			defer src.Release()
			sink := exectest.NewSink()
			defer sink.Release()
			g := arrowexec.NewGraph()
			s := g.AddSource("src", src, p)
			id := g.Add("id", exectest.Identity(), p, s.Forward())
			g.Add("sink", sink, 1, id.Rebalance())
			var mu sync.Mutex
			snaps := map[uint64][]string{}
			job, err := g.Compile(arrowexec.RunOptions{Mem: mem, HoldAtEnd: true,
				OnSnapshot: func(node string, subtask int, id uint64, snap arrowexec.SubtaskSnapshot) error {
					mu.Lock()
					snaps[id] = append(snaps[id], fmt.Sprintf("%s/%d:%s", node, subtask, snap.Operator))
					mu.Unlock()
					return nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			done := make(chan error, 1)
			go func() { done <- job.Run(ctx) }()
			select {
			case <-job.SourcesAtEnd():
			case err := <-done:
				t.Fatalf("job ended instead of holding: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("SourcesAtEnd never closed")
			}
			// The minimum over the subtasks that read rows.
			want := arrowexec.MaxWatermark
			for _, m := range maxT {
				want = min(want, m-1000)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				if got := sink.LastWatermark(0); got == want {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("sink watermark %d, want %d", got, want)
				}
				time.Sleep(time.Millisecond)
			}
			for i, m := range job.Metrics("id") {
				if idle := i >= 2; m.Idle.Load() != idle {
					t.Errorf("id/%d: idle %v, want %v (it read %d rows)", i, m.Idle.Load(), idle, m.RowsIn.Load())
				}
			}
			if err := job.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: 1, Savepoint: true, Stop: true}); err != nil {
				t.Fatal(err)
			}
			for {
				mu.Lock()
				n := len(snaps[1])
				mu.Unlock()
				if n == 2*p+1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("savepoint incomplete: %v", snaps)
				}
				time.Sleep(time.Millisecond)
			}
			job.NotifyCheckpointComplete(1)
			job.Stop(false)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := sink.LastWatermark(0); got != want {
				t.Fatalf("after the stop the sink's watermark is %d, want %d (no final watermark)", got, want)
			}
			var rows int64
			for _, b := range sink.All() {
				rows += b.NumRows()
			}
			if rows != 200 {
				t.Fatalf("sink got %d rows, want 200", rows)
			}
			mu.Lock()
			slices.Sort(snaps[1])
			for i := range p {
				rows := int64(0)
				for j := i; j < 2; j += p {
					rows += 100
				}
				if w := fmt.Sprintf("src/%d:%d", i, rows); !slices.Contains(snaps[1], w) {
					t.Errorf("savepoint %v lacks %s", snaps[1], w)
				}
			}
			mu.Unlock()
		})
	}
}

// asyncCounter counts rows; its snapshot's slow part runs asynchronously
// on the count captured at the barrier.
type asyncCounter struct {
	t       *arrowexec.Task
	log     *eventLog
	rows    int64
	release chan struct{} // closed to let the slow parts finish
	fail    uint64        // checkpoint whose slow part fails
	// ignoreCtx: the slow part waits for release even when the job is
	// cancelled (a write that does not watch the context).
	ignoreCtx bool
	// writing counts slow parts not returned yet: Close logs it when it
	// comes too early, whenever that is.
	writing atomic.Int32
}

func (o *asyncCounter) Open(context.Context) error { return nil }
func (o *asyncCounter) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	o.rows += b.NumRows()
	b.Retain()
	return out.Emit(ctx, b)
}
func (o *asyncCounter) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *asyncCounter) Close() error {
	if o.writing.Load() > 0 {
		o.log.add("%s/%d close while writing", o.t.Node, o.t.Subtask)
	}
	o.log.add("%s/%d close", o.t.Node, o.t.Subtask)
	return nil
}
func (o *asyncCounter) SnapshotStateAsync(_ context.Context, id uint64) (func(context.Context) (arrowexec.SubtaskSnapshot, error), error) {
	rows := o.rows // the point-in-time view
	o.writing.Add(1)
	return func(ctx context.Context) (arrowexec.SubtaskSnapshot, error) {
		defer o.writing.Add(-1)
		if o.ignoreCtx {
			<-o.release
		} else {
			select {
			case <-o.release:
			case <-ctx.Done():
				return arrowexec.SubtaskSnapshot{}, ctx.Err()
			}
		}
		if id == o.fail {
			return arrowexec.SubtaskSnapshot{}, fmt.Errorf("disk full")
		}
		o.log.add("%s/%d wrote %d", o.t.Node, o.t.Subtask, id)
		return arrowexec.SubtaskSnapshot{Operator: []byte(fmt.Sprint(rows))}, nil
	}, nil
}

type asyncSpec struct {
	log       *eventLog
	release   chan struct{}
	fail      uint64
	ignoreCtx bool
}

func (asyncSpec) Schema(in []*arrow.Schema) (*arrow.Schema, error) { return in[0], nil }
func (s asyncSpec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	return &asyncCounter{t: t, log: s.log, release: s.release, fail: s.fail, ignoreCtx: s.ignoreCtx}, nil
}

// TestAsyncSnapshot: an AsyncCheckpointer's barrier goes on downstream
// while its slow part runs (the sink snapshots first), the snapshot holds
// the state at the barrier (rows before it, as the sources counted), the
// operator is not closed before the slow part returned, and a failing
// slow part fails the job naming the operator.
func TestAsyncSnapshot(t *testing.T) {
	for _, failing := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", failing), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			log := newEventLog()
			release := make(chan struct{})
			spec := asyncSpec{log: log, release: release}
			if failing {
				spec.fail = 1
			}
			sink := exectest.NewSink()
			defer sink.Release()
			g := arrowexec.NewGraph()
			s := g.AddSource("src", endless{}, 2)
			a := g.Add("async", spec, 2, s.Forward())
			g.Add("sink", sink, 1, a.Rebalance())
			var mu sync.Mutex
			var order []string
			rows := map[string]string{}
			job, err := g.Compile(arrowexec.RunOptions{Mem: mem,
				OnSnapshot: func(node string, subtask int, id uint64, snap arrowexec.SubtaskSnapshot) error {
					mu.Lock()
					defer mu.Unlock()
					order = append(order, node)
					rows[fmt.Sprintf("%s/%d", node, subtask)] = string(snap.Operator)
					return nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			done := make(chan error, 1)
			go func() { done <- job.Run(ctx) }()
			// The barrier lands mid-stream: both operator subtasks had rows.
			exectest.WaitFor(t, "rows at both async subtasks", func() bool {
				m := job.Metrics("async")
				return m[0].RowsIn.Load() > 0 && m[1].RowsIn.Load() > 0
			})
			if err := job.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: 1}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				sinkDone := slices.Contains(order, "sink")
				mu.Unlock()
				if sinkDone {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the barrier waited for the asynchronous part")
				}
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			if slices.Contains(order, "async") {
				t.Fatalf("async snapshot reported before its slow part was released: %v", order)
			}
			mu.Unlock()
			if failing {
				close(release)
				err := <-done
				var te *arrowexec.TaskError
				if !errors.As(err, &te) || te.Node != "async" || !strings.Contains(err.Error(), "disk full") {
					t.Fatalf("job error %v, want the async node's disk full", err)
				}
				return
			}
			job.Stop(false)
			// Every other subtask is done once the sink had its end of
			// input: a runtime not waiting for the slow parts would close
			// the operator now. Close itself tells if it came while a slow
			// part was still writing, so no guess of how long to wait.
			exectest.WaitFor(t, "the end of input at the sink", func() bool {
				in := job.Inputs("sink")
				return len(in) == 1 && len(in[0]) == 1 && in[0][0].Ended
			})
			if log.has("async/0 close") || log.has("async/1 close") {
				t.Fatal("operator closed while its snapshot was being written")
			}
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if log.has("async/0 close while writing") || log.has("async/1 close while writing") {
				t.Fatal("operator closed while its snapshot was being written")
			}
			// The operator's state at the barrier is what its source
			// had emitted before it (Forward edges).
			mu.Lock()
			defer mu.Unlock()
			for i := range 2 {
				src, op := rows[fmt.Sprintf("src/%d", i)], rows[fmt.Sprintf("async/%d", i)]
				if src == "" || src != op {
					t.Fatalf("subtask %d: source emitted %q rows before the barrier, the operator's snapshot has %q", i, src, op)
				}
			}
			if !log.has("async/0 close") {
				t.Fatal("operator not closed")
			}
		})
	}
}

// TestAsyncSnapshotFailsAfterCancel: the slow part of an asynchronous
// snapshot that fails after the job was cancelled is not dropped: Run
// returns it after the cancellation cause.
func TestAsyncSnapshotFailsAfterCancel(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	release := make(chan struct{})
	sink := exectest.NewSink()
	defer sink.Release()
	g := arrowexec.NewGraph()
	s := g.AddSource("src", endless{}, 1)
	a := g.Add("async", asyncSpec{log: newEventLog(), release: release, fail: 1, ignoreCtx: true}, 1, s.Forward())
	g.Add("sink", sink, 1, a.Forward())
	sinkSnap := make(chan struct{})
	var once sync.Once
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem,
		OnSnapshot: func(node string, _ int, _ uint64, _ arrowexec.SubtaskSnapshot) error {
			if node == "sink" {
				once.Do(func() { close(sinkSnap) })
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()
	if err := job.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: 1}); err != nil {
		t.Fatal(err)
	}
	<-sinkSnap // the barrier passed the operator: its slow part is running
	stop := errors.New("stopped by the test")
	cancel(stop)
	close(release)
	err = <-done
	if !errors.Is(err, stop) {
		t.Fatalf("job error %v, want the cancellation cause first", err)
	}
	if !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "asynchronous part") {
		t.Fatalf("job error %v lacks the asynchronous part's disk full", err)
	}
}

// suspendProbe records Task.Suspended at Finish.
type suspendProbe struct {
	t   *arrowexec.Task
	got chan bool
}

func (o *suspendProbe) Open(context.Context) error { return nil }
func (o *suspendProbe) Process(context.Context, int, arrow.RecordBatch, arrowexec.Emitter) error {
	return nil
}
func (o *suspendProbe) Finish(context.Context, arrowexec.Emitter) error {
	o.got <- o.t.Suspended()
	return nil
}
func (o *suspendProbe) Close() error { return nil }

type suspendSpec struct{ got chan bool }

func (suspendSpec) Schema([]*arrow.Schema) (*arrow.Schema, error) { return nil, nil }
func (s suspendSpec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	return &suspendProbe{t: t, got: s.got}, nil
}

// TestSuspended: Finish learns whether the input ended (bounded input, a
// drained stop) or was suspended (a stop without drain).
func TestSuspended(t *testing.T) {
	for _, c := range []struct {
		name    string
		bounded bool
		drain   bool
		want    bool
	}{
		{"end of input", true, false, false},
		{"drained stop", false, true, false},
		{"stop without drain", false, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := arrowexec.NewGraph()
			var src arrowexec.Source = endless{}
			if c.bounded {
				src = exectest.NewSource(timeSchema, nil)
			}
			s := g.AddSource("src", src, 2)
			got := make(chan bool, 1)
			g.Add("probe", suspendSpec{got}, 1, s.Rebalance())
			job, err := g.Compile(arrowexec.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- job.Run(context.Background()) }()
			if !c.bounded {
				// Stopped while the stream runs: the probe had rows.
				exectest.WaitFor(t, "rows at the probe", func() bool { return job.Metrics("probe")[0].RowsIn.Load() > 0 })
				job.Stop(c.drain)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if g := <-got; g != c.want {
				t.Fatalf("Suspended() = %v, want %v", g, c.want)
			}
		})
	}
}
