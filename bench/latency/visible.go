package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/sinks"
	"github.com/riffle-dev/riffle/sources/kafka"
	"github.com/riffle-dev/riffle/windows"
)

// runVisible measures window firing -> visible in the output directory
// (see the command's documentation).
func runVisible(ctx context.Context, c config, brokers, topic string) error {
	tmp, err := os.MkdirTemp("", "riffle-latency-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src, err := kafka.New(ctx, kafka.Options{Brokers: []string{brokers}, Topics: []string{topic}, Start: kafka.StartLatest,
		Fields:   []kafka.Field{{Name: "seq", Type: kafka.Int64}, {Name: "k", Type: kafka.Int64}},
		Metadata: []string{kafka.MetaTimestamp}, MaxBatchDelay: c.delay,
		Watermark: arrowexec.WatermarkStrategy{Column: kafka.MetaTimestamp, MaxOutOfOrderness: 100 * time.Millisecond}})
	if err != nil {
		return err
	}
	count, err := windows.ParseAgg("count(*) AS n")
	if err != nil {
		return err
	}
	win, err := windows.New(windows.Options{Kind: windows.Tumbling, Size: c.window, Keys: []string{"k"}, Time: kafka.MetaTimestamp, Aggs: []windows.Agg{count}})
	if err != nil {
		return err
	}
	pubs := &publications{}
	file, err := sinks.NewFile(sinks.FileOptions{Dir: tmp + "/out", Commit: sinks.CommitOnCheckpoint, RollInterval: c.roll,
		Logger: slog.New(pubs)})
	if err != nil {
		return err
	}
	sink := &timedSink{FileSpec: file}
	build := func(*checkpoint.Checkpoint) (*arrowexec.Graph, error) {
		g := arrowexec.NewGraph()
		s := g.AddSource("kafka", src, c.par)
		w := g.Add("window", win, c.par, s.HashBy("k"))
		g.Add("sink", sink, c.par, w.Forward())
		return g, nil
	}
	quiet := slog.New(slog.DiscardHandler)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- checkpoint.Run(runCtx, checkpoint.RunConfig{Options: checkpoint.Options{Dir: tmp + "/ck", Interval: c.ckpt, Log: quiet, JobFingerprint: "bench/latency --visible"},
			RunOptions: arrowexec.RunOptions{Log: quiet}}, build)
	}()
	time.Sleep(2 * time.Second) // let readers reach the end of the empty topic
	seq, err := produce(ctx, brokers, topic, c.rate, c.duration, c.keys)
	if err != nil {
		return err
	}
	// Let the last windows fire and their parts roll and publish.
	time.Sleep(c.window + c.roll + 2*c.ckpt)
	stopAt := time.Now()
	stop()
	if err := <-done; err != nil {
		return err
	}
	lat := sink.latencies(pubs, stopAt)
	if len(lat) == 0 {
		return fmt.Errorf("no window row was published before the stop")
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("produced %d msgs at %d msgs/s for %s; broker %s; %d partitions; parallelism %d; tumbling %s windows over %d keys; roll_interval %s; checkpoint interval %s; %d window rows published before the stop\n",
		seq, c.rate, c.duration, brokerName(c.embedded, brokers), c.partitions, c.par, c.window, c.keys, c.roll, c.ckpt, len(lat))
	fmt.Printf("| roll_interval | checkpoint interval | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|\n| %s | %s | %s | %s | %s | %s |\n",
		c.roll, c.ckpt, q(0.5).Round(time.Millisecond), q(0.9).Round(time.Millisecond), q(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	return nil
}

// publications records the file sink's "published part" log lines: when
// each part of each subtask became visible.
type publications struct {
	mu    sync.Mutex
	parts []published
}

type published struct {
	subtask int
	rows    int64
	path    string
	at      time.Time
}

func (p *publications) Enabled(context.Context, slog.Level) bool { return true }
func (p *publications) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *publications) WithGroup(string) slog.Handler            { return p }
func (p *publications) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "sinks: published part" {
		return nil
	}
	pub := published{at: time.Now()}
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "subtask":
			pub.subtask = int(a.Value.Int64())
		case "rows":
			pub.rows = a.Value.Int64()
		case "path":
			pub.path = a.Value.String()
		}
		return true
	})
	p.mu.Lock()
	p.parts = append(p.parts, pub)
	p.mu.Unlock()
	return nil
}

// timedSink is the file sink, recording when each subtask's rows arrive.
type timedSink struct {
	*sinks.FileSpec
	mu       sync.Mutex
	arrivals map[int][]arrival
}

type arrival struct {
	at   time.Time
	rows int64
}

func (s *timedSink) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	op, err := s.FileSpec.New(t)
	if err != nil {
		return nil, err
	}
	return &timedOp{Operator: op, s: s, subtask: t.Subtask}, nil
}

type timedOp struct {
	arrowexec.Operator
	s       *timedSink
	subtask int
}

func (o *timedOp) Process(ctx context.Context, in int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if n := b.NumRows(); n > 0 {
		o.s.mu.Lock()
		if o.s.arrivals == nil {
			o.s.arrivals = map[int][]arrival{}
		}
		o.s.arrivals[o.subtask] = append(o.s.arrivals[o.subtask], arrival{time.Now(), n})
		o.s.mu.Unlock()
	}
	return o.Operator.Process(ctx, in, b, out)
}

func (o *timedOp) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	return o.Operator.(arrowexec.Checkpointer).SnapshotState(ctx, id)
}

func (o *timedOp) NotifyCheckpointComplete(ctx context.Context, id uint64) error {
	return o.Operator.(arrowexec.CheckpointListener).NotifyCheckpointComplete(ctx, id)
}

// latencies matches rows to parts: a subtask's parts, in publication
// order, hold its rows in arrival order. It returns publication time minus
// arrival time for every row of a part published before stopAt.
func (s *timedSink) latencies(pubs *publications, stopAt time.Time) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	pubs.mu.Lock()
	defer pubs.mu.Unlock()
	var out []time.Duration
	for st, arr := range s.arrivals {
		i, used := 0, int64(0) // arr[i] has used of its rows in earlier parts
		for _, p := range pubs.parts {
			if p.subtask != st {
				continue
			}
			for left := p.rows; left > 0 && i < len(arr); {
				n := min(left, arr[i].rows-used)
				if p.at.Before(stopAt) {
					for range n {
						out = append(out, p.at.Sub(arr[i].at))
					}
				}
				left -= n
				used += n
				if used == arr[i].rows {
					i, used = i+1, 0
				}
			}
		}
	}
	return out
}
