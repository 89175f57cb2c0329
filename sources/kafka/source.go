package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/deadletter"
)

// MessageError is a message the source could not decode. Under OnErrorFail
// it is the job's error.
type MessageError struct {
	Topic     string
	Partition int
	Offset    int64
	Reason    error
}

func (e *MessageError) Error() string {
	return fmt.Sprintf("kafka: topic %q partition %d offset %d: %v", e.Topic, e.Partition, e.Offset, e.Reason)
}

func (e *MessageError) Unwrap() error { return e.Reason }

// ErrUnknownTopic is wrapped by the error New returns for a missing topic.
var ErrUnknownTopic = errors.New("topic does not exist")

type unknownTopicError struct{ msg string }

func (e *unknownTopicError) Error() string        { return e.msg }
func (e *unknownTopicError) Is(target error) bool { return target == ErrUnknownTopic }

// Stats counts what every reader of a source did. Read it at any time.
type Stats struct {
	Messages     int64 // fetched messages consumed (good or bad)
	Rows         int64 // rows emitted
	Bytes        int64 // key and value bytes consumed
	Skipped      int64 // bad messages dropped under OnErrorSkip
	DeadLettered int64 // bad messages written to the dead-letter file
	Commits      int64 // successful offset commits to GroupID
	CommitErrors int64 // failed offset commits (logged, not fatal)
}

type stats struct {
	messages, rows, bytes, skipped, deadLettered, commits, commitErrors atomic.Int64
}

// Partition is one (topic, partition) the source reads, with the end offset
// recorded by New (the high watermark at that time).
type Partition struct {
	Topic string
	ID    int
	End   int64
}

// Source is a Kafka source: an arrowexec.Source whose subtasks each read a
// fixed subset of the partitions. Create it with New.
type Source struct {
	o      Options
	schema *arrow.Schema
	parts  []Partition // sorted by (topic, partition)
	client *kafkago.Client
	tr     *kafkago.Transport
	stats  stats
	dl     *deadletter.File
	status []*partStatus // per partition, as parts

	mu      sync.Mutex
	readers int
}

var _ arrowexec.Source = (*Source)(nil)

// New validates o, checks that every topic exists and records the
// partitions and their end offsets. It fails before the job starts when a
// topic is missing or the brokers cannot be reached (after o.Retries
// attempts).
func New(ctx context.Context, o Options) (*Source, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.EnsureDefaults()
	s := &Source{o: o, schema: o.schema()}
	s.tr = &kafkago.Transport{DialTimeout: o.ConnectTimeout, ClientID: "riffle", MetadataTTL: 10 * time.Second}
	s.client = &kafkago.Client{Addr: kafkago.TCP(o.Brokers...), Timeout: o.ConnectTimeout, Transport: s.tr}
	if o.OnError == OnErrorDeadLetter {
		s.dl = deadletter.New(o.DeadLetterPath, "kafka")
	}

	var md *kafkago.MetadataResponse
	err := s.retry(ctx, stepMetadata, func(ctx context.Context) error {
		var err error
		md, err = s.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: o.Topics})
		if err != nil {
			return err
		}
		for _, t := range md.Topics {
			if t.Error != nil && !errors.Is(t.Error, kafkago.UnknownTopicOrPartition) {
				return t.Error
			}
			for _, p := range t.Partitions {
				if p.Error != nil && !errors.Is(p.Error, kafkago.UnknownTopicOrPartition) {
					return fmt.Errorf("topic %q partition %d: %w", t.Name, p.ID, p.Error)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	found := map[string]kafkago.Topic{}
	for _, t := range md.Topics {
		if t.Error == nil && len(t.Partitions) > 0 {
			found[t.Name] = t
		}
	}
	for _, name := range o.Topics {
		t, ok := found[name]
		if !ok {
			return nil, &unknownTopicError{fmt.Sprintf("kafka: topic %q does not exist (brokers %s)", name, s.brokers())}
		}
		for _, p := range t.Partitions {
			s.parts = append(s.parts, Partition{Topic: name, ID: p.ID, End: -1})
		}
	}
	sort.Slice(s.parts, func(i, j int) bool {
		a, b := s.parts[i], s.parts[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.ID < b.ID
	})
	ends, err := s.listOffsets(ctx, s.parts, func(Partition) int64 { return kafkago.LastOffset })
	if err != nil {
		return nil, err
	}
	for i := range s.parts {
		s.parts[i].End = ends[i]
		s.status = append(s.status, newPartStatus())
	}
	return s, nil
}

// Schema is the output schema: the declared fields (or "value" for raw),
// then the metadata columns.
func (s *Source) Schema() *arrow.Schema { return s.schema }

// Partitions returns every partition the source reads, in the order used to
// assign them to subtasks (partition i goes to subtask i % parallelism).
func (s *Source) Partitions() []Partition { return append([]Partition(nil), s.parts...) }

// Stats returns the counters summed over every reader.
func (s *Source) Stats() Stats {
	return Stats{
		Messages:     s.stats.messages.Load(),
		Rows:         s.stats.rows.Load(),
		Bytes:        s.stats.bytes.Load(),
		Skipped:      s.stats.skipped.Load(),
		DeadLettered: s.stats.deadLettered.Load(),
		Commits:      s.stats.commits.Load(),
		CommitErrors: s.stats.commitErrors.Load(),
	}
}

// Close releases the idle broker connections of the source's metadata
// client. Readers keep working; the last reader to close does the same.
func (s *Source) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

func (s *Source) readerOpened() {
	s.mu.Lock()
	s.readers++
	s.mu.Unlock()
}

func (s *Source) readerClosed() {
	s.mu.Lock()
	s.readers--
	last := s.readers == 0
	s.mu.Unlock()
	if last {
		s.tr.CloseIdleConnections()
	}
}

func (s *Source) brokers() string { return strings.Join(s.o.Brokers, ",") }

// listOffsets resolves one offset per partition; ts gives the ListOffsets
// timestamp (kafkago.FirstOffset, kafkago.LastOffset or epoch millis). A
// timestamp past the last message resolves to the partition's end.
func (s *Source) listOffsets(ctx context.Context, parts []Partition, ts func(Partition) int64) ([]int64, error) {
	out := make([]int64, len(parts))
	if len(parts) == 0 {
		return out, nil
	}
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	if s.o.Isolation == ReadCommitted {
		req.IsolationLevel = kafkago.ReadCommitted // the end is the last stable offset
	}
	for _, p := range parts {
		req.Topics[p.Topic] = append(req.Topics[p.Topic], kafkago.OffsetRequest{Partition: p.ID, Timestamp: ts(p)})
	}
	var res *kafkago.ListOffsetsResponse
	err := s.retry(ctx, "list offsets", func(ctx context.Context) error {
		var err error
		res, err = s.client.ListOffsets(ctx, req)
		if err != nil {
			return err
		}
		for _, po := range res.Topics {
			for _, p := range po {
				if p.Error != nil {
					return p.Error
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var needEnd []int
	for i, p := range parts {
		var po *kafkago.PartitionOffsets
		for j := range res.Topics[p.Topic] {
			if res.Topics[p.Topic][j].Partition == p.ID {
				po = &res.Topics[p.Topic][j]
			}
		}
		if po == nil {
			return nil, fmt.Errorf("kafka: topic %q partition %d: no offset in ListOffsets response (brokers %s)", p.Topic, p.ID, s.brokers())
		}
		switch t := ts(p); t {
		case kafkago.FirstOffset:
			out[i] = po.FirstOffset
		case kafkago.LastOffset:
			out[i] = po.LastOffset
		default:
			out[i] = -1
			for off := range po.Offsets {
				out[i] = off
			}
			if out[i] < 0 {
				needEnd = append(needEnd, i)
			}
		}
	}
	if len(needEnd) > 0 {
		var sub []Partition
		for _, i := range needEnd {
			sub = append(sub, parts[i])
		}
		ends, err := s.listOffsets(ctx, sub, func(Partition) int64 { return kafkago.LastOffset })
		if err != nil {
			return nil, err
		}
		for k, i := range needEnd {
			out[i] = ends[k]
		}
	}
	return out, nil
}

// committedOffsets returns the group's committed offset per partition, -1
// where there is none.
func (s *Source) committedOffsets(ctx context.Context, parts []Partition) ([]int64, error) {
	out := make([]int64, len(parts))
	if len(parts) == 0 {
		return out, nil
	}
	req := &kafkago.OffsetFetchRequest{GroupID: s.o.GroupID, Topics: map[string][]int{}}
	for _, p := range parts {
		req.Topics[p.Topic] = append(req.Topics[p.Topic], p.ID)
	}
	var res *kafkago.OffsetFetchResponse
	err := s.retry(ctx, "fetch committed offsets of group "+s.o.GroupID, func(ctx context.Context) error {
		var err error
		res, err = s.client.OffsetFetch(ctx, req)
		if err == nil {
			err = res.Error
		}
		return err
	})
	if errors.Is(err, kafkago.GroupIdNotFound) {
		// A group that never committed: Apache Kafka answers -1 offsets,
		// some compatible brokers (kfake) this error. Same meaning.
		for i := range out {
			out[i] = -1
		}
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for i, p := range parts {
		out[i] = -1
		for _, op := range res.Topics[p.Topic] {
			if op.Partition == p.ID {
				if op.Error != nil {
					return nil, fmt.Errorf("kafka: topic %q partition %d: committed offset of group %q: %w", p.Topic, p.ID, s.o.GroupID, op.Error)
				}
				out[i] = op.CommittedOffset
			}
		}
	}
	return out, nil
}

// commit commits positions (next offsets) to the group.
func (s *Source) commit(ctx context.Context, pos map[string]map[int]int64) error {
	req := &kafkago.OffsetCommitRequest{GroupID: s.o.GroupID, GenerationID: -1, Topics: map[string][]kafkago.OffsetCommit{}}
	for t, ps := range pos {
		for p, off := range ps {
			req.Topics[t] = append(req.Topics[t], kafkago.OffsetCommit{Partition: p, Offset: off})
		}
	}
	// The group's first commit may meet a coordinator that is still
	// loading: such errors are temporary and retried.
	return s.retry(ctx, "commit offsets of group "+s.o.GroupID, func(ctx context.Context) error {
		res, err := s.client.OffsetCommit(ctx, req)
		if err != nil {
			return err
		}
		for t, ps := range res.Topics {
			for _, p := range ps {
				if p.Error != nil {
					return fmt.Errorf("topic %q partition %d: %w", t, p.Partition, p.Error)
				}
			}
		}
		return nil
	})
}
