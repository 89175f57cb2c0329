package arrowexec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TaskError is the error of one subtask: Run returns the first one.
type TaskError struct {
	Node    string
	Subtask int
	Err     error
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("node %q subtask %d: %v", e.Node, e.Subtask, e.Err)
}

func (e *TaskError) Unwrap() error { return e.Err }

// RunOptions configures a job run. The zero value works.
type RunOptions struct {
	// Mem allocates every batch of the job (default: memory.DefaultAllocator).
	Mem memory.Allocator
	// QueueDepth is the capacity, in messages, of each channel between two
	// subtasks (default 4). Full queues block the sender: backpressure.
	QueueDepth int
	// Log receives structured logs (default slog.Default()).
	Log *slog.Logger
	// Restore returns the state a subtask restores from, or nil.
	Restore func(node string, subtask, parallelism int) *RestoreState
	// OnSnapshot receives every subtask's snapshot for checkpoint id. It is
	// called from the subtask's goroutine and must be safe for concurrent use.
	OnSnapshot func(node string, subtask int, id uint64, snap SubtaskSnapshot) error
	// SnapshotDir returns (and creates) the directory where a subtask writes
	// snapshot files for checkpoint id; nil when checkpoints keep no files.
	SnapshotDir func(node string, subtask int, id uint64) (string, error)
	// HoldAtEnd suspends bounded input instead of finishing it: a source
	// subtask at the end of its input emits the watermark its reader allows
	// (SuspendWatermarker; an idle status without one), then waits, taking
	// part in checkpoints, until a Stop barrier or Job.Stop ends it. Without
	// a drained stop no final watermark is sent, so windows still open stay
	// open in the state. Job.SourcesAtEnd tells when every source got there
	// (a backfill then stops with a savepoint that a stream job continues
	// from).
	HoldAtEnd bool
	// DrainOnSourceError makes a source reader's error (from Next) end the
	// job gracefully, as Job.Stop(true) does: the failed source ends its
	// input where its last batch ended, the others stop after their
	// current batch, the final watermark fires every open window, and
	// operators and sinks finish and commit what they received. Run then
	// returns the source's error (a *TaskError), unless another subtask
	// failed first. For jobs without checkpoints, whose output would
	// otherwise be lost; a job with exactly-once checkpoints leaves it off
	// and resumes from its last checkpoint instead.
	DrainOnSourceError bool
	// DisableChaining runs every node in subtasks of its own, connected by
	// queues, even where the graph chains them (Node.Chained): for tests
	// comparing both ways, and to see each node's time apart. The
	// environment variable RIFFLE_DISABLE_CHAINING=1 sets it for every job
	// of the process (running whole test suites unchained).
	DisableChaining bool
}

// EnsureDefaults fills the unset fields with their defaults (Compile calls
// it).
func (o *RunOptions) EnsureDefaults() {
	if o.Mem == nil {
		o.Mem = memory.DefaultAllocator
	}
	if o.QueueDepth <= 0 {
		o.QueueDepth = 4
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if os.Getenv("RIFFLE_DISABLE_CHAINING") == "1" {
		o.DisableChaining = true
	}
}

// Job is a compiled graph, ready to run once.
type Job struct {
	g        *Graph
	opts     RunOptions
	subtasks [][]*subtask // per node
	sources  []*subtask
	mu       sync.Mutex
	started  bool
	stopCh   chan struct{}
	stopOnce sync.Once
	drain    atomic.Bool

	// live counts subtasks that have not finished yet; the last one to
	// finish closes allDone, which releases the finished subtasks that stay
	// alive to answer checkpoints.
	live    atomic.Int64
	allDone chan struct{}
	// holding counts sources not yet at the end of their input
	// (HoldAtEnd); the last one closes atEnd.
	holding atomic.Int64
	atEnd   chan struct{}

	cancel   context.CancelCauseFunc // set by Run
	errOnce  sync.Once
	firstErr error
	// srcErr is the first source error drained (DrainOnSourceError).
	srcOnce sync.Once
	srcErr  error
}

// SourcesAtEnd returns a channel closed once every source subtask reached
// the end of its input in RunOptions.HoldAtEnd mode. It is never closed
// without HoldAtEnd.
func (j *Job) SourcesAtEnd() <-chan struct{} { return j.atEnd }

// Stop ends the job gracefully: every source stops after its current batch
// and signals end of input, so operators finish and sinks flush and commit
// what they received; Run then returns nil. With drain, sources first emit
// the final watermark, so every event-time window fires (as at the end of
// bounded input); without it, open windows stay unfired. Stop returns at
// once; it is safe to call more than once and from any goroutine.
func (j *Job) Stop(drain bool) {
	j.stopOnce.Do(func() {
		j.drain.Store(drain)
		close(j.stopCh)
	})
}

// Compile builds g and lays out its subtasks and channels.
func (g *Graph) Compile(opts RunOptions) (*Job, error) {
	if err := g.Build(); err != nil {
		return nil, err
	}
	opts.EnsureDefaults()
	j := &Job{g: g, opts: opts, subtasks: make([][]*subtask, len(g.nodes)), stopCh: make(chan struct{}),
		allDone: make(chan struct{}), atEnd: make(chan struct{})}
	for _, n := range g.nodes {
		sts := make([]*subtask, n.parallelism)
		for i := range sts {
			st := &subtask{
				job:  j,
				node: n,
				wake: make(chan struct{}, 1),
				task: &Task{
					Node: n.name, Subtask: i, Parallelism: n.parallelism, MaxParallelism: g.maxParallelism,
					Mem: opts.Mem, Log: opts.Log.With("node", n.name, "subtask", i),
					Output: n.schema, Metrics: &TaskMetrics{}, suspended: new(atomic.Bool),
				},
			}
			st.task.Metrics.Watermark.Store(MinWatermark)
			st.task.SnapshotDir = func(id uint64) (string, error) {
				if opts.SnapshotDir == nil {
					return "", errors.New("arrowexec: this job has no checkpoint directory")
				}
				return opts.SnapshotDir(n.name, i, id)
			}
			for _, in := range n.inputs {
				st.task.Inputs = append(st.task.Inputs, in.Schema())
			}
			if opts.Restore != nil {
				st.task.Restore = opts.Restore(n.name, i, n.parallelism)
			}
			st.head, st.chain = st, []*subtask{st}
			if n.source != nil {
				st.trigger = make(chan Barrier)
				st.finished = make(chan struct{})
				j.sources = append(j.sources, st)
				j.holding.Add(1)
			}
			j.live.Add(1)
			sts[i] = st
		}
		j.subtasks[n.id] = sts
	}
	// Wire channels: for every edge, one channel per (upstream subtask,
	// downstream subtask) pair that exchanges data; a chained edge calls
	// subtask i downstream from subtask i upstream instead.
	for _, n := range g.nodes {
		for e, in := range n.inputs {
			up := j.subtasks[in.From.id]
			down := j.subtasks[n.id]
			if n.chained && !opts.DisableChaining {
				for i, dst := range down {
					ib := &inbox{edge: e, wm: MinWatermark, from: i}
					ib.pubWM.Store(MinWatermark)
					dst.inboxes = append(dst.inboxes, ib)
					up[i].out.chained = dst
					dst.head = up[i].head
					dst.head.chain = append(dst.head.chain, dst)
				}
				continue
			}
			routers := make([]*router, len(up))
			for u := range up {
				routers[u] = &router{kind: in.Kind, part: Partitioner{KeyIdx: n.keyIdx[e], MaxParallelism: g.maxParallelism, Mem: opts.Mem}}
			}
			for d, dst := range down {
				for u := range up {
					if in.Kind == Forward && u != d {
						continue
					}
					ib := &inbox{ch: make(chan Message, opts.QueueDepth), edge: e, wm: MinWatermark, from: u,
						idx: int32(len(dst.inboxes))}
					ib.pubWM.Store(MinWatermark)
					dst.inboxes = append(dst.inboxes, ib)
					routers[u].chans = append(routers[u].chans, ib)
				}
			}
			for u, st := range up {
				st.out.add(in.Output, routers[u])
			}
		}
	}
	for _, sts := range j.subtasks {
		for _, st := range sts {
			if len(st.inboxes) > 1 {
				// Room for one token per message the inboxes can hold, so
				// ringing never blocks (see inbox).
				st.bell = make(chan int32, len(st.inboxes)*opts.QueueDepth)
				for _, ib := range st.inboxes {
					ib.bell = st.bell
				}
			}
			st.out.metrics = st.task.Metrics
			// A chain's time is accounted on its head (see TaskMetrics).
			st.out.clk = &st.head.clk
			st.out.clk.m = st.head.task.Metrics
			st.wake = st.head.wake
		}
	}
	return j, nil
}

// Metrics returns the metrics of every subtask of node, or nil.
func (j *Job) Metrics(node string) []*TaskMetrics {
	n := j.g.byName[node]
	if n == nil {
		return nil
	}
	ms := make([]*TaskMetrics, n.parallelism)
	for i, st := range j.subtasks[n.id] {
		ms[i] = st.task.Metrics
	}
	return ms
}

// FinalSnapshots returns, for every subtask of source node, the state its
// reader had when it finished (end of input or Stop), or nil for a subtask
// that did not finish or whose reader keeps no state. Call it after Run.
func (j *Job) FinalSnapshots(node string) []SubtaskSnapshot {
	n := j.g.byName[node]
	if n == nil || n.source == nil {
		return nil
	}
	out := make([]SubtaskSnapshot, n.parallelism)
	for i, st := range j.subtasks[n.id] {
		select {
		case <-st.finished:
			if st.finalErr == nil {
				out[i] = st.finalSnap
			}
		default:
		}
	}
	return out
}

// Graph returns the graph the job runs.
func (j *Job) Graph() *Graph { return j.g }

// TriggerCheckpoint asks every source subtask to inject barrier b before its
// next batch. It does not wait for the checkpoint to complete. Sources that
// already finished report their final state for b at once; when every
// source has finished, ErrSourcesFinished says no barrier was injected.
func (j *Job) TriggerCheckpoint(ctx context.Context, b Barrier) error {
	// The hand-off is unbuffered, so a barrier is either taken by a running
	// source loop or answered with the final state of a finished source;
	// never left in a queue nobody reads. Sources are triggered
	// concurrently: one blocked by backpressure must not hold back the
	// barrier of another that its downstream is aligning on.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		running int
		errs    []error
	)
	for _, st := range j.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			select {
			case st.trigger <- b:
				mu.Lock()
				running++
				mu.Unlock()
			case <-st.finished:
				// A finished source takes part with its final state:
				// nothing it emitted can come after this barrier.
				switch {
				case st.finalErr != nil:
					err = &TaskError{Node: st.node.name, Subtask: st.task.Subtask, Err: fmt.Errorf("final snapshot: %w", st.finalErr)}
				case j.opts.OnSnapshot != nil:
					err = j.opts.OnSnapshot(st.node.name, st.task.Subtask, b.ID, st.finalSnap)
				}
			case <-ctx.Done():
				err = ctx.Err()
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if running == 0 {
		return ErrSourcesFinished
	}
	// Every operator subtask learns of b out of band too: one that finishes
	// without b arriving in-band (all its inputs ended first) answers it
	// once finished; one that snapshots b in-band ignores this copy.
	for _, sts := range j.subtasks {
		for _, st := range sts {
			if st.node.source != nil {
				continue
			}
			st.pendMu.Lock()
			st.pending = append(st.pending, b)
			st.pendMu.Unlock()
			st.poke()
		}
	}
	return nil
}

// IsSource reports whether n is a source node.
func (n *Node) IsSource() bool { return n.source != nil }

// ErrSourcesFinished is returned by TriggerCheckpoint when every source
// already reached the end of its input.
var ErrSourcesFinished = errors.New("arrowexec: all sources finished")

// NotifyCheckpointComplete tells every operator implementing
// CheckpointListener that checkpoint id is complete. The call is delivered
// in-band, on each subtask's goroutine, before its next message.
func (j *Job) NotifyCheckpointComplete(id uint64) {
	for _, sts := range j.subtasks {
		for _, st := range sts {
			st.completeMu.Lock()
			st.completed = append(st.completed, id)
			st.hasCompleted.Store(true)
			st.completeMu.Unlock()
			st.poke()
		}
	}
}

// Run runs the job to completion: until every sink saw end of input
// (bounded), the context is cancelled, or a subtask fails. It returns the
// first error, a *TaskError naming the node and subtask.
func (j *Job) Run(ctx context.Context) error {
	j.mu.Lock()
	if j.started {
		j.mu.Unlock()
		return errors.New("arrowexec: job already ran")
	}
	j.started = true
	j.mu.Unlock()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	j.cancel = cancel
	var wg sync.WaitGroup
	for _, sts := range j.subtasks {
		for _, st := range sts {
			if st.head != st {
				continue // runs on its chain's goroutine
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				st.runChain(ctx)
			}()
		}
	}
	wg.Wait()
	// Release whatever is still queued (failed or cancelled jobs).
	for _, sts := range j.subtasks {
		for _, st := range sts {
			for _, in := range st.inboxes {
				drain(in.ch)
			}
		}
	}
	err := j.firstErr
	if err == nil {
		err = j.srcErr
	}
	if err == nil {
		err = context.Cause(ctx)
	}
	// Close errors of subtasks that had failed already (the first error,
	// or its consequences) come after the first error, never instead of it.
	var closeErrs []error
	for _, sts := range j.subtasks {
		for _, st := range sts {
			if st.closeErr != nil {
				closeErrs = append(closeErrs, &TaskError{Node: st.node.name, Subtask: st.task.Subtask, Err: st.closeErr})
			}
		}
	}
	if len(closeErrs) > 0 {
		return errors.Join(append([]error{err}, closeErrs...)...)
	}
	return err
}

// closed folds the error of closing a subtask's operator or reader into
// the subtask's result: a subtask that succeeded fails with it (a sink's
// last flush, a dead-letter file's final fsync); one that failed already
// keeps its error and Run adds the close error after the job's first.
func (st *subtask) closed(err, cerr error) error {
	if cerr == nil {
		return err
	}
	cerr = fmt.Errorf("close: %w", cerr)
	if err == nil {
		return cerr
	}
	st.lateErr(cerr)
	return err
}

// lateErr records an error of a subtask that comes after the job's first
// error (a close error, an asynchronous snapshot part failing once the job
// was cancelled): Run returns it joined after the first.
func (st *subtask) lateErr(err error) {
	st.closeMu.Lock()
	st.closeErr = errors.Join(st.closeErr, err)
	st.closeMu.Unlock()
}

// SourceError returns the source error that ended the job gracefully under
// RunOptions.DrainOnSourceError (what Run returned then), or nil. Valid
// once Run returned.
func (j *Job) SourceError() error { return j.srcErr }

// sourceFailed records a source error under DrainOnSourceError and stops
// the job gracefully, with a drain.
func (j *Job) sourceFailed(st *subtask, err error) {
	j.srcOnce.Do(func() {
		j.srcErr = &TaskError{Node: st.node.name, Subtask: st.task.Subtask, Err: err}
		j.opts.Log.Error("source failed: stopping the job gracefully so that sinks keep what it computed",
			"node", st.node.name, "subtask", st.task.Subtask, "err", err)
	})
	j.Stop(true)
}

// fail records the first error of the job and cancels it.
func (j *Job) fail(st *subtask, err error) {
	j.errOnce.Do(func() {
		j.firstErr = &TaskError{Node: st.node.name, Subtask: st.task.Subtask, Err: err}
		j.cancel(j.firstErr)
	})
}

func drain(ch chan Message) {
	for {
		select {
		case m := <-ch:
			m.release()
		default:
			return
		}
	}
}

func (m Message) release() {
	if m.Kind == KindBatch && m.Batch != nil {
		m.Batch.Release()
	}
}

type subtask struct {
	job     *Job
	node    *Node
	task    *Task
	inboxes []*inbox
	out     output
	// head is the first subtask of the chain this one runs in (itself when
	// it is chained to nothing or heads a chain); chain, on a head, lists
	// the chain's subtasks in order, itself first. clk accounts the time of
	// the chain's goroutine (the head's is used).
	head  *subtask
	chain []*subtask
	clk   clock
	// op is an operator subtask's operator (once created), wh the same as
	// a WatermarkHandler; active counts its inboxes that did not end.
	op        Operator
	wh        WatermarkHandler
	active    int
	trigger   chan Barrier
	finished  chan struct{}   // sources: closed when the reader is done
	finalSnap SubtaskSnapshot // sources: state at end of input, set before finished is closed
	finalErr  error
	// closeErr is the error of closing the operator or reader when the
	// subtask had failed already, joined with the errors of asynchronous
	// snapshot parts that failed after the job was cancelled (lateErr);
	// Run joins it to the job's error.
	closeMu  sync.Mutex
	closeErr error

	completeMu sync.Mutex
	completed  []uint64
	// hasCompleted says completed is not empty (read without the lock
	// before every message).
	hasCompleted atomic.Bool

	// Out-of-band barriers for a subtask that finishes before they arrive
	// in-band (see TriggerCheckpoint); lastSnap is the newest barrier it
	// snapshotted. wake is poked when pending or completed grows.
	pendMu   sync.Mutex
	pending  []Barrier
	lastSnap uint64
	wake     chan struct{}
	doneOnce sync.Once
	// async counts asynchronous snapshot parts still running; the
	// operator is closed only once they are done.
	async sync.WaitGroup
	// stoppedByBarrier: this subtask snapshotted a Stop barrier.
	stoppedByBarrier bool

	// reporter is the operator or reader, once created, if it is a
	// MetricsReporter; alignStart is when the barrier being aligned first
	// arrived.
	reporter   atomic.Pointer[MetricsReporter]
	alignStart time.Time

	// bell carries, for a subtask with several inboxes, the index of the
	// inbox each message was put into (see inbox); ready counts the
	// tokens held back by barrier alignment whose inbox is unblocked.
	bell     chan int32
	ready    int
	wm       int64
	idleOut  bool // told downstream it is idle (every input idle)
	aligning bool
	barrier  Barrier
	arrived  int
}

// runChain runs a chain of subtasks (one subtask, when it is chained to
// nothing) on the calling goroutine: the head's loop, into which the other
// members are called, then the members' lingering (see linger), then
// their closing. It records the chain's error, naming the member it
// belongs to (memberError), with Job.fail.
func (st *subtask) runChain(ctx context.Context) {
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		if st.node.source != nil {
			err = st.runSource(ctx)
		} else {
			err = st.runOperator(ctx)
		}
		if err == nil {
			err = st.linger(ctx)
		}
		return err
	}()
	failed := st
	var me *memberError
	if errors.As(err, &me) {
		failed, err = me.st, me.err
	}
	for _, m := range st.chain {
		if m.op == nil {
			continue
		}
		m.async.Wait()
		if cerr := m.op.Close(); cerr != nil {
			cerr = fmt.Errorf("close: %w", cerr)
			if err == nil {
				failed, err = m, cerr
			} else {
				m.lateErr(cerr)
			}
		}
	}
	for _, m := range st.chain {
		m.done()
	}
	if err != nil {
		st.job.fail(failed, err)
	}
}

// memberError is the error of a chained subtask on its way up the chain's
// call stack to the head, which attributes it to that subtask.
type memberError struct {
	st  *subtask
	err error
}

func (e *memberError) Error() string { return e.err.Error() }
func (e *memberError) Unwrap() error { return e.err }

// own marks err, if not nil, as the error of st unless it already names
// a member of the chain downstream of st.
func (st *subtask) own(err error) error {
	if err == nil || st.head == st {
		return err
	}
	var me *memberError
	if errors.As(err, &me) {
		return err
	}
	return &memberError{st: st, err: err}
}

// poke wakes a finished subtask waiting in linger.
func (st *subtask) poke() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// done records that the subtask finished (or failed); the last one
// releases the lingering subtasks.
func (st *subtask) done() {
	st.doneOnce.Do(func() {
		if st.job.live.Add(-1) == 0 {
			close(st.job.allDone)
		}
	})
}
