package arrowexec

import (
	"context"
	"log/slog"
	"math"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// MaxWatermark is the watermark carried by the end of bounded input: every
// event-time timer fires at it.
const MaxWatermark int64 = math.MaxInt64

// MinWatermark is the watermark before any event-time progress.
const MinWatermark int64 = math.MinInt64

// DefaultMaxParallelism is the number of key groups keyed state is split into.
const DefaultMaxParallelism = 128

// Task describes one parallel subtask of a node, as handed to Spec.New and
// Source.Open.
type Task struct {
	Node           string // node name, unique in the graph
	Subtask        int    // 0 .. Parallelism-1
	Parallelism    int
	MaxParallelism int // number of key groups
	Mem            memory.Allocator
	Log            *slog.Logger
	// Inputs holds the schema of every input edge, in edge order.
	Inputs []*arrow.Schema
	// Output is the node's output schema (nil for sinks).
	Output *arrow.Schema
	// Metrics counts rows and batches of this subtask.
	Metrics *TaskMetrics
	// Restore holds the state this subtask restores from, or nil on a fresh
	// start (see Checkpointer).
	Restore *RestoreState
	// SnapshotDir returns the directory where this subtask may write files
	// for checkpoint id (created on first call), or an error when the job
	// runs without a checkpoint directory.
	SnapshotDir func(id uint64) (string, error)

	// suspended is shared by copies of the Task (operators that run
	// nested operators hand them a copy).
	suspended *atomic.Bool
}

// Suspended reports, from Finish on, whether the subtask's input was
// suspended rather than ended: the job stopped without draining (a
// stop-with-savepoint, Job.Stop(false), a backfill held at its end), so
// the final watermark never arrived. An operator that emits its results at
// the end of input (a hash aggregate) then emits nothing and keeps them:
// they are in the savepoint, and the job resumed from it emits them at its
// real end. False for a task the runtime did not run.
func (t *Task) Suspended() bool { return t.suspended != nil && t.suspended.Load() }

// KeyGroupRange returns the key groups [lo, hi) this subtask owns.
func (t *Task) KeyGroupRange() (lo, hi int) {
	return KeyGroupRange(t.MaxParallelism, t.Parallelism, t.Subtask)
}

// Emitter sends batches downstream of an operator.
type Emitter interface {
	// Emit sends b to every output edge. It takes over the caller's
	// reference to b. It blocks while downstream queues are full
	// (backpressure) and returns an error when the job is cancelled.
	Emit(ctx context.Context, b arrow.RecordBatch) error
}

// SideEmitter is implemented by the Emitter the runtime hands to an
// operator: EmitSide sends b to the edges wired to the node's side output
// name (see SideOutputs), taking over the caller's reference like Emit.
// Use Side rather than calling it directly.
type SideEmitter interface {
	Emitter
	EmitSide(ctx context.Context, name string, b arrow.RecordBatch) error
	// SideWired reports whether an edge reads side output name.
	SideWired(name string) bool
}

// Side returns the Emitter of out's side output name, or nil when no edge
// reads it (or out is not the runtime's Emitter: an operator driven by
// hand), so an operator can skip building rows nobody receives.
func Side(out Emitter, name string) Emitter {
	se, ok := out.(SideEmitter)
	if !ok || !se.SideWired(name) {
		return nil
	}
	return sideEmitter{se, name}
}

type sideEmitter struct {
	out  SideEmitter
	name string
}

func (s sideEmitter) Emit(ctx context.Context, b arrow.RecordBatch) error {
	return s.out.EmitSide(ctx, s.name, b)
}

// Operator is one subtask of a node. See the package documentation for the
// call order and batch ownership.
type Operator interface {
	Open(ctx context.Context) error
	// Process handles one batch from input edge `input`. b is borrowed.
	Process(ctx context.Context, input int, b arrow.RecordBatch, out Emitter) error
	// Finish is called once after every input reached end of input.
	Finish(ctx context.Context, out Emitter) error
	// Close releases resources. It is called exactly once by the runtime,
	// also after errors, and must be safe to call twice.
	Close() error
}

// WatermarkHandler is implemented by operators that act on event-time
// progress (windows). OnWatermark is called when the minimum watermark over
// all inputs advances, before the watermark is forwarded downstream.
type WatermarkHandler interface {
	OnWatermark(ctx context.Context, wm int64, out Emitter) error
}

// Spec describes a non-source node: it checks and derives schemas at plan time
// and creates one Operator per subtask.
type Spec interface {
	// Schema returns the output schema for the given input schemas, or nil
	// for a sink. An error here fails the job before it starts.
	Schema(inputs []*arrow.Schema) (*arrow.Schema, error)
	// New creates the operator of one subtask.
	New(t *Task) (Operator, error)
}

// SideOutput is a named output of a node besides its main one: late rows
// of a window, dead letters. Its edges are ordinary edges (any exchange);
// watermarks, checkpoint barriers and end of input flow on them as on the
// main output, so what an operator emits to a side output before a
// barrier belongs to that checkpoint, exactly once, wherever it goes.
type SideOutput struct {
	Name   string
	Schema *arrow.Schema
}

// SideOutputter is implemented by Specs whose operators emit to side
// outputs (through Side). SideOutputs is called once at plan time, after
// Schema, with the same input schemas.
type SideOutputter interface {
	SideOutputs(inputs []*arrow.Schema) ([]SideOutput, error)
}

// Source describes a source node.
type Source interface {
	// Schema is the schema of every batch the source produces.
	Schema() *arrow.Schema
	// Open creates the reader of one subtask. A source splits its work
	// (files, row groups, partitions) across t.Parallelism subtasks.
	Open(ctx context.Context, t *Task) (SourceReader, error)
}

// SourceReader produces the batches of one source subtask.
type SourceReader interface {
	// Next returns the next batch, owned by the caller, or (nil, io.EOF) at
	// the end of bounded input. An unbounded reader may return (nil, nil)
	// when no data arrived within its latency bound, so the runtime can
	// inject barriers and watermarks.
	Next(ctx context.Context) (arrow.RecordBatch, error)
	Close() error
}

// WatermarkSource is implemented by source readers that track event time.
// The runtime asks after every Next and forwards the watermark in-band when it
// advanced, or an idle status when every split of the reader is idle (the
// downstream minimum then leaves this channel out until it is active again).
type WatermarkSource interface {
	CurrentWatermark() (wm int64, idle bool)
}

// SuspendWatermarker is implemented by bounded source readers that can say
// which watermark their input allows when it is not known to be complete:
// the bounded out-of-orderness watermark of the rows read (largest event
// time minus the allowed disorder), MinWatermark when they read none or
// track no event time. The runtime asks for it at the end of input in
// RunOptions.HoldAtEnd mode, where the input is suspended rather than
// finished (a backfill whose savepoint a stream job continues from), so
// that windows still open at the end of the files stay open.
type SuspendWatermarker interface {
	SuspendWatermark() int64
}
