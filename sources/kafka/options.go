package kafka

import (
	"errors"
	"fmt"
	"github.com/riffle-dev/riffle/internal/coerce"
	"github.com/riffle-dev/riffle/internal/deadletter"
	"github.com/riffle-dev/riffle/internal/kafkaaddr"
	"github.com/riffle-dev/riffle/internal/kafkaretry"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec"
)

// Defaults of Options fields left at their zero value.
const (
	DefaultMaxBatchRows   = 8192
	DefaultMaxBatchDelay  = 100 * time.Millisecond
	DefaultFetchMaxBytes  = 4 << 20
	DefaultFetchMaxWait   = 250 * time.Millisecond
	DefaultConnectTimeout = 30 * time.Second
	DefaultRetries        = 8
	DefaultRetryBackoff   = 100 * time.Millisecond
	DefaultRetryTimeout   = kafkaretry.DefaultTimeout
)

// StartMode says where a partition without restored state starts reading.
type StartMode string

// Isolation is which records of transactional producers the source reads.
type Isolation string

// Isolation levels.
const (
	// ReadUncommitted reads every record, also those of open and aborted
	// transactions.
	ReadUncommitted Isolation = "read_uncommitted"
	// ReadCommitted reads only the records of committed transactions
	// (and non-transactional ones), up to the last stable offset: the
	// output of an exactly-once sink (sinks/kafka), riffle's included.
	ReadCommitted Isolation = "read_committed"
	// IsolationNone fetches with kafka-go, which knows nothing of
	// transactions: a transaction marker comes back as a message (a decode
	// error, or a row in raw format) and the records of open and aborted
	// transactions are read. Only for topics no transactional producer
	// writes.
	IsolationNone Isolation = "none"
)

const (
	// StartEarliest reads from the oldest retained offset (the default).
	StartEarliest StartMode = "earliest"
	// StartLatest reads only messages produced after the job started.
	StartLatest StartMode = "latest"
	// StartTimestamp starts at the first message whose timestamp is at or
	// after Options.StartTime (the end of the partition if there is none).
	StartTimestamp StartMode = "timestamp"
	// StartCommitted starts at the consumer group's committed offsets
	// (Options.GroupID); partitions without a committed offset start at the
	// earliest offset.
	StartCommitted StartMode = "committed"
)

// Format is how message values are decoded.
type Format string

const (
	// FormatJSON decodes every value as one flat JSON object into the
	// declared Fields (the default).
	FormatJSON Format = "json"
	// FormatCSV decodes every value as one CSV record whose columns are the
	// declared Fields, in order.
	FormatCSV Format = "csv"
	// FormatRaw keeps the value as it is, in a binary column named "value".
	FormatRaw Format = "raw"
)

// ErrorPolicy says what a reader does with a message it cannot decode
// (internal/deadletter, shared by the sources).
type ErrorPolicy = deadletter.Policy

const (
	// OnErrorFail fails the job (the default).
	OnErrorFail = deadletter.Fail
	// OnErrorSkip drops the message and counts it (Stats.Skipped).
	OnErrorSkip = deadletter.Skip
	// OnErrorDeadLetter appends the message to Options.DeadLetterPath as a
	// JSON line and counts it (Stats.DeadLettered).
	OnErrorDeadLetter = deadletter.DeadLetter
)

// Type is the declared type of a field (internal/coerce, shared with the
// CSV and JSONL file sources).
type Type = coerce.Type

// The declared types.
const (
	Int64     = coerce.Int64
	Int32     = coerce.Int32
	Float64   = coerce.Float64
	String    = coerce.String
	Bool      = coerce.Bool
	Timestamp = coerce.Timestamp // milliseconds since the epoch, UTC
	Binary    = coerce.Binary
)

// Field is one declared column of the JSON or CSV payload.
type Field struct {
	Name string
	Type Type
	// Required fields make a message bad when they are missing or null;
	// other fields are null then.
	Required bool
}

// Metadata column names. Options.Metadata lists the ones a job wants; they
// follow the declared fields in the order given.
const (
	MetaKey       = "_key"       // binary, null when the message has no key
	MetaTimestamp = "_timestamp" // timestamp[ms, UTC], the record timestamp
	MetaPartition = "_partition" // int32
	MetaOffset    = "_offset"    // int64
	MetaTopic     = "_topic"     // string
)

// Options configures a Kafka source. The zero value is not enough (Brokers
// and Topics are required) but every other field has a documented default.
type Options struct {
	// Brokers is the bootstrap list, "host:port" entries separated by commas
	// (or given as several entries).
	Brokers []string
	// Topics are read together; every one must exist.
	Topics []string

	// Start is where partitions without restored state begin (default
	// StartEarliest). StartTime is used by StartTimestamp; GroupID by
	// StartCommitted.
	Start     StartMode
	StartTime time.Time
	// GroupID, when set, receives the source's positions as committed
	// offsets whenever a checkpoint completes (for monitoring and for
	// StartCommitted). riffle never joins the group: partitions are
	// assigned to subtasks statically and positions live in checkpoints.
	GroupID string

	// Bounded makes the source stop once every partition reached the end
	// offset it had when New ran: the topic then behaves as a batch input.
	Bounded bool

	// Format of the values (default FormatJSON) and its declared fields.
	Format Format
	Fields []Field
	// Metadata lists metadata columns to add (MetaKey, MetaTimestamp, ...).
	Metadata []string

	// MaxBatchRows bounds the rows of one batch (default 8192).
	MaxBatchRows int
	// MaxBatchDelay bounds how long a reader waits to fill a batch (default
	// 100ms). Next returns what it has when the delay passes, or (nil, nil)
	// when nothing arrived, so the runtime can inject barriers and
	// watermarks.
	MaxBatchDelay time.Duration

	// OnError is the bad-message policy (default OnErrorFail).
	OnError ErrorPolicy
	// DeadLetterPath is the JSON-lines file OnErrorDeadLetter appends to.
	DeadLetterPath string

	// Watermark derives event time: Column must be a timestamp or int64
	// field (or MetaTimestamp). Watermarks are tracked per partition.
	Watermark arrowexec.WatermarkStrategy

	// FetchMaxBytes bounds one fetch response per partition (default 4 MiB);
	// FetchMaxWait is how long the broker may hold a fetch open waiting for
	// data (default 250ms).
	FetchMaxBytes int
	FetchMaxWait  time.Duration

	// ConnectTimeout bounds each request to the brokers (default 30s).
	// Retries (default 8) bounds the attempts of the requests made before
	// the job runs (metadata and offsets, in New and Open) and of group
	// commits: a wrong address fails fast. RetryBackoff (default 100ms,
	// doubling up to 5s) is the pause between two attempts.
	ConnectTimeout time.Duration
	Retries        int
	RetryBackoff   time.Duration
	// Isolation is which records of transactional producers the source
	// reads (default ReadCommitted, so an exactly-once sink's output reads
	// as it is). With ReadCommitted or ReadUncommitted partitions are
	// fetched with franz-go, which skips transaction markers and,
	// read_committed, drops the records of aborted transactions and stops
	// at the last stable offset (a bounded source ends at the one New
	// saw). IsolationNone fetches with kafka-go's connection instead, for
	// topics without transactions only.
	Isolation Isolation

	// RetryTimeout is how long a running reader keeps retrying a partition
	// it cannot fetch (broker down or restarting, leader moving) before the
	// job fails (default 5m, enough for a broker restart). Each retry is
	// logged at warn level. An empty fetch is not a failure: a quiet
	// partition is never retried, it goes idle.
	RetryTimeout time.Duration
}

// EnsureDefaults returns o with zero fields replaced by their defaults.
func (o Options) EnsureDefaults() Options {
	o.Brokers = kafkaaddr.Split(o.Brokers...)
	if o.Start == "" {
		o.Start = StartEarliest
	}
	if o.Format == "" {
		o.Format = FormatJSON
	}
	if o.Isolation == "" {
		o.Isolation = ReadCommitted
	}
	if o.OnError == "" {
		o.OnError = OnErrorFail
	}
	if o.MaxBatchRows <= 0 {
		o.MaxBatchRows = DefaultMaxBatchRows
	}
	if o.MaxBatchDelay <= 0 {
		o.MaxBatchDelay = DefaultMaxBatchDelay
	}
	if o.FetchMaxBytes <= 0 {
		o.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if o.FetchMaxWait <= 0 {
		o.FetchMaxWait = DefaultFetchMaxWait
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.RetryTimeout <= 0 {
		o.RetryTimeout = DefaultRetryTimeout
	}
	return o
}

// Validate checks the options without contacting the brokers.
func (o Options) Validate() error {
	o = o.EnsureDefaults()
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if len(o.Topics) == 0 {
		errs = append(errs, errors.New("no topics"))
	}
	seen := map[string]bool{}
	for _, t := range o.Topics {
		if t == "" {
			errs = append(errs, errors.New("empty topic name"))
		} else if seen[t] {
			errs = append(errs, fmt.Errorf("topic %q listed twice", t))
		}
		seen[t] = true
	}
	switch o.Start {
	case StartEarliest, StartLatest:
	case StartTimestamp:
		if o.StartTime.IsZero() {
			errs = append(errs, errors.New("start timestamp needs StartTime"))
		}
	case StartCommitted:
		if o.GroupID == "" {
			errs = append(errs, errors.New("start committed needs GroupID"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown start mode %q (want earliest, latest, timestamp or committed)", o.Start))
	}
	if o.Isolation != ReadUncommitted && o.Isolation != ReadCommitted && o.Isolation != IsolationNone {
		errs = append(errs, fmt.Errorf("unknown isolation %q (want %s, %s or %s)", o.Isolation, ReadCommitted, ReadUncommitted, IsolationNone))
	}
	switch o.Format {
	case FormatJSON, FormatCSV:
		if len(o.Fields) == 0 {
			errs = append(errs, fmt.Errorf("format %s needs declared fields", o.Format))
		}
	case FormatRaw:
		if len(o.Fields) != 0 {
			errs = append(errs, errors.New("format raw takes no fields (the value is column \"value\")"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown format %q (want json, csv or raw)", o.Format))
	}
	names := map[string]bool{}
	for _, f := range o.Fields {
		if f.Name == "" {
			errs = append(errs, errors.New("field with empty name"))
		}
		if names[f.Name] {
			errs = append(errs, fmt.Errorf("field %q declared twice", f.Name))
		}
		names[f.Name] = true
		if _, err := arrowType(f.Type); err != nil {
			errs = append(errs, fmt.Errorf("field %q: %w", f.Name, err))
		}
	}
	if o.Format == FormatRaw {
		names["value"] = true
	}
	for _, m := range o.Metadata {
		if _, err := metaType(m); err != nil {
			errs = append(errs, err)
		}
		if names[m] {
			errs = append(errs, fmt.Errorf("column %q listed twice", m))
		}
		names[m] = true
	}
	if err := deadletter.CheckPolicy(o.OnError, o.DeadLetterPath); err != nil {
		errs = append(errs, err)
	}
	if o.Watermark.Column != "" {
		if err := o.Watermark.Validate(o.schema()); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("kafka: invalid options: %w", errors.Join(errs...))
	}
	return nil
}

func arrowType(t Type) (arrow.DataType, error) { return coerce.ArrowType(t) }

func metaType(name string) (arrow.DataType, error) {
	switch name {
	case MetaKey:
		return arrow.BinaryTypes.Binary, nil
	case MetaTimestamp:
		return &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, nil
	case MetaPartition:
		return arrow.PrimitiveTypes.Int32, nil
	case MetaOffset:
		return arrow.PrimitiveTypes.Int64, nil
	case MetaTopic:
		return arrow.BinaryTypes.String, nil
	}
	return nil, fmt.Errorf("unknown metadata column %q (want %s, %s, %s, %s or %s)", name, MetaKey, MetaTimestamp, MetaPartition, MetaOffset, MetaTopic)
}

// schema derives the output schema; invalid types are left out (Validate
// reports them).
func (o Options) schema() *arrow.Schema {
	var fs []arrow.Field
	if o.Format == FormatRaw {
		fs = append(fs, arrow.Field{Name: "value", Type: arrow.BinaryTypes.Binary, Nullable: true})
	}
	for _, f := range o.Fields {
		if dt, err := arrowType(f.Type); err == nil {
			fs = append(fs, arrow.Field{Name: f.Name, Type: dt, Nullable: !f.Required})
		}
	}
	for _, m := range o.Metadata {
		if dt, err := metaType(m); err == nil {
			fs = append(fs, arrow.Field{Name: m, Type: dt, Nullable: m == MetaKey})
		}
	}
	return arrow.NewSchema(fs, nil)
}
