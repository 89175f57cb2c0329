package kafkatest

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadAll reads every partition of topic from the start, as a consumer
// with isolation level read_committed (committed true) or
// read_uncommitted, and returns the values of its records in read order
// (per partition). It knows it read everything without waiting for
// silence: it first appends a marker record unique to the call
// (non-transactional) to each partition and reads until it saw all of
// them; earlier calls' markers are left out. A read_committed consumer
// sees a marker only once no transaction before it is open, so a
// lingering open transaction makes ReadAll fail when ctx ends. Reading
// uses franz-go, which drops the records of aborted transactions in
// read_committed mode (kafka-go does not).
func ReadAll(ctx context.Context, t testing.TB, brokers, topic string, partitions int, committed bool) [][]byte {
	t.Helper()
	const markerPrefix = "riffle-kafkatest-marker-"
	marker := markerPrefix + UniqueName("m")
	p, err := kgo.NewClient(kgo.SeedBrokers(splitBrokers(brokers)...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for part := range partitions {
		if err := p.ProduceSync(ctx, &kgo.Record{Partition: int32(part), Value: []byte(marker)}).FirstErr(); err != nil {
			t.Fatalf("kafkatest: marker to %s/%d: %v", topic, part, err)
		}
	}
	level := kgo.ReadUncommitted()
	if committed {
		level = kgo.ReadCommitted()
	}
	offs := map[int32]kgo.Offset{}
	for part := range partitions {
		offs[int32(part)] = kgo.NewOffset().AtStart()
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(splitBrokers(brokers)...), kgo.FetchIsolationLevel(level),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var vals [][]byte
	seen := 0
	for seen < partitions {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kafkatest: reading %s (read_committed %v): %d of %d markers seen after %d records: %v", topic, committed, seen, partitions, len(vals), ctx.Err())
		}
		if err := fs.Err(); err != nil {
			t.Fatalf("kafkatest: reading %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if v := string(r.Value); strings.HasPrefix(v, markerPrefix) {
				if v == marker {
					seen++
				}
				return
			}
			vals = append(vals, r.Value)
		})
	}
	return vals
}
