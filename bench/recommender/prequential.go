package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/ml/eval"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
)

// The prequential comparison (--prequential): ml-latest-small replayed in
// time order, optionally through a Kafka topic on a real broker (produced
// here in time order to a one-partition topic, read back in offset order by
// eval.ReadKafka, and checked equal to the file), evaluated by eval.Prequential
// (riffle's incremental ml.Online, full retrain, frozen, popularity); then
// the same stream, written to a file, replayed by prequential.py with
// implicit's partial_fit_users / partial_fit_items. Both sides classify
// the events and compute popularity independently: their counts and
// popularity figures must agree exactly, which checks that both see the
// same events and candidate sets.

var ratingCols = eval.Columns{User: "userId", Item: "movieId", Weight: "rating", Time: "timestamp"}

type preqParams struct {
	K              int     `json:"k"`
	Batch          int     `json:"batch"`
	MinWeight      float32 `json:"min_weight"`
	Alpha          float64 `json:"alpha"`
	Factors        int     `json:"factors"`
	Regularization float64 `json:"regularization"`
	Iterations     int     `json:"iterations"`
	CGSteps        int     `json:"cg_steps"`
	Threads        int     `json:"threads"`
	Seed           int64   `json:"seed"`
}

type pyFigures struct {
	Events int64   `json:"events"`
	HR     float64 `json:"hr"`
	NDCG   float64 `json:"ndcg"`
}

type pyResult struct {
	Counts        ml.PrequentialCounts `json:"counts"`
	UpdateSeconds float64              `json:"update_seconds"`
	UpdateRows    int64                `json:"update_rows"`
	Implicit      pyFigures            `json:"implicit"`
	Popularity    pyFigures            `json:"popularity"`
	ColdUsers     pyFigures            `json:"cold_users"`
}

// prequential runs the comparison and prints a Markdown table.
func prequential(cfg ml.Config, o eval.PrequentialOptions, seeds int, ratings, dir, brokers string) error {
	python, dir, ratings, err := setup(ratings, dir)
	if err != nil {
		return err
	}
	runtime.GOMAXPROCS(cfg.Threads)
	ctx := context.Background()
	d, err := eval.ReadFile(ctx, ratings, ratingCols)
	if err != nil {
		return err
	}
	source := ratings
	if brokers != "" {
		if d, err = throughKafka(ctx, d, brokers); err != nil {
			return err
		}
		source = "ml-latest-small through Kafka at " + brokers
	}
	load0, _ := loadAverage()
	fmt.Printf("%s: %d rows, %d users, %d items; factors %d, λ = %g, α = %g, %d iterations, CG %d steps; incremental updates: %s, %d threads; "+
		"train fraction %g, batch %d, retrain every %d rows, K = %d; seeds 1..%d; load average %.1f at the start\n\n",
		source, d.Len(), d.UserIDs.Len(), d.ItemIDs.Len(), cfg.Factors, cfg.Regularization, cfg.Alpha, cfg.Iterations, cfg.CGSteps,
		incrementalSolver(cfg, o.Online), cfg.Threads, o.TrainFraction, o.Batch, o.RetrainEvery, o.K, seeds, load0)
	order, nTrain := eval.PrequentialSplit(d, o.TrainFraction)
	stream := filepath.Join(dir, "prequential.stream")
	if err := writeStream(stream, d, order, nTrain); err != nil {
		return err
	}
	root, err := oracle.RepoRoot()
	if err != nil {
		return err
	}
	script := filepath.Join(root, "bench", "recommender", "prequential.py")
	rows := map[string]*qualityRow{}
	var names []string
	addRow := func(name string, ndcg, hr float64) {
		r, ok := rows[name]
		if !ok {
			r = newRow(name)
			rows[name] = r
			names = append(names, name)
		}
		r.ndcg[o.K] = append(r.ndcg[o.K], ndcg)
		r.recall[o.K] = append(r.recall[o.K], hr) // HR, in the recall slot
	}
	var riffleRate, implicitRate []float64
	var res *eval.PrequentialResult
	for seed := 1; seed <= seeds; seed++ {
		o.Config = cfg
		o.Config.Seed = int64(seed)
		if res, err = eval.Prequential(ctx, d, o); err != nil {
			return err
		}
		for _, m := range res.Models {
			addRow("riffle "+m.Model, m.NDCG, m.HR)
			if m.Model == "incremental" {
				riffleRate = append(riffleRate, float64(m.UpdateRows)/m.UpdateSeconds)
			}
		}
		p := preqParams{K: o.K, Batch: o.Batch, MinWeight: o.MinWeight, Alpha: cfg.Alpha, Factors: cfg.Factors, Regularization: cfg.Regularization,
			Iterations: cfg.Iterations, CGSteps: cfg.CGSteps, Threads: cfg.Threads, Seed: int64(seed)}
		py, err := runPrequentialPy(ctx, python, script, stream, p)
		if err != nil {
			return fmt.Errorf("implicit, seed %d: %w", seed, err)
		}
		pop := res.Models[len(res.Models)-1]
		if py.Counts != res.Counts || py.Popularity.Events != pop.Events || !near(py.Popularity.NDCG, pop.NDCG) || !near(py.Popularity.HR, pop.HR) ||
			py.ColdUsers.Events != res.ColdUsers.Events || !near(py.ColdUsers.NDCG, res.ColdUsers.NDCG) {
			return fmt.Errorf("seed %d: the Python replay saw other events: counts %+v popularity %+v cold %+v; riffle %+v %+v %+v",
				seed, py.Counts, py.Popularity, py.ColdUsers, res.Counts, pop, res.ColdUsers)
		}
		addRow("implicit partial_fit", py.Implicit.NDCG, py.Implicit.HR)
		implicitRate = append(implicitRate, float64(py.UpdateRows)/py.UpdateSeconds)
	}
	c := res.Counts
	fmt.Printf("%d train rows, %d replayed in %d batches; events: %d warm (scored), %d cold-user (popularity: NDCG@%d %.4f), %d cold-item, %d repeat, %d duplicate, %d below the minimum weight\n\n",
		res.TrainRows, res.ReplayRows, res.Batches, c.Warm, c.ColdUsers, o.K, res.ColdUsers.NDCG, c.ColdItems, c.Repeats, c.Duplicates, c.Below)
	fmt.Printf("| model | NDCG@%d | HR@%d |\n|---|---|---|\n", o.K, o.K)
	for _, n := range names {
		r := rows[n]
		fmt.Printf("| %s | %s | %s |\n", n, meanSD(r.ndcg[o.K]), meanSD(r.recall[o.K]))
	}
	inc, ref := mean(rows["riffle incremental"].ndcg[o.K]), 0.0
	if r, ok := rows["riffle retrain"]; ok {
		ref = mean(r.ndcg[o.K])
		fmt.Printf("\nriffle incremental vs full retrain: NDCG@%d %+.1f%%\n", o.K, 100*(inc-ref)/ref)
	}
	load1, _ := loadAverage()
	fmt.Printf("update throughput (the replayed rows over the update time, scoring excluded): riffle Online.Apply %s rows/s, implicit partial_fit_users+items %s rows/s; both sides' event counts and popularity figures agree exactly; load average %.1f at the end\n",
		meanSD0(riffleRate), meanSD0(implicitRate), load1)
	return nil
}

// incrementalSolver describes the solver of riffle's incremental updates.
func incrementalSolver(cfg ml.Config, o *ml.OnlineOptions) string {
	if o.Config.Solver == ml.SolverCholesky {
		return "Cholesky (exact)"
	}
	steps := cfg.CGSteps
	if o.Config.CGSteps > 0 {
		steps = o.Config.CGSteps
	}
	items := steps
	if o.ItemCGSteps > 0 {
		items = o.ItemCGSteps
	}
	return fmt.Sprintf("CG %d steps (items that have a factor: %d)", steps, items)
}

// loadAverage is the 1-minute load average (Linux), 0 when unknown.
func loadAverage() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	var l float64
	_, err = fmt.Sscanf(string(b), "%g", &l)
	return l, err
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// meanSD0 is meanSD for large numbers.
func meanSD0(xs []float64) string {
	s := meanSD(xs)
	var a, b float64
	if n, _ := fmt.Sscanf(s, "%g ± %g", &a, &b); n == 2 {
		return fmt.Sprintf("%.0f ± %.0f", a, b)
	}
	return fmt.Sprintf("%.0f", mean(xs))
}

// writeStream writes the rows in time order for prequential.py: rows and
// train rows (int64), then user, item (int32 dense id indices) and weight
// (float32) per row, little endian.
func writeStream(path string, d *eval.Dataset, order []int32, nTrain int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	binary.Write(w, binary.LittleEndian, []int64{int64(len(order)), int64(nTrain)})
	for _, r := range order {
		binary.Write(w, binary.LittleEndian, struct {
			U, I int32
			W    float32
		}{d.Users[r], d.Items[r], d.Weights[r]})
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runPrequentialPy(ctx context.Context, python, script, stream string, p preqParams) (*pyResult, error) {
	params, _ := json.Marshal(p)
	cmd := exec.CommandContext(ctx, python, script, stream, string(params))
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1", "OMP_NUM_THREADS=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, stderr.String())
	}
	var r pyResult
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("unexpected output %q: %v", out, err)
	}
	return &r, nil
}

// throughKafka produces d's rows in time order to a new one-partition
// topic as JSON, reads the topic back with eval.ReadKafka (offset order)
// and checks it holds the same rows in that order. The topic is deleted
// afterwards.
func throughKafka(ctx context.Context, d *eval.Dataset, brokers string) (*eval.Dataset, error) {
	bl := strings.Split(brokers, ",")
	topic := fmt.Sprintf("bench-prequential-%d", time.Now().UnixNano())
	if err := ksink.CreateTopic(ctx, bl, topic, 1, nil); err != nil {
		return nil, err
	}
	defer ksink.DeleteTopic(context.Background(), bl, topic) // best effort: a benchmark's scratch topic
	all := make([]int32, d.Len())
	for i := range all {
		all[i] = int32(i)
	}
	order := d.TimeOrder(all)
	w := &kafkago.Writer{Addr: kafkago.TCP(bl...), Topic: topic, RequiredAcks: kafkago.RequireAll, BatchSize: 5000,
		BatchTimeout: 10 * time.Millisecond, MaxAttempts: 5}
	msgs := make([]kafkago.Message, 0, len(order))
	for _, r := range order {
		msgs = append(msgs, kafkago.Message{Value: fmt.Appendf(nil, `{"userId":%s,"movieId":%s,"rating":%g,"timestamp":%d}`,
			d.UserIDs.String(d.Users[r]), d.ItemIDs.String(d.Items[r]), d.Weights[r], d.Times[r])})
	}
	t0 := time.Now()
	for lo := 0; lo < len(msgs); lo += 5000 {
		if err := w.WriteMessages(ctx, msgs[lo:min(lo+5000, len(msgs))]...); err != nil {
			w.Close()
			return nil, fmt.Errorf("produce to %s: %w", topic, err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	produced := time.Since(t0)
	t0 = time.Now()
	k, err := eval.ReadKafka(ctx, bl, topic, ratingCols, nil)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "produced %d ratings in time order to %s in %v, read back in %v\n", len(msgs), topic, produced.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	// Read back in offset order = time order: the same rows as the file's
	// time order.
	want := &eval.Dataset{UserIDs: d.UserIDs, ItemIDs: d.ItemIDs}
	for _, r := range order {
		want.Users, want.Items = append(want.Users, d.Users[r]), append(want.Items, d.Items[r])
		want.Weights, want.Times = append(want.Weights, d.Weights[r]), append(want.Times, d.Times[r])
	}
	if !reflect.DeepEqual(k, want) {
		return nil, fmt.Errorf("topic %s: the %d rows read back differ from the file's %d in time order", topic, k.Len(), d.Len())
	}
	return k, nil
}
