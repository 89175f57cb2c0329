package kafka

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// fetchTxn is fetch for a source with Options.Isolation set: franz-go
// consumes partition p from its start position with that isolation level
// (read_committed drops the records of aborted transactions), and hands
// chunks to the reader like fetch. Control records (transaction markers)
// are kept only to advance the position past them, so that a bounded
// partition whose last offsets are markers ends. franz-go retries
// retriable failures itself (until RetryTimeout); an error it returns
// fails the reader with a *FetchError.
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
	level := kgo.ReadUncommitted()
	if o.Isolation == ReadCommitted {
		level = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(
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
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		var errs []string
		var first error
		fs.EachError(func(topic string, part int32, err error) {
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
