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
type Spec struct {
	File        string // path the spec was read from, for messages
	Name        string
	Parallelism int
	Source      SourceSpec
	Steps       []Step
	Sink        SinkSpec
}

// SourceSpec says where input comes from. Exactly one of Parquet, CSV,
// JSONL, Kafka and Hybrid is set.
type SourceSpec struct {
	Parquet   *ParquetSpec   `yaml:"parquet"`
	CSV       *TextSpec      `yaml:"csv"`
	JSONL     *TextSpec      `yaml:"jsonl"`
	Kafka     *KafkaSpec     `yaml:"kafka"`
	Hybrid    *HybridSpec    `yaml:"hybrid"`
	Watermark *WatermarkSpec `yaml:"watermark"`
	Line      int            `yaml:"-"`
}

// ParquetSpec is a Parquet source.
type ParquetSpec struct {
	Path      string   `yaml:"path"`
	Paths     []string `yaml:"paths"`
	Decoder   string   `yaml:"decoder"`
	BatchSize int      `yaml:"batch_size"`
}

// TextSpec is a CSV or JSONL file source (sources/text). Columns are
// declared as a Kafka source's fields; header and delimiter are CSV's.
type TextSpec struct {
	Path           string       `yaml:"path"`
	Paths          []string     `yaml:"paths"`
	Header         bool         `yaml:"header"`
	Delimiter      string       `yaml:"delimiter"` // one byte; default ","
	Columns        []KafkaField `yaml:"columns"`
	BatchSize      int          `yaml:"batch_size"`
	SplitSize      string       `yaml:"split_size"` // e.g. 32MiB
	OnError        string       `yaml:"on_error"`   // fail, skip, dead-letter
	DeadLetterPath string       `yaml:"dead_letter_path"`
}

// KafkaSpec is a Kafka source.
type KafkaSpec struct {
	Brokers        string        `yaml:"brokers"` // comma-separated; "" with riffle run --embedded-kafka
	Topics         []string      `yaml:"topics"`
	Topic          string        `yaml:"topic"`
	Start          string        `yaml:"start"` // earliest, latest, timestamp, committed
	StartTime      time.Time     `yaml:"start_time"`
	GroupID        string        `yaml:"group_id"`
	Bounded        bool          `yaml:"bounded"`
	Format         string        `yaml:"format"` // json, csv, raw
	Fields         []KafkaField  `yaml:"fields"`
	Metadata       []string      `yaml:"metadata"`
	MaxBatchRows   int           `yaml:"max_batch_rows"`
	MaxBatchDelay  time.Duration `yaml:"max_batch_delay"`
	OnError        string        `yaml:"on_error"` // fail, skip, dead-letter
	DeadLetterPath string        `yaml:"dead_letter_path"`
	RetryTimeout   time.Duration `yaml:"retry_timeout"` // how long a running job retries an unreachable broker (default 5m)
	// Isolation is read_uncommitted (default) or read_committed: only the
	// rows of committed transactions (an exactly-once sink's output).
	Isolation     string `yaml:"isolation"`
	Line          int    `yaml:"-"`
	IsolationLine int    `yaml:"-"`
}

// KafkaField is a declared column of Kafka messages.
type KafkaField struct {
	Name     string `yaml:"name"`
	Type     string `yaml:"type"`
	Required bool   `yaml:"required"`
}

// HybridSpec reads Parquet up to a boundary, then Kafka.
type HybridSpec struct {
	Parquet  *ParquetSpec  `yaml:"parquet"`
	Kafka    *KafkaSpec    `yaml:"kafka"`
	Boundary *BoundarySpec `yaml:"boundary"`
}

// BoundarySpec is where a hybrid source switches from files to the topic:
// an event time over a column, or an offset map (inline or in a JSON file
// {"topic": {"0": 123}}).
type BoundarySpec struct {
	EventTime     time.Time                `yaml:"event_time"`
	Column        string                   `yaml:"column"`
	TimestampSkew time.Duration            `yaml:"timestamp_skew"`
	Offsets       map[string]map[int]int64 `yaml:"offsets"`
	OffsetsFile   string                   `yaml:"offsets_file"`
}

// WatermarkSpec is the source's event-time strategy.
type WatermarkSpec struct {
	Column            string        `yaml:"column"`
	MaxOutOfOrderness time.Duration `yaml:"max_out_of_orderness"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
}

// SinkSpec says where output goes. Exactly one field is set.
type SinkSpec struct {
	File  *FileSinkSpec  `yaml:"file"`
	Kafka *KafkaSinkSpec `yaml:"kafka"`
	Line  int            `yaml:"-"`
}

// FileSinkSpec is a file sink.
type FileSinkSpec struct {
	Path        string `yaml:"path"`
	Format      string `yaml:"format"`
	Prefix      string `yaml:"prefix"`
	PartSize    string `yaml:"part_size"` // e.g. 128MiB
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
	Brokers   string `yaml:"brokers"`
	Topic     string `yaml:"topic"`
	Key       string `yaml:"key"`       // key column, optional
	Timestamp string `yaml:"timestamp"` // event-time column for message timestamps, optional
	// RetryTimeout is how long undelivered messages are retried (default 5m).
	RetryTimeout time.Duration `yaml:"retry_timeout"`
	// Delivery is at-least-once (default) or exactly-once (Kafka
	// transactions committed when a checkpoint completes; jobs with
	// checkpoints only). TransactionTimeout is the exactly-once sink's
	// transaction timeout (default 15m; at least twice the checkpoint
	// interval).
	Delivery           string        `yaml:"delivery"`
	TransactionTimeout time.Duration `yaml:"transaction_timeout"`
	DeliveryLine       int           `yaml:"-"`
	TimeoutLine        int           `yaml:"-"`
}

// StepKind names a step.
type StepKind string

// Step kinds.
const (
	StepFilter    StepKind = "filter"
	StepProject   StepKind = "project"
	StepAggregate StepKind = "aggregate"
	StepWindow    StepKind = "window"
	StepRecommend StepKind = "recommend"
)

// Step is one transformation. Exactly one of the fields matching Kind is set.
type Step struct {
	Kind      StepKind
	Line      int
	Filter    expr.Expr
	Project   []NamedExpr
	Aggregate *AggregateSpec
	Window    *WindowSpec
	Recommend *RecommendStep
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

type rawSpec struct {
	Name        string      `yaml:"name"`
	Parallelism int         `yaml:"parallelism"`
	Source      yaml.Node   `yaml:"source"`
	Steps       []yaml.Node `yaml:"steps"`
	Sink        yaml.Node   `yaml:"sink"`
}

var yamlLine = regexp.MustCompile(`^yaml: (?:unmarshal errors:\n\s*)?line (\d+): (.*)$`)

// yamlErr turns a yaml.v3 error into an *Error with the line it names.
func yamlErr(file string, err error) error {
	msg := strings.TrimSpace(err.Error())
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: friendlyYAML(m[2])}
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
		e := yamlErr(file, err).(*Error)
		if e.Line > 0 {
			e.Line += n.Line - 1 // lines of the re-encoded fragment are relative
		} else {
			e.Line = n.Line
		}
		return e
	}
	return nil
}

var unknownField = regexp.MustCompile(`^field (\S+) not found in type job\.(\w+)$`)

func countSet(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// knownKeys lists the keys each block accepts, for messages.
var knownKeys = map[string]string{
	"rawSpec":       "name, parallelism, source, steps, sink",
	"SourceSpec":    "parquet, csv, jsonl, kafka, hybrid, watermark",
	"TextSpec":      "path, paths, header, delimiter, columns, batch_size, split_size, on_error, dead_letter_path",
	"KafkaSpec":     "brokers, topics, topic, start, start_time, group_id, bounded, format, fields, metadata, max_batch_rows, max_batch_delay, on_error, dead_letter_path, retry_timeout, isolation",
	"KafkaField":    "name, type, required",
	"HybridSpec":    "parquet, kafka, boundary",
	"BoundarySpec":  "event_time, column, timestamp_skew, offsets, offsets_file",
	"WatermarkSpec": "column, max_out_of_orderness, idle_timeout",
	"KafkaSinkSpec": "brokers, topic, key, timestamp, retry_timeout, delivery, transaction_timeout",
	"ParquetSpec":   "path, paths, decoder, batch_size",
	"SinkSpec":      "file, kafka",
	"FileSinkSpec":  "path, format, prefix, part_size, compression, roll_interval, roll_checkpoints",
}

// friendlyYAML rewrites yaml.v3's messages that name Go types.
func friendlyYAML(msg string) string {
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		if keys, ok := knownKeys[m[2]]; ok {
			return fmt.Sprintf("unknown key %q (want one of: %s)", m[1], keys)
		}
		return fmt.Sprintf("unknown key %q", m[1])
	}
	if strings.HasSuffix(msg, "into time.Duration") {
		return msg + " (want a duration such as 30s or 1m)"
	}
	return msg
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
		return nil, yamlErr(file, err)
	}
	s := &Spec{File: file, Name: raw.Name, Parallelism: raw.Parallelism}
	if raw.Parallelism < 0 {
		return nil, &Error{File: file, Msg: fmt.Sprintf("parallelism %d must be positive", raw.Parallelism)}
	}
	if raw.Source.Kind == 0 {
		return nil, &Error{File: file, Msg: "no source: add a source block (e.g. source: {parquet: {path: data.parquet}})"}
	}
	if err := decodeStrict(file, &raw.Source, &s.Source); err != nil {
		return nil, err
	}
	s.Source.Line = raw.Source.Line
	if n := countSet(s.Source.Parquet != nil, s.Source.CSV != nil, s.Source.JSONL != nil, s.Source.Kafka != nil, s.Source.Hybrid != nil); n != 1 {
		return nil, &Error{File: file, Line: raw.Source.Line, Msg: "source: want exactly one of: parquet, csv, jsonl, kafka, hybrid"}
	}
	if h := s.Source.Hybrid; h != nil && (h.Parquet == nil || h.Kafka == nil || h.Boundary == nil) {
		return nil, &Error{File: file, Line: raw.Source.Line, Msg: "source: hybrid needs parquet, kafka and boundary blocks"}
	}
	for _, k := range []struct {
		spec *KafkaSpec
		path []string
	}{{s.Source.Kafka, []string{"kafka", "isolation"}}, {hybridKafka(s.Source.Hybrid), []string{"hybrid", "kafka", "isolation"}}} {
		if k.spec == nil {
			continue
		}
		k.spec.IsolationLine = keyLine(&raw.Source, k.path...)
		switch k.spec.Isolation {
		case "", "read_committed", "read_uncommitted":
		default:
			return nil, &Error{File: file, Line: k.spec.IsolationLine, Msg: fmt.Sprintf("source: isolation %q: want read_committed or read_uncommitted", k.spec.Isolation)}
		}
	}
	if raw.Sink.Kind == 0 {
		return nil, &Error{File: file, Msg: "no sink: add a sink block (e.g. sink: {file: {path: out, format: parquet}})"}
	}
	if err := decodeStrict(file, &raw.Sink, &s.Sink); err != nil {
		return nil, err
	}
	s.Sink.Line = raw.Sink.Line
	if countSet(s.Sink.File != nil, s.Sink.Kafka != nil) != 1 {
		return nil, &Error{File: file, Line: raw.Sink.Line, Msg: "sink: want exactly one of: file, kafka"}
	}
	if k := s.Sink.Kafka; k != nil {
		k.DeliveryLine = keyLine(&raw.Sink, "kafka", "delivery")
		k.TimeoutLine = keyLine(&raw.Sink, "kafka", "transaction_timeout")
		switch k.Delivery {
		case "", "exactly-once", "at-least-once":
		default:
			return nil, &Error{File: file, Line: k.DeliveryLine, Msg: fmt.Sprintf("sink: delivery %q: want exactly-once or at-least-once", k.Delivery)}
		}
		if k.TransactionTimeout < 0 {
			return nil, &Error{File: file, Line: k.TimeoutLine, Msg: fmt.Sprintf("sink: transaction_timeout %v must not be negative", k.TransactionTimeout)}
		}
	}
	if f := s.Sink.File; f != nil && f.RollInterval != nil && *f.RollInterval < 0 {
		return nil, &Error{File: file, Line: keyLine(&raw.Sink, "file", "roll_interval"), Msg: fmt.Sprintf("sink: roll_interval %v must not be negative (0 rolls on part_size only)", *f.RollInterval)}
	}
	if f := s.Sink.File; f != nil && f.RollCheckpoints < 0 {
		return nil, &Error{File: file, Line: keyLine(&raw.Sink, "file", "roll_checkpoints"), Msg: fmt.Sprintf("sink: roll_checkpoints %d must not be negative (0 is off)", f.RollCheckpoints)}
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

func parseStep(file string, num int, n *yaml.Node) (Step, error) {
	fail := func(line int, format string, args ...any) (Step, error) {
		return Step{}, &Error{File: file, Line: line, Msg: fmt.Sprintf("step %d: ", num) + fmt.Sprintf(format, args...)}
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return fail(n.Line, "want one of filter, project, aggregate, window, recommend as a single key")
	}
	key, val := n.Content[0], n.Content[1]
	st := Step{Kind: StepKind(key.Value), Line: key.Line}
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
		var a struct {
			GroupBy []string `yaml:"group_by"`
			Aggs    []string `yaml:"aggs"`
		}
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
	default:
		return fail(key.Line, "unknown step %q (want filter, project, aggregate, window or recommend)", key.Value)
	}
	return st, nil
}

func hybridKafka(h *HybridSpec) *KafkaSpec {
	if h == nil {
		return nil
	}
	return h.Kafka
}
