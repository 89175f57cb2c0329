package hybrid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/sources/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
)

// Boundary is where the files end and the topic begins. Exactly one of
// Offsets and EventTime is set.
type Boundary struct {
	// Offsets: topic -> partition -> first offset to read from Kafka.
	// Partitions missing from the map start at their earliest offset.
	Offsets map[string]map[int]int64
	// EventTime and Column: files contribute rows with Column < EventTime,
	// Kafka rows with Column >= EventTime.
	EventTime time.Time
	Column    string
	// TimestampSkew widens the Kafka start back in time (see package doc).
	TimestampSkew time.Duration
}

// Options configure a hybrid source.
type Options struct {
	Parquet  parquet.Options
	Kafka    kafka.Options
	Boundary Boundary
}

// Source is the hybrid source; create it with New.
type Source struct {
	o      Options
	pq     *parquet.Source
	kf     *kafka.Source
	schema *arrow.Schema
	col    int   // event-time column index, -1 for an offset boundary
	cut    int64 // event-time boundary in ms
	start  map[string]map[int]int64
}

var _ arrowexec.Source = (*Source)(nil)

// New opens both sources, checks their schemas agree and resolves the Kafka
// start offsets of the boundary.
func New(ctx context.Context, o Options) (*Source, error) {
	b := o.Boundary
	if (b.Offsets == nil) == b.EventTime.IsZero() {
		return nil, errors.New("hybrid: set exactly one boundary: offsets or event_time")
	}
	if !b.EventTime.IsZero() && b.Column == "" {
		return nil, errors.New("hybrid: an event-time boundary needs the event-time column")
	}
	if b.TimestampSkew < 0 {
		return nil, fmt.Errorf("hybrid: negative timestamp skew %v", b.TimestampSkew)
	}
	s := &Source{o: o, col: -1}
	if !b.EventTime.IsZero() {
		s.cut = b.EventTime.UnixMilli()
		o.Parquet.Predicates = append(o.Parquet.Predicates, parquet.Predicate{Column: b.Column, Op: "<", Value: b.EventTime})
	}
	pq, err := parquet.New(o.Parquet)
	if err != nil {
		return nil, err
	}
	kf, err := kafka.New(ctx, o.Kafka)
	if err != nil {
		return nil, err
	}
	s.pq, s.kf = pq, kf
	if err := sameSchema(pq.Schema(), kf.Schema()); err != nil {
		return nil, err
	}
	s.schema = kf.Schema()
	if !b.EventTime.IsZero() {
		idx := s.schema.FieldIndices(b.Column)
		if len(idx) != 1 {
			return nil, fmt.Errorf("hybrid: event-time column %q not in the schema", b.Column)
		}
		s.col = idx[0]
		s.start, err = offsetsForTime(ctx, o.Kafka.Brokers, kf.Partitions(), b.EventTime.Add(-b.TimestampSkew))
		if err != nil {
			return nil, err
		}
	} else {
		s.start = map[string]map[int]int64{}
		for _, p := range kf.Partitions() {
			if off, ok := b.Offsets[p.Topic][p.ID]; ok {
				if s.start[p.Topic] == nil {
					s.start[p.Topic] = map[int]int64{}
				}
				s.start[p.Topic][p.ID] = off
			}
		}
	}
	return s, nil
}

func sameSchema(pq, kf *arrow.Schema) error {
	if pq.NumFields() != kf.NumFields() {
		return fmt.Errorf("hybrid: the Parquet columns %s and the Kafka fields %s differ", names(pq), names(kf))
	}
	for i := 0; i < pq.NumFields(); i++ {
		a, b := pq.Field(i), kf.Field(i)
		if a.Name != b.Name || !arrow.TypeEqual(a.Type, b.Type) {
			return fmt.Errorf("hybrid: column %d is %s %s in Parquet but %s %s in Kafka", i+1, a.Name, a.Type, b.Name, b.Type)
		}
	}
	return nil
}

func names(s *arrow.Schema) []string {
	out := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		out[i] = f.Name
	}
	return out
}

// offsetsForTime returns, per partition, the first offset whose timestamp is
// at or after t (the end offset when there is none).
func offsetsForTime(ctx context.Context, brokers []string, parts []kafka.Partition, t time.Time) (map[string]map[int]int64, error) {
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for _, p := range parts {
		req.Topics[p.Topic] = append(req.Topics[p.Topic], kafkago.TimeOffsetOf(p.ID, t))
	}
	res, err := c.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("hybrid: kafka offsets for %s: %w", t.UTC().Format(time.RFC3339Nano), err)
	}
	// kafka-go files a by-time answer under Offsets (offset -> timestamp of
	// the message found); a partition with no message that late answers
	// offset -1, which it files as LastOffset. Those start at the end.
	ends := map[string]map[int]int64{}
	for _, p := range parts {
		if ends[p.Topic] == nil {
			ends[p.Topic] = map[int]int64{}
		}
		ends[p.Topic][p.ID] = p.End
	}
	out := map[string]map[int]int64{}
	for topic, ps := range res.Topics {
		out[topic] = map[int]int64{}
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("hybrid: kafka offsets of %s/%d: %w", topic, p.Partition, p.Error)
			}
			off := ends[topic][p.Partition]
			for o := range p.Offsets {
				if o >= 0 {
					off = o
				}
			}
			out[topic][p.Partition] = off
		}
	}
	for _, p := range parts {
		if _, ok := out[p.Topic][p.ID]; !ok {
			return nil, fmt.Errorf("hybrid: no offset answer for %s/%d", p.Topic, p.ID)
		}
	}
	return out, nil
}

// Schema implements arrowexec.Source.
func (s *Source) Schema() *arrow.Schema { return s.schema }

// StartOffsets returns the Kafka offsets the boundary resolved to.
func (s *Source) StartOffsets() map[string]map[int]int64 { return s.start }

// ParquetStats returns the Parquet phase's total work (for progress bars).
func (s *Source) ParquetStats() (files, rowGroups, pruned int, rows, bytes int64) {
	return s.pq.Stats()
}

// snapshot is one reader's state.
type snapshot struct {
	Parquet json.RawMessage `json:"parquet"`         // work left; empty list once switched
	Kafka   json.RawMessage `json:"kafka,omitempty"` // offsets, once switched
}

// Open implements arrowexec.Source.
func (s *Source) Open(ctx context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	r := &reader{s: s, t: t}
	pt := *t
	r.kafkaStart = s.start
	if t.Restore != nil {
		var pqBlobs [][]byte
		merged := map[string]map[int]int64{}
		for t2, ps := range s.start {
			merged[t2] = map[int]int64{}
			for p, off := range ps {
				merged[t2][p] = off
			}
		}
		for i, blob := range t.Restore.Operator {
			var sn snapshot
			if err := json.Unmarshal(blob, &sn); err != nil {
				return nil, fmt.Errorf("hybrid: restoring subtask %d of checkpoint %d: %w", i, t.Restore.CheckpointID, err)
			}
			pqBlobs = append(pqBlobs, sn.Parquet)
			if len(sn.Kafka) > 0 {
				var offs map[string]map[int]int64
				if err := json.Unmarshal(sn.Kafka, &offs); err != nil {
					return nil, fmt.Errorf("hybrid: restoring subtask %d of checkpoint %d: %w", i, t.Restore.CheckpointID, err)
				}
				for t2, ps := range offs {
					if merged[t2] == nil {
						merged[t2] = map[int]int64{}
					}
					for p, off := range ps {
						merged[t2][p] = off
					}
				}
			}
		}
		r.kafkaStart = merged
		rs := *t.Restore
		rs.Operator = pqBlobs
		pt.Restore = &rs
	}
	pr, err := s.pq.Open(ctx, &pt)
	if err != nil {
		return nil, err
	}
	r.pq = pr
	return r, nil
}

type reader struct {
	s          *Source
	t          *arrowexec.Task
	pq         arrowexec.SourceReader
	pqFinal    []byte // the Parquet phase's last snapshot, once switched
	kf         arrowexec.SourceReader
	kafkaStart map[string]map[int]int64
	ts         []int64
	sel        []int32
}

func (r *reader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if r.kf == nil {
		b, err := r.pq.Next(ctx)
		if err == io.EOF {
			if err := r.switchToKafka(ctx); err != nil {
				return nil, err
			}
			return nil, nil
		}
		if err != nil || b == nil {
			return b, err
		}
		return r.cut(b, true)
	}
	b, err := r.kf.Next(ctx)
	if err != nil || b == nil {
		return b, err
	}
	return r.cut(b, false)
}

// cut keeps the rows on this phase's side of an event-time boundary.
func (r *reader) cut(b arrow.RecordBatch, before bool) (arrow.RecordBatch, error) {
	if r.s.col < 0 {
		return b, nil
	}
	col := b.Column(r.s.col)
	ts, err := arrowexec.EventTimesMillis(col, r.ts)
	r.ts = ts
	if err != nil {
		b.Release()
		return nil, err
	}
	r.sel = r.sel[:0]
	cut := r.s.cut
	for i, v := range ts {
		if col.IsNull(i) {
			// Rows without event time cannot be placed on either side:
			// the files keep theirs, Kafka keeps its own.
			r.sel = append(r.sel, int32(i))
			continue
		}
		if (v < cut) == before {
			r.sel = append(r.sel, int32(i))
		}
	}
	if len(r.sel) == len(ts) {
		return b, nil
	}
	defer b.Release()
	if len(r.sel) == 0 {
		return nil, nil
	}
	return arrowexec.TakeRecord(r.t.Mem, b, r.sel)
}

func (r *reader) switchToKafka(ctx context.Context) error {
	if cp, ok := r.pq.(arrowexec.Checkpointer); ok {
		sn, err := cp.SnapshotState(ctx, 0)
		if err != nil {
			return err
		}
		r.pqFinal = sn.Operator
	}
	if err := r.pq.Close(); err != nil {
		return err
	}
	blob, err := json.Marshal(r.kafkaStart)
	if err != nil {
		return err
	}
	kt := *r.t
	kt.Restore = &arrowexec.RestoreState{Operator: [][]byte{blob}}
	if r.t.Restore != nil {
		kt.Restore.CheckpointID = r.t.Restore.CheckpointID
	}
	kr, err := r.s.kf.Open(ctx, &kt)
	if err != nil {
		return err
	}
	r.kf = kr
	r.t.Log.Info("hybrid: files done, reading Kafka")
	return nil
}

// CurrentWatermark implements arrowexec.WatermarkSource.
// In the Parquet phase it is the Parquet reader's: progress when its row
// groups are in event-time order (Options.Parquet.Watermark), none
// otherwise; it never claims the end, since Kafka follows.
func (r *reader) CurrentWatermark() (int64, bool) {
	if r.kf == nil {
		if w, ok := r.pq.(arrowexec.WatermarkSource); ok {
			wm, _ := w.CurrentWatermark()
			return wm, false
		}
		return arrowexec.MinWatermark, false
	}
	if w, ok := r.kf.(arrowexec.WatermarkSource); ok {
		return w.CurrentWatermark()
	}
	return arrowexec.MinWatermark, false
}

// SnapshotState implements arrowexec.Checkpointer.
func (r *reader) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	var sn snapshot
	if r.kf == nil {
		cp, ok := r.pq.(arrowexec.Checkpointer)
		if !ok {
			return arrowexec.SubtaskSnapshot{}, errors.New("hybrid: the Parquet reader cannot snapshot")
		}
		s, err := cp.SnapshotState(ctx, id)
		if err != nil {
			return arrowexec.SubtaskSnapshot{}, err
		}
		sn.Parquet = s.Operator
	} else {
		sn.Parquet = r.pqFinal
		cp, ok := r.kf.(arrowexec.Checkpointer)
		if !ok {
			return arrowexec.SubtaskSnapshot{}, errors.New("hybrid: the Kafka reader cannot snapshot")
		}
		s, err := cp.SnapshotState(ctx, id)
		if err != nil {
			return arrowexec.SubtaskSnapshot{}, err
		}
		sn.Kafka = s.Operator
	}
	b, err := json.Marshal(sn)
	return arrowexec.SubtaskSnapshot{Operator: b}, err
}

// NotifyCheckpointComplete forwards to the Kafka phase (offset commits).
func (r *reader) NotifyCheckpointComplete(ctx context.Context, id uint64) error {
	if l, ok := r.kf.(arrowexec.CheckpointListener); ok && r.kf != nil {
		return l.NotifyCheckpointComplete(ctx, id)
	}
	return nil
}

func (r *reader) Close() error {
	if r.kf != nil {
		return r.kf.Close()
	}
	return r.pq.Close()
}

var _ arrowexec.MetricsReporter = (*Source)(nil)

// ReportMetrics implements arrowexec.MetricsReporter: the Kafka part's
// series (consumer lag once its readers started, messages, dead letters).
func (s *Source) ReportMetrics(emit func(arrowexec.Metric)) { s.kf.ReportMetrics(emit) }
