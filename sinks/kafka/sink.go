package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/arrowtext"
	"github.com/riffle-dev/riffle/internal/kafkaaddr"
	"github.com/riffle-dev/riffle/internal/kafkaretry"
)

// Defaults of Options fields left at their zero value.
const (
	DefaultBatchSize    = 10000
	DefaultBatchBytes   = 1 << 20
	DefaultBatchTimeout = 2 * time.Millisecond
	DefaultMaxAttempts  = 10
	DefaultWriteTimeout = 30 * time.Second
	// DefaultTransactionTimeout is the exactly-once sink's transaction
	// timeout: the broker's default transaction.max.timeout.ms (15m), the
	// longest a broker accepts unless configured otherwise.
	DefaultTransactionTimeout = 15 * time.Minute
	// DefaultTransactionPool is the number of transactional producers per
	// subtask of an exactly-once sink.
	DefaultTransactionPool = 4
)

// Delivery is the sink's delivery guarantee.
type Delivery string

// Deliveries.
const (
	// AtLeastOnce (the default) writes rows as they come: a restore writes
	// again what was written after the checkpoint.
	AtLeastOnce Delivery = "at-least-once"
	// ExactlyOnce writes the rows of each checkpoint in a Kafka transaction
	// committed when the checkpoint completes (jobs with checkpoints only).
	ExactlyOnce Delivery = "exactly-once"
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
	// MaxAttempts bounds kafka-go's own delivery attempts of a batch
	// (default 10); WriteTimeout bounds each request (default 30s).
	MaxAttempts  int
	WriteTimeout time.Duration
	// RetryTimeout is how long the messages kafka-go could not deliver
	// (broker down or restarting, leader moving) are sent again, each
	// retry logged at warn level, before the error fails the job (default
	// 5m, enough for a broker restart). Authentication failures and
	// permanent Kafka errors (message too large, ...) fail at once.
	RetryTimeout time.Duration
	// Log receives the retry warnings (default slog.Default()).
	Log *slog.Logger

	// Delivery is AtLeastOnce (default) or ExactlyOnce.
	Delivery Delivery
	// TransactionTimeout is an exactly-once sink's transaction timeout
	// (default DefaultTransactionTimeout): the broker aborts a transaction
	// open this long. It must exceed the checkpoint interval
	// (CheckCheckpointInterval) and, for the rows of the last checkpoint
	// before a crash to survive, the time until the job is restarted.
	TransactionTimeout time.Duration
	// TransactionalIDPrefix starts the transactional ids of an exactly-once
	// sink, "<prefix>-<node>-<subtask>-<slot>" (default "riffle-<topic>").
	// Two jobs writing exactly-once at the same time need different
	// prefixes: the newer would fence the older.
	TransactionalIDPrefix string
	// TransactionPool is the number of transactional producers per subtask
	// (default DefaultTransactionPool): one for the open transaction, the
	// others for transactions waiting for their checkpoint to complete.
	TransactionPool int
}

// EnsureDefaults returns o with zero fields replaced by their defaults.
func (o Options) EnsureDefaults() Options {
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
	if o.RetryTimeout <= 0 {
		o.RetryTimeout = kafkaretry.DefaultTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Delivery == "" {
		o.Delivery = AtLeastOnce
	}
	if o.TransactionTimeout == 0 {
		o.TransactionTimeout = DefaultTransactionTimeout
	}
	if o.TransactionalIDPrefix == "" {
		o.TransactionalIDPrefix = "riffle-" + o.Topic
	}
	if o.TransactionPool == 0 {
		o.TransactionPool = DefaultTransactionPool
	}
	return o
}

// CheckCheckpointInterval checks that an exactly-once sink's transactions
// outlive a checkpoint: a transaction is open from the first row after a
// barrier until the next checkpoint completes, a checkpoint interval and
// more, so the timeout must be at least twice the interval. It returns nil
// for an at-least-once sink.
func (o Options) CheckCheckpointInterval(interval time.Duration) error {
	o = o.EnsureDefaults()
	if o.Delivery != ExactlyOnce {
		return nil
	}
	if interval <= 0 {
		return fmt.Errorf("kafka: topic %q: delivery %s needs periodic checkpoints (a checkpoint interval), got %v", o.Topic, o.Delivery, interval)
	}
	if o.TransactionTimeout < 2*interval {
		return fmt.Errorf("kafka: topic %q: transaction_timeout %v is shorter than twice the checkpoint interval %v: the broker would abort transactions before their checkpoint completes",
			o.Topic, o.TransactionTimeout, interval)
	}
	return nil
}

// Validate checks the options without contacting the brokers.
func (o Options) Validate() error {
	o = o.EnsureDefaults()
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if o.Topic == "" {
		errs = append(errs, errors.New("no topic"))
	}
	switch o.Delivery {
	case AtLeastOnce:
	case ExactlyOnce:
		if err := o.validateTxn(); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, fmt.Errorf("delivery %q: want %s or %s", o.Delivery, ExactlyOnce, AtLeastOnce))
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
	o = o.EnsureDefaults()
	if err := checkTopic(ctx, o.Brokers, o.Topic, o.WriteTimeout); err != nil {
		return nil, err
	}
	return &Sink{o: o}, nil
}

// checkTopic fails with `kafka: topic "x" does not exist (brokers ...)` when
// the topic is missing. It tries 5 times before the job starts: a wrong
// address fails fast, with an error naming what failed.
func checkTopic(ctx context.Context, brokers []string, topic string, timeout time.Duration) error {
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: timeout}
	var md *kafkago.MetadataResponse
	var err error
	const attempts = 5
	backoff := 100 * time.Millisecond
	for attempt := 1; attempt <= attempts; attempt++ {
		md, err = c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
		if err == nil || ctx.Err() != nil || !kafkaretry.IsRetryable(err) {
			break
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff *= 2
	}
	if err != nil {
		what := "metadata request"
		if k := kafkaretry.Kind(what, err); k != what {
			what += ": " + k
		}
		return fmt.Errorf("kafka: topic %q: %s failed (brokers %s): %w", topic, what, strings.Join(brokers, ","), err)
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
	enc := arrowtext.NewEncoder(arrowtext.JSON, t.Inputs[0])
	if s.o.Delivery == ExactlyOnce {
		return &txnOp{o: s.o, base: s.o.TransactionalIDPrefix + "-" + t.Node, task: t, enc: enc, key: key, ts: ts, cur: -1}, nil
	}
	return &sinkOp{o: s.o, enc: enc, key: key, ts: ts}, nil
}

type sinkOp struct {
	o      Options
	w      *kafkago.Writer
	enc    *arrowtext.Encoder
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
	if err := write(ctx, op.w, op.o, msgs); err != nil {
		return err
	}
	op.sent += int64(len(msgs))
	return nil
}

// write delivers msgs synchronously. kafka-go retries a failed batch up
// to MaxAttempts; what it still could not deliver is sent again (only the
// undelivered messages) until o.RetryTimeout, each retry logged.
func write(ctx context.Context, w *kafkago.Writer, o Options, msgs []kafkago.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	streak := kafkaretry.Streak{Backoff: 100 * time.Millisecond, Timeout: o.RetryTimeout}
	total := len(msgs)
	var retry []kafkago.Message
	for {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil {
			if streak.Attempts() > 0 {
				o.Log.Info("kafka: delivery recovered", "topic", o.Topic, "attempts", streak.Attempts(),
					"after", streak.Lasted().Round(time.Millisecond))
			}
			return nil
		}
		var we kafkago.WriteErrors
		failed := len(msgs)
		cause := err
		if errors.As(err, &we) {
			retry = retry[:0]
			cause = nil
			for i, e := range we {
				if e != nil {
					retry = append(retry, msgs[i])
					if cause == nil {
						cause = e
					}
				}
			}
			failed = len(retry)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kafka: topic %q: writing %d messages: %w", o.Topic, total, context.Cause(ctx))
		}
		kind := kafkaretry.Kind("delivery", cause)
		if !streak.Failed(cause) {
			if streak.Attempts() > 1 {
				return fmt.Errorf("kafka: topic %q: %d of %d messages not delivered (%s failed %d times over %v, brokers %s): %w",
					o.Topic, failed, total, kind, streak.Attempts(), streak.Lasted().Round(time.Millisecond), strings.Join(o.Brokers, ","), cause)
			}
			return fmt.Errorf("kafka: topic %q: %d of %d messages not delivered (%s failed, brokers %s): %w",
				o.Topic, failed, total, kind, strings.Join(o.Brokers, ","), cause)
		}
		o.Log.Warn("kafka: retrying delivery", "topic", o.Topic, "messages", failed, "attempt", streak.Attempts(),
			"step", kind, "err", cause, "retrying_for", streak.Lasted().Round(time.Millisecond), "retry_timeout", o.RetryTimeout)
		if !streak.Wait(ctx) {
			return fmt.Errorf("kafka: topic %q: writing %d messages: %w", o.Topic, total, context.Cause(ctx))
		}
		if we != nil {
			msgs = append(msgs[:0:0], retry...)
		}
	}
}

// encodeBatch encodes the rows of b as messages whose bytes live in *buf and
// *keys (valid until the next call).
func encodeBatch(enc *arrowtext.Encoder, b arrow.RecordBatch, key, ts int, buf, keys *[]byte, msgs []kafkago.Message, tsBuf *[]int64) ([]kafkago.Message, error) {
	n := int(b.NumRows())
	// Encode every row into one buffer first, then cut: the buffer may move
	// while it grows. Each row ends with '\n', which a message leaves out.
	ends := make([]int, 0, n)
	d := enc.AppendRows((*buf)[:0], b, &ends)
	*buf = d
	// Keys go into *keys the same way; a null key (no key in Kafka) is an
	// empty range with hasKey false.
	var kends []int
	var hasKey []bool
	if key >= 0 {
		kcol := b.Column(key)
		kends = make([]int, n)
		hasKey = make([]bool, n)
		k := (*keys)[:0]
		for i := range n {
			k, hasKey[i] = appendKey(kcol, i, k)
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
		m := kafkago.Message{Value: d[start : ends[i]-1 : ends[i]-1]}
		start = ends[i]
		if kends != nil {
			if hasKey[i] {
				m.Key = (*keys)[kstart:kends[i]:kends[i]]
				if m.Key == nil {
					m.Key = []byte{} // an empty key, not a null one
				}
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
