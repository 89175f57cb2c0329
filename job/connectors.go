package job

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/kafkaaddr"
	"github.com/riffle-dev/riffle/sinks"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	"github.com/riffle-dev/riffle/sources/hybrid"
	"github.com/riffle-dev/riffle/sources/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
	"github.com/riffle-dev/riffle/sources/text"
)

// buildSource creates the job's source. Parquet sources get the columns and
// row-group predicates the steps allow.
// In a DAG job (steps nil) nothing is pushed down; the first source of
// each kind sets Plan.Parquet, Kafka, Text or Hybrid.
func (plan *Plan) buildSource(ctx context.Context, spec SourceSpec, steps []Step, o Options) (arrowexec.Source, error) {
	s := &Spec{Source: spec, Steps: steps}
	wm := s.Source.watermark()
	switch {
	case s.Source.Parquet != nil:
		src, pushed, err := parquetSource(s.Source.Parquet, s.Steps, wm.Column)
		if err != nil {
			return nil, err
		}
		if steps != nil {
			plan.steps = pushed
		}
		if wm.Column != "" {
			if src, err = src.WithWatermark(wm); err != nil {
				return nil, err
			}
		}
		plan.Bounded = true
		if plan.Parquet == nil {
			plan.Parquet = src
		}
		return src, nil
	case s.Source.CSV != nil || s.Source.JSONL != nil:
		src, err := textSource(s.Source, wm)
		if err != nil {
			return nil, err
		}
		plan.Bounded = true
		if plan.Text == nil {
			plan.Text = src
		}
		return src, nil
	case s.Source.Nexmark != nil:
		src, err := nexmarkSource(s.Source.Nexmark)
		if err != nil {
			return nil, err
		}
		plan.Bounded = s.Source.Nexmark.Events > 0
		return src, nil
	case s.Source.Kafka != nil:
		ko, err := kafkaOptions(s.Source.Kafka, o, wm)
		if err != nil {
			return nil, err
		}
		src, err := kafka.New(ctx, ko)
		if err != nil {
			return nil, err
		}
		plan.Bounded = ko.Bounded
		if plan.Kafka == nil {
			plan.Kafka = src
		}
		return src, nil
	default:
		h := s.Source.Hybrid
		ko, err := kafkaOptions(h.Kafka, o, wm)
		if err != nil {
			return nil, err
		}
		b := h.Boundary
		bound := hybrid.Boundary{EventTime: b.EventTime, Column: b.Column, TimestampSkew: b.TimestampSkew, Offsets: b.Offsets}
		if b.OffsetsFile != "" {
			if bound.Offsets != nil {
				return nil, fmt.Errorf("hybrid boundary: give offsets or offsets_file, not both")
			}
			if bound.Offsets, err = readOffsets(b.OffsetsFile); err != nil {
				return nil, err
			}
		}
		if bound.Column == "" && wm.Column != "" {
			bound.Column = wm.Column
		}
		po := parquetOptions(h.Parquet)
		po.Watermark = arrowexec.WatermarkStrategy{Column: wm.Column, MaxOutOfOrderness: wm.MaxOutOfOrderness}
		src, err := hybrid.New(ctx, hybrid.Options{Parquet: po, Kafka: ko, Boundary: bound})
		if err != nil {
			return nil, err
		}
		plan.Bounded = ko.Bounded
		if plan.Hybrid == nil {
			plan.Hybrid = src
		}
		return src, nil
	}
}

func (w *SourceSpec) watermark() arrowexec.WatermarkStrategy {
	if w.Watermark == nil {
		return arrowexec.WatermarkStrategy{}
	}
	return arrowexec.WatermarkStrategy{Column: w.Watermark.Column, MaxOutOfOrderness: w.Watermark.MaxOutOfOrderness, IdleTimeout: w.Watermark.IdleTimeout}
}

// hasWatermark says whether the source sends watermarks: from its
// watermark block, or the nexmark generator's own.
func (w *SourceSpec) hasWatermark() bool { return w.watermark().Column != "" || w.Nexmark != nil }

func parquetOptions(pq *ParquetSpec) parquet.Options {
	paths := pq.Paths
	if pq.Path != "" {
		paths = append([]string{pq.Path}, paths...)
	}
	return parquet.Options{Paths: paths, BatchSize: pq.BatchSize, Decoder: pq.Decoder}
}

// parquetSource opens the files and pushes down what the steps allow: row
// filters on string columns (the steps come back without them), the
// columns they read, and row-group predicates.
func parquetSource(pq *ParquetSpec, steps []Step, eventTime string) (*parquet.Source, []Step, error) {
	all, err := parquet.New(parquetOptions(pq))
	if err != nil {
		return nil, nil, err
	}
	full := all.FileSchema()
	// Row-group predicates come from the steps as written.
	_, preds := pushdown(steps)
	preds = slices.DeleteFunc(preds, func(p parquet.Predicate) bool { return !full.HasField(p.Column) })
	var filters []parquet.StringFilter
	if all.Decoder() == parquet.DecoderParquetGo {
		steps, filters = pushStringFilters(steps, full)
	}
	// Push down only columns the files have: a misspelt column must be
	// reported by the step that names it, when the graph binds.
	cols, _ := pushdown(steps)
	if cols != nil && eventTime != "" && !slices.Contains(cols, eventTime) {
		cols = append(cols, eventTime) // the watermark reads it
	}
	if slices.ContainsFunc(cols, func(c string) bool { return !full.HasField(c) }) {
		cols = nil // read all: the binding error will list every column
	}
	src, err := all.With(cols, preds, filters)
	if err != nil {
		return nil, nil, err
	}
	if dc := dictColumns(steps, src.Schema()); len(dc) > 0 && src.Decoder() == parquet.DecoderParquetGo {
		src, err = src.WithDictionary(dc)
	}
	return src, steps, err
}

// textSource opens a CSV or JSONL source.
func textSource(w SourceSpec, wm arrowexec.WatermarkStrategy) (*text.Source, error) {
	ts, format := w.CSV, text.FormatCSV
	if ts == nil {
		ts, format = w.JSONL, text.FormatJSONL
	}
	paths := ts.Paths
	if ts.Path != "" {
		paths = append([]string{ts.Path}, paths...)
	}
	split, err := ParseSize(ts.SplitSize)
	if err != nil {
		return nil, fmt.Errorf("%s: split_size: %w", format, err)
	}
	o := text.Options{Paths: paths, Format: format, Header: ts.Header, BatchSize: ts.BatchSize, SplitSize: split,
		OnError: text.ErrorPolicy(ts.OnError), DeadLetterPath: ts.DeadLetterPath, Watermark: wm}
	switch len(ts.Delimiter) {
	case 0:
	case 1:
		o.Delimiter = ts.Delimiter[0]
	default:
		if ts.Delimiter != `\t` {
			return nil, fmt.Errorf("%s: delimiter %q: want one character", format, ts.Delimiter)
		}
		o.Delimiter = '\t'
	}
	for _, f := range ts.Columns {
		o.Columns = append(o.Columns, text.Column{Name: f.Name, Type: kafka.Type(f.Type), Required: f.Required})
	}
	return text.New(o)
}

func brokerList(spec, override string) []string {
	if override != "" {
		return kafkaaddr.Split(override)
	}
	return kafkaaddr.Split(spec)
}

func kafkaOptions(k *KafkaSpec, o Options, wm arrowexec.WatermarkStrategy) (kafka.Options, error) {
	ko := kafka.Options{
		Brokers: brokerList(k.Brokers, o.Brokers), Topics: k.Topics, Start: kafka.StartMode(k.Start), StartTime: k.StartTime,
		GroupID: k.GroupID, Bounded: k.Bounded, Format: kafka.Format(k.Format), Metadata: k.Metadata,
		MaxBatchRows: k.MaxBatchRows, MaxBatchDelay: k.MaxBatchDelay, OnError: kafka.ErrorPolicy(k.OnError),
		DeadLetterPath: k.DeadLetterPath, Watermark: wm, RetryTimeout: retryTimeout(k.RetryTimeout, o),
		Isolation: kafka.Isolation(k.Isolation),
	}
	if k.Topic != "" {
		ko.Topics = append([]string{k.Topic}, ko.Topics...)
	}
	if len(ko.Brokers) == 0 {
		return ko, fmt.Errorf("kafka: no brokers (set brokers in the job file, or --brokers)")
	}
	for _, f := range k.Fields {
		ko.Fields = append(ko.Fields, kafka.Field{Name: f.Name, Type: kafka.Type(f.Type), Required: f.Required})
	}
	return ko, nil
}

// retryTimeout is a Kafka connector's retry timeout: the command line's,
// else the job file's (0: the connector's default).
func retryTimeout(spec time.Duration, o Options) time.Duration {
	if o.KafkaRetryTimeout > 0 {
		return o.KafkaRetryTimeout
	}
	return spec
}

// readOffsets reads {"topic": {"partition": offset}} from a JSON file.
func readOffsets(path string) (map[string]map[int]int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hybrid boundary: %w", err)
	}
	var raw map[string]map[string]int64
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("hybrid boundary: %s: %w", path, err)
	}
	out := map[string]map[int]int64{}
	for t, ps := range raw {
		out[t] = map[int]int64{}
		for p, off := range ps {
			n, err := strconv.Atoi(p)
			if err != nil {
				return nil, fmt.Errorf("hybrid boundary: %s: partition %q is not a number", path, p)
			}
			out[t][n] = off
		}
	}
	return out, nil
}

// buildSink creates a sink of the job: the job's own (main), or a side
// output's (a window's late rows). The main file sink of a bounded job
// writes to a staging directory that Commit publishes; those of unbounded
// jobs publish each part when the checkpoint covering it is complete when
// the job runs with checkpoints (two-phase commit: exactly-once), else
// when it rolls. A side output's file sink always publishes with
// checkpoints, or when the job finishes (sinks.CommitOnCheckpoint), and
// its path is its own (Options.OutputDir does not move it).
func (plan *Plan) buildSink(ctx context.Context, s *Spec, o Options, sk SinkSpec, main bool) (arrowexec.Spec, error) {
	if main && o.Sink != nil {
		return o.Sink, nil
	}
	if k := sk.Kafka; k != nil {
		ko := ksink.Options{Brokers: brokerList(k.Brokers, o.Brokers), Topic: k.Topic, KeyColumn: k.Key, TimestampColumn: k.Timestamp,
			RetryTimeout: retryTimeout(k.RetryTimeout, o), Delivery: ksink.Delivery(k.Delivery), TransactionTimeout: k.TransactionTimeout}
		if ko.Delivery == ksink.ExactlyOnce {
			if !o.Checkpointed {
				return nil, &Error{File: s.File, Line: k.DeliveryLine, Msg: "sink: delivery: exactly-once commits a transaction when a checkpoint completes: run the job with checkpoints (riffle run --checkpoint-dir)"}
			}
			ko.TransactionalIDPrefix = "riffle-" + k.Topic
			if s.Name != "" {
				ko.TransactionalIDPrefix = "riffle-" + s.Name + "-" + k.Topic
			}
			if err := ko.CheckCheckpointInterval(o.CheckpointInterval); err != nil {
				line := k.TimeoutLine
				if k.TransactionTimeout == 0 {
					line = k.DeliveryLine
				}
				return nil, &Error{File: s.File, Line: line, Msg: "sink: " + err.Error(), Err: err}
			}
		}
		return ksink.New(ctx, ko)
	}
	fs := sk.File
	dir := fs.Path
	if o.OutputDir != "" && main {
		dir = o.OutputDir
	}
	size, err := ParseSize(fs.PartSize)
	if err != nil {
		return nil, err
	}
	csv, err := fs.CSV.options(fs.Format)
	if err != nil {
		return nil, err
	}
	opts := sinks.FileOptions{Dir: dir, Format: sinks.Format(fs.Format), Prefix: fs.Prefix, PartSize: size,
		Parquet: sinks.ParquetOptions{Codec: fs.Compression}, CSV: csv, NoSync: o.NoSync, RollCheckpoints: fs.RollCheckpoints, Logger: o.Logger,
		PartitionBy: fs.PartitionBy, MaxOpenPartitions: fs.MaxOpenPartitions}
	if fs.SingleFile { // checkSingleFile allowed it
		dir, opts.FileName = filepath.Split(filepath.Clean(dir))
		dir = filepath.Clean(dir)
		opts.Dir = dir
	}
	if !main {
		opts.RollCheckpoints = 0
		opts.Commit = sinks.CommitOnCheckpoint
		if fs.SingleFile {
			// Published (renamed into place) when the sink finishes.
			opts.Commit = sinks.CommitOnFinish
		}
		return sinks.NewFile(opts)
	}
	plan.OutputDir = dir
	switch {
	case fs.RollInterval != nil:
		opts.RollInterval = *fs.RollInterval
	case !plan.Bounded:
		opts.RollInterval = sinks.DefaultRollInterval
	}
	if o.Checkpointed {
		// Bounded or not: parts are published by checkpoints (and at the
		// end of a bounded job); a restore recovers them.
		opts.Commit = sinks.CommitOnCheckpoint
	} else if plan.Bounded {
		plan.staging = filepath.Join(dir, StagingName)
		if opts.FileName != "" {
			// Its own: other single files may share the directory.
			plan.staging += "-" + opts.FileName
		}
		// A crashed earlier run's: finished if it committed, else removed.
		if !o.ExplainOnly {
			if err := recoverStaging(plan.fsys(), dir, plan.staging); err != nil {
				return nil, err
			}
		}
		opts.Dir = plan.staging
	} else {
		opts.Commit = sinks.CommitOnRoll
	}
	sink, err := sinks.NewFile(opts)
	if err != nil {
		return nil, err
	}
	plan.Sink = sink
	return sink, nil
}
