// Package arrowexec is riffle's dataflow core: a DAG of sources, operators
// and sinks over Arrow record batches, each node running as N parallel
// subtasks connected by bounded queues, or fused into its upstream's
// subtasks (operator chaining).
//
// # The operator contract
//
// A node is described by a Spec, which knows its output schema before the job
// starts (Spec.Schema is called once at plan time with the input schemas) and
// creates one Operator per subtask. The runtime drives each Operator from a
// single goroutine: its methods are never called concurrently.
//
//	Open     once, before anything else
//	Process  for every input batch, with the index of the input edge
//	Finish   once, after every input reached end of input (bounded jobs,
//	         stops); Task.Suspended says whether the input really ended
//	Close    once, always, even after an error; safe to call twice; a
//	         finished subtask is closed only when the whole job finished
//
// Abilities beyond that are small optional interfaces an Operator may
// implement: WatermarkHandler (event-time progress), Checkpointer or
// AsyncCheckpointer (state snapshots at checkpoint barriers, the latter
// writing a point-in-time view while the operator goes on) and
// CheckpointListener (acting when a checkpoint is complete: two-phase
// commit). A Source is driven the same way through SourceReader.Next;
// RunOptions.HoldAtEnd suspends bounded sources at their end instead of
// finishing them (see checkpoint.go).
//
// # In-band control events
//
// Edges carry Messages. A Message is a data batch or a control event:
// a watermark, a checkpoint barrier, or end of input. Control events travel
// in order with the data, through every kind of exchange. A subtask with
// several input channels forwards the minimum watermark over its inputs
// (leaving out inputs that declared themselves idle; a subtask whose every
// input is idle declares itself idle downstream in turn), aligns
// checkpoint barriers (an input that delivered barrier n is held back
// until barrier n arrived on every input), and signals end of input
// downstream once every input has ended. The end of bounded input carries the
// final watermark (MaxWatermark) so every event-time window fires.
//
// # Multi-input operators
//
// A node may read several edges (Graph.Add with several Inputs, from
// different nodes, each with its own exchange): Spec.Schema and
// SideOutputs get one schema per input, in edge order, Task.Inputs holds
// them, and Process is told which input a batch came from (its index in
// that order), so an operator keeps per-input state (a join's two sides)
// without knowing how many channels feed each input. The runtime does the
// rest for every input alike: OnWatermark sees the minimum watermark over
// all inputs (idle and ended ones left out), a checkpoint barrier is
// aligned across all inputs (each input that delivered barrier n is held
// back until n arrived on every one, so SnapshotState sees exactly the
// rows before the barrier on each), and Finish is called once every input
// ended. A keyed multi-input operator (a join) reads each input behind a
// Hash exchange on its key columns: rows of equal keys from every input
// then meet in the same subtask, which owns the same key groups on all
// inputs. ops.Union is the simplest such operator (every input forwarded,
// the schemas equal); job's union step uses it.
//
// # Side outputs
//
// Besides its main output, a node may have named side outputs (late rows
// of a window, dead letters): its Spec implements SideOutputter, declaring
// each one's name and schema at plan time, and its operator emits to one
// with Side(out, name).Emit, which returns nil when no edge reads that
// output (the operator then need not build the rows). An edge from a side
// output is an Input made by Node.Side(name) (Forward, Rebalance,
// Broadcast or HashBy on the side schema's columns) and is otherwise an
// ordinary edge: watermarks, checkpoint barriers and end of input go to
// every edge of every output, in order with the data, so what an operator
// emitted to a side output before a barrier belongs to that checkpoint
// and a two-phase-commit sink behind a side edge is exactly once like one
// behind the main edge.
//
// # Operator chaining
//
// Nodes connected by a Forward edge run fused, as Flink chains operators:
// a node whose only input is a Forward edge from the main output of a node
// that has no other consumer is chained to that node (Node.Chained,
// planned by Build), so subtask i of the whole chain is one goroutine and
// no queue: the upstream operator's Emit calls the chained operator's
// Process directly (source -> filter -> project -> partial aggregate in the
// source subtask's goroutine). Batch ownership is the same as through a
// queue: Emit hands over the reference, the chained Process borrows it and
// the runtime releases it after. Control events go the same way, in order
// with the data: a watermark or idle status reaches each member's
// OnWatermark as it would through a queue, a checkpoint barrier is aligned
// at the chain's head only and then snapshots every member in chain order
// before going on downstream, end of input finishes each member in turn,
// and a finished chain lingers as one (see checkpoint.go). Exchanges
// (Rebalance, Broadcast, Hash), multi-input nodes, nodes with several
// consumers (main and side edges counted together) and nodes opted out
// with Node.DisableChaining are chain boundaries; RunOptions.DisableChaining
// turns chaining off for a run (RIFFLE_DISABLE_CHAINING=1 for every run of
// the process, so whole test suites run both ways). Job.Chains tells how a
// job runs. An error of a chained operator is reported as that node's.
//
// # Batch ownership
//
// This is the one place batch ownership is written down; everything in riffle
// follows it.
//
//   - SourceReader.Next returns a batch the caller owns (one reference).
//   - Operator.Process receives a borrowed batch: valid until Process
//     returns. An operator that keeps it past the call (windows, state,
//     buffering sinks) calls Retain and later Release.
//   - Emitter.Emit takes over the caller's reference. An operator that
//     forwards its input unchanged calls Retain first; an operator that built
//     a new batch just emits it. After Emit, the caller must not touch the
//     batch again.
//   - The runtime releases every batch it still holds when a job fails or is
//     cancelled, so an error path never leaks.
//
// Every allocation goes through the memory.Allocator in Task, so tests run the
// whole graph on a checked allocator and assert that zero bytes remain.
//
// # Exchanges
//
// An edge between two nodes is Forward (subtask i to subtask i; parallelism
// must match), Rebalance (round robin), Broadcast (every batch to every
// subtask) or Hash (rows partitioned by hashed key columns). Hash exchanges
// are vectorized: one hash pass over the key columns of a whole batch, one
// counting pass, one gather per column per target. Keys map to key groups
// (hash mod MaxParallelism) and key groups to subtasks in contiguous ranges,
// so keyed state can be redistributed when parallelism changes.
//
// # Errors
//
// The first error of any subtask cancels the job; Run returns it wrapped as a
// *TaskError naming the node and subtask. Operators check cancellation once
// per batch, never per row. With RunOptions.DrainOnSourceError, a source
// reader's error instead ends the job as Job.Stop(true) would (the other
// sources stop after their current batch, the final watermark fires every
// window, sinks flush and commit), and Run then returns that error: a job
// without checkpoints keeps what it computed.
//
// No error is dropped. The error of an operator's or source reader's Close
// (a sink's last flush, a dead-letter file's final fsync) and of a source's
// final snapshot fail a job that had succeeded; after an earlier error Run
// returns errors.Join(first, close errors...), each a *TaskError, the first
// error first. The asynchronous part of a snapshot (AsyncCheckpointer) that
// fails after the job was cancelled joins the close errors the same way,
// unless it failed with the cancellation itself.
//
// # Metrics
//
// Every subtask has a TaskMetrics, updated once per batch or control
// message, never per row: rows, batches and Arrow bytes in and out (per
// node, chained or not), the wall time of its goroutine split into busy,
// backpressured (blocked on a full downstream queue) and idle (waiting for
// input), taken with the monotonic clock around the blocking points (the
// time of a chain is accounted on its head's subtask, its other members
// show none: splitting it would read the clock per call), barrier
// alignment time, the
// watermark and idle status, and per source split (Watermarks.ReportTo)
// the split's watermark. Job.Inputs folds each operator input's channels
// (Job.InputWatermarks) into its queue fill and watermark. A component with series of its own (Kafka lag, window
// late rows, a recommender's updates) implements MetricsReporter: a Spec
// or Source for the node, an Operator or SourceReader for its subtask;
// Job.ReportMetrics collects them at scrape time (internal/metrics serves
// all of it to Prometheus).
//
// Files: runtime.go holds the job API (Compile, Run, checkpoint triggers)
// and runs chains, source_task.go and operator_task.go the loops of the
// two kinds of subtask (operator_task.go also how a subtask with several
// inputs waits on them: one bell channel, see inbox; and how a chained
// subtask is called), task_checkpoint.go their snapshots, barrier alignment and
// checkpoint completions, metrics.go the metrics and the MetricsReporter
// hook, introspect.go the read-only views of a running job for status
// pages (Job.InputWatermarks: each operator input channel's watermark,
// idleness and end; Job.OutputFill and OutputBlocked: how full a
// subtask's output queues are, whether one is full; Node.Inputs, Spec and
// Source), safe to call from any goroutine. TaskMetrics.Times adds a wait
// for input in progress to the time counters, for live views.
package arrowexec
