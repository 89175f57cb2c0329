package kafka

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/kafkatest"
)

// cpSink collects batches and, at every checkpoint, records how many
// batches it had received: with barrier alignment those are exactly the
// rows the sources emitted before their snapshot.
type cpSink struct {
	mu      sync.Mutex
	batches []arrow.RecordBatch
	at      map[uint64]int
}

func (s *cpSink) Schema([]*arrow.Schema) (*arrow.Schema, error)   { return nil, nil }
func (s *cpSink) New(*arrowexec.Task) (arrowexec.Operator, error) { return &cpSinkOp{s}, nil }

type cpSinkOp struct{ s *cpSink }

func (o *cpSinkOp) Open(context.Context) error { return nil }
func (o *cpSinkOp) Process(_ context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	b.Retain()
	o.s.mu.Lock()
	o.s.batches = append(o.s.batches, b)
	o.s.mu.Unlock()
	return nil
}
func (o *cpSinkOp) SnapshotState(_ context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	o.s.mu.Lock()
	o.s.at[id] = len(o.s.batches)
	o.s.mu.Unlock()
	return arrowexec.SubtaskSnapshot{}, nil
}
func (o *cpSinkOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *cpSinkOp) Close() error                                    { return nil }

// TestGraphCheckpointRestore runs an unbounded job, takes a checkpoint
// while it runs, cancels it, and restores a bounded job (with another
// parallelism) from the sources' snapshots: the rows the sink had before
// the barrier plus the rows of the restored job are the topic, exactly once.
// The checkpoint lands mid-way by construction: the second half of the
// topic is produced only once it is taken, and the job reads on into it
// before it is cancelled.
func TestGraphCheckpointRestore(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, t.Name(), 4)
	msgs, want := genMessages(3000, 4)
	kafkatest.Produce(t, brokers, topic, msgs[:1500])
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := testOptions(brokers, topic)
	o.Bounded = false
	o.MaxBatchRows = 20
	src, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	sink := &cpSink{at: map[uint64]int{}}
	var mu sync.Mutex
	snaps := map[uint64]map[int][]byte{}
	g := arrowexec.NewGraph()
	n := g.AddSource("kafka", src, 3)
	g.Add("sink", sink, 1, n.Rebalance())
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 1,
		OnSnapshot: func(node string, subtask int, id uint64, snap arrowexec.SubtaskSnapshot) error {
			if node != "kafka" {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if snaps[id] == nil {
				snaps[id] = map[int][]byte{}
			}
			snaps[id][subtask] = snap.Operator
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()
	// Wait for some rows, then checkpoint 1 and wait until the sink took it.
	exectest.WaitFor(t, "10 batches at the sink", func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); return len(sink.batches) >= 10 })
	if err := job.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: 1}); err != nil {
		t.Fatal(err)
	}
	exectest.WaitFor(t, "checkpoint 1 at the sink", func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); _, ok := sink.at[1]; return ok })
	job.NotifyCheckpointComplete(1)
	// The job reads on past the checkpoint (rows the restored job must
	// read again): the second half arrives, and some of it reaches the sink.
	kafkatest.Produce(t, brokers, topic, msgs[1500:])
	exectest.WaitFor(t, "rows of the second half at the sink", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		var n int64
		for _, b := range sink.batches {
			n += b.NumRows()
		}
		return n > 1500
	})
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	sink.mu.Lock()
	cut := sink.at[1]
	before := sink.batches[:cut]
	for _, b := range sink.batches[cut:] {
		b.Release()
	}
	sink.mu.Unlock()
	if len(snaps[1]) != 3 {
		t.Fatalf("checkpoint 1 has %d source snapshots, want 3", len(snaps[1]))
	}

	o.Bounded = true
	src2, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	blobs := [][]byte{snaps[1][0], snaps[1][1], snaps[1][2]}
	g2 := arrowexec.NewGraph()
	n2 := g2.AddSource("kafka", src2, 2)
	sink2 := &cpSink{at: map[uint64]int{}}
	g2.Add("sink", sink2, 1, n2.Rebalance())
	job2, err := g2.Compile(arrowexec.RunOptions{Mem: mem,
		Restore: func(node string, subtask, parallelism int) *arrowexec.RestoreState {
			return &arrowexec.RestoreState{CheckpointID: 1, Operator: blobs}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := job2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rowsOf(t, append(append([]arrow.RecordBatch(nil), before...), sink2.batches...))
	release(before)
	release(sink2.batches)
	if len(before) == 0 || len(sink2.batches) == 0 {
		t.Errorf("checkpoint not mid-way: %d batches before, %d after", len(before), len(sink2.batches))
	}
	diffRows(t, got, want)
}
