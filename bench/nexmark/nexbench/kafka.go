package nexbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/job"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	"github.com/riffle-dev/riffle/sources/nexmark"
)

// SourceKafka reads the query's table from a Kafka topic that the
// generator filled (one JSON message per row, stamped with date_time)
// before the clock starts: a fresh topic per run, one partition per
// subtask, deleted after the run.
const SourceKafka = "kafka"

// kafkaInput produces the query's events to a new topic on cfg.Brokers
// and points spec at it (bounded: the run ends at the topic's end). drop
// deletes the topic.
func kafkaInput(ctx context.Context, cfg Config, spec *job.Spec) (drop func(), err error) {
	if cfg.Brokers == "" {
		return nil, errors.New("nexbench: source kafka needs brokers (--brokers or RIFFLE_KAFKA_BROKERS)")
	}
	var drops []func()
	drop = func() {
		for _, d := range drops {
			d()
		}
	}
	for _, src := range sources(spec) {
		d, err := kafkaSource(ctx, cfg, spec.Parallelism, src)
		if err != nil {
			drop()
			return nil, err
		}
		drops = append(drops, d)
	}
	return drop, nil
}

// kafkaSource fills a topic with the events of one nexmark source of the
// query and makes src read it.
func kafkaSource(ctx context.Context, cfg Config, jobParallelism int, src *job.SourceSpec) (drop func(), err error) {
	o, err := genOptions(src)
	if err != nil {
		return nil, err
	}
	parts := cfg.Parallelism
	if parts == 0 {
		parts = jobParallelism
	}
	parts = max(parts, 1)
	brokers := strings.Split(cfg.Brokers, ",")
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, err
	}
	topic := fmt.Sprintf("riffle-nexbench-%s-%s-%d-%s", cfg.Query, o.Table, cfg.Events, hex.EncodeToString(suffix[:]))
	// No time-based retention: the events are stamped with their
	// date_time, in 2025 by default, which a retention of days would drop
	// at once.
	if err := ksink.CreateTopic(ctx, brokers, topic, parts, map[string]string{"retention.ms": "-1"}); err != nil {
		return nil, fmt.Errorf("nexbench: %w", err)
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	drop = func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ksink.DeleteTopic(dctx, brokers, topic); err != nil {
			log.Warn("deleting the input topic", "topic", topic, "err", err)
		}
	}
	st, err := nexmark.Produce(ctx, o, ksink.ProduceOptions{Brokers: brokers, Topic: topic, Log: cfg.Log})
	if err != nil {
		drop()
		return nil, fmt.Errorf("nexbench: producing %s to topic %s: %w", o.Table, topic, err)
	}
	log.Info("input topic filled", "topic", topic, "partitions", parts, "messages", st.Messages,
		"bytes", st.Bytes, "elapsed", st.Elapsed.Round(time.Millisecond))
	fields, err := kafkaFields(o.Table.Schema())
	if err != nil {
		drop()
		return nil, err
	}
	// The generator's watermark trails by 4 s: the same bound here (per
	// partition; each partition holds its rows in date_time order).
	*src = job.SourceSpec{
		Kafka:     &job.KafkaSpec{Brokers: cfg.Brokers, Topic: topic, Bounded: true, Format: "json", Fields: fields},
		Watermark: &job.WatermarkSpec{Column: nexmark.EventTimeColumn, MaxOutOfOrderness: nexmark.DefaultWatermarkDelay},
	}
	return drop, nil
}

// kafkaFields declares a table's columns for the Kafka source's JSON
// decoder (which makes the same Arrow types: int64, string, timestamp[ms,
// UTC]).
func kafkaFields(s *arrow.Schema) ([]job.KafkaField, error) {
	var fs []job.KafkaField
	for _, f := range s.Fields() {
		var t string
		switch f.Type.ID() {
		case arrow.INT64:
			t = "int64"
		case arrow.STRING:
			t = "string"
		case arrow.TIMESTAMP:
			t = "timestamp"
		default:
			return nil, fmt.Errorf("nexbench: column %s of type %s has no Kafka field type", f.Name, f.Type)
		}
		fs = append(fs, job.KafkaField{Name: f.Name, Type: t, Required: true})
	}
	return fs, nil
}
