package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/riffle-dev/riffle/internal/kafkaretry"
)

// fetchTxn is fetch for a source reading read_committed (the default) or
// read_uncommitted (Options.Isolation): franz-go
// consumes partition p from its start position with that isolation level
// (read_committed drops the records of aborted transactions), and hands
// chunks to the reader like fetch. Control records (transaction markers)
// are kept only to advance the position past them, so that a bounded
// partition whose last offsets are markers ends. franz-go retries
// retriable failures itself with its own backoff; txnRetry watches its
// connections and fetches (franz-go hooks) so that, as with kafka-go,
// Status says the partition is retrying, each failure is logged, and a
// streak of failures that lasted RetryTimeout (or one that is not
// retryable) fails the reader with a *FetchError. A poll that finds
// nothing within FetchMaxWait is an empty fetch (a quiet partition).
func (r *Reader) fetchTxn(ctx context.Context, p *partState) {
	o := r.s.o
	st, off, end, send := r.startFetch(ctx, p)
	fail := func(err error) {
		send(chunk{p: p, err: &FetchError{Topic: p.Topic, Partition: p.ID, Offset: off, Step: stepFetch,
			Attempts: 1, Brokers: r.s.brokers(), Err: err}})
	}
	if end >= 0 && off >= end {
		send(chunk{p: p, next: off, done: true})
		return
	}
	level, isolation := kgo.ReadUncommitted(), int8(0)
	if o.Isolation == ReadCommitted {
		level, isolation = kgo.ReadCommitted(), 1
	}
	pctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	log := r.t.Log
	if log == nil {
		log = slog.Default()
	}
	retry := &txnRetry{streak: kafkaretry.Streak{Backoff: o.RetryBackoff, Timeout: o.RetryTimeout}, st: st, log: log,
		p: p, retryTimeout: o.RetryTimeout, giveUp: func(step string, attempts int, lasted time.Duration, err error) {
			stop(&FetchError{Topic: p.Topic, Partition: p.ID, Offset: off, Step: step, Attempts: attempts, For: lasted,
				Brokers: r.s.brokers(), Err: err})
		}}
	cl, err := kgo.NewClient(
		kgo.WithHooks(retry),
		kgo.SeedBrokers(o.Brokers...),
		kgo.ClientID("riffle"),
		kgo.FetchIsolationLevel(level),
		kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.Topic: {int32(p.ID): kgo.NewOffset().At(off)}}),
		kgo.FetchMaxPartitionBytes(int32(o.FetchMaxBytes)),
		kgo.FetchMaxWait(o.FetchMaxWait),
		kgo.DialTimeout(o.ConnectTimeout),
		kgo.RetryTimeout(o.RetryTimeout),
	)
	if err != nil {
		fail(err)
		return
	}
	defer cl.Close()
	hwmKnown := false
	for ctx.Err() == nil {
		tctx, cancel := context.WithTimeout(pctx, o.FetchMaxWait)
		fs := cl.PollFetches(tctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if cause := context.Cause(pctx); cause != nil {
			send(chunk{p: p, err: cause})
			return
		}
		quiet := fs.NumRecords() == 0
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				quiet = false
			}
		})
		if quiet {
			// Nothing within FetchMaxWait: a quiet partition. Its high
			// watermark (last stable offset, read_committed) is asked
			// once; fetches with records bring it afterwards.
			hwm := int64(-1)
			if !hwmKnown {
				if h, err := listEnd(pctx, cl, p, isolation); err == nil {
					hwm, hwmKnown = h, true
				}
			}
			st.fetched(hwm, false)
			continue
		}
		var errs []string
		var first error
		fs.EachError(func(topic string, part int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return // the poll's own timeout
			}
			if first == nil {
				first = err
			}
			errs = append(errs, fmt.Sprintf("%s/%d: %v", topic, part, err))
		})
		if first != nil {
			fail(fmt.Errorf("%s: %w", strings.Join(errs, "; "), first))
			return
		}
		recs := r.getRecs()
		got := false
		stop := false
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if stop {
				return
			}
			for _, m := range fp.Records {
				if m.Attrs.IsControl() || (end >= 0 && m.Offset >= end) {
					off = max(off, m.Offset+1)
					continue
				}
				recs = append(recs, record{offset: m.Offset, ts: m.Timestamp.UnixMilli(), key: m.Key, value: m.Value})
				off = m.Offset + 1
				if len(recs) == slabSize {
					if !send(chunk{p: p, recs: recs, next: off}) {
						stop = true
						return
					}
					got = true
					recs = r.getRecs()
				}
			}
			st.fetched(fp.HighWatermark, got || len(recs) > 0)
			hwmKnown = true
		})
		if stop {
			return
		}
		if len(recs) > 0 {
			if !send(chunk{p: p, recs: recs, next: off}) {
				return
			}
		} else {
			r.putRecs(recs)
		}
		if end >= 0 && off >= end {
			send(chunk{p: p, next: off, done: true})
			return
		}
	}
}

// listEnd asks the end of partition p at isolation level isolation (0
// read_uncommitted: the high watermark, 1 read_committed: the last stable
// offset).
func listEnd(ctx context.Context, cl *kgo.Client, p *partState, isolation int8) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	req.IsolationLevel = isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = p.Topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = int32(p.ID)
	rp.Timestamp = -1 // latest
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return 0, err
			}
			return rp.Offset, nil
		}
	}
	return 0, fmt.Errorf("kafka: list offsets of %s/%d: no answer", p.Topic, p.ID)
}

// txnRetry is the franz-go hook of fetchTxn: it follows the failures of
// the client's connections and fetch requests as the kafka-go path does
// (kafkaretry.Streak), reports them in the partition's status, logs them,
// and gives up the way RetryTimeout says.
type txnRetry struct {
	mu           sync.Mutex
	streak       kafkaretry.Streak
	st           *partStatus
	log          *slog.Logger
	p            *partState
	retryTimeout time.Duration
	gaveUp       bool
	giveUp       func(step string, attempts int, lasted time.Duration, err error)
}

var (
	_ kgo.HookBrokerConnect = (*txnRetry)(nil)
	_ kgo.HookBrokerE2E     = (*txnRetry)(nil)
)

// OnBrokerConnect sees every dial; a failed one is a failure of the streak.
func (h *txnRetry) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.failed(kafkaretry.Dial, err)
	}
}

// OnBrokerE2E sees every request; a fetch that failed is a failure of the
// streak, one that succeeded ends it.
func (h *txnRetry) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key != kmsg.Fetch.Int16() {
		return
	}
	if err := e.Err(); err != nil {
		h.failed(stepFetch, err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streak.Attempts() > 0 {
		h.streak.Reset()
		h.st.setRetrying("")
	}
}

func (h *txnRetry) failed(step string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gaveUp {
		return
	}
	kind := kafkaretry.Kind(step, err)
	if !h.streak.Failed(err) {
		h.gaveUp = true
		h.st.setRetrying("")
		h.giveUp(kind, h.streak.Attempts(), h.streak.Lasted(), err)
		return
	}
	h.st.setRetrying(kind + ": " + err.Error())
	h.log.Warn("kafka: retrying partition", "topic", h.p.Topic, "partition", h.p.ID, "attempt", h.streak.Attempts(),
		"step", kind, "err", err, "retrying_for", h.streak.Lasted().Round(time.Millisecond), "retry_timeout", h.retryTimeout)
}
