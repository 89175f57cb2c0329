package agg

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// ErrClosed is returned by an operator used after Close.
var ErrClosed = errors.New("agg: operator closed")

// operator is one subtask of a hash aggregate.
type operator struct {
	p    *plan
	task *arrowexec.Task // nil in some tests
	// suspended: Finish found the input suspended and kept the groups.
	suspended bool
	mem       memory.Allocator
	grouper   grouper // nil without group-by columns: one group, gid 0
	accs      []accumulator
	aggCols   [][]arrow.Array

	keyCols []arrow.Array
	hashes  []uint64
	gids    []uint32
	zeros   []uint32 // the gids of a batch without group-by columns

	// schema is the schema of checkpointed state (see stateSchema).
	schema *arrow.Schema

	// hashMask is ANDed into every key hash: all ones, except in tests that
	// force hash collisions.
	hashMask uint64
	finished bool
	closed   bool
	// emitted: the aggregate restored the state of a global aggregate
	// that had already emitted its row (see checkpoint.go) and aggregated
	// nothing since; Finish then emits nothing. Rows arriving after the
	// restore (a Partial subtask handed live input after its own input had
	// ended) clear it: their aggregate is new and must be emitted.
	emitted bool

	// pubGroups and pubBytes publish the group count (after every batch)
	// and StateBytes (when the groups grew by an eighth since sizedAt
	// groups, at snapshots and when the state is dropped) for
	// ReportMetrics: StateBytes walks string aggregates, so it is
	// recomputed O(log groups) times, not per batch.
	pubGroups, pubBytes atomic.Int64
	sizedAt             int
}

var _ arrowexec.Operator = (*operator)(nil)

// MetricDescs are the series a hash aggregate's subtasks report
// (arrowexec.MetricsReporter).
var MetricDescs = []*arrowexec.MetricDesc{groupsDesc, bytesDesc}

var (
	groupsDesc = &arrowexec.MetricDesc{Name: "riffle_agg_groups",
		Help: "Groups (distinct keys) a hash aggregate subtask holds.", Kind: arrowexec.Gauge, PerSubtask: true}
	bytesDesc = &arrowexec.MetricDesc{Name: "riffle_agg_state_bytes",
		Help: "Go heap bytes a hash aggregate subtask's groups hold (estimate, refreshed as the groups grow by an eighth).",
		Kind: arrowexec.Gauge, PerSubtask: true}
)

var _ arrowexec.MetricsReporter = (*operator)(nil)

// ReportMetrics implements arrowexec.MetricsReporter.
func (o *operator) ReportMetrics(emit func(arrowexec.Metric)) {
	emit(arrowexec.Metric{Desc: groupsDesc, Value: float64(o.pubGroups.Load())})
	emit(arrowexec.Metric{Desc: bytesDesc, Value: float64(o.pubBytes.Load())})
}

// publishSize publishes the group count, and the state's bytes when the
// groups grew by an eighth since they were last measured (or force).
func (o *operator) publishSize(ng int, force bool) {
	o.pubGroups.Store(int64(ng))
	if force || ng >= o.sizedAt+o.sizedAt/8+1 {
		o.pubBytes.Store(int64(o.StateBytes()))
		o.sizedAt = ng
	}
}

func newOperator(p *plan, mem memory.Allocator) (*operator, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	o := &operator{p: p, mem: mem, hashMask: ^uint64(0)}
	if len(p.keyIdx) > 0 {
		types := make([]arrow.DataType, len(p.keyIdx))
		for i, k := range p.keyIdx {
			types[i] = p.in.Field(k).Type
		}
		o.grouper = newGrouper(types)
		o.keyCols = make([]arrow.Array, len(p.keyIdx))
	}
	for _, a := range p.aggs {
		o.accs = append(o.accs, newAccumulator(a, p.opts.Mode))
		o.aggCols = append(o.aggCols, make([]arrow.Array, len(a.cols)))
	}
	if o.grouper == nil {
		// The global group exists even when no row arrives.
		for _, acc := range o.accs {
			acc.resize(1)
		}
	}
	return o, nil
}

// Open restores the checkpointed state of the task, if any.
func (o *operator) Open(ctx context.Context) error {
	if o.closed {
		return ErrClosed
	}
	if o.task != nil && o.task.Restore != nil {
		return o.restore(ctx, o.task.Restore)
	}
	return nil
}

func (o *operator) numGroups() int {
	if o.grouper == nil {
		return 1
	}
	return o.grouper.len()
}

func (o *operator) Process(ctx context.Context, input int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if o.closed {
		return ErrClosed
	}
	if o.finished {
		return errors.New("agg: Process after Finish")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := o.checkBatch(b); err != nil {
		return err
	}
	n := int(b.NumRows())
	if n == 0 {
		return nil
	}
	o.emitted = false
	if o.grouper == nil {
		return o.processGlobal(b, n)
	}
	for i, k := range o.p.keyIdx {
		o.keyCols[i] = b.Column(k)
	}
	gids, err := o.groupRows(n, nil)
	if err != nil {
		return fmt.Errorf("agg: %w", err)
	}
	ng := o.numGroups()
	for i, acc := range o.accs {
		cols := o.aggCols[i]
		for j, c := range o.p.aggs[i].cols {
			cols[j] = b.Column(c)
		}
		acc.resize(ng)
		acc.update(cols, gids)
		clear(cols)
		if err := o.failed(i); err != nil {
			return err
		}
	}
	o.publishSize(ng, false)
	return nil
}

// groupRows returns the group id of each of the n rows whose key columns
// are in o.keyCols (which it clears), creating groups for new keys. check,
// if not nil, is given the key hashes first.
func (o *operator) groupRows(n int, check func(hashes []uint64) error) ([]uint32, error) {
	defer clear(o.keyCols)
	o.hashes = grow(o.hashes, n)
	if err := arrowexec.HashColumns(o.keyCols, o.hashes); err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(o.hashes); err != nil {
			return nil, err
		}
	}
	if o.hashMask != ^uint64(0) {
		for i := range o.hashes {
			o.hashes[i] &= o.hashMask
		}
	}
	o.gids = grow(o.gids, n)
	o.grouper.group(o.keyCols, o.hashes, o.gids)
	return o.gids, nil
}

// checkBatch makes sure the columns the kernels reinterpret have the
// planned types (a mismatch would otherwise be read as the wrong type).
func (o *operator) checkBatch(b arrow.RecordBatch) error {
	if b.Schema() == o.p.in {
		return nil
	}
	if int(b.NumCols()) != o.p.in.NumFields() {
		return fmt.Errorf("agg: batch has %d columns, the input schema %d", b.NumCols(), o.p.in.NumFields())
	}
	for _, i := range o.p.used {
		if got, want := b.Column(i).DataType(), o.p.in.Field(i).Type; !arrow.TypeEqual(got, want) {
			return fmt.Errorf("agg: column %q is %s in the batch, %s in the input schema", o.p.in.Field(i).Name, got, want)
		}
	}
	return nil
}

// processGlobal updates the one group of an aggregate without keys.
func (o *operator) processGlobal(b arrow.RecordBatch, n int) error {
	for i, acc := range o.accs {
		cols := o.aggCols[i]
		for j, c := range o.p.aggs[i].cols {
			cols[j] = b.Column(c)
		}
		if g, ok := acc.(globalUpdater); ok {
			g.updateGlobal(cols, n)
		} else {
			o.zeros = zeros(o.zeros, n)
			acc.update(cols, o.zeros)
		}
		clear(cols)
		if err := o.failed(i); err != nil {
			return err
		}
	}
	return nil
}

// failed returns the error of accumulator i, if it failed.
func (o *operator) failed(i int) error {
	if f, ok := o.accs[i].(failer); ok {
		if err := f.failed(); err != nil {
			return fmt.Errorf("agg: %s: %w", o.p.aggs[i].Name(), err)
		}
	}
	return nil
}

// Finish emits every group, in order of first appearance, in batches of at
// most BatchSize rows, then drops the state: what is emitted is no longer
// the operator's state (a finished subtask still answers checkpoints, see
// arrowexec.Checkpointer).
func (o *operator) Finish(ctx context.Context, out arrowexec.Emitter) error {
	if o.closed {
		return ErrClosed
	}
	if o.finished {
		return errors.New("agg: Finish called twice")
	}
	o.finished = true
	if o.task != nil && o.task.Suspended() {
		o.suspended = true
		// Stopped without drain (a savepoint): the input did not end, so
		// there is no result yet. The groups stay in the state, which is
		// what the savepoint holds and what later snapshots report; the
		// resumed job emits them at its real end.
		return nil
	}
	defer o.dropState()
	if o.emitted {
		return nil
	}
	ng := o.numGroups()
	for _, acc := range o.accs {
		acc.resize(ng)
	}
	size := o.p.opts.BatchSize
	for lo := 0; lo < ng; lo += size {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+size, ng)
		rec, err := o.build(lo, hi)
		if err != nil {
			return err
		}
		if err := out.Emit(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

func (o *operator) build(lo, hi int) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, 0, o.p.out.NumFields())
	var err error
	if o.grouper != nil {
		cols, err = o.grouper.build(o.mem, lo, hi, cols)
	}
	for _, acc := range o.accs {
		if err != nil {
			break
		}
		cols, err = acc.build(o.mem, lo, hi, cols)
	}
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	if err != nil {
		return nil, err
	}
	return array.NewRecordBatch(o.p.out, cols, int64(hi-lo)), nil
}

// Close drops the aggregation state. Safe to call twice.
func (o *operator) Close() error {
	o.closed = true
	o.dropState()
	return nil
}

func (o *operator) dropState() {
	o.grouper, o.accs, o.aggCols = nil, nil, nil
	o.keyCols, o.hashes, o.gids, o.zeros = nil, nil, nil, nil
	o.publishSize(0, true)
}

// StateBytes reports the memory the aggregation state holds (Go heap; the
// Arrow buffers of results come from the Task's allocator).
func (o *operator) StateBytes() int {
	n := 8*cap(o.hashes) + 4*cap(o.gids) + 4*cap(o.zeros)
	if o.grouper != nil {
		n += o.grouper.bytes()
	}
	for _, a := range o.accs {
		n += a.bytes()
	}
	return n
}
