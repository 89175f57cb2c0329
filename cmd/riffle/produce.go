package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	kafkago "github.com/segmentio/kafka-go"

	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
)

func init() {
	register(command{name: "produce", short: "replay Parquet rows into a Kafka topic at a target rate", run: runProduce})
}

func runProduce(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "produce", "[flags] --brokers HOST:PORT --topic TOPIC FILE.parquet...", `
Replays the rows of Parquet files (files, globs or directories) into a Kafka
topic as JSON messages, one per row, at a target rate: for demos, tests and
benchmarks. With --timestamp, message timestamps are the rows' event times,
which hybrid sources and event-time start positions rely on.`)
	f.addProgress()
	brokers := f.String("brokers", "", "Kafka bootstrap brokers (host:port,...); required")
	topic := f.String("topic", "", "target topic; required")
	rate := f.Float64("rate", 0, "messages per second (0: as fast as the broker takes them)")
	key := f.String("key", "", "key messages by this column (partitioning follows the key)")
	ts := f.String("timestamp", "", "stamp messages with this event-time column")
	partitions := f.Int("create-topic", 0, "create the topic with this many partitions if it does not exist")
	limit := f.Int64("limit", 0, "stop after this many rows (0: all)")
	retry := f.Duration("retry-timeout", 0, "how long to retry an unreachable broker before failing (0: 5m)")
	if err := f.parse(e, args); err != nil {
		return err
	}
	if *brokers == "" || *topic == "" || f.NArg() == 0 {
		f.Usage()
		return usageError{fmt.Errorf("--brokers, --topic and at least one Parquet path are required")}
	}
	if *rate < 0 || *limit < 0 || *partitions < 0 || *retry < 0 {
		return usageError{fmt.Errorf("--rate, --limit, --create-topic and --retry-timeout must not be negative")}
	}
	src, err := parquet.New(parquet.Options{Paths: f.Args()})
	if err != nil {
		return usageError{err}
	}
	bl := strings.Split(*brokers, ",")
	if *partitions > 0 {
		if err := createTopic(ctx, bl, *topic, *partitions); err != nil {
			return err
		}
	}
	_, _, _, rows, _ := src.Stats()
	if *limit > 0 && *limit < rows {
		rows = *limit
	}
	// The bar counts messages the broker acknowledged, not rows read.
	var sent atomic.Int64
	var bar *progressBar
	if f.showProgress(e) {
		bar = startProgress(e.stderr, "produce", rows, 0, func() (int64, int64) {
			return sent.Load(), 0
		})
	}
	st, err := ksink.Produce(ctx, ksink.ProduceOptions{Brokers: bl, Topic: *topic, Rate: *rate, KeyColumn: *key, TimestampColumn: *ts,
		RetryTimeout: *retry, Log: e.log,
		Progress: func(ps ksink.ProduceStats) { sent.Store(ps.Messages) }}, src.Batches(ctx, memory.DefaultAllocator, *limit))
	if err == nil {
		sent.Store(st.Messages)
	}
	bar.Stop()
	if err != nil {
		return err
	}
	e.log.Info("produced", slog.Int64("messages", st.Messages), slog.Int64("bytes", st.Bytes),
		slog.Duration("elapsed", st.Elapsed.Round(time.Millisecond)), slog.Float64("msgs_per_sec", st.Rate()))
	return nil
}

// createTopic creates topic with partitions (waiting until every
// partition has a leader); one that already exists is kept as it is.
func createTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	if err := ksink.CreateTopic(ctx, brokers, topic, partitions, nil); err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
		return err
	}
	return nil
}

// parseTopics parses "a:3,b:1" (partitions default to 1).
func parseTopics(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		name, n, found := strings.Cut(strings.TrimSpace(part), ":")
		if name == "" {
			return nil, fmt.Errorf("empty topic name in %q", s)
		}
		p := 1
		if found {
			v, err := strconv.Atoi(n)
			if err != nil || v < 1 {
				return nil, fmt.Errorf("topic %q: partitions %q must be a positive number", name, n)
			}
			p = v
		}
		out[name] = p
	}
	return out, nil
}
