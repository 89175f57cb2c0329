package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	"github.com/riffle-dev/riffle/sources/nexmark"
)

func init() {
	register(command{name: "nexmark", short: "generate the Nexmark benchmark's persons, auctions and bids to Parquet or Kafka", run: runNexmark})
}

func runNexmark(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "nexmark", "gen [flags] OUT_DIR | gen [flags] --brokers HOST:PORT", `
gen writes the Nexmark streams (sources/nexmark: Beam's and Flink's
generator semantics, 1 person : 3 auctions : 46 bids) of --events event
numbers as OUT_DIR/person.parquet, auction.parquet and bid.parquet, or with
--brokers produces them as JSON messages stamped with date_time to the
topics PREFIX-person, PREFIX-auction and PREFIX-bid (--topic-prefix,
default nexmark). The same seed gives the same events on any machine.`)
	events := f.Int64("events", 10_000_000, "event numbers over all tables (1 in 50 a person, 3 auctions, 46 bids)")
	seed := f.Int64("seed", 1, "random seed")
	rate := f.Int64("rate", nexmark.DefaultRate, "events per second of event time (date_time)")
	tables := f.String("tables", "person,auction,bid", "the tables to write")
	brokers := f.String("brokers", "", "produce to Kafka at these bootstrap brokers instead of writing files")
	prefix := f.String("topic-prefix", "nexmark", "with --brokers: topics are PREFIX-person, PREFIX-auction, PREFIX-bid")
	partitions := f.Int("create-topic", 0, "with --brokers: create the topics with this many partitions if they do not exist")
	msgRate := f.Float64("produce-rate", 0, "with --brokers: messages per second per table (0: as fast as the broker takes them)")
	// Flags may also follow the subcommand and the directory.
	pos, err := f.parseInterspersed(e, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || pos[0] != "gen" {
		f.Usage()
		return usageError{fmt.Errorf("want the subcommand gen")}
	}
	if *events < 1 || *rate < 1 || *partitions < 0 || *msgRate < 0 {
		return usageError{fmt.Errorf("--events and --rate must be positive, --create-topic and --produce-rate not negative")}
	}
	var tabs []nexmark.Table
	for _, s := range strings.Split(*tables, ",") {
		t, err := nexmark.ParseTable(s)
		if err != nil {
			return usageError{err}
		}
		tabs = append(tabs, t)
	}
	if (*brokers == "") != (len(pos) == 2) || len(pos) > 2 {
		f.Usage()
		return usageError{fmt.Errorf("want an output directory or --brokers, not both")}
	}
	for _, t := range tabs {
		o := nexmark.Options{Table: t, Events: *events, Seed: *seed, Rate: *rate}
		began := time.Now()
		if *brokers == "" {
			path := filepath.Join(pos[1], t.String()+".parquet")
			if err := nexmark.WriteParquet(ctx, path, o, nil); err != nil {
				return err
			}
			e.log.Info("generated", "table", t.String(), "path", path, "events", *events, "seed", *seed, "elapsed", time.Since(began).Round(time.Millisecond))
			continue
		}
		bl := strings.Split(*brokers, ",")
		topic := *prefix + "-" + t.String()
		if *partitions > 0 {
			if err := createTopic(ctx, bl, topic, *partitions); err != nil {
				return err
			}
		}
		st, err := nexmark.Produce(ctx, o, ksink.ProduceOptions{Brokers: bl, Topic: topic, Rate: *msgRate, Log: e.log})
		if err != nil {
			return err
		}
		e.log.Info("produced", "table", t.String(), "topic", topic, slog.Int64("messages", st.Messages), slog.Int64("bytes", st.Bytes),
			slog.Duration("elapsed", st.Elapsed.Round(time.Millisecond)), slog.Float64("msgs_per_sec", st.Rate()))
	}
	return nil
}
