package job

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/arrowexec/ops"
)

// Spec is a parsed job file. Steps keep their YAML line so planning errors
// can point at them.
//
// A linear job has one Source, Steps each reading the one before, and one
// Sink. A DAG job (Sources or Sinks set) names its sources, and its steps
// read the sources and steps their Inputs name (by default the step
// before, or the only source); each of its Sinks reads the step (or
// "step.late", a window's late rows) its From names (by default the last
// step).
type Spec struct {
	File        string // path the spec was read from, for messages
	Name        string
	Parallelism int
	Source      SourceSpec
	Steps       []Step
	Sink        SinkSpec
	// Sources are a DAG job's sources (sources:), in file order.
	Sources []NamedSource
	// Sinks are a DAG job's sinks (sinks:), in file order; the first is
	// the main one (Plan.Sink, Options.OutputDir, Plan.Commit).
	Sinks []SinkSpec
}

// NamedSource is one source of a DAG job.
type NamedSource struct {
	Name string
	SourceSpec
}

// IsDAG says whether s is a DAG job (sources: or sinks:).
func (s *Spec) IsDAG() bool { return len(s.Sources) > 0 || len(s.Sinks) > 0 }

// SourceSpec says where input comes from. Exactly one of Parquet, CSV,
// JSONL, Kafka and Hybrid is set.
type SourceSpec struct {
	// Parquet reads Parquet files (bounded).
	Parquet *ParquetSpec `yaml:"parquet"`
	// CSV reads CSV files (bounded).
	CSV *TextSpec `yaml:"csv"`
	// JSONL reads JSON Lines files, one object per line (bounded).
	JSONL *TextSpec `yaml:"jsonl"`
	// Kafka reads Kafka topics (unbounded unless bounded: true).
	Kafka *KafkaSpec `yaml:"kafka"`
	// Hybrid reads Parquet files up to a boundary, then a Kafka topic from
	// there on: a backfill and its continuation in one job.
	Hybrid *HybridSpec `yaml:"hybrid"`
	// Watermark sets the source's event time and watermarks (needed by
	// window steps to fire).
	Watermark *WatermarkSpec `yaml:"watermark"`
	Line      int            `yaml:"-"`
}

// ParquetSpec is a Parquet source.
type ParquetSpec struct {
	// Path is a file, a glob (data/*.parquet) or a directory (its
	// .parquet files, recursively).
	Path string `yaml:"path"`
	// Paths lists several paths (each as path:), instead of path.
	Paths []string `yaml:"paths"`
	// Decoder picks the Parquet reader: parquet-go (default) or arrow
	// (arrow-go's pqarrow).
	Decoder string `yaml:"decoder"`
	// BatchSize is the rows per batch read (default 65536).
	BatchSize int `yaml:"batch_size"`
}

// TextSpec is a CSV or JSONL file source (sources/text). Columns are
// declared as a Kafka source's fields; header and delimiter are CSV's.
type TextSpec struct {
	// Path is a file, a glob or a directory.
	Path string `yaml:"path"`
	// Paths lists several paths, instead of path.
	Paths []string `yaml:"paths"`
	// Header says the CSV files' first line names the columns (CSV only;
	// default false).
	Header bool `yaml:"header"`
	// Delimiter is the CSV field separator, one byte (default ",").
	Delimiter string `yaml:"delimiter"`
	// Columns declare the columns to read, in order for headerless CSV
	// (riffle schema FILE prints a block to paste).
	Columns []KafkaField `yaml:"columns"`
	// BatchSize is the rows per batch (default 65536).
	BatchSize int `yaml:"batch_size"`
	// SplitSize cuts large files into splits read in parallel (default
	// 32MiB).
	SplitSize string `yaml:"split_size"`
	// OnError is what a line that does not parse does: fail (default: the
	// job fails naming file and line), skip (counted), or dead-letter
	// (written with the reason to dead_letter_path).
	OnError string `yaml:"on_error"`
	// DeadLetterPath is the directory of rejected lines (on_error:
	// dead-letter).
	DeadLetterPath string `yaml:"dead_letter_path"`
}

// KafkaSpec is a Kafka source.
type KafkaSpec struct {
	// Brokers are the bootstrap brokers, comma-separated (riffle run
	// --brokers overrides; empty with --embedded-kafka).
	Brokers string `yaml:"brokers"`
	// Topics lists the topics read (or topic: for one).
	Topics []string `yaml:"topics"`
	// Topic is the one topic read.
	Topic string `yaml:"topic"`
	// Start is where reading starts without a checkpoint: earliest
	// (default), latest, timestamp (start_time) or committed (group_id's
	// committed offsets).
	Start string `yaml:"start"`
	// StartTime is the time start: timestamp starts from.
	StartTime time.Time `yaml:"start_time"`
	// GroupID is the consumer group whose offsets start: committed reads
	// (riffle tracks its positions in checkpoints, not in the group).
	GroupID string `yaml:"group_id"`
	// Bounded stops at the partitions' end offsets as of the job's start
	// (a bounded run over a topic); default false: runs until stopped.
	Bounded bool `yaml:"bounded"`
	// Format is the messages' encoding: json (default: one flat object
	// per message), csv (one record) or raw (the value as one binary
	// column named value).
	Format string `yaml:"format"`
	// Fields declare the columns parsed out of each message.
	Fields []KafkaField `yaml:"fields"`
	// Metadata adds message metadata columns after the fields: any of
	// _key (binary), _timestamp, _partition, _offset.
	Metadata []string `yaml:"metadata"`
	// MaxBatchRows caps the rows of a micro-batch (default 8192).
	MaxBatchRows int `yaml:"max_batch_rows"`
	// MaxBatchDelay is how long a micro-batch waits to fill (default
	// 100ms).
	MaxBatchDelay time.Duration `yaml:"max_batch_delay"`
	// OnError is what a malformed message does: fail (default: the job
	// fails naming topic, partition and offset), skip (counted), or
	// dead-letter (written with the reason to dead_letter_path).
	OnError string `yaml:"on_error"`
	// DeadLetterPath is the directory of rejected messages (on_error:
	// dead-letter).
	DeadLetterPath string `yaml:"dead_letter_path"`
	// RetryTimeout is how long a running job retries an unreachable broker
	// before it fails (default 5m).
	RetryTimeout time.Duration `yaml:"retry_timeout"`
	// Isolation is read_committed (default: only the rows of committed
	// transactions, an exactly-once sink's output as it is),
	// read_uncommitted, or none (kafka-go's fetch, which knows nothing of
	// transactions: for topics without them).
	Isolation     string `yaml:"isolation"`
	Line          int    `yaml:"-"`
	IsolationLine int    `yaml:"-"`
}

// KafkaField is a declared column of Kafka messages.
type KafkaField struct {
	// Name is the column's name (and the JSON field's).
	Name string `yaml:"name"`
	// Type is one of int64, int32, float64, string, bool, timestamp,
	// binary.
	Type string `yaml:"type"`
	// Required rejects a record without the field (by on_error); default
	// false: a missing field is NULL.
	Required bool `yaml:"required"`
}

// HybridSpec reads Parquet up to a boundary, then Kafka.
type HybridSpec struct {
	// Parquet is the files read first.
	Parquet *ParquetSpec `yaml:"parquet"`
	// Kafka is the topic read after the boundary.
	Kafka *KafkaSpec `yaml:"kafka"`
	// Boundary is where the files end and the topic takes over.
	Boundary *BoundarySpec `yaml:"boundary"`
}

// BoundarySpec is where a hybrid source switches from files to the topic:
// an event time over a column, or an offset map (inline or in a JSON file
// {"topic": {"0": 123}}).
type BoundarySpec struct {
	// EventTime switches at this time: file rows before it, topic messages
	// from it on.
	EventTime time.Time `yaml:"event_time"`
	// Column is the files' event-time column event_time compares with.
	Column string `yaml:"column"`
	// TimestampSkew widens the topic's start (by message timestamp) by this
	// much, for producers whose timestamps lag the column's.
	TimestampSkew time.Duration `yaml:"timestamp_skew"`
	// Offsets switch at these offsets instead: topic to partition to first
	// offset read from the topic.
	Offsets map[string]map[int]int64 `yaml:"offsets"`
	// OffsetsFile reads offsets from a JSON file {"topic": {"0": 123}}.
	OffsetsFile string `yaml:"offsets_file"`
}

// WatermarkSpec is the source's event-time strategy.
type WatermarkSpec struct {
	// Column is the event-time column: a timestamp of any unit, or int64
	// milliseconds.
	Column string `yaml:"column"`
	// MaxOutOfOrderness is how late an event may be: the watermark trails
	// the largest event time seen by this much (default 0).
	MaxOutOfOrderness time.Duration `yaml:"max_out_of_orderness"`
	// IdleTimeout marks a partition or split that sent nothing for this
	// long idle, so it does not hold the watermark back (default 0: never).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// SinkSpec says where output goes. Exactly one of File and Kafka is set.
type SinkSpec struct {
	// File writes files (Parquet, CSV or JSONL).
	File *FileSinkSpec `yaml:"file"`
	// Kafka writes JSON messages to a topic.
	Kafka *KafkaSinkSpec `yaml:"kafka"`
	// From names what a sink of a DAG job reads: a step, a source, or a
	// window step's late rows ("step.late"); "" is the last step.
	From string `yaml:"from"`
	Line int    `yaml:"-"`
}

// FileSinkSpec is a file sink.
type FileSinkSpec struct {
	// Path is the output directory (riffle backfill --output overrides);
	// a bounded job replaces it whole when it commits.
	Path string `yaml:"path"`
	// Format is parquet (default), csv or jsonl.
	Format string `yaml:"format"`
	// Prefix starts the part files' names (default part).
	Prefix string `yaml:"prefix"`
	// PartSize rolls a part file at this size (default 128MiB).
	PartSize string `yaml:"part_size"`
	// Compression is the Parquet codec: zstd (default), snappy, gzip,
	// lz4raw (lz4), brotli or none.
	Compression string `yaml:"compression"`
	// RollInterval rolls (closes and publishes) a part open this long;
	// unset: sinks.DefaultRollInterval on unbounded jobs, size only on
	// bounded ones; 0 rolls on size only.
	RollInterval *time.Duration `yaml:"roll_interval"`
	// RollCheckpoints rolls a part at every Nth checkpoint it spans
	// (jobs with checkpoints); 0 or unset: off.
	RollCheckpoints int `yaml:"roll_checkpoints"`
}

// KafkaSinkSpec is a Kafka sink: rows as JSON messages.
type KafkaSinkSpec struct {
	// Brokers are the bootstrap brokers, comma-separated (riffle run
	// --brokers overrides).
	Brokers string `yaml:"brokers"`
	// Topic is the topic written (it must exist).
	Topic string `yaml:"topic"`
	// Key is the column whose value keys each message (optional).
	Key string `yaml:"key"`
	// Timestamp is the event-time column giving messages their timestamps
	// (optional; default the time of writing).
	Timestamp string `yaml:"timestamp"`
	// RetryTimeout is how long undelivered messages are retried (default 5m).
	RetryTimeout time.Duration `yaml:"retry_timeout"`
	// Delivery is at-least-once (default) or exactly-once (Kafka
	// transactions committed when a checkpoint completes; jobs with
	// checkpoints only).
	Delivery string `yaml:"delivery"`
	// TransactionTimeout is the exactly-once sink's Kafka transaction
	// timeout (default 15m; at least twice the checkpoint interval).
	TransactionTimeout time.Duration `yaml:"transaction_timeout"`
	DeliveryLine       int           `yaml:"-"`
	TimeoutLine        int           `yaml:"-"`
}

// StepKind names a step.
type StepKind string

// Step kinds.
const (
	// StepFilter keeps the rows for which an expression is true (a row
	// where it is NULL is dropped). Comparisons of a column with a
	// constant are pushed into a Parquet source (row groups whose
	// statistics exclude them are not read).
	//
	//	steps:
	//	  - filter: "event_type = 'click' AND weight > 1"
	StepFilter StepKind = "filter"
	// StepProject computes the output columns, in order, as a mapping of
	// name to expression; columns not named are dropped.
	//
	//	steps:
	//	  - project: {item_id: item_id, w: "weight * 2"}
	StepProject StepKind = "project"
	// StepAggregate is a hash aggregate over bounded input: one output
	// row per group (the keys, then one column per aggregate), emitted at
	// the end of input.
	//
	//	steps:
	//	  - aggregate:
	//	      group_by: [item_id, "date_trunc('day', event_time) AS day"]
	//	      aggs: ["count(*) AS n", "sum(price * qty) AS revenue",
	//	             "count(*) FILTER (WHERE event_type = 'buy') AS buys"]
	StepAggregate StepKind = "aggregate"
	// StepWindow is an event-time window aggregate (tumbling, sliding or
	// session) fired by the watermark (output columns: Window steps
	// below).
	//
	//	steps:
	//	  - window:
	//	      type: tumbling
	//	      size: 1m
	//	      key: [item_id]
	//	      time: event_time
	//	      aggs: ["count(*) AS views", "approx_distinct(user_id) AS users"]
	StepWindow StepKind = "window"
	// StepRecommend trains an implicit-feedback recommender (iALS) on the
	// (user, item, weight) rows reaching it and emits each user's top-K
	// items not seen in training (user_id, item_id, rank, score,
	// model_version); on a stream it learns incrementally (update:).
	//
	//	steps:
	//	  - recommend:
	//	      user: user_id
	//	      item: item_id
	//	      weight: "CASE event_type WHEN 'purchase' THEN 4 ELSE 1 END"
	//	      factors: 64
	//	      k: 10
	//	      export: {path: out/model, embeddings: true}
	StepRecommend StepKind = "recommend"
	// StepUnion forwards the rows of all its inputs (UNION ALL; the
	// inputs have the same columns), in a DAG job.
	//
	//	steps:
	//	  - name: all
	//	    union: {}
	//	    inputs: [clicks, views]
	StepUnion StepKind = "union"
)

// stepBlocks lists the step kinds in the order messages and the job-file
// reference (docs/JOBS.md) show them, with the struct a kind's block
// decodes into (nil: the kind takes an expression, a mapping or nothing,
// as its constant's doc says).
var stepBlocks = []struct {
	kind  StepKind
	block any
}{
	{StepFilter, nil},
	{StepProject, nil},
	{StepAggregate, rawAggregate{}},
	{StepWindow, rawWindow{}},
	{StepRecommend, rawRecommend{}},
	{StepUnion, nil},
}

// stepKindList is "filter, project, ..., union", for messages.
func stepKindList() string {
	names := make([]string, len(stepBlocks))
	for i, b := range stepBlocks {
		names[i] = string(b.kind)
	}
	return strings.Join(names, ", ")
}

// Step is one transformation. Exactly one of the fields matching Kind is set.
type Step struct {
	Kind StepKind
	Line int
	// Name names the step for other steps' Inputs and sinks' From (DAG
	// jobs); default "<kind>-<number>".
	Name string `yaml:"name"`
	// Inputs name what the step reads (DAG jobs): sources, steps, or
	// "step.late"; empty: the step before (the only source for the first).
	Inputs     []string `yaml:"inputs"`
	InputsLine int
	Filter     expr.Expr
	Project    []NamedExpr
	Aggregate  *AggregateSpec
	Window     *WindowSpec
	Recommend  *RecommendStep
}

// NamedExpr is one output column of a project step.
type NamedExpr struct {
	Name string
	Expr expr.Expr
}

// AggregateSpec is a hash aggregate step:
//
//	steps:
//	  - aggregate:
//	      group_by: [item_id, "date_trunc('day', event_time) AS day"]
//	      aggs: ["count(*) AS n", "sum(price * qty) AS revenue",
//	             "count(*) FILTER (WHERE event_type = 'buy') AS buys"]
//
// Keys and aggregate arguments are expressions (agg.ParseKey,
// agg.ParseCall); GroupBy and Aggs are the columns the aggregate reads
// after Pre, the projection computing them (nil when every key and
// argument is a plain column and nothing is filtered; agg.Lower).
type AggregateSpec struct {
	GroupBy []string
	Aggs    []agg.Agg
	Pre     []ops.Column
	// Keys and Calls are the step as written.
	Keys  []agg.Key
	Calls []agg.Call
}

// Error is a job file error with its position.
type Error struct {
	File string
	Line int
	Msg  string
	// Err is the cause, when there is one (a planning error: a file that
	// cannot be read, a broker that cannot be reached); Msg is its text.
	Err error
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return e.Msg
}

// ReadFile reads and parses a job file.
func ReadFile(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("job: %w", err)
	}
	return Parse(path, data)
}

// rawSpec is a job file's top level. A ref tag names the type a block
// decoded by hand is parsed into (for the job-file reference).
type rawSpec struct {
	// Name names the job in logs and metrics.
	Name string `yaml:"name"`
	// Parallelism is the number of subtasks of each node (default
	// GOMAXPROCS; riffle run --parallelism overrides it).
	Parallelism int `yaml:"parallelism"`
	// Source is the job's one source (or sources:, not both).
	Source yaml.Node `yaml:"source" ref:"SourceSpec"`
	// Sources names several sources, a mapping of name to source block:
	// the job is a DAG (steps name their inputs:).
	Sources yaml.Node `yaml:"sources" ref:"SourceSpec"`
	// Steps are the transformations, in order (see Steps below).
	Steps []yaml.Node `yaml:"steps" ref:"Step"`
	// Sink is the job's one output (or sinks:, not both).
	Sink yaml.Node `yaml:"sink" ref:"SinkSpec"`
	// Sinks lists several outputs, each naming in from: what it writes;
	// the first is the main one.
	Sinks []yaml.Node `yaml:"sinks" ref:"SinkSpec"`
}

// rawAggregate is an aggregate step's block (StepAggregate).
type rawAggregate struct {
	// GroupBy are the group keys: columns or expressions with AS names.
	// Empty: one group (one output row, also for empty input).
	GroupBy []string `yaml:"group_by"`
	// Aggs are the aggregate calls, "func(expr) [FILTER (WHERE cond)] [AS
	// name]" (the functions: Aggregate functions below); at least one.
	Aggs []string `yaml:"aggs"`
}

var (
	yamlLine = regexp.MustCompile(`^yaml: (?:unmarshal errors:\n\s*)?line (\d+): (.*)$`)
	yamlItem = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// yamlErr turns a yaml.v3 error into an *Error with the line it names.
// target is the value being decoded: its type names the keys an unknown
// key is answered with.
func yamlErr(file string, err error, target any, lineOffset int) error {
	msg := strings.TrimSpace(err.Error())
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line + lineOffset, Msg: friendlyYAML(m[2], target)}
	}
	// Several unmarshal errors: each on its line, the first one's line is
	// the error's; the others keep theirs in the text.
	if rest, ok := strings.CutPrefix(msg, "yaml: unmarshal errors:\n"); ok {
		e := &Error{File: file}
		var parts []string
		for _, l := range strings.Split(rest, "\n") {
			m := yamlItem.FindStringSubmatch(strings.TrimSpace(l))
			if m == nil {
				parts = append(parts, strings.TrimSpace(l))
				continue
			}
			n, _ := strconv.Atoi(m[1])
			n += lineOffset
			if e.Line == 0 {
				e.Line = n
				parts = append(parts, friendlyYAML(m[2], target))
			} else {
				parts = append(parts, fmt.Sprintf("line %d: %s", n, friendlyYAML(m[2], target)))
			}
		}
		e.Msg = strings.Join(parts, "; ")
		return e
	}
	return &Error{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// keyLine returns the line of the value at keys under mapping n, or n's
// line when a key is missing.
func keyLine(n *yaml.Node, keys ...string) int {
	line := n.Line
	for _, k := range keys {
		var next *yaml.Node
		for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				line = n.Content[i].Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

func decodeStrict(file string, n *yaml.Node, v any) error {
	// Re-encode the node so KnownFields applies: yaml.Node.Decode has no
	// strict mode.
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(n); err != nil {
		return &Error{File: file, Line: n.Line, Msg: err.Error()}
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		// Lines of the re-encoded fragment are relative to n.
		e := yamlErr(file, err, v, n.Line-1).(*Error)
		if e.Line == 0 {
			e.Line = n.Line
		}
		return e
	}
	return nil
}

func countSet(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// parseSink parses a sink block ({file: ...} or {kafka: ...}); what names
// it in messages ("sink", "step 2: window: late_output").
func parseSink(file, what string, n *yaml.Node) (SinkSpec, error) {
	var s SinkSpec
	if err := decodeStrict(file, n, &s); err != nil {
		return s, err
	}
	s.Line = n.Line
	if countSet(s.File != nil, s.Kafka != nil) != 1 {
		return s, &Error{File: file, Line: n.Line, Msg: what + ": want exactly one of: file, kafka"}
	}
	if k := s.Kafka; k != nil {
		k.DeliveryLine = keyLine(n, "kafka", "delivery")
		k.TimeoutLine = keyLine(n, "kafka", "transaction_timeout")
		switch k.Delivery {
		case "", "exactly-once", "at-least-once":
		default:
			return s, &Error{File: file, Line: k.DeliveryLine, Msg: fmt.Sprintf("%s: delivery %q: want exactly-once or at-least-once", what, k.Delivery)}
		}
		if k.TransactionTimeout < 0 {
			return s, &Error{File: file, Line: k.TimeoutLine, Msg: fmt.Sprintf("%s: transaction_timeout %v must not be negative", what, k.TransactionTimeout)}
		}
	}
	if f := s.File; f != nil && f.RollInterval != nil && *f.RollInterval < 0 {
		return s, &Error{File: file, Line: keyLine(n, "file", "roll_interval"), Msg: fmt.Sprintf("%s: roll_interval %v must not be negative (0 rolls on part_size only)", what, *f.RollInterval)}
	}
	if f := s.File; f != nil && f.RollCheckpoints < 0 {
		return s, &Error{File: file, Line: keyLine(n, "file", "roll_checkpoints"), Msg: fmt.Sprintf("%s: roll_checkpoints %d must not be negative (0 is off)", what, f.RollCheckpoints)}
	}
	return s, nil
}

// Parse parses a job file's content; file names it in errors.
func Parse(file string, data []byte) (*Spec, error) {
	var raw rawSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Msg: "empty job file"}
		}
		return nil, yamlErr(file, err, &raw, 0)
	}
	s := &Spec{File: file, Name: raw.Name, Parallelism: raw.Parallelism}
	var err error
	if raw.Parallelism < 0 {
		return nil, &Error{File: file, Msg: fmt.Sprintf("parallelism %d must be positive", raw.Parallelism)}
	}
	switch {
	case raw.Source.Kind != 0 && raw.Sources.Kind != 0:
		return nil, &Error{File: file, Line: raw.Sources.Line, Msg: "give source (one) or sources (named), not both"}
	case raw.Sources.Kind != 0:
		if raw.Sources.Kind != yaml.MappingNode || len(raw.Sources.Content) == 0 {
			return nil, &Error{File: file, Line: raw.Sources.Line, Msg: "sources: want a mapping of name to source block (e.g. sources: {clicks: {parquet: {path: clicks/}}})"}
		}
		for i := 0; i < len(raw.Sources.Content); i += 2 {
			k, v := raw.Sources.Content[i], raw.Sources.Content[i+1]
			if !nameRE.MatchString(k.Value) {
				return nil, &Error{File: file, Line: k.Line, Msg: fmt.Sprintf("sources: name %q: want letters, digits, _ and -", k.Value)}
			}
			src, err := parseSource(file, "sources: "+k.Value, v)
			if err != nil {
				return nil, err
			}
			src.Line = k.Line
			s.Sources = append(s.Sources, NamedSource{Name: k.Value, SourceSpec: src})
		}
	case raw.Source.Kind == 0:
		return nil, &Error{File: file, Msg: "no source: add a source block (e.g. source: {parquet: {path: data.parquet}})"}
	default:
		if s.Source, err = parseSource(file, "source", &raw.Source); err != nil {
			return nil, err
		}
	}
	switch {
	case raw.Sink.Kind != 0 && len(raw.Sinks) > 0:
		return nil, &Error{File: file, Line: raw.Sinks[0].Line, Msg: "give sink (one) or sinks (a list), not both"}
	case len(raw.Sinks) > 0:
		for i := range raw.Sinks {
			sk, err := parseSink(file, fmt.Sprintf("sinks: %d", i+1), &raw.Sinks[i])
			if err != nil {
				return nil, err
			}
			s.Sinks = append(s.Sinks, sk)
		}
		if raw.Source.Kind != 0 {
			// One source, several sinks: a DAG whose source is "source".
			s.Sources = []NamedSource{{Name: "source", SourceSpec: s.Source}}
			s.Source = SourceSpec{}
		}
	case raw.Sink.Kind == 0:
		return nil, &Error{File: file, Msg: "no sink: add a sink block (e.g. sink: {file: {path: out, format: parquet}})"}
	default:
		if s.Sink, err = parseSink(file, "sink", &raw.Sink); err != nil {
			return nil, err
		}
		if s.Sink.From != "" {
			return nil, &Error{File: file, Line: keyLine(&raw.Sink, "from"), Msg: "sink: from names a step in a job with sinks: (a list); sink: reads the last step"}
		}
		if len(s.Sources) > 0 {
			s.Sinks, s.Sink = []SinkSpec{s.Sink}, SinkSpec{}
		}
	}
	for i := range raw.Steps {
		st, err := parseStep(file, i+1, &raw.Steps[i])
		if err != nil {
			return nil, err
		}
		s.Steps = append(s.Steps, st)
	}
	return s, nil
}

// nameRE is what source and step names may be.
var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// parseSource parses a source block; what names it in messages.
func parseSource(file, what string, n *yaml.Node) (SourceSpec, error) {
	var s SourceSpec
	if err := decodeStrict(file, n, &s); err != nil {
		return s, err
	}
	s.Line = n.Line
	if n := countSet(s.Parquet != nil, s.CSV != nil, s.JSONL != nil, s.Kafka != nil, s.Hybrid != nil); n != 1 {
		return s, &Error{File: file, Line: s.Line, Msg: what + ": want exactly one of: parquet, csv, jsonl, kafka, hybrid"}
	}
	if h := s.Hybrid; h != nil && (h.Parquet == nil || h.Kafka == nil || h.Boundary == nil) {
		return s, &Error{File: file, Line: s.Line, Msg: what + ": hybrid needs parquet, kafka and boundary blocks"}
	}
	for _, k := range []struct {
		spec *KafkaSpec
		path []string
	}{{s.Kafka, []string{"kafka", "isolation"}}, {hybridKafka(s.Hybrid), []string{"hybrid", "kafka", "isolation"}}} {
		if k.spec == nil {
			continue
		}
		k.spec.IsolationLine = keyLine(n, k.path...)
		switch k.spec.Isolation {
		case "", "read_committed", "read_uncommitted", "none":
		default:
			return s, &Error{File: file, Line: k.spec.IsolationLine, Msg: fmt.Sprintf("%s: isolation %q: want read_committed, read_uncommitted or none", what, k.spec.Isolation)}
		}
	}
	return s, nil
}

func parseStep(file string, num int, n *yaml.Node) (Step, error) {
	fail := func(line int, format string, args ...any) (Step, error) {
		return Step{}, &Error{File: file, Line: line, Msg: fmt.Sprintf("step %d: ", num) + fmt.Sprintf(format, args...)}
	}
	kinds := stepKindList()
	if n.Kind != yaml.MappingNode {
		return fail(n.Line, "want one of %s as a key (with name: and inputs: beside it in a DAG job)", kinds)
	}
	var key, val *yaml.Node
	var st Step
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			if v.Kind != yaml.ScalarNode || !nameRE.MatchString(v.Value) {
				return fail(v.Line, "name %q: want letters, digits, _ and -", v.Value)
			}
			st.Name = v.Value
		case "inputs":
			if err := v.Decode(&st.Inputs); err != nil || len(st.Inputs) == 0 {
				return fail(v.Line, "inputs: want a list of source or step names (e.g. inputs: [clicks, views])")
			}
			st.InputsLine = k.Line
		default:
			if key != nil {
				return fail(k.Line, "one step per list item: %q and %q", key.Value, k.Value)
			}
			key, val = k, v
		}
	}
	if key == nil {
		return fail(n.Line, "want one of %s as a key", kinds)
	}
	st.Kind, st.Line = StepKind(key.Value), key.Line
	switch st.Kind {
	case StepFilter:
		if val.Kind != yaml.ScalarNode {
			return fail(val.Line, "filter: want an expression string")
		}
		e, err := expr.Parse(val.Value)
		if err != nil {
			return fail(val.Line, "filter: %v", err)
		}
		st.Filter = e
	case StepProject:
		if val.Kind != yaml.MappingNode || len(val.Content) == 0 {
			return fail(val.Line, "project: want a mapping of output column to expression")
		}
		for i := 0; i < len(val.Content); i += 2 {
			k, v := val.Content[i], val.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return fail(v.Line, "project %s: want an expression string", k.Value)
			}
			e, err := expr.Parse(v.Value)
			if err != nil {
				return fail(v.Line, "project %s: %v", k.Value, err)
			}
			st.Project = append(st.Project, NamedExpr{Name: k.Value, Expr: e})
		}
	case StepAggregate:
		var a rawAggregate
		if err := decodeStrict(file, val, &a); err != nil {
			return Step{}, err
		}
		if len(a.Aggs) == 0 {
			return fail(val.Line, "aggregate: no aggs (e.g. aggs: [\"count(*) AS n\"])")
		}
		spec := &AggregateSpec{}
		for _, s := range a.GroupBy {
			k, err := agg.ParseKey(s)
			if err != nil {
				return fail(val.Line, "aggregate: %v", err)
			}
			spec.Keys = append(spec.Keys, k)
		}
		for _, s := range a.Aggs {
			c, err := agg.ParseCall(s)
			if err != nil {
				return fail(val.Line, "aggregate: %v", err)
			}
			spec.Calls = append(spec.Calls, c)
		}
		l, err := agg.Lower(spec.Keys, spec.Calls, nil)
		if err != nil {
			return fail(val.Line, "aggregate: %v", err)
		}
		spec.GroupBy, spec.Aggs, spec.Pre = l.Keys, l.Aggs, l.Pre
		st.Aggregate = spec
	case StepWindow:
		w, err := parseWindowStep(file, num, val)
		if err != nil {
			return Step{}, err
		}
		st.Window = w
	case StepRecommend:
		r, err := parseRecommendStep(file, num, val)
		if err != nil {
			return Step{}, err
		}
		st.Recommend = r
	case StepUnion:
		if !(val.Kind == yaml.MappingNode && len(val.Content) == 0) && val.Tag != "!!null" {
			return fail(val.Line, "union: takes no options (union: {}); name what it reads in inputs:")
		}
	default:
		return fail(key.Line, "unknown step %q (want one of %s)", key.Value, stepKindList())
	}
	return st, nil
}

func hybridKafka(h *HybridSpec) *KafkaSpec {
	if h == nil {
		return nil
	}
	return h.Kafka
}
