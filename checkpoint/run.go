package checkpoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
)

// DefaultStopTimeout bounds each phase of a graceful stop in Run.
const DefaultStopTimeout = time.Minute

// RunConfig configures Run.
type RunConfig struct {
	Options
	// From restores from this checkpoint or savepoint directory. Empty:
	// from the newest complete checkpoint in Dir (Latest), or a fresh start
	// when there is none.
	From string
	// AllowFreshStart lets Run start fresh when Dir holds checkpoints but
	// none of them is usable (ErrUnusableCheckpoints). Without it Run
	// refuses: the job ran before, its sinks may have published output,
	// and starting over would process (and publish) its input again.
	AllowFreshStart bool
	// RunOptions are the base options of the job (Mem, QueueDepth, Log);
	// Run sets OnSnapshot, SnapshotDir and Restore.
	RunOptions arrowexec.RunOptions
	// StopTimeout bounds the final checkpoint of a graceful stop, and then
	// the wait for the job to end, each; default 1m. When it expires the
	// job is cancelled.
	StopTimeout time.Duration
	// SavepointAtEnd, when set, holds the job's bounded input at its end
	// instead of finishing it (arrowexec.RunOptions.HoldAtEnd: no final
	// watermark, open windows stay open) and, once every source got there,
	// stops the job with a savepoint in this directory: a backfill whose
	// state and watermark a stream job continues from (--from the
	// savepoint, with another SourceFingerprint). Its path is then
	// Coordinator.Stats().LastPath; Run fails if the savepoint does.
	SavepointAtEnd string
	// OnStart, if set, is called once the job is compiled and about to
	// run, with the coordinator (for savepoints and stats) and the job.
	OnStart func(*Coordinator, *arrowexec.Job)
}

// Run runs a job with exactly-once checkpoints, the way `riffle run
// --checkpoint-dir D --checkpoint-interval 1s [--from PATH]` does:
//
//  1. it takes the lock of Dir (LockDir; ErrLocked names the process
//     holding it) and holds it until it returns;
//  2. it loads the checkpoint to restore from: cfg.From, else Latest(Dir)
//     (corrupt checkpoints are skipped and logged at warn level), else
//     none; when Dir holds checkpoints and none is usable it fails with
//     ErrUnusableCheckpoints unless cfg.AllowFreshStart;
//  3. build returns the job's graph (it gets the restored checkpoint, or
//     nil, e.g. to log its source positions);
//  4. it compiles the graph with the coordinator's RunOptions and runs the
//     job and the coordinator's trigger loop;
//  5. when ctx is cancelled (SIGTERM), it stops gracefully: a final
//     checkpoint in Dir with Barrier.Stop (sources end right behind it,
//     sinks finish), so a restart resumes exactly there; then it waits for
//     the job. Each phase is bounded by StopTimeout.
//
// It returns the job's error, or the coordinator's (ErrTooManyFailures
// cancels the job), or nil when the job ended or was stopped gracefully.
func Run(ctx context.Context, cfg RunConfig, build func(restored *Checkpoint) (*arrowexec.Graph, error)) error {
	c, err := NewCoordinator(cfg.Options)
	if err != nil {
		return err
	}
	opts := c.Options()
	stopTimeout := cfg.StopTimeout
	if stopTimeout <= 0 {
		stopTimeout = DefaultStopTimeout
	}
	lock, err := LockDir(opts.Dir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	var from *Checkpoint
	if cfg.From != "" {
		if from, err = LoadFS(opts.FS, cfg.From); err != nil {
			return err
		}
	} else {
		from, err = LatestFS(opts.FS, opts.Log, opts.Dir)
		switch {
		case errors.Is(err, ErrUnusableCheckpoints) && cfg.AllowFreshStart:
			opts.Log.Warn("checkpoint: every checkpoint is unusable; starting fresh as allowed: the input is processed again from the start",
				"dir", opts.Dir, "reasons", err.Error())
			from = nil
		case errors.Is(err, ErrUnusableCheckpoints):
			return fmt.Errorf("%w; refusing to start fresh: the job ran before and its output may be published (starting over processes the input again)", err)
		case errors.Is(err, ErrNoCheckpoint):
			opts.Log.Info("checkpoint: no checkpoint to restore, starting fresh", "dir", opts.Dir)
			from = nil
		case err != nil:
			return err
		}
	}
	g, err := build(from)
	if err != nil {
		return err
	}
	ro, err := c.RunOptions(g, from, cfg.RunOptions)
	if err != nil {
		return err
	}
	ro.HoldAtEnd = cfg.SavepointAtEnd != ""
	job, err := g.Compile(ro)
	if err != nil {
		return err
	}
	if cfg.OnStart != nil {
		cfg.OnStart(c, job)
	}
	base := context.WithoutCancel(ctx)
	jobCtx, cancelJob := context.WithCancelCause(base)
	defer cancelJob(nil)
	coordCtx, stopCoord := context.WithCancel(base)
	defer stopCoord()
	coordDone := make(chan error, 1)
	go func() {
		err := c.Run(coordCtx, job)
		if err != nil {
			opts.Log.Error("checkpoint: coordinator failed, cancelling the job", "err", err)
			cancelJob(err)
		}
		coordDone <- err
	}()
	jobDone := make(chan error, 1)
	go func() { jobDone <- job.Run(jobCtx) }()

	var (
		jobErr error
		atEnd  <-chan struct{}
	)
	if cfg.SavepointAtEnd != "" {
		atEnd = job.SourcesAtEnd()
	}
	select {
	case jobErr = <-jobDone:
	case <-atEnd:
		opts.Log.Info("checkpoint: every source is at the end of its input, stopping with a savepoint", "dir", cfg.SavepointAtEnd)
		sctx, cancel := context.WithTimeout(base, stopTimeout)
		path, err := c.StopWithSavepoint(sctx, cfg.SavepointAtEnd)
		cancel()
		select {
		case jobErr = <-jobDone:
		case <-time.After(stopTimeout):
			cancelJob(fmt.Errorf("checkpoint: job did not stop within %v", stopTimeout))
			jobErr = <-jobDone
		}
		if err != nil {
			jobErr = errors.Join(fmt.Errorf("checkpoint: savepoint at the end of input: %w", err), jobErr)
		} else {
			opts.Log.Info("checkpoint: savepoint at the end of input complete", "savepoint", path)
		}
	case <-ctx.Done():
		opts.Log.Info("checkpoint: stopping with a final checkpoint")
		sctx, cancel := context.WithTimeout(base, stopTimeout)
		path, err := c.StopWithSavepoint(sctx, "")
		cancel()
		if err != nil {
			opts.Log.Warn("checkpoint: final checkpoint failed; a restart resumes from the previous one", "err", err)
		} else {
			opts.Log.Info("checkpoint: final checkpoint complete", "checkpoint", path)
		}
		job.Stop(false)
		select {
		case jobErr = <-jobDone:
		case <-time.After(stopTimeout):
			cancelJob(fmt.Errorf("checkpoint: job did not stop within %v", stopTimeout))
			jobErr = <-jobDone
		}
	}
	stopCoord()
	coordErr := <-coordDone
	if coordErr != nil {
		return coordErr
	}
	return jobErr
}

// GraphFingerprint returns a fingerprint of g's logical shape: MaxParallelism
// and every node's name, kind and output schema, in order. Parallelism is
// left out, so a job restores at another parallelism. A job whose operators
// change without changing names or schemas (another aggregate, another
// filter) should fingerprint its spec instead.
func GraphFingerprint(g *arrowexec.Graph) string {
	h := sha256.New()
	fmt.Fprintf(h, "riffle-graph/1 maxp=%d\n", g.MaxParallelism())
	for _, n := range g.Nodes() {
		schema := "<sink>"
		if s := n.Schema(); s != nil {
			schema = s.String()
		}
		fmt.Fprintf(h, "%q source=%v %q\n", n.Name(), n.IsSource(), schema)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
