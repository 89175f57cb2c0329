package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// readAll reads the row ids of topic (kafkatest.ReadAll).
func readAll(ctx context.Context, t *testing.T, brokers, topic string, partitions int, committed bool) []int64 {
	t.Helper()
	var ids []int64
	for _, v := range kafkatest.ReadAll(ctx, t, brokers, topic, partitions, committed) {
		var row struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(v, &row); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		ids = append(ids, row.ID)
	}
	return ids
}

// eosTask is the task of subtask sub of par, restoring from r (nil: fresh).
func eosTask(sub, par int, r *arrowexec.RestoreState) *arrowexec.Task {
	return &arrowexec.Task{Node: "sink", Subtask: sub, Parallelism: par, MaxParallelism: 128,
		Mem: memory.DefaultAllocator, Log: slog.Default(), Inputs: []*arrow.Schema{testSchema}, Restore: r}
}

func openEOS(ctx context.Context, t *testing.T, s *Sink, task *arrowexec.Task) *txnOp {
	t.Helper()
	op, err := s.New(task)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Open(ctx); err != nil {
		t.Fatal(err)
	}
	return op.(*txnOp)
}

// rows sends rows [lo, hi) through op as one batch.
func rows(ctx context.Context, t *testing.T, op arrowexec.Operator, lo, hi int) error {
	t.Helper()
	bs := makeBatches(memory.DefaultAllocator, hi, hi)
	defer bs[0].Release()
	b := bs[0].NewSlice(int64(lo), int64(hi))
	defer b.Release()
	return op.Process(ctx, 0, b, nil)
}

func idRange(lo, hi int) []int64 {
	var out []int64
	for i := lo; i < hi; i++ {
		out = append(out, int64(i))
	}
	return out
}

func sorted(ids []int64) []int64 { ids = slices.Clone(ids); slices.Sort(ids); return ids }

func newEOSSink(ctx context.Context, t *testing.T, brokers, topic string) *Sink {
	t.Helper()
	s, err := New(ctx, Options{Brokers: []string{brokers}, Topic: topic, Delivery: ExactlyOnce, TransactionTimeout: 10 * time.Minute,
		TransactionalIDPrefix: kafkatest.UniqueName("eos")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestExactlyOnceCommitAtCheckpoint: the rows of a checkpoint become
// visible to read_committed readers when the checkpoint completes, not at
// the barrier; rows after the barrier wait for the next one.
func TestExactlyOnceCommitAtCheckpoint(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "eos-commit", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s := newEOSSink(ctx, t, brokers, topic)
	op := openEOS(ctx, t, s, eosTask(0, 1, nil))
	defer op.Close()
	if err := rows(ctx, t, op, 0, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := op.SnapshotState(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := rows(ctx, t, op, 100, 150); err != nil {
		t.Fatal(err)
	}
	// Nothing is committed yet: the uncommitted reader sees all 150 rows,
	// the committed one (which waits for the sentinel behind the open
	// transactions) would block, so read it only after the commit.
	if got := sorted(readAll(ctx, t, brokers, topic, 2, false)); !slices.Equal(got, idRange(0, 150)) {
		t.Fatalf("read_uncommitted: got %d rows, want 0..149", len(got))
	}
	if err := op.NotifyCheckpointComplete(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := op.SnapshotState(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := op.NotifyCheckpointComplete(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if got := sorted(readAll(ctx, t, brokers, topic, 2, true)); !slices.Equal(got, idRange(0, 150)) {
		t.Fatalf("read_committed: got %v rows, want 0..149", len(got))
	}
}

// TestExactlyOnceRestore: a crash after a barrier whose checkpoint
// completed but before the commit; the restored run commits that
// transaction, fences the crashed producer (which then fails with
// ErrFenced) and aborts the transaction it left open. A read_committed
// reader sees the checkpoint's rows once and is not blocked by the
// crashed run's open transaction; a read_uncommitted one sees the aborted
// rows too.
func TestExactlyOnceRestore(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "eos-restore", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s := newEOSSink(ctx, t, brokers, topic)
	old := openEOS(ctx, t, s, eosTask(0, 1, nil))
	defer old.Close()
	if err := rows(ctx, t, old, 0, 100); err != nil {
		t.Fatal(err)
	}
	snap, err := old.SnapshotState(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := rows(ctx, t, old, 100, 130); err != nil { // after the barrier: lost with the crash
		t.Fatal(err)
	}
	// The old run "crashes" here: no commit, no abort, no close.
	r := &arrowexec.RestoreState{CheckpointID: 7, Operator: [][]byte{snap.Operator}}
	restored := openEOS(ctx, t, s, eosTask(0, 1, r))
	defer restored.Close()

	if got := sorted(readAll(ctx, t, brokers, topic, 2, true)); !slices.Equal(got, idRange(0, 100)) {
		t.Fatalf("read_committed after restore: got %d rows %v.., want 0..99", len(got), got[:min(len(got), 5)])
	}
	if got := sorted(readAll(ctx, t, brokers, topic, 2, false)); !slices.Equal(got, idRange(0, 130)) {
		t.Fatalf("read_uncommitted after restore: got %d rows, want 0..129 (the aborted rows too)", len(got))
	}
	// The old instance is fenced.
	err = rows(ctx, t, old, 130, 140)
	if err == nil {
		_, err = old.SnapshotState(ctx, 8)
	}
	if err == nil {
		err = old.NotifyCheckpointComplete(ctx, 8)
	}
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("old instance after the restart: got %v, want ErrFenced", err)
	}
	t.Logf("fenced instance: %v", err)

	// A second restore of the same checkpoint (the restored run crashed
	// before its first checkpoint) finds the transaction already
	// committed: nothing is committed twice.
	again := openEOS(ctx, t, s, eosTask(0, 1, r))
	defer again.Close()
	if got := sorted(readAll(ctx, t, brokers, topic, 2, true)); !slices.Equal(got, idRange(0, 100)) {
		t.Fatalf("read_committed after a second restore: got %d rows, want 0..99", len(got))
	}
}

// TestExactlyOnceRescaleAndLingering (transactions time out after 10m,
// longer than the test may take, so only fencing can unblock readers): a run at parallelism 3 crashes with
// pre-committed and open transactions on every subtask; a restore at
// parallelism 2 commits all pre-committed ones and fences subtask 2's ids
// (no read_committed reader blocked); a fresh start at parallelism 1 after
// a crash with no checkpoint finds the open transactions of the crashed
// subtasks with ListTransactions and aborts them.
func TestExactlyOnceRescaleAndLingering(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "eos-rescale", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	s := newEOSSink(ctx, t, brokers, topic)
	var blobs [][]byte
	for sub := range 3 {
		op := openEOS(ctx, t, s, eosTask(sub, 3, nil))
		defer op.Close()
		lo := sub * 100
		if err := rows(ctx, t, op, lo, lo+50); err != nil {
			t.Fatal(err)
		}
		snap, err := op.SnapshotState(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, snap.Operator)
		if err := rows(ctx, t, op, lo+50, lo+60); err != nil {
			t.Fatal(err)
		}
	}
	r := &arrowexec.RestoreState{CheckpointID: 3, Operator: blobs}
	for sub := range 2 {
		op := openEOS(ctx, t, s, eosTask(sub, 2, r))
		defer op.Close()
	}
	var want []int64
	for sub := range 3 {
		want = append(want, idRange(sub*100, sub*100+50)...)
	}
	if got := sorted(readAll(ctx, t, brokers, topic, 3, true)); !slices.Equal(got, want) {
		t.Fatalf("read_committed after a restore at parallelism 2: got %d rows, want %d", len(got), len(want))
	}

	// A crash with open transactions and no checkpoint, then a fresh
	// start at parallelism 1.
	for sub := range 3 {
		op := openEOS(ctx, t, s, eosTask(sub, 3, nil))
		defer op.Close()
		if err := rows(ctx, t, op, 1000+sub*10, 1000+sub*10+5); err != nil {
			t.Fatal(err)
		}
	}
	fresh := openEOS(ctx, t, s, eosTask(0, 1, nil))
	defer fresh.Close()
	if got := sorted(readAll(ctx, t, brokers, topic, 3, true)); !slices.Equal(got, want) {
		t.Fatalf("read_committed after a fresh start: got %d rows, want %d", len(got), len(want))
	}
}

func TestCheckCheckpointInterval(t *testing.T) {
	o := Options{Brokers: []string{"x:1"}, Topic: "t", Delivery: ExactlyOnce, TransactionTimeout: time.Minute}
	if err := o.CheckCheckpointInterval(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, iv := range []time.Duration{0, 31 * time.Second} {
		if err := o.CheckCheckpointInterval(iv); err == nil {
			t.Errorf("interval %v with a 1m transaction timeout: no error", iv)
		} else {
			t.Log(err)
		}
	}
	o.Delivery = AtLeastOnce
	if err := o.CheckCheckpointInterval(0); err != nil {
		t.Fatal(err)
	}
	o.Delivery = "twice"
	if err := o.Validate(); err == nil {
		t.Fatal("delivery twice: no error")
	}
}

// TestExactlyOnceRestoreWhileCommitting: the crashed run had sent the
// commit of a pre-committed transaction (EndTxn) and died; the restore
// commits the same transaction at once, while the coordinator may still be
// writing its markers (it then answers CONCURRENT_TRANSACTIONS, which the
// restore must wait out, not fail on: the CI failure of
// TestCrashRecoveryKafkaExactlyOnce). Several rounds, each on a fresh
// transactional id, make the window likely; each round's rows are
// committed once.
func TestExactlyOnceRestoreWhileCommitting(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "eos-concurrent", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var want []int64
	for round := range 6 {
		s := newEOSSink(ctx, t, brokers, topic)
		old := openEOS(ctx, t, s, eosTask(0, 1, nil))
		lo := round * 100
		if err := rows(ctx, t, old, lo, lo+50); err != nil {
			t.Fatal(err)
		}
		snap, err := old.SnapshotState(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, idRange(lo, lo+50)...)
		var st txnState
		if err := json.Unmarshal(snap.Operator, &st); err != nil {
			t.Fatal(err)
		}
		// The crashed run's last act: EndTxn(commit) sent, answer ignored.
		admin, err := kgo.NewClient(kgo.SeedBrokers(brokers))
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrEndTxnRequest()
		p := st.Pending[0]
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = p.TransactionalID, p.ProducerID, p.Epoch, true
		if _, err := req.RequestWith(ctx, admin); err != nil {
			t.Fatal(err)
		}
		admin.Close()
		restored := openEOS(ctx, t, s, eosTask(0, 1, &arrowexec.RestoreState{CheckpointID: 1, Operator: [][]byte{snap.Operator}}))
		restored.Close()
		old.Close()
	}
	if got := sorted(readAll(ctx, t, brokers, topic, 2, true)); !slices.Equal(got, want) {
		t.Fatalf("read_committed: got %d rows, want %d", len(got), len(want))
	}
}
