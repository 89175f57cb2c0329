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
//
// With --visible the job is a tumbling event-time window (count per key,
// --window long, on the message timestamps) into a Parquet file sink under
// exactly-once checkpoints (--checkpoint-interval), rolling parts every
// --roll-interval, and the latency reported is from a window's row
// reaching the sink (the window fired) to the part holding it being
// published (renamed into place: visible in the output directory). Rows
// published by the final checkpoint of the stop are left out.
//
//	go run ./bench/latency --visible --rate 5000 --duration 60s --roll-interval 1m --checkpoint-interval 10s
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
	var c config
	flag.StringVar(&c.brokers, "brokers", os.Getenv("RIFFLE_KAFKA_BROKERS"), "Kafka brokers")
	flag.BoolVar(&c.embedded, "embedded", false, "use an in-process Kafka-compatible broker")
	flag.IntVar(&c.rate, "rate", 50000, "messages per second")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "how long to produce")
	flag.IntVar(&c.partitions, "partitions", 4, "topic partitions")
	flag.DurationVar(&c.delay, "max-batch-delay", 20*time.Millisecond, "source micro-batch latency bound")
	flag.IntVar(&c.par, "parallelism", 2, "source (and, with --visible, window and sink) parallelism")
	flag.BoolVar(&c.visible, "visible", false, "measure window firing -> part visible in a file sink's directory")
	flag.DurationVar(&c.window, "window", time.Second, "--visible: tumbling window size")
	flag.IntVar(&c.keys, "keys", 1000, "--visible: window keys (rows per window)")
	flag.DurationVar(&c.roll, "roll-interval", time.Minute, "--visible: the file sink's roll interval")
	flag.DurationVar(&c.ckpt, "checkpoint-interval", 10*time.Second, "--visible: checkpoint interval")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

type config struct {
	brokers               string
	embedded, visible     bool
	rate, partitions, par int
	keys                  int
	duration, delay       time.Duration
	window, roll, ckpt    time.Duration
}

func run(c config) error {
	brokers, embedded, rate, duration, partitions, delay, par := c.brokers, c.embedded, c.rate, c.duration, c.partitions, c.delay, c.par
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
	if c.visible {
		return runVisible(ctx, c, brokers, topic)
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

	seq, err := produce(ctx, brokers, topic, rate, duration, 0)
	if err != nil {
		return err
	}
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
		seq, rate, duration, len(lat), brokerName(embedded, brokers), partitions, par, delay)
	fmt.Printf("| rate | p50 | p90 | p99 | max |\n|---|---|---|---|---|\n| %d msgs/s | %s | %s | %s | %s |\n",
		rate, q(0.5).Round(time.Microsecond*100), q(0.9).Round(time.Microsecond*100), q(0.99).Round(time.Microsecond*100), steady[len(steady)-1].Round(time.Millisecond))
	return nil
}

func brokerName(embedded bool, brokers string) string {
	if embedded {
		return "embedded (kfake)"
	}
	return "Apache Kafka " + brokers
}

// produce writes rate JSON messages a second for duration, stamped with the
// wall clock: {"seq": n} or, with keys > 0, {"seq": n, "k": n % keys}. It
// returns how many it wrote.
func produce(ctx context.Context, brokers, topic string, rate int, duration time.Duration, keys int) (int64, error) {
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers), Topic: topic, Balancer: &kafkago.RoundRobin{}, BatchTimeout: time.Millisecond,
		BatchSize: max(rate/200, 1), Async: true, RequiredAcks: kafkago.RequireOne}
	defer w.Close()
	start := time.Now()
	tick := 5 * time.Millisecond
	perTick := max(rate*int(tick)/int(time.Second), 1)
	var seq int64
	for next := start; time.Since(start) < duration; next = next.Add(tick) {
		time.Sleep(time.Until(next))
		msgs := make([]kafkago.Message, perTick)
		now := time.Now()
		for i := range msgs {
			v := `{"seq":` + strconv.FormatInt(seq, 10)
			if keys > 0 {
				v += `,"k":` + strconv.FormatInt(seq%int64(keys), 10)
			}
			msgs[i] = kafkago.Message{Value: []byte(v + "}"), Time: now}
			seq++
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return seq, err
		}
	}
	return seq, nil
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
