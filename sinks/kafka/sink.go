package kafka

import (
	"context"
	"errors"
	"fmt"
	"github.com/riffle-dev/riffle/internal/kafkaaddr"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
)

// Defaults of Options fields left at their zero value.
const (
	DefaultBatchSize    = 10000
	DefaultBatchBytes   = 1 << 20
	DefaultBatchTimeout = 2 * time.Millisecond
	DefaultMaxAttempts  = 10
	DefaultWriteTimeout = 30 * time.Second
)

// Options configures the sink. Brokers and Topic are required; every other
// field has a documented default.
type Options struct {
	// Brokers is the bootstrap list ("host:port", comma-separated entries
	// allowed).
	Brokers []string
	// Topic receives every row; it must exist.
	Topic string
	// KeyColumn, if set, keys every message by that column (strings and
	// binaries as they are, numbers as decimal text) and partitions by the
	// key with Kafka's murmur2 hash, like the Java client. Without it
	// messages are spread round robin and have no key.
	KeyColumn string
	// TimestampColumn, if set, stamps each message with that event-time
	// column (timestamp, or int64 milliseconds); otherwise the producer's
	// clock is used.
	TimestampColumn string
	// BatchSize (default 10000 messages), BatchBytes (default 1 MiB) and
	// BatchTimeout (default 2ms) shape the producer's requests per
	// partition.
	BatchSize    int
	BatchBytes   int64
	BatchTimeout time.Duration
	// MaxAttempts bounds delivery attempts of a batch (default 10) before
	// the error fails the job; WriteTimeout bounds each request (default
	// 30s).
	MaxAttempts  int
	WriteTimeout time.Duration
}

func (o Options) withDefaults() Options {
	o.Brokers = kafkaaddr.Split(o.Brokers...)
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.BatchTimeout <= 0 {
		o.BatchTimeout = DefaultBatchTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	return o
}

// Validate checks the options without contacting the brokers.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if o.Topic == "" {
		errs = append(errs, errors.New("no topic"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("kafka: invalid sink options: %w", errors.Join(errs...))
	}
	return nil
}

func (o Options) writer() *kafkago.Writer {
	w := &kafkago.Writer{
		Addr:                   kafkago.TCP(o.Brokers...),
		Topic:                  o.Topic,
		RequiredAcks:           kafkago.RequireAll,
		BatchSize:              o.BatchSize,
		BatchBytes:             o.BatchBytes,
		BatchTimeout:           o.BatchTimeout,
		MaxAttempts:            o.MaxAttempts,
		WriteTimeout:           o.WriteTimeout,
		ReadTimeout:            o.WriteTimeout,
		AllowAutoTopicCreation: false,
		Balancer:               &kafkago.RoundRobin{},
	}
	if o.KeyColumn != "" {
		w.Balancer = kafkago.Murmur2Balancer{}
	}
	return w
}

// checkColumns checks the key and timestamp columns against schema and
// returns their indexes (-1 when unset).
func (o Options) checkColumns(schema *arrow.Schema) (key, ts int, err error) {
	key, ts = -1, -1
	if o.KeyColumn != "" {
		idx := schema.FieldIndices(o.KeyColumn)
		if len(idx) != 1 {
			return 0, 0, fmt.Errorf("kafka: topic %q: key column %q not in the input", o.Topic, o.KeyColumn)
		}
		key = idx[0]
	}
	if o.TimestampColumn != "" {
		s := arrowexec.WatermarkStrategy{Column: o.TimestampColumn}
		if err := s.Validate(schema); err != nil {
			return 0, 0, fmt.Errorf("kafka: topic %q: timestamp column: %w", o.Topic, err)
		}
		ts = schema.FieldIndices(o.TimestampColumn)[0]
	}
	if _, err := newRowEncoder(schema); err != nil {
		return 0, 0, err
	}
	return key, ts, nil
}

// Sink is an arrowexec.Spec writing every row it receives to a topic as one
// JSON object. Writes are synchronous with acks from every in-sync replica:
// when Process returns, its rows are durable, so a completed checkpoint
// implies delivery of everything before it (at least once).
type Sink struct {
	o Options
}

var _ arrowexec.Spec = (*Sink)(nil)

// New validates o and checks that the topic exists.
func New(ctx context.Context, o Options) (*Sink, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	if err := checkTopic(ctx, o.Brokers, o.Topic, o.WriteTimeout); err != nil {
		return nil, err
	}
	return &Sink{o: o}, nil
}

// checkTopic fails with `kafka: topic "x" does not exist (brokers ...)` when
// the topic is missing.
func checkTopic(ctx context.Context, brokers []string, topic string, timeout time.Duration) error {
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: timeout}
	var md *kafkago.MetadataResponse
	var err error
	backoff := 100 * time.Millisecond
	for attempt := 1; attempt <= 5; attempt++ {
		md, err = c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
		if err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff *= 2
	}
	if err != nil {
		return fmt.Errorf("kafka: brokers %s unreachable: %w", strings.Join(brokers, ","), err)
	}
	for _, t := range md.Topics {
		if t.Name == topic && t.Error == nil && len(t.Partitions) > 0 {
			return nil
		}
	}
	return fmt.Errorf("kafka: topic %q does not exist (brokers %s)", topic, strings.Join(brokers, ","))
}

// Schema checks the key and timestamp columns; a sink has no output.
func (s *Sink) Schema(inputs []*arrow.Schema) (*arrow.Schema, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("kafka: sink takes one input, got %d", len(inputs))
	}
	_, _, err := s.o.checkColumns(inputs[0])
	return nil, err
}

// New creates the writer of one subtask.
func (s *Sink) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	key, ts, err := s.o.checkColumns(t.Inputs[0])
	if err != nil {
		return nil, err
	}
	enc, _ := newRowEncoder(t.Inputs[0])
	return &sinkOp{o: s.o, enc: enc, key: key, ts: ts}, nil
}

type sinkOp struct {
	o      Options
	w      *kafkago.Writer
	enc    *rowEncoder
	key    int
	ts     int
	buf    []byte
	keys   []byte
	msgs   []kafkago.Message
	tsBuf  []int64
	sent   int64
	closed bool
}

func (op *sinkOp) Open(context.Context) error {
	op.w = op.o.writer()
	return nil
}

func (op *sinkOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	msgs, err := encodeBatch(op.enc, b, op.key, op.ts, &op.buf, &op.keys, op.msgs[:0], &op.tsBuf)
	if err != nil {
		return err
	}
	op.msgs = msgs
	if err := write(ctx, op.w, op.o.Topic, msgs); err != nil {
		return err
	}
	op.sent += int64(len(msgs))
	return nil
}

// write delivers msgs synchronously; kafka-go retries up to MaxAttempts.
func write(ctx context.Context, w *kafkago.Writer, topic string, msgs []kafkago.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	err := w.WriteMessages(ctx, msgs...)
	if err == nil {
		return nil
	}
	var we kafkago.WriteErrors
	if errors.As(err, &we) {
		var first error
		for _, e := range we {
			if e != nil {
				first = e
				break
			}
		}
		return fmt.Errorf("kafka: topic %q: %d of %d messages not delivered: %w", topic, we.Count(), len(msgs), first)
	}
	return fmt.Errorf("kafka: topic %q: writing %d messages: %w", topic, len(msgs), err)
}

// encodeBatch encodes the rows of b as messages whose bytes live in *buf and
// *keys (valid until the next call).
func encodeBatch(enc *rowEncoder, b arrow.RecordBatch, key, ts int, buf, keys *[]byte, msgs []kafkago.Message, tsBuf *[]int64) ([]kafkago.Message, error) {
	n := int(b.NumRows())
	enc.bind(b)
	// Encode every row into one buffer first, then cut: the buffer may move
	// while it grows.
	ends := make([]int, n)
	d := (*buf)[:0]
	for i := range n {
		d = enc.appendRow(d, b, i)
		ends[i] = len(d)
	}
	*buf = d
	var kends []int
	var kcol arrow.Array
	if key >= 0 {
		kcol = b.Column(key)
		kends = make([]int, n)
		k := (*keys)[:0]
		for i := range n {
			k = keyBytes(kcol, i, k)
			kends[i] = len(k)
		}
		*keys = k
	}
	var times []int64
	var tcol arrow.Array
	if ts >= 0 {
		tcol = b.Column(ts)
		var err error
		times, err = arrowexec.EventTimesMillis(tcol, *tsBuf)
		if err != nil {
			return nil, err
		}
		*tsBuf = times
	}
	start, kstart := 0, 0
	for i := range n {
		m := kafkago.Message{Value: d[start:ends[i]:ends[i]]}
		start = ends[i]
		if kcol != nil {
			if !kcol.IsNull(i) {
				m.Key = (*keys)[kstart:kends[i]:kends[i]]
			}
			kstart = kends[i]
		}
		if tcol != nil && tcol.IsValid(i) {
			m.Time = time.UnixMilli(times[i])
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

func (op *sinkOp) Finish(context.Context, arrowexec.Emitter) error { return nil }

// Close closes the writer; safe to call twice.
func (op *sinkOp) Close() error {
	if op.closed || op.w == nil {
		op.closed = true
		return nil
	}
	op.closed = true
	if err := op.w.Close(); err != nil {
		return fmt.Errorf("kafka: topic %q: closing writer: %w", op.o.Topic, err)
	}
	return nil
}
