package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/job"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/ml/serve"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
)

// e2eConfig configures the --kafka mode: the end-to-end latency from an
// interaction produced to Kafka to a changed recommendation served.
type e2eConfig struct {
	brokers               string
	users, items, factors int
	warm, rate            int
	probes                int
	probeGap              time.Duration
	triggers              []string
	maxBatchDelay         time.Duration
	sourcePar, partitions int
}

// trigger is one update: setting, e.g. "every=10000" or "interval=100ms".
type trigger struct {
	name     string
	every    int
	interval time.Duration
}

func parseTrigger(s string) (trigger, error) {
	k, v, ok := strings.Cut(s, "=")
	t := trigger{name: s}
	var err error
	switch {
	case !ok:
		err = fmt.Errorf("trigger %q: want every=N or interval=D", s)
	case k == "every":
		t.every, err = strconv.Atoi(v)
	case k == "interval":
		t.interval, err = time.ParseDuration(v)
		t.every = 1 << 30 // the interval alone triggers
	default:
		err = fmt.Errorf("trigger %q: want every=N or interval=D", s)
	}
	return t, err
}

// e2eResult is one trigger setting's figures.
type e2eResult struct {
	trigger                 string
	lat, ack                []time.Duration
	updates, applied        int64
	updateMean, updateMax   time.Duration
	load0, load1            float64
	falseEarly, failedProbe int
}

// runE2E runs, for each trigger setting, the streaming recommend job on a
// fresh topic of the real broker (see the command's documentation).
func runE2E(c e2eConfig) error {
	var results []e2eResult
	for _, s := range c.triggers {
		tr, err := parseTrigger(s)
		if err != nil {
			return err
		}
		r, err := runTrigger(c, tr)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		results = append(results, r)
		printE2E(c, []e2eResult{r}, false)
	}
	fmt.Println()
	printE2E(c, results, true)
	return nil
}

func printE2E(c e2eConfig, rs []e2eResult, table bool) {
	q := func(ds []time.Duration, p float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)]
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
	if table {
		fmt.Printf("model: %d users × %d items × %d factors warmed with %d interactions; background %d interactions/s; %d probes per setting (Poisson arrivals, mean gap %v); source max_batch_delay %v; %s\n",
			c.users, c.items, c.factors, c.warm, c.rate, c.probes, c.probeGap, c.maxBatchDelay, strings.TrimSpace(cpuModel()))
		fmt.Println("| update: | probes | p50 | p99 | max | produce ack p50 | updates (mean / max duration) | load average |")
		fmt.Println("|---|---|---|---|---|---|---|---|")
	}
	for _, r := range rs {
		line := fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %d (%s / %s) | %.1f → %.1f |", r.trigger, len(r.lat), ms(q(r.lat, 0.5)), ms(q(r.lat, 0.99)), ms(q(r.lat, 1)),
			ms(q(r.ack, 0.5)), r.updates, ms(r.updateMean), ms(r.updateMax), r.load0, r.load1)
		if r.falseEarly > 0 || r.failedProbe > 0 {
			line += fmt.Sprintf(" (%d probes seen changed before their update, %d failed)", r.falseEarly, r.failedProbe)
		}
		fmt.Println(line)
	}
}

func createTopic(ctx context.Context, brokers, topic string, partitions int) error {
	return ksink.CreateTopic(ctx, strings.Split(brokers, ","), topic, partitions, nil)
}

func deleteTopic(brokers, topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ksink.DeleteTopic(ctx, strings.Split(brokers, ","), topic) // best effort: a benchmark's scratch topic
}

func msg(u, i int64) kafkago.Message {
	return kafkago.Message{Value: []byte(`{"user_id":` + strconv.FormatInt(u, 10) + `,"item_id":` + strconv.FormatInt(i, 10) + `}`)}
}

func runTrigger(c e2eConfig, tr trigger) (e2eResult, error) {
	res := e2eResult{trigger: tr.name}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	topic := fmt.Sprintf("riffle-e2e-%d", time.Now().UnixNano())
	if err := createTopic(ctx, c.brokers, topic, c.partitions); err != nil {
		return res, err
	}
	defer deleteTopic(c.brokers, topic)
	g := newGen(c.users, c.items)
	// Warm data first (every user and item, then random), read from the
	// earliest offset when the job starts.
	w := &kafkago.Writer{Addr: kafkago.TCP(strings.Split(c.brokers, ",")...), Topic: topic, Balancer: &kafkago.Hash{},
		BatchSize: 5000, BatchTimeout: 2 * time.Millisecond, RequiredAcks: kafkago.RequireOne}
	defer w.Close()
	var warm []kafkago.Message
	for n := 0; n < c.warm; n++ {
		u, i := int64(n%c.users), int64(n%c.items)
		if n >= max(c.users, c.items) {
			u, i = int64(g.rng.IntN(c.users)), int64(g.zipf.Uint64())
		}
		warm = append(warm, msg(u, i))
		if len(warm) == 50_000 || n == c.warm-1 {
			if err := w.WriteMessages(ctx, warm...); err != nil {
				return res, fmt.Errorf("produce warm data: %w", err)
			}
			warm = warm[:0]
		}
	}

	tmp, err := os.MkdirTemp("", "riffle-e2e-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	update := fmt.Sprintf("{every: %d, retrain_growth: 0}", tr.every)
	if tr.interval > 0 {
		update = fmt.Sprintf("{every: %d, interval: %s, retrain_growth: 0}", tr.every, tr.interval)
	}
	yml := fmt.Sprintf(`name: e2e
source:
  kafka:
    brokers: %q
    topic: %s
    start: earliest
    max_batch_delay: %s
    fields:
      - {name: user_id, type: int64, required: true}
      - {name: item_id, type: int64, required: true}
steps:
  - recommend: {user: user_id, item: item_id, factors: %d, k: 10, threads: 1, seed: 1, update: %s}
sink:
  file: {path: %q, format: parquet}
`, c.brokers, topic, c.maxBatchDelay, c.factors, update, filepath.Join(tmp, "out"))
	spec, err := job.Parse("e2e.yaml", []byte(yml))
	if err != nil {
		return res, err
	}
	plan, err := spec.Plan(job.Options{Parallelism: c.sourcePar, NoSync: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return res, err
	}
	j, err := plan.Graph.Compile(arrowexec.RunOptions{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return res, err
	}
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	rec := plan.Recommend

	// The serving endpoint, as riffle run mounts it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	mux := http.NewServeMux()
	serve.Register(mux, rec.Live)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String() + "/recommend?k=10&user="
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	// Warm-up: wait until the job has read every warm interaction
	// (applied or pending: RecommendStats), so that the probes meet no
	// backlog. The job's progress has no event to wait on but its
	// counters: they are polled.
	var live *ml.Live
	for {
		select {
		case err := <-done:
			return res, fmt.Errorf("the job stopped: %v", err)
		case <-time.After(time.Millisecond):
		}
		st, _ := rec.Stats()
		if live = rec.Live(); live != nil && st.Applied+st.Pending >= int64(c.warm) {
			break
		}
	}
	// Background interactions at c.rate: they fill the pending batch that
	// the trigger applies (and, with interval=, bring the batches that
	// look at the clock).
	bgStop := make(chan struct{})
	var bgWG sync.WaitGroup
	var bgErr atomic.Value
	bgWG.Add(1)
	go func() {
		defer bgWG.Done()
		bw := &kafkago.Writer{Addr: kafkago.TCP(strings.Split(c.brokers, ",")...), Topic: topic, Balancer: &kafkago.Hash{},
			BatchSize: max(c.rate/100, 1), BatchTimeout: time.Millisecond, Async: true, RequiredAcks: kafkago.RequireOne}
		defer bw.Close()
		rng := rand.New(rand.NewPCG(7, 8))
		zipf := rand.NewZipf(rng, 1.1, 2, uint64(c.items-1))
		tick := 10 * time.Millisecond
		per := max(c.rate*int(tick)/int(time.Second), 1)
		start := time.Now()
		for n := 1; ; n++ {
			select {
			case <-bgStop:
				return
			case <-time.After(time.Until(start.Add(time.Duration(n) * tick))): // the load's schedule
			}
			ms := make([]kafkago.Message, per)
			for x := range ms {
				ms[x] = msg(int64(rng.IntN(c.users)), int64(zipf.Uint64()))
			}
			if err := bw.WriteMessages(ctx, ms...); err != nil {
				bgErr.Store(err)
				return
			}
		}
	}()
	defer func() {
		close(bgStop)
		bgWG.Wait()
	}()

	// The warm data's last interactions may still be pending (an
	// interval= trigger looks at the clock when a batch arrives): wait,
	// update by update, until they are applied.
	for {
		ch := live.Updated()
		if st, _ := rec.Stats(); st.Applied >= int64(c.warm) {
			break
		}
		select {
		case <-ch:
		case err := <-done:
			return res, fmt.Errorf("the job stopped: %v", err)
		}
	}
	st0, _ := rec.Stats()
	l0 := loadavg()
	res.load0 = l0[0]

	// Probes: a user's current top-1 item, produced as an interaction;
	// the probe ends when GET /recommend no longer lists the item (the
	// user has it now). A probe waits for model updates (Live.Updated) in
	// between.
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, c.probes)
	pw := &kafkago.Writer{Addr: kafkago.TCP(strings.Split(c.brokers, ",")...), Topic: topic, Balancer: &kafkago.Hash{},
		BatchSize: 1, BatchTimeout: time.Millisecond, RequiredAcks: kafkago.RequireOne}
	defer pw.Close()
	get := func(u int64) (items []int64, version uint64, err error) {
		resp, err := client.Get(base + strconv.FormatInt(u, 10))
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, 0, fmt.Errorf("GET user %d: %s: %s", u, resp.Status, body)
		}
		var r struct {
			Updates uint64 `json:"updates"`
			Recs    []struct {
				Item int64 `json:"item_id"`
			} `json:"recommendations"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, 0, err
		}
		for _, it := range r.Recs {
			items = append(items, it.Item)
		}
		return items, r.Updates, nil
	}
	// Probes arrive as a Poisson process (mean gap c.probeGap), on a
	// schedule of their own: phase-locked to the updates (a probe sent as
	// soon as the previous one was served) they would all wait a whole
	// trigger period.
	arrivals := rand.New(rand.NewPCG(11, 12))
	due := time.Now()
	for p := range c.probes {
		due = due.Add(time.Duration(arrivals.ExpFloat64() * float64(c.probeGap)))
		select {
		case <-time.After(time.Until(due)): // the probe's arrival: the workload's schedule
		case err := <-errs:
			return res, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(p)+100, 9))
			u := int64(rng.IntN(c.users))
			before, _, err := get(u)
			if err != nil || len(before) == 0 {
				mu.Lock()
				res.failedProbe++
				mu.Unlock()
				return
			}
			item := before[0]
			v0 := live.Version()
			t0 := time.Now()
			if err := pw.WriteMessages(ctx, msg(u, item)); err != nil {
				errs <- err
				return
			}
			ack := time.Since(t0)
			for {
				ch := live.Updated()
				items, v, err := get(u)
				if err != nil {
					errs <- err
					return
				}
				if !slices.Contains(items, item) {
					lat := time.Since(t0)
					mu.Lock()
					res.lat, res.ack = append(res.lat, lat), append(res.ack, ack)
					if v <= v0 {
						res.falseEarly++ // changed by an update that cannot hold the probe
					}
					mu.Unlock()
					return
				}
				select {
				case <-ch:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return res, err
	}
	if err, _ := bgErr.Load().(error); err != nil {
		return res, fmt.Errorf("background producer: %w", err)
	}
	st1, _ := rec.Stats()
	res.load1 = loadavg()[0]
	res.updates, res.applied = st1.Updates-st0.Updates, st1.Applied-st0.Applied
	// The update durations: mean from the run's stats is not kept per
	// update; take the operator's last and the elapsed work instead.
	res.updateMean, res.updateMax = updateDurations(st0, st1)
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			return res, err
		}
	default:
	}
	runtime.GC()
	return res, nil
}

// updateDurations returns the mean and maximum update duration between two
// stats snapshots (RecommendStats keeps the totals).
func updateDurations(a, b ml.RecommendStats) (time.Duration, time.Duration) {
	n := b.Updates - a.Updates
	if n <= 0 {
		return 0, 0
	}
	return (b.UpdateTime - a.UpdateTime) / time.Duration(n), b.MaxUpdateDuration
}
