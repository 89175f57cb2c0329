package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/fsx"
)

// Defaults of Options.
const (
	DefaultInterval          = 10 * time.Second
	DefaultTimeout           = 10 * time.Minute
	DefaultRetain            = 3
	DefaultTolerableFailures = 3
)

// Options configure a Coordinator. Dir and JobFingerprint are required; the
// zero value of every other field selects its default.
type Options struct {
	// Dir holds the checkpoints: chk-<id> directories (see the package
	// documentation). Created if missing.
	Dir string
	// Interval between two checkpoint triggers; default 10s. Negative
	// disables periodic checkpoints (Checkpoint, TriggerSavepoint and
	// StopWithSavepoint still work).
	Interval time.Duration
	// Timeout abandons a checkpoint not complete this long after its
	// trigger; default 10m.
	Timeout time.Duration
	// Retain is how many complete checkpoints are kept in Dir (the newest);
	// default 3. Savepoints are not counted nor removed.
	Retain int
	// TolerableFailures is how many consecutive checkpoints may fail to be
	// written (I/O errors) before Run fails with ErrTooManyFailures;
	// default 3, negative for no limit. Abandoned (timed out) checkpoints
	// do not count.
	TolerableFailures int
	// FS performs all file I/O of the coordinator; default OSFS. Operators
	// write their own snapshot files with their own FS.
	FS FS
	// JobFingerprint identifies the logical job (for example a hash of the
	// job spec without parallelism; GraphFingerprint computes one). A
	// checkpoint is only restored into a job with the same fingerprint.
	JobFingerprint string
	// SourceFingerprint identifies the job's sources (kind and
	// configuration), when JobFingerprint leaves them out. A checkpoint
	// written with another SourceFingerprint restores every operator's
	// state and watermark but not the source positions: the sources start
	// from their configured start, with a log line. That is how a stream
	// job continues from the savepoint of a backfill over files (one
	// state, another source).
	SourceFingerprint string
	// Log receives the coordinator's log lines; default slog.Default().
	Log *slog.Logger
}

// EnsureDefaults fills unset fields with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Retain == 0 {
		o.Retain = DefaultRetain
	}
	if o.TolerableFailures == 0 {
		o.TolerableFailures = DefaultTolerableFailures
	}
	if o.FS == nil {
		o.FS = OSFS
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return o
}

// Validate checks options on which EnsureDefaults was called.
func (o *Options) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("Dir is required"))
	}
	if o.JobFingerprint == "" {
		errs = append(errs, errors.New("JobFingerprint is required"))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout %v is negative", o.Timeout))
	}
	if o.Retain < 1 {
		errs = append(errs, fmt.Errorf("Retain %d must be at least 1", o.Retain))
	}
	if o.FS == nil || o.Log == nil {
		errs = append(errs, errors.New("FS and Log must be set (call EnsureDefaults)"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return nil
}

// Stats counts a coordinator's checkpoints.
type Stats struct {
	Completed, Failed, Abandoned, Skipped int64
	// Last* describe the last completed checkpoint.
	LastID       uint64
	LastPath     string
	LastDuration time.Duration
	LastBytes    int64
	// LastCompleted is when the last checkpoint completed (zero before).
	LastCompleted time.Time
	// Durations is the distribution of completed checkpoints' durations,
	// in seconds (trigger to complete), over DurationBuckets.
	Durations arrowexec.HistogramSnapshot
}

// DurationBuckets are the upper bounds, in seconds, of Stats.Durations.
var DurationBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Coordinator triggers checkpoints of one job run and writes them to
// Options.Dir. Use it in this order:
//
//	c, err := NewCoordinator(opts)
//	ro, err := c.RunOptions(graph, restoreFrom, baseRunOptions) // restoreFrom may be nil
//	job, err := graph.Compile(ro)
//	go c.Run(ctx, job)    // trigger loop; returns when ctx ends
//	err = job.Run(jobCtx)
//
// Run (the package function) does all of that, with a graceful stop, and
// holds the directory's lock (LockDir) meanwhile; whoever uses a
// Coordinator directly should hold it too.
type Coordinator struct {
	opts Options
	fs   FS
	log  *slog.Logger

	mu        sync.Mutex
	prepared  bool
	running   bool
	job       *arrowexec.Job
	nodes     []nodeInfo
	byName    map[string]int
	total     int
	maxPar    int
	nextID    uint64
	pending   *pending
	abandoned map[uint64]*pending
	stats     Stats
	durations *arrowexec.Histogram
	history   []Record // history.go
	failures  int
	finished  bool // every source finished

	completeCh chan *pending
	reqCh      chan *request
	doneCh     chan struct{} // closed when Run returns
}

type nodeInfo struct {
	name        string
	parallelism int
	source      bool
}

type request struct {
	savepoint bool
	dir       string // savepoint target
	stop      bool
	resp      chan result
}

type result struct {
	path string
	err  error
}

// pending is a checkpoint in flight.
type pending struct {
	id       uint64
	barrier  arrowexec.Barrier
	staging  string
	final    string
	retained bool // a regular checkpoint, subject to Retain
	started  time.Time
	snaps    map[subKey]arrowexec.SubtaskSnapshot
	wms      map[subKey]int64
	idle     map[subKey]bool // idle at the barrier: holds no watermark back
	dirs     map[subKey]bool // SnapshotDir handed out
	reported int
	// allReported is when the last subtask reported its snapshot.
	allReported time.Time
	req         *request
	// abandoned: late reports only clean up.
	abandoned bool
}

// NewCoordinator validates opts (defaults applied) and returns a
// coordinator.
func NewCoordinator(opts Options) (*Coordinator, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Coordinator{
		opts: opts, fs: opts.FS, log: opts.Log,
		abandoned:  map[uint64]*pending{},
		completeCh: make(chan *pending, 1),
		reqCh:      make(chan *request),
		doneCh:     make(chan struct{}),
		nextID:     1,
		durations:  arrowexec.NewHistogram(DurationBuckets...),
	}, nil
}

// Options returns the options in effect.
func (c *Coordinator) Options() Options { return c.opts }

// Stats returns the coordinator's counters.
func (c *Coordinator) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Durations = c.durations.Snapshot()
	return s
}

// RunOptions prepares the coordinator for a run of g and returns base with
// OnSnapshot, SnapshotDir and Restore set (any previous values are
// replaced). With from, every subtask restores from it: from must have been
// written by a job with the same fingerprint and MaxParallelism; the
// parallelism of nodes may differ (key groups are redistributed, operator
// state of all previous subtasks is handed to every new one). Checkpoint
// ids continue after the newest in Dir and after from's. Staging
// directories left in Dir by a crash are removed.
func (c *Coordinator) RunOptions(g *arrowexec.Graph, from *Checkpoint, base arrowexec.RunOptions) (arrowexec.RunOptions, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prepared {
		return base, errors.New("checkpoint: RunOptions called twice")
	}
	if from != nil {
		if err := from.checkRestorable(c.opts.JobFingerprint, g.MaxParallelism()); err != nil {
			return base, err
		}
	}
	if err := fsx.MkdirAllSync(c.fs, c.opts.Dir, 0o755); err != nil {
		return base, fmt.Errorf("checkpoint: create %s: %w", c.opts.Dir, err)
	}
	ents, err := c.fs.ReadDir(c.opts.Dir)
	if err != nil {
		return base, fmt.Errorf("checkpoint: list %s: %w", c.opts.Dir, err)
	}
	var maxID uint64
	for _, e := range ents {
		id, inProgress, ok := parseCheckpointDirName(e.Name())
		if !ok {
			continue
		}
		maxID = max(maxID, id)
		if inProgress {
			p := filepath.Join(c.opts.Dir, e.Name())
			c.log.Info("checkpoint: removing unfinished checkpoint", "checkpoint", p)
			if err := c.fs.RemoveAll(p); err != nil {
				return base, fmt.Errorf("checkpoint: remove %s: %w", p, err)
			}
		}
	}
	if from != nil {
		maxID = max(maxID, from.ID())
	}
	c.nextID = maxID + 1
	c.byName = map[string]int{}
	c.total = 0
	for _, n := range g.Nodes() {
		c.byName[n.Name()] = len(c.nodes)
		c.nodes = append(c.nodes, nodeInfo{name: n.Name(), parallelism: n.Parallelism(), source: n.IsSource()})
		c.total += n.Parallelism()
	}
	c.maxPar = g.MaxParallelism()
	c.prepared = true
	base.OnSnapshot = c.onSnapshot
	base.SnapshotDir = c.snapshotDir
	base.Restore = nil
	if from != nil {
		c.log.Info("checkpoint: restoring", "checkpoint", from.Path, "id", from.ID(), "watermark", FormatWatermark(from.Manifest.Watermark))
		sourcesChanged := from.Manifest.SourceFingerprint != c.opts.SourceFingerprint
		if sourcesChanged {
			c.log.Info("checkpoint: the sources differ from the checkpoint's; their positions are not restored, they start from their configured start",
				"checkpoint", from.Path, "checkpoint_sources", from.Manifest.SourceFingerprint, "sources", c.opts.SourceFingerprint)
		}
		base.Restore = func(node string, subtask, parallelism int) *arrowexec.RestoreState {
			if sourcesChanged && g.Node(node) != nil && g.Node(node).IsSource() {
				return nil
			}
			return from.RestoreState(node, subtask, parallelism)
		}
	}
	return base, nil
}

// lookup returns the pending or abandoned checkpoint id. c.mu is held.
func (c *Coordinator) lookup(id uint64) *pending {
	if c.pending != nil && c.pending.id == id {
		return c.pending
	}
	return c.abandoned[id]
}

// snapshotDir is RunOptions.SnapshotDir.
func (c *Coordinator) snapshotDir(node string, subtask int, id uint64) (string, error) {
	c.mu.Lock()
	p := c.lookup(id)
	if p == nil {
		c.mu.Unlock()
		return "", fmt.Errorf("checkpoint: snapshot directory for checkpoint %d, which is not in progress", id)
	}
	k := subKey{node, subtask}
	p.dirs[k] = true
	dir := filepath.Join(p.staging, filepath.FromSlash(subtaskDirName(node, subtask)))
	// Created under the lock: an abandoned checkpoint's staging directory
	// is removed under it too, never while a subtask is handed a path.
	err := c.fs.MkdirAll(dir, 0o755)
	c.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("checkpoint: create snapshot directory %s: %w", dir, err)
	}
	return dir, nil
}

// onSnapshot is RunOptions.OnSnapshot: it keeps the snapshot in memory and
// hands the checkpoint to the Run loop when every subtask reported.
func (c *Coordinator) onSnapshot(node string, subtask int, id uint64, snap arrowexec.SubtaskSnapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.lookup(id)
	if p == nil {
		c.log.Debug("checkpoint: ignoring snapshot of unknown checkpoint", "id", id, "node", node, "subtask", subtask)
		return nil
	}
	ni, ok := c.byName[node]
	if !ok || subtask < 0 || subtask >= c.nodes[ni].parallelism {
		return fmt.Errorf("checkpoint: snapshot of unknown subtask %s/%d", node, subtask)
	}
	k := subKey{node, subtask}
	if _, dup := p.snaps[k]; dup {
		return fmt.Errorf("checkpoint: checkpoint %d: subtask %s/%d reported twice", id, node, subtask)
	}
	if p.abandoned {
		p.snaps[k] = arrowexec.SubtaskSnapshot{}
		p.reported++
		c.cleanupAbandoned(p)
		return nil
	}
	p.snaps[k] = snap
	wm := arrowexec.MinWatermark
	if c.job != nil {
		if ms := c.job.Metrics(node); subtask < len(ms) {
			wm = ms[subtask].Watermark.Load()
			p.idle[k] = ms[subtask].Idle.Load()
		}
	}
	p.wms[k] = wm
	p.reported++
	if p.reported == c.total {
		p.allReported = time.Now()
		select {
		case c.completeCh <- p:
		default:
		}
	}
	return nil
}

// cleanupAbandoned removes the staging directory of abandoned checkpoint p
// once no subtask that was handed a directory is still writing to it, and
// forgets p once every subtask reported. c.mu is held.
func (c *Coordinator) cleanupAbandoned(p *pending) {
	for k := range p.dirs {
		if _, ok := p.snaps[k]; !ok {
			return // still writing; its report cleans up
		}
	}
	if err := c.fs.RemoveAll(p.staging); err != nil {
		c.log.Warn("checkpoint: cannot remove abandoned checkpoint", "checkpoint", p.staging, "err", err)
	}
	if p.reported >= c.total {
		delete(c.abandoned, p.id)
	}
}

// abandon gives up the pending checkpoint. c.mu is held.
func (c *Coordinator) abandon(p *pending, reason error) {
	if c.pending == p {
		c.pending = nil
	}
	if !errors.Is(reason, ErrJobFinished) {
		c.record(p, "abandoned", 0, reason)
	}
	p.abandoned = true
	for k := range p.snaps {
		p.snaps[k] = arrowexec.SubtaskSnapshot{} // drop the blobs
	}
	if p.reported < c.total {
		c.abandoned[p.id] = p
		// Bound the bookkeeping of checkpoints that will never complete
		// (a subtask that finished never reports).
		if len(c.abandoned) > 64 {
			var oldest uint64 = ^uint64(0)
			for id := range c.abandoned {
				oldest = min(oldest, id)
			}
			delete(c.abandoned, oldest)
		}
	}
	c.cleanupAbandoned(p)
	if p.req != nil {
		p.req.resp <- result{err: fmt.Errorf("%w: checkpoint %d: %w", ErrAbandoned, p.id, reason)}
		p.req = nil
	}
}

// Checkpoint triggers a checkpoint now (after the one in flight, if any)
// and waits until it is complete; it returns its directory. It needs Run to
// be running.
func (c *Coordinator) Checkpoint(ctx context.Context) (string, error) {
	return c.request(ctx, &request{})
}

// TriggerSavepoint writes a complete checkpoint to dir (which must not
// exist; its parent is created) and returns dir. Savepoints live outside
// Options.Dir and are never removed by retention. It waits for the
// checkpoint in flight, if any, and needs Run to be running.
func (c *Coordinator) TriggerSavepoint(ctx context.Context, dir string) (string, error) {
	if dir == "" {
		return "", errors.New("checkpoint: savepoint directory is empty")
	}
	return c.request(ctx, &request{savepoint: true, dir: dir})
}

// StopWithSavepoint takes a savepoint in dir and stops the job: every
// source ends right behind the savepoint's barrier (Barrier.Stop), so the
// job processes nothing the savepoint does not cover, sinks finish, and
// job.Run returns. With dir == "", the final checkpoint is a regular one in
// Options.Dir (a graceful stop that a restart resumes from). Job.Stop(false)
// is called in any case, so the job stops even when the savepoint fails
// (then it resumes from the previous checkpoint).
func (c *Coordinator) StopWithSavepoint(ctx context.Context, dir string) (string, error) {
	path, err := c.request(ctx, &request{savepoint: dir != "", dir: dir, stop: true})
	c.mu.Lock()
	job := c.job
	c.mu.Unlock()
	if job != nil {
		job.Stop(false)
	}
	return path, err
}

func (c *Coordinator) request(ctx context.Context, r *request) (string, error) {
	r.resp = make(chan result, 1)
	select {
	case c.reqCh <- r:
	case <-c.doneCh:
		return "", ErrNotRunning
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case res := <-r.resp:
		return res.path, res.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Run is the coordinator's loop for job: every Interval it triggers a
// checkpoint (skipped, and logged, while one is in flight), completes
// checkpoints whose subtasks all reported, abandons those older than
// Timeout, and serves Checkpoint and savepoint requests. It returns nil
// when ctx ends, or ErrTooManyFailures (or a trigger error), in which case
// the caller should fail the job. Call it once, after RunOptions.
func (c *Coordinator) Run(ctx context.Context, job *arrowexec.Job) (err error) {
	c.mu.Lock()
	if !c.prepared || c.running {
		c.mu.Unlock()
		return errors.New("checkpoint: Run needs RunOptions first and runs once")
	}
	c.running = true
	c.job = job
	c.mu.Unlock()
	var queue []*request
	defer func() {
		c.mu.Lock()
		if p := c.pending; p != nil {
			c.abandon(p, errors.New("coordinator stopped"))
		}
		c.mu.Unlock()
		close(c.doneCh)
		for _, r := range queue {
			r.resp <- result{err: ErrNotRunning}
		}
	}()
	var tick <-chan time.Time
	if c.opts.Interval > 0 {
		t := time.NewTicker(c.opts.Interval)
		defer t.Stop()
		tick = t.C
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	startNext := func(r *request) error {
		p, err := c.start(ctx, job, r)
		if p != nil {
			timer.Reset(max(time.Until(p.started.Add(c.opts.Timeout)), 0))
		}
		return err
	}
	for {
		c.mu.Lock()
		busy := c.pending != nil
		finished := c.finished
		c.mu.Unlock()
		if !busy && len(queue) > 0 {
			r := queue[0]
			queue = queue[1:]
			if err := startNext(r); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			if busy {
				c.mu.Lock()
				c.stats.Skipped++
				id := c.pending.id
				c.mu.Unlock()
				c.log.Info("checkpoint: trigger skipped, a checkpoint is in flight", "in_flight", id)
				continue
			}
			if finished {
				continue
			}
			if err := startNext(nil); err != nil {
				return err
			}
		case r := <-c.reqCh:
			queue = append(queue, r)
		case p := <-c.completeCh:
			if err := c.complete(ctx, job, p); err != nil {
				return err
			}
		case <-timer.C:
			c.mu.Lock()
			if p := c.pending; p != nil && time.Since(p.started) >= c.opts.Timeout {
				c.stats.Abandoned++
				c.log.Warn("checkpoint: abandoned, not complete within timeout", "id", p.id, "timeout", c.opts.Timeout, "reported", p.reported, "subtasks", c.total)
				c.abandon(p, fmt.Errorf("not complete within %v", c.opts.Timeout))
			}
			c.mu.Unlock()
		}
	}
}

// start triggers the next checkpoint (r == nil: periodic).
func (c *Coordinator) start(ctx context.Context, job *arrowexec.Job, r *request) (*pending, error) {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		if r != nil {
			r.resp <- result{err: ErrJobFinished}
		}
		return nil, nil
	}
	id := c.nextID
	c.nextID++
	p := &pending{
		id: id, barrier: arrowexec.Barrier{ID: id}, started: time.Now(), req: r,
		snaps: map[subKey]arrowexec.SubtaskSnapshot{}, wms: map[subKey]int64{}, idle: map[subKey]bool{}, dirs: map[subKey]bool{},
	}
	if r != nil && r.savepoint {
		p.barrier.Savepoint = true
		p.final = filepath.Clean(r.dir)
		p.staging = p.final + inProgressSuffix
	} else {
		p.retained = true
		p.final = filepath.Join(c.opts.Dir, checkpointDirName(id))
		p.staging = p.final + inProgressSuffix
	}
	p.barrier.Stop = r != nil && r.stop
	c.mu.Unlock()
	if p.barrier.Savepoint {
		if _, err := c.fs.Stat(p.final); err == nil || !isNotExist(err) {
			if err == nil {
				err = os.ErrExist
			}
			r.resp <- result{err: fmt.Errorf("checkpoint: savepoint %s: %w", p.final, err)}
			return nil, nil
		}
		if err := c.fs.RemoveAll(p.staging); err != nil {
			r.resp <- result{err: fmt.Errorf("checkpoint: savepoint %s: %w", p.final, err)}
			return nil, nil
		}
	}
	c.mu.Lock()
	c.pending = p
	c.mu.Unlock()
	c.log.Debug("checkpoint: trigger", "id", id, "savepoint", p.barrier.Savepoint, "stop", p.barrier.Stop)
	// No timeout here: a source that took the barrier cannot take it back,
	// and a source that missed barrier n but takes n+1 would fail the
	// alignment downstream. The checkpoint timeout runs from p.started.
	err := job.TriggerCheckpoint(ctx, p.barrier)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		return p, nil
	case errors.Is(err, arrowexec.ErrSourcesFinished):
		c.finished = true
		c.log.Info("checkpoint: every source finished; no more checkpoints", "id", id)
		if c.pending == p {
			c.abandon(p, ErrJobFinished)
		}
		return nil, nil
	case ctx.Err() != nil:
		if c.pending == p {
			c.abandon(p, ctx.Err())
		}
		return nil, nil
	default:
		if c.pending == p {
			c.abandon(p, err)
		}
		return nil, fmt.Errorf("checkpoint: trigger checkpoint %d: %w", id, err)
	}
}

// complete writes pending checkpoint p, makes it durable and visible, tells
// the job, and applies retention.
func (c *Coordinator) complete(ctx context.Context, job *arrowexec.Job, p *pending) error {
	c.mu.Lock()
	if c.pending != p {
		c.mu.Unlock()
		return nil // abandoned meanwhile
	}
	c.mu.Unlock()
	size, err := c.write(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = nil
	if err != nil {
		c.stats.Failed++
		c.record(p, "failed", 0, err)
		c.failures++
		c.log.Error("checkpoint: failed, abandoned", "id", p.id, "checkpoint", p.final, "err", err, "consecutive_failures", c.failures)
		for _, d := range []string{p.staging, p.final} {
			if rerr := c.fs.RemoveAll(d); rerr != nil {
				c.log.Warn("checkpoint: cannot remove failed checkpoint", "checkpoint", d, "err", rerr)
			}
		}
		if p.req != nil {
			p.req.resp <- result{err: fmt.Errorf("%w: checkpoint %d: %w", ErrAbandoned, p.id, err)}
		}
		if c.opts.TolerableFailures >= 0 && c.failures > c.opts.TolerableFailures {
			return fmt.Errorf("%w: %d in a row, last: checkpoint %d: %w", ErrTooManyFailures, c.failures, p.id, err)
		}
		return nil
	}
	c.failures = 0
	d := time.Since(p.started)
	c.stats.Completed++
	c.stats.LastID, c.stats.LastPath, c.stats.LastDuration, c.stats.LastBytes = p.id, p.final, d, size
	c.stats.LastCompleted = time.Now()
	c.durations.Observe(d.Seconds())
	c.record(p, "completed", size, nil)
	job.NotifyCheckpointComplete(p.id)
	c.log.Info("checkpoint: complete", "id", p.id, "checkpoint", p.final, "savepoint", p.barrier.Savepoint, "duration", d, "bytes", size)
	if p.req != nil {
		p.req.resp <- result{path: p.final}
	}
	if p.retained {
		c.retain()
	}
	return nil
}

// retain removes complete checkpoints beyond the newest Retain. c.mu held.
func (c *Coordinator) retain() {
	ids, err := completeIDs(c.fs, c.opts.Dir)
	if err != nil {
		c.log.Warn("checkpoint: retention", "err", err)
		return
	}
	for len(ids) > c.opts.Retain {
		p := filepath.Join(c.opts.Dir, checkpointDirName(ids[0]))
		ids = ids[1:]
		// Remove the manifest first, so a removal cut short leaves a
		// directory Latest skips, never a checkpoint with missing files.
		if err := c.fs.Remove(filepath.Join(p, ManifestName)); err != nil && !isNotExist(err) {
			c.log.Warn("checkpoint: cannot remove old checkpoint", "checkpoint", p, "err", err)
			continue
		}
		if err := c.fs.RemoveAll(p); err != nil {
			c.log.Warn("checkpoint: cannot remove old checkpoint", "checkpoint", p, "err", err)
			continue
		}
		c.log.Debug("checkpoint: removed old checkpoint", "checkpoint", p)
	}
}

// write writes p's in-memory snapshots and manifest to its staging
// directory, fsyncs everything, and renames it into place. It returns the
// size of the checkpoint's files.
func (c *Coordinator) write(p *pending) (int64, error) {
	c.mu.Lock()
	nodes := c.nodes
	maxPar := c.maxPar
	c.mu.Unlock()
	m := &Manifest{
		FormatVersion: FormatVersion, JobFingerprint: c.opts.JobFingerprint, SourceFingerprint: c.opts.SourceFingerprint, CheckpointID: p.id,
		Savepoint: p.barrier.Savepoint, Time: p.started.UTC(), Watermark: arrowexec.MaxWatermark,
		MaxParallelism: maxPar, Sources: []SourcePosition{},
	}
	fsys := c.fs
	// The staging directory's entry is made durable with the rename
	// below; its parent (a savepoint's may be new) durable now.
	if err := fsx.MkdirAllSync(fsys, filepath.Dir(p.staging), 0o755); err != nil {
		return 0, fmt.Errorf("create %s: %w", filepath.Dir(p.staging), err)
	}
	if err := fsys.MkdirAll(p.staging, 0o755); err != nil {
		return 0, fmt.Errorf("create %s: %w", p.staging, err)
	}
	buf := make([]byte, 256<<10)
	// The job's watermark is what its operators reached: each takes the
	// minimum over its active inputs, leaving idle sources (a Kafka
	// partition without data, a Parquet reader without row groups) out,
	// and so does the job, leaving idle operator subtasks (every input
	// idle) out. With every subtask idle (a quiet topic) it is the minimum
	// of their last watermarks.
	active, allIdle := false, arrowexec.MaxWatermark
	onlySources := true
	for _, n := range nodes {
		onlySources = onlySources && n.source
	}
	for _, n := range nodes {
		nm := NodeManifest{Name: n.name, Dir: nodeDirName(n.name), Parallelism: n.parallelism, Source: n.source}
		for sub := 0; sub < n.parallelism; sub++ {
			k := subKey{n.name, sub}
			snap := p.snaps[k]
			rel := subtaskDirName(n.name, sub)
			dir := filepath.Join(p.staging, filepath.FromSlash(rel))
			if err := fsys.MkdirAll(dir, 0o755); err != nil {
				return 0, fmt.Errorf("create %s: %w", dir, err)
			}
			sm := SubtaskManifest{Subtask: sub, Dir: rel, Watermark: p.wms[k], SnapshotFiles: p.dirs[k]}
			switch {
			case n.source && !onlySources:
			case p.idle[k]:
				allIdle = min(allIdle, sm.Watermark)
			default:
				m.Watermark = min(m.Watermark, sm.Watermark)
				active = true
			}
			if snap.Operator != nil {
				if err := writeFile(fsys, filepath.Join(dir, OperatorFileName), snap.Operator); err != nil {
					return 0, err
				}
				sm.Operator = OperatorFileName
			}
			if len(snap.KeyGroups) > 0 {
				kgs := make([]int, 0, len(snap.KeyGroups))
				for kg := range snap.KeyGroups {
					if kg < 0 || kg >= maxPar {
						return 0, fmt.Errorf("subtask %s/%d snapshot holds key group %d, not in [0, %d)", n.name, sub, kg, maxPar)
					}
					kgs = append(kgs, kg)
				}
				slices.Sort(kgs)
				var all []byte
				for _, kg := range kgs {
					b := snap.KeyGroups[kg]
					sm.KeyGroups = append(sm.KeyGroups, KeyGroupBlob{KeyGroup: kg, Offset: int64(len(all)), Size: int64(len(b))})
					all = append(all, b...)
				}
				if err := writeFile(fsys, filepath.Join(dir, KeyGroupFileName), all); err != nil {
					return 0, err
				}
			}
			// Checksum every file under the subtask's directory, the
			// operator's included, and fsync it (operators need not).
			err := walkFiles(fsys, dir, "", func(name string) error {
				full := filepath.Join(dir, filepath.FromSlash(name))
				_, size, crc, err := checksumFile(fsys, full, false, true, buf)
				if err != nil {
					return fmt.Errorf("checksum %s: %w", full, err)
				}
				sm.Files = append(sm.Files, FileInfo{Name: name, Size: size, CRC32C: crc})
				return nil
			})
			if err != nil {
				return 0, err
			}
			if sm.Files == nil {
				sm.Files = []FileInfo{}
			}
			if err := fsys.SyncDir(dir); err != nil {
				return 0, fmt.Errorf("fsync %s: %w", dir, err)
			}
			nm.Subtasks = append(nm.Subtasks, sm)
			if n.source {
				m.Sources = append(m.Sources, sourcePosition(n.name, sub, snap.Operator))
			}
		}
		ndir := filepath.Join(p.staging, nm.Dir)
		if err := fsys.SyncDir(ndir); err != nil {
			return 0, fmt.Errorf("fsync %s: %w", ndir, err)
		}
		m.Nodes = append(m.Nodes, nm)
	}
	if !active {
		m.Watermark = allIdle
	}
	m.DurationMS = time.Since(p.started).Milliseconds()
	data, err := encodeManifest(m)
	if err != nil {
		return 0, err
	}
	if err := writeFile(fsys, filepath.Join(p.staging, ManifestName), data); err != nil {
		return 0, err
	}
	if err := fsys.SyncDir(p.staging); err != nil {
		return 0, fmt.Errorf("fsync %s: %w", p.staging, err)
	}
	if err := fsys.Rename(p.staging, p.final); err != nil {
		return 0, fmt.Errorf("rename %s to %s: %w", p.staging, p.final, err)
	}
	parent := filepath.Dir(p.final)
	if err := fsys.SyncDir(parent); err != nil {
		return 0, fmt.Errorf("fsync %s: %w", parent, err)
	}
	return m.Bytes(), nil
}

// writeFile creates name with data and fsyncs it.
func writeFile(fsys FS, name string, data []byte) error {
	f, err := fsys.Create(name)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
