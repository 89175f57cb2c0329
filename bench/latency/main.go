// Command latency measures riffle's end-to-end latency from Kafka produce
// to sink: a producer writes small JSON messages at a fixed rate, stamping
// each with the wall clock when it is handed to the client; a riffle job
// reads the topic (micro-batches bounded by rows and delay) into a sink that
// takes, for every row, now minus the message timestamp. Reports p50, p90,
// p99 and max over the steady part of the run.
//
//	go run ./bench/latency --brokers 127.0.0.1:9092 --rate 50000 --duration 20s
//
// Start a broker with scripts/kafka/start.sh (or pass --embedded for the
// in-process one, which measures riffle without a real broker's I/O).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/embedkafka"
	"github.com/riffle-dev/riffle/sources/kafka"
)

func main() {
	brokers := flag.String("brokers", os.Getenv("RIFFLE_KAFKA_BROKERS"), "Kafka brokers")
	embedded := flag.Bool("embedded", false, "use an in-process Kafka-compatible broker")
	rate := flag.Int("rate", 50000, "messages per second")
	duration := flag.Duration("duration", 20*time.Second, "how long to produce")
	partitions := flag.Int("partitions", 4, "topic partitions")
	delay := flag.Duration("max-batch-delay", 20*time.Millisecond, "source micro-batch latency bound")
	par := flag.Int("parallelism", 2, "source parallelism")
	flag.Parse()
	if err := run(*brokers, *embedded, *rate, *duration, *partitions, *delay, *par); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

func run(brokers string, embedded bool, rate int, duration time.Duration, partitions int, delay time.Duration, par int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	topic := fmt.Sprintf("latency-%d", time.Now().UnixNano())
	if embedded {
		addr, stop, err := embedkafka.Start(ctx, map[string]int{topic: partitions})
		if err != nil {
			return err
		}
		defer stop()
		brokers = addr
	} else {
		if brokers == "" {
			return fmt.Errorf("no brokers: pass --brokers, set RIFFLE_KAFKA_BROKERS or use --embedded")
		}
		c := &kafkago.Client{Addr: kafkago.TCP(brokers)}
		if _, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}}); err != nil {
			return err
		}
		time.Sleep(time.Second)
	}
	src, err := kafka.New(ctx, kafka.Options{Brokers: []string{brokers}, Topics: []string{topic}, Start: kafka.StartLatest,
		Fields: []kafka.Field{{Name: "seq", Type: kafka.Int64}}, Metadata: []string{kafka.MetaTimestamp}, MaxBatchDelay: delay})
	if err != nil {
		return err
	}
	sink := &latencySink{}
	g := arrowexec.NewGraph()
	s := g.AddSource("kafka", src, par)
	g.Add("sink", sink, 1, s.Rebalance())
	j, err := g.Compile(arrowexec.RunOptions{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	time.Sleep(2 * time.Second) // let readers reach the end of the empty topic

	w := &kafkago.Writer{Addr: kafkago.TCP(brokers), Topic: topic, Balancer: &kafkago.RoundRobin{}, BatchTimeout: time.Millisecond,
		BatchSize: max(rate/200, 1), Async: true, RequiredAcks: kafkago.RequireOne}
	start := time.Now()
	tick := 5 * time.Millisecond
	perTick := rate * int(tick) / int(time.Second)
	var seq int64
	for next := start; time.Since(start) < duration; next = next.Add(tick) {
		time.Sleep(time.Until(next))
		msgs := make([]kafkago.Message, perTick)
		now := time.Now()
		for i := range msgs {
			msgs[i] = kafkago.Message{Value: []byte(`{"seq":` + strconv.FormatInt(seq, 10) + `}`), Time: now}
			seq++
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return err
		}
	}
	w.Close()
	time.Sleep(2 * time.Second)
	j.Stop(false)
	if err := <-done; err != nil {
		return err
	}
	lat := sink.samples()
	if len(lat) == 0 {
		return fmt.Errorf("no rows arrived")
	}
	// Drop the first and last 10% (warm-up, drain).
	cut := len(lat) / 10
	steady := slices.Clone(lat[cut : len(lat)-cut])
	slices.Sort(steady)
	q := func(p float64) time.Duration { return steady[int(p*float64(len(steady)-1))] }
	fmt.Printf("produced %d msgs at %d msgs/s for %s; received %d; broker %s; %d partitions; source parallelism %d; max batch delay %s\n",
		seq, rate, duration, len(lat), map[bool]string{true: "embedded (kfake)", false: "Apache Kafka " + brokers}[embedded], partitions, par, delay)
	fmt.Printf("| rate | p50 | p90 | p99 | max |\n|---|---|---|---|---|\n| %d msgs/s | %s | %s | %s | %s |\n",
		rate, q(0.5).Round(time.Microsecond*100), q(0.9).Round(time.Microsecond*100), q(0.99).Round(time.Microsecond*100), steady[len(steady)-1].Round(time.Millisecond))
	return nil
}

// latencySink records now - _timestamp for every row, in arrival order.
type latencySink struct {
	mu  sync.Mutex
	lat []time.Duration
}

func (s *latencySink) samples() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lat
}

func (s *latencySink) Schema([]*arrow.Schema) (*arrow.Schema, error)   { return nil, nil }
func (s *latencySink) New(*arrowexec.Task) (arrowexec.Operator, error) { return &latencyOp{s: s}, nil }

type latencyOp struct{ s *latencySink }

func (o *latencyOp) Open(context.Context) error { return nil }
func (o *latencyOp) Process(_ context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	now := time.Now().UnixMicro()
	ts := b.Column(1).(*array.Timestamp).TimestampValues()
	o.s.mu.Lock()
	for _, t := range ts {
		o.s.lat = append(o.s.lat, time.Duration(now-int64(t)*1000)*time.Microsecond)
	}
	o.s.mu.Unlock()
	return nil
}
func (o *latencyOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *latencyOp) Close() error                                    { return nil }
