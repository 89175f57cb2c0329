package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/arrowtext"
)

// ErrFenced is wrapped by the error of an exactly-once sink whose
// transactional id was taken over by a newer producer: a restart of the
// job, or a second copy of it writing with the same ids. The fenced
// instance stops; the newer one owns the output.
var ErrFenced = errors.New("kafka: producer fenced by a newer instance of the job")

// txnOp is one subtask of an exactly-once sink (Options.Delivery
// ExactlyOnce). It owns a pool of transactional producers, ids
// "<TransactionalIDPrefix>-<node>-<subtask>-<slot>". The rows received
// between two barriers are produced in one transaction of a free slot; at
// barrier n the transaction is flushed (every row acknowledged) and left
// open: pre-committed. Its producer id and epoch go into the snapshot, and
// NotifyCheckpointComplete(n) commits it (and any pre-committed one of an
// earlier checkpoint that never completed: checkpoint n covers its rows
// too). A restore commits the transactions its checkpoint lists (with an
// EndTxn request at their producer id and epoch, as their own producer
// would) before any producer of this run starts with those ids; starting
// them fences the previous run (the broker bumps the epoch and aborts
// whatever it left open).
type txnOp struct {
	o       Options
	base    string // transactional id without "-<subtask>-<slot>"
	task    *arrowexec.Task
	enc     *arrowtext.Encoder
	key, ts int

	slots   []*kgo.Client
	cur     int  // slot of the open transaction, -1: none
	curRows bool // the open transaction has rows
	pending []pendingTxn

	buf, keys []byte
	msgs      []kafkago.Message
	recs      []kgo.Record
	ptrs      []*kgo.Record
	tsBuf     []int64
	closed    bool
}

// pendingTxn is a pre-committed transaction: flushed at the barrier of
// Checkpoint, committed when a checkpoint at least as new completes.
type pendingTxn struct {
	Checkpoint      uint64 `json:"checkpoint"`
	Slot            int    `json:"slot"`
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	Epoch           int16  `json:"epoch"`
}

// txnState is the operator state of one subtask in a checkpoint.
type txnState struct {
	Subtask int          `json:"subtask"`
	Pool    int          `json:"pool"`
	Pending []pendingTxn `json:"pending"`
}

var (
	_ arrowexec.Operator           = (*txnOp)(nil)
	_ arrowexec.Checkpointer       = (*txnOp)(nil)
	_ arrowexec.CheckpointListener = (*txnOp)(nil)
)

func (op *txnOp) id(subtask, slot int) string {
	return fmt.Sprintf("%s-%d-%d", op.base, subtask, slot)
}

// parseID returns the subtask and slot of a transactional id of this sink.
func (op *txnOp) parseID(id string) (subtask, slot int, ok bool) {
	rest, found := strings.CutPrefix(id, op.base+"-")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rest, "-")
	if !found {
		return 0, 0, false
	}
	sub, err1 := strconv.Atoi(a)
	sl, err2 := strconv.Atoi(b)
	return sub, sl, err1 == nil && err2 == nil && sub >= 0 && sl >= 0
}

func (op *txnOp) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(op.o.Brokers...),
		kgo.ClientID("riffle"),
		kgo.DefaultProduceTopic(op.o.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerBatchMaxBytes(int32(min(op.o.BatchBytes, 1<<30))),
		kgo.ProducerLinger(op.o.BatchTimeout),
		kgo.RecordDeliveryTimeout(op.o.RetryTimeout),
		kgo.RequestTimeoutOverhead(op.o.WriteTimeout),
	}
	return append(opts, extra...)
}

// Open commits the transactions of the restored checkpoint that this
// subtask inherits (those of previous subtasks s with s%Parallelism ==
// Subtask), fences every transactional id of the sink it inherits (also
// ids of an earlier run at a larger parallelism or pool, found with
// ListTransactions), and starts its own producers, which fences the
// previous owners of its ids.
func (op *txnOp) Open(ctx context.Context) error {
	admin, err := kgo.NewClient(op.clientOpts()...)
	if err != nil {
		return fmt.Errorf("kafka: topic %q: %w", op.o.Topic, err)
	}
	defer admin.Close()
	sub, par := op.task.Subtask, op.task.Parallelism
	pool := op.o.TransactionPool
	fenced := map[string]bool{}
	if r := op.task.Restore; r != nil {
		for i, blob := range r.Operator {
			if len(blob) == 0 {
				continue
			}
			var st txnState
			if err := json.Unmarshal(blob, &st); err != nil {
				return fmt.Errorf("kafka: topic %q: checkpoint %d: state of sink subtask %d: %w", op.o.Topic, r.CheckpointID, i, err)
			}
			if st.Subtask%par != sub {
				continue
			}
			for _, p := range st.Pending {
				if err := op.commitRecovered(ctx, admin, r.CheckpointID, p); err != nil {
					return err
				}
			}
			if st.Subtask == sub {
				pool = max(pool, st.Pool)
				continue
			}
			for slot := range st.Pool {
				id := op.id(st.Subtask, slot)
				if err := op.fence(ctx, id); err != nil {
					return err
				}
				fenced[id] = true
			}
		}
	}
	// Lingering transactions of runs this checkpoint does not know (a
	// crashed run at a larger parallelism, a fresh start after a crash).
	open, err := listOngoing(ctx, admin, op.base+"-")
	if err != nil {
		return fmt.Errorf("kafka: topic %q: listing open transactions %s-*: %w", op.o.Topic, op.base, err)
	}
	for _, id := range open {
		s, slot, ok := op.parseID(id)
		if !ok || s%par != sub || fenced[id] || (s == sub && slot < pool) {
			continue
		}
		if err := op.fence(ctx, id); err != nil {
			return err
		}
	}
	op.slots = make([]*kgo.Client, pool)
	for slot := range pool {
		id := op.id(sub, slot)
		cl, err := kgo.NewClient(op.clientOpts(kgo.TransactionalID(id), kgo.TransactionTimeout(op.o.TransactionTimeout))...)
		if err != nil {
			return fmt.Errorf("kafka: topic %q: transactional id %q: %w", op.o.Topic, id, err)
		}
		op.slots[slot] = cl
		// InitProducerID: bumps the epoch, which fences an older producer
		// with this id and aborts its open transaction.
		if _, _, err := cl.ProducerID(ctx); err != nil {
			return op.wrap(id, "initializing the transactional producer", err)
		}
	}
	op.cur = -1
	return nil
}

// commitRecovered commits a transaction pre-committed by the previous run
// at the barrier of a checkpoint that completed.
func (op *txnOp) commitRecovered(ctx context.Context, admin *kgo.Client, ckpt uint64, p pendingTxn) error {
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID = p.TransactionalID
	req.ProducerID = p.ProducerID
	req.ProducerEpoch = p.Epoch
	req.Commit = true
	// CONCURRENT_TRANSACTIONS: the coordinator is still completing an
	// EndTxn of the crashed run (it died between sending the commit and
	// the markers being written): retry until that finishes, as a
	// producer's own EndTxn would. A retried commit of a transaction that
	// completed meanwhile at this epoch answers success.
	ctx, cancel := context.WithTimeout(ctx, op.o.TransactionTimeout+op.o.WriteTimeout)
	defer cancel()
	var err error
	for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		var resp *kmsg.EndTxnResponse
		resp, err = req.RequestWith(ctx, admin)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if !errors.Is(err, kerr.ConcurrentTransactions) {
			break
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("kafka: topic %q: committing transaction %q of checkpoint %d: %w (last answer: %w)",
				op.o.Topic, p.TransactionalID, p.Checkpoint, ctx.Err(), err)
		case <-t.C:
		}
	}
	switch {
	case err == nil:
		op.o.Log.Info("kafka: committed the transaction of a restored checkpoint", "topic", op.o.Topic,
			"transactional_id", p.TransactionalID, "checkpoint", p.Checkpoint, "restored", ckpt)
		return nil
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.InvalidTxnState),
		errors.Is(err, kerr.InvalidProducerIDMapping):
		// The transaction is no longer open at that epoch: committed
		// before the crash (or by an earlier restore of this
		// checkpoint), or aborted by the broker because the job was down
		// longer than transaction_timeout. The broker cannot tell which.
		op.o.Log.Warn("kafka: the transaction of a restored checkpoint was already ended (committed before, or aborted after transaction_timeout)",
			"topic", op.o.Topic, "transactional_id", p.TransactionalID, "checkpoint", p.Checkpoint, "restored", ckpt, "err", err)
		return nil
	default:
		return fmt.Errorf("kafka: topic %q: committing transaction %q of checkpoint %d (producer id %d, epoch %d): %w",
			op.o.Topic, p.TransactionalID, p.Checkpoint, p.ProducerID, p.Epoch, err)
	}
}

// fence starts (and closes) a producer with transactional id id: the
// broker bumps its epoch and aborts any transaction left open with it.
func (op *txnOp) fence(ctx context.Context, id string) error {
	cl, err := kgo.NewClient(op.clientOpts(kgo.TransactionalID(id), kgo.TransactionTimeout(op.o.TransactionTimeout))...)
	if err != nil {
		return fmt.Errorf("kafka: topic %q: transactional id %q: %w", op.o.Topic, id, err)
	}
	defer cl.Close()
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return op.wrap(id, "fencing a previous producer", err)
	}
	op.o.Log.Info("kafka: fenced a previous producer", "topic", op.o.Topic, "transactional_id", id)
	return nil
}

// listOngoing returns the transactional ids starting with prefix that have
// an open transaction on any broker.
func listOngoing(ctx context.Context, cl *kgo.Client, prefix string) ([]string, error) {
	req := kmsg.NewPtrListTransactionsRequest()
	req.StateFilters = []string{"Ongoing", "PrepareCommit", "PrepareAbort"}
	var ids []string
	var errs []error
	for _, shard := range cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			errs = append(errs, fmt.Errorf("broker %d: %w", shard.Meta.NodeID, shard.Err))
			continue
		}
		resp := shard.Resp.(*kmsg.ListTransactionsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			errs = append(errs, fmt.Errorf("broker %d: %w", shard.Meta.NodeID, err))
			continue
		}
		for _, t := range resp.TransactionStates {
			if strings.HasPrefix(t.TransactionalID, prefix) {
				ids = append(ids, t.TransactionalID)
			}
		}
	}
	return ids, errors.Join(errs...)
}

// wrap names the topic and transactional id, and marks a fencing.
func (op *txnOp) wrap(id, what string, err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		return fmt.Errorf("%w: topic %q, transactional id %q: %s: a restart or a second copy of this job took the id over; this instance stops: %w",
			ErrFenced, op.o.Topic, id, what, err)
	}
	if errors.Is(err, kerr.InvalidTransactionTimeout) {
		return fmt.Errorf("kafka: topic %q, transactional id %q: %s: transaction_timeout %v exceeds the broker's transaction.max.timeout.ms: %w",
			op.o.Topic, id, what, op.o.TransactionTimeout, err)
	}
	return fmt.Errorf("kafka: topic %q, transactional id %q: %s: %w", op.o.Topic, id, what, err)
}

func (op *txnOp) freeSlot() (int, error) {
	busy := make([]bool, len(op.slots))
	for _, p := range op.pending {
		busy[p.Slot] = true
	}
	for s, b := range busy {
		if !b {
			return s, nil
		}
	}
	return 0, fmt.Errorf("kafka: topic %q: all %d transactions of subtask %d wait for a checkpoint to complete (checkpoints %d..%d did not): no free transactional producer",
		op.o.Topic, len(op.slots), op.task.Subtask, op.pending[0].Checkpoint, op.pending[len(op.pending)-1].Checkpoint)
}

func (op *txnOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	if b.NumRows() == 0 {
		return nil
	}
	if op.cur < 0 {
		slot, err := op.freeSlot()
		if err != nil {
			return err
		}
		if err := op.slots[slot].BeginTransaction(); err != nil {
			return op.wrap(op.id(op.task.Subtask, slot), "beginning a transaction", err)
		}
		op.cur, op.curRows = slot, false
	}
	msgs, err := encodeBatch(op.enc, b, op.key, op.ts, &op.buf, &op.keys, op.msgs[:0], &op.tsBuf)
	if err != nil {
		return err
	}
	op.msgs = msgs
	op.recs = op.recs[:0]
	for _, m := range msgs {
		op.recs = append(op.recs, kgo.Record{Key: m.Key, Value: m.Value, Timestamp: m.Time})
	}
	op.ptrs = op.ptrs[:0]
	for i := range op.recs {
		op.ptrs = append(op.ptrs, &op.recs[i])
	}
	op.curRows = true
	// Synchronous like the at-least-once writer: when Process returns the
	// rows are acknowledged (inside the open transaction), so the buffers
	// can be reused.
	if err := op.slots[op.cur].ProduceSync(ctx, op.ptrs...).FirstErr(); err != nil {
		return op.wrap(op.id(op.task.Subtask, op.cur), fmt.Sprintf("producing %d messages", len(op.ptrs)), err)
	}
	return nil
}

// SnapshotState pre-commits the open transaction (its rows are all
// acknowledged: Process is synchronous) and records it with the ones still
// waiting for their checkpoint.
func (op *txnOp) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	if op.cur >= 0 && op.curRows {
		cl := op.slots[op.cur]
		tid := op.id(op.task.Subtask, op.cur)
		if err := cl.Flush(ctx); err != nil {
			return arrowexec.SubtaskSnapshot{}, op.wrap(tid, "flushing at the barrier", err)
		}
		pid, epoch, err := cl.ProducerID(ctx)
		if err != nil {
			return arrowexec.SubtaskSnapshot{}, op.wrap(tid, "reading the producer id at the barrier", err)
		}
		op.pending = append(op.pending, pendingTxn{Checkpoint: id, Slot: op.cur, TransactionalID: tid, ProducerID: pid, Epoch: epoch})
		op.cur = -1
	}
	blob, err := json.Marshal(txnState{Subtask: op.task.Subtask, Pool: len(op.slots), Pending: op.pending})
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return arrowexec.SubtaskSnapshot{Operator: blob}, nil
}

// NotifyCheckpointComplete commits the transactions pre-committed at
// barriers up to id, oldest first.
func (op *txnOp) NotifyCheckpointComplete(ctx context.Context, id uint64) error {
	return op.commitPending(ctx, id)
}

func (op *txnOp) commitPending(ctx context.Context, upTo uint64) error {
	n := 0
	for _, p := range op.pending {
		if p.Checkpoint > upTo {
			break
		}
		if err := op.slots[p.Slot].EndTransaction(ctx, kgo.TryCommit); err != nil {
			op.pending = op.pending[n:]
			return op.wrap(p.TransactionalID, fmt.Sprintf("committing the transaction of checkpoint %d", p.Checkpoint), err)
		}
		n++
	}
	op.pending = op.pending[n:]
	return nil
}

// Finish commits everything at the end of the input (a bounded job's
// end); when the input was suspended (stop-with-savepoint) it commits
// nothing: the savepoint's completion did, or its restore will.
func (op *txnOp) Finish(ctx context.Context, _ arrowexec.Emitter) error {
	if op.task.Suspended() {
		return nil
	}
	if op.cur >= 0 && op.curRows {
		op.pending = append(op.pending, pendingTxn{Checkpoint: 0, Slot: op.cur, TransactionalID: op.id(op.task.Subtask, op.cur)})
		op.cur = -1
	}
	return op.commitPending(ctx, ^uint64(0))
}

// Close aborts the open transaction (its rows belong to no checkpoint),
// leaves the pre-committed ones to a restore, and closes the producers;
// safe to call twice.
func (op *txnOp) Close() error {
	if op.closed {
		return nil
	}
	op.closed = true
	var errs []error
	if op.cur >= 0 && op.curRows {
		ctx, cancel := context.WithTimeout(context.Background(), op.o.WriteTimeout)
		if err := op.slots[op.cur].EndTransaction(ctx, kgo.TryAbort); err != nil && !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
			errs = append(errs, op.wrap(op.id(op.task.Subtask, op.cur), "aborting the open transaction", err))
		}
		cancel()
	}
	for _, cl := range op.slots {
		if cl != nil {
			cl.Close()
		}
	}
	return errors.Join(errs...)
}

// validateTxn checks the exactly-once options.
func (o Options) validateTxn() error {
	if o.TransactionTimeout < time.Second {
		return fmt.Errorf("transaction_timeout %v: want at least 1s", o.TransactionTimeout)
	}
	if o.TransactionPool < 2 {
		return fmt.Errorf("transaction pool %d: want at least 2", o.TransactionPool)
	}
	return nil
}
