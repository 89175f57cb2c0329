package kafka

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-dev/riffle/internal/kafkatest"
)

// TestReadCommitted: a topic holding a committed transaction, an aborted
// one, a committed one, non-transactional messages and a transaction still
// open. A bounded read_committed source reads the committed and the
// non-transactional rows before the open transaction (it ends at the last
// stable offset); a read_uncommitted one reads every row, the aborted and
// open ones too, and neither reads the transaction markers as messages.
// Without an isolation level the source reads read_committed; with
// IsolationNone (kafka-go's fetch) the markers are messages: the source
// fails to decode them. The rows of each part are known, so the
// expected ids are the oracle.
func TestReadCommitted(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "read-committed", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msgs, _ := genMessages(50, 2)
	recs := func(lo, hi int) []*kgo.Record {
		var out []*kgo.Record
		for _, m := range msgs[lo:hi] {
			out = append(out, &kgo.Record{Partition: int32(m.Partition), Key: m.Key, Value: m.Value, Timestamp: m.Time})
		}
		return out
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	txn, err := kgo.NewClient(append(opts, kgo.TransactionalID(kafkatest.UniqueName("rc")))...)
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	plain, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	inTxn := func(lo, hi int, commit kgo.TransactionEndTry) {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := txn.ProduceSync(ctx, recs(lo, hi)...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	inTxn(0, 10, kgo.TryCommit)
	inTxn(10, 20, kgo.TryAbort)
	inTxn(20, 30, kgo.TryCommit)
	if err := plain.ProduceSync(ctx, recs(30, 40)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Left open: a read_committed reader stops before it.
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, recs(40, 50)...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	ids := func(iso Isolation) []int64 {
		o := testOptions(brokers, topic)
		o.Isolation = iso
		src, err := New(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := runGraph(t, memory.DefaultAllocator, src, 2)
		if iso == IsolationNone {
			if err == nil || !strings.Contains(err.Error(), "not a JSON object") {
				t.Fatalf("isolation none (kafka-go): got %v, want a marker that is not a JSON object", err)
			}
			return nil
		}
		if err != nil {
			t.Fatalf("%s: %v", iso, err)
		}
		var out []int64
		for _, r := range rows {
			out = append(out, r.ID)
		}
		slices.Sort(out)
		return out
	}
	span := func(ranges ...[2]int) []int64 {
		var out []int64
		for _, r := range ranges {
			for i := r[0]; i < r[1]; i++ {
				out = append(out, int64(i))
			}
		}
		return out
	}
	if got, want := ids(ReadCommitted), span([2]int{0, 10}, [2]int{20, 40}); !slices.Equal(got, want) {
		t.Errorf("read_committed: got %v, want %v", got, want)
	}
	if got, want := ids(ReadUncommitted), span([2]int{0, 50}); !slices.Equal(got, want) {
		t.Errorf("read_uncommitted: got %v, want %v", got, want)
	}
	if got, want := ids(""), span([2]int{0, 10}, [2]int{20, 40}); !slices.Equal(got, want) {
		t.Errorf("default isolation: got %v, want read_committed's %v", got, want)
	}
	ids(IsolationNone)
}
