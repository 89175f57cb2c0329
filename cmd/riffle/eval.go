package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/ml/eval"
)

func init() {
	register(command{name: "eval", short: "evaluate the recommender against baselines on an interaction file", run: runEval})
}

// evalReport is what --json writes.
type evalReport struct {
	Input       string           `json:"input"`
	Rows        int              `json:"rows"`
	Users       int              `json:"users"`
	Items       int              `json:"items"`
	Columns     eval.Columns     `json:"columns"`
	TestPercent int              `json:"test_percent"`
	Model       eval.Params      `json:"model_params"`
	Protocols   []protocolReport `json:"protocols"`
	// Prequential is the prequential protocol's outcome, when asked for.
	Prequential *eval.PrequentialResult `json:"prequential,omitempty"`
}

type protocolReport struct {
	Protocol eval.Protocol    `json:"protocol"`
	Split    eval.SplitStats  `json:"split"`
	Results  []*eval.Result   `json:"results"`
	Tune     *eval.TuneResult `json:"tune,omitempty"`
	// Loss is the iALS training objective after each iteration (ml.Loss),
	// recorded with --plot.
	Loss []float64 `json:"loss,omitempty"`
}

func runEval(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "eval", "[flags] FILE", `
Evaluates riffle's recommender (iALS, package ml) offline on an interaction
file, Parquet (a file, glob or directory) or CSV with a header (a path
ending in .csv), beside the popularity and random baselines. Each protocol
splits the rows into train and test by time (global-time: the last 20% of
all rows; user-time: each user's last 20%; leave-last-out: each user's last
row), trains on train and ranks every test user's unseen catalogue items.
Metrics at each K: Recall, NDCG, HR, MAP (means over the test users) and
catalogue coverage; ml/eval/doc.go defines each exactly. --tune searches
the hyperparameter grid on a validation split cut from the end of train
and reports the best setting's test figures.

--protocol prequential trains on the first --train-fraction of the rows by
time, then replays the rest in time order in micro-batches of --batch rows,
scoring each event's true item among the known items its user has not seen
before the batch is applied (HR and NDCG at the first --k), for the
incremental model (ml.Online, the running job's update path), a full
retrain every --retrain-every rows, the model frozen at the start and
popularity; --curve writes the figures per 5% of the replay as CSV.

--plot DIR draws PNG charts, each with its numbers as CSV beside it:
metric@K per model for each protocol (PROTOCOL-recall, -ndcg, -hr, -map),
the iALS training loss per iteration (PROTOCOL-loss; recording it costs
about half an iteration per iteration) and the prequential HR and NDCG
over the replay (prequential-hr, prequential-ndcg).
--kafka-brokers and --kafka-topic read the input from a Kafka topic (JSON
messages, offset order) instead of a file.`)
	user := f.String("user", "user_id", "user id column (integer or string)")
	item := f.String("item", "item_id", "item id column (integer or string)")
	weight := f.String("weight", "weight", `interaction weight: a column or an expression, e.g. "CAST(rating AS float64)"; "" for 1`)
	timeCol := f.String("time", "event_time", "time column (integer, timestamp or date)")
	protocols := f.String("protocol", "global-time", "protocols, comma-separated: global-time, user-time, leave-last-out, prequential, or all (the first three)")
	testPct := f.Int("test-percent", eval.DefaultTestPercent, "percent of rows held out by global-time and user-time")
	ksFlag := f.String("k", "10,20", "cut-offs, comma-separated")
	factors := f.Int("factors", 64, "iALS: factors")
	reg := f.Float64("regularization", ml.DefaultRegularization, "iALS: L2 regularization λ")
	freqScaled := f.Bool("frequency-scaled", false, "iALS: frequency-scaled regularization (Rendle et al. 2022)")
	alpha := f.Float64("alpha", ml.DefaultAlpha, "iALS: confidence c = 1 + alpha·weight")
	iters := f.Int("iterations", 15, "iALS: iterations")
	solver := f.String("solver", "cg", "iALS: cg or cholesky")
	cgSteps := f.Int("cg-steps", 3, "iALS: conjugate-gradient steps per row")
	threads := f.Int("threads", 0, "worker goroutines (0: GOMAXPROCS)")
	seed := f.Int64("seed", 1, "seed of the iALS initialisation and of the random baseline")
	jsonOut := f.String("json", "", "also write the figures as JSON to this file")
	plotDir := f.String("plot", "", "draw the figures as PNG charts (with CSV beside each) into this directory")
	tune := f.Bool("tune", false, "search the hyperparameters on a validation split first")
	tuneFactors := f.String("tune-factors", "16,32,64", "--tune: factors to try")
	tuneReg := f.String("tune-regularization", "0.01,0.1,1", "--tune: regularizations to try")
	tuneAlpha := f.String("tune-alpha", "0.5,1,4", "--tune: alphas to try")
	tuneIters := f.String("tune-iterations", "15", "--tune: iteration counts to try")
	tuneSamples := f.Int("tune-samples", 0, "--tune: try this many random settings of the grid (0: all)")
	trainFrac := f.Float64("train-fraction", eval.DefaultTrainFraction, "prequential: share of the rows, by time, that trains the starting models")
	batch := f.Int("batch", eval.DefaultBatch, "prequential: rows per micro-batch")
	retrainEvery := f.Int("retrain-every", 1000, "prequential: retrain the reference from scratch after this many replayed rows (0: no reference)")
	minWeight := f.Float64("min-weight", 0, "prequential: score only events of at least this weight (all rows are applied)")
	itemCG := f.Int("item-cg-steps", 0, "prequential: CG steps for an incremental update of an item that has a factor (0: --incremental-cg-steps)")
	incSolver := f.String("incremental-solver", "", "prequential: solver of the incremental updates, cg or cholesky (default: --solver)")
	incCG := f.Int("incremental-cg-steps", 0, "prequential: CG steps of the incremental updates (0: --cg-steps)")
	itemDefer := f.Int("item-defer", 0, "prequential: re-solve an item with a long history only about once per 1/2^N of new events (ml.OnlineOptions.ItemDefer; 0: every update that touches it)")
	curve := f.String("curve", "", "prequential: write the curve (figures per 5% of the replay) as CSV to this file")
	kBrokers := f.String("kafka-brokers", "", "read the input from Kafka: bootstrap brokers (host:port,...)")
	kTopic := f.String("kafka-topic", "", "read the input from this Kafka topic (JSON messages; one partition keeps the produced order)")
	if err := f.parse(e, args); err != nil {
		return err
	}
	fromKafka := *kBrokers != "" || *kTopic != ""
	if fromKafka && (*kBrokers == "" || *kTopic == "" || f.NArg() != 0) {
		f.Usage()
		return usageError{fmt.Errorf("--kafka-brokers and --kafka-topic go together and replace the input file")}
	}
	if !fromKafka && f.NArg() != 1 {
		f.Usage()
		return usageError{fmt.Errorf("want exactly one input file, have %d arguments", f.NArg())}
	}
	var protos []eval.Protocol
	preq := false
	if *protocols == "all" {
		protos = eval.Protocols
	} else {
		for _, s := range strings.Split(*protocols, ",") {
			if strings.TrimSpace(s) == "prequential" {
				preq = true
				continue
			}
			p, err := eval.ParseProtocol(strings.TrimSpace(s))
			if err != nil {
				return usageError{fmt.Errorf("--protocol: %v", err)}
			}
			protos = append(protos, p)
		}
	}
	ks, err := parseList(*ksFlag, strconv.Atoi)
	if err != nil {
		return usageError{fmt.Errorf("--k: %v", err)}
	}
	for _, k := range ks {
		if k < 1 {
			return usageError{fmt.Errorf("--k: cut-off %d must be positive", k)}
		}
	}
	if *testPct < 1 || *testPct > 99 {
		return usageError{fmt.Errorf("--test-percent %d: must be in [1, 99]", *testPct)}
	}
	cfg := ml.Config{Factors: *factors, Regularization: *reg, FrequencyScaled: *freqScaled, Alpha: *alpha,
		Iterations: *iters, CGSteps: *cgSteps, Seed: *seed, Threads: *threads}
	switch *solver {
	case "cg":
		cfg.Solver = ml.SolverCG
	case "cholesky":
		cfg.Solver = ml.SolverCholesky
	default:
		return usageError{fmt.Errorf("--solver %q: want cg or cholesky", *solver)}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	var grid eval.Grid
	if *tune {
		grid = eval.Grid{Samples: *tuneSamples, Seed: uint64(*seed)}
		if grid.Factors, err = parseList(*tuneFactors, strconv.Atoi); err != nil {
			return usageError{fmt.Errorf("--tune-factors: %v", err)}
		}
		if grid.Regularization, err = parseList(*tuneReg, parseFloat); err != nil {
			return usageError{fmt.Errorf("--tune-regularization: %v", err)}
		}
		if grid.Alpha, err = parseList(*tuneAlpha, parseFloat); err != nil {
			return usageError{fmt.Errorf("--tune-alpha: %v", err)}
		}
		if grid.Iterations, err = parseList(*tuneIters, strconv.Atoi); err != nil {
			return usageError{fmt.Errorf("--tune-iterations: %v", err)}
		}
		settings, err := grid.Settings()
		if err != nil {
			return usageError{err}
		}
		for _, p := range settings {
			c := cfg
			c.Factors, c.Regularization, c.Alpha, c.Iterations = p.Factors, p.Regularization, p.Alpha, p.Iterations
			if err := c.Validate(); err != nil {
				return usageError{fmt.Errorf("--tune grid %v: %v", p, err)}
			}
		}
	}

	cols := eval.Columns{User: *user, Item: *item, Weight: *weight, Time: *timeCol}
	began := time.Now()
	var d *eval.Dataset
	var path string
	if fromKafka {
		path = "kafka:" + *kTopic
		d, err = eval.ReadKafka(ctx, strings.Split(*kBrokers, ","), *kTopic, cols, nil)
	} else {
		path = f.Arg(0)
		d, err = eval.ReadFile(ctx, path, cols)
	}
	if err != nil {
		return err
	}
	e.log.Info("read", "path", path, "rows", d.Len(), "users", d.UserIDs.Len(), "items", d.ItemIDs.Len(), "elapsed", time.Since(began).Round(time.Millisecond))
	rep := evalReport{Input: path, Rows: d.Len(), Users: d.UserIDs.Len(), Items: d.ItemIDs.Len(), Columns: cols,
		TestPercent: *testPct, Model: eval.ParamsOf(cfg)}
	for _, p := range protos {
		var loss []float64
		ials := eval.IALS{Config: cfg}
		if *plotDir != "" {
			ials.Progress = func(_ int, l float64) { loss = append(loss, l) }
		}
		trainers := []eval.Trainer{ials, eval.Popularity{}, eval.Random{Seed: uint64(*seed)}}
		pr, s, err := evalProtocol(ctx, e, d, p, *testPct, trainers, ks, *threads)
		if err != nil {
			return err
		}
		pr.Loss = loss
		if *tune && s.Stats.EvalUsers > 0 {
			tr, err := eval.Tune(ctx, d, s, *testPct, grid, eval.IALSTrainer(cfg), ks, *threads, func(t eval.Trial) {
				e.log.Info("tune", "protocol", p, "params", t.Params.String(), "validation_ndcg", t.Score)
			})
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			tr.Test.Model = "ials (tuned)"
			pr.Tune = tr
			pr.Results = append(pr.Results, tr.Test)
		}
		rep.Protocols = append(rep.Protocols, pr)
	}
	if preq {
		t0 := time.Now()
		oo := &ml.OnlineOptions{ItemCGSteps: *itemCG, ItemDefer: *itemDefer, Config: ml.Config{CGSteps: *incCG}}
		switch *incSolver {
		case "", "cg":
		case "cholesky":
			oo.Config.Solver = ml.SolverCholesky
		default:
			return usageError{fmt.Errorf("--incremental-solver %q: want cg or cholesky", *incSolver)}
		}
		res, err := eval.Prequential(ctx, d, eval.PrequentialOptions{TrainFraction: *trainFrac, Batch: *batch, RetrainEvery: *retrainEvery,
			K: ks[0], MinWeight: float32(*minWeight), Config: cfg, Online: oo})
		if err != nil {
			return err
		}
		e.log.Info("evaluated", "protocol", "prequential", "batches", res.Batches, "elapsed", time.Since(t0).Round(time.Millisecond))
		rep.Prequential = res
		if *curve != "" {
			if err := writeCurve(*curve, res); err != nil {
				return err
			}
		}
	}
	printEval(e.stdout, &rep)
	if *jsonOut != "" {
		if err := writeEvalJSON(*jsonOut, &rep); err != nil {
			return err
		}
	}
	if *plotDir != "" {
		pngs, err := writeEvalPlots(*plotDir, &rep)
		if err != nil {
			return err
		}
		e.log.Info("plotted", "dir", *plotDir, "charts", len(pngs))
	}
	return nil
}

// evalProtocol splits d by protocol p and evaluates each trainer's model
// on the split (no result when the split has no user to evaluate).
func evalProtocol(ctx context.Context, e *env, d *eval.Dataset, p eval.Protocol, testPct int, trainers []eval.Trainer, ks []int, threads int) (protocolReport, *eval.Split, error) {
	s, err := eval.NewSplit(d, p, testPct)
	if err != nil {
		return protocolReport{}, nil, err
	}
	pr := protocolReport{Protocol: p, Split: s.Stats}
	if s.Stats.EvalUsers == 0 {
		e.log.Warn("no user to evaluate", "protocol", p, "test_rows", s.Stats.TestRows)
		return pr, s, nil
	}
	for _, tr := range trainers {
		t0 := time.Now()
		m, err := tr.Fit(ctx, s.Train)
		if err != nil {
			return pr, s, fmt.Errorf("%s: %s: %w", p, tr.Name(), err)
		}
		res, err := eval.Evaluate(ctx, s, m, tr.Name(), ks, threads)
		if err != nil {
			return pr, s, fmt.Errorf("%s: %w", p, err)
		}
		e.log.Info("evaluated", "protocol", p, "model", tr.Name(), "users", res.Users, "elapsed", time.Since(t0).Round(time.Millisecond))
		pr.Results = append(pr.Results, res)
	}
	return pr, s, nil
}

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

// parseList parses a comma-separated list.
func parseList[T any](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, part := range strings.Split(s, ",") {
		v, err := parse(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func printEval(w io.Writer, rep *evalReport) {
	fmt.Fprintf(w, "%s: %d rows, %d users, %d items; iALS %v\n", rep.Input, rep.Rows, rep.Users, rep.Items, rep.Model)
	if p := rep.Prequential; p != nil {
		c := p.Counts
		fmt.Fprintf(w, "\nprequential: %d train rows, %d replayed in %d batches; events: %d warm, %d cold-user, %d cold-item, %d repeat, %d duplicate, %d below --min-weight\n",
			p.TrainRows, p.ReplayRows, p.Batches, c.Warm, c.ColdUsers, c.ColdItems, c.Repeats, c.Duplicates, c.Below)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "model\tevents\tHR@%d\tNDCG@%d\tfallback\tupdates\tupdate s\tupdate rows/s\t\n", p.K, p.K)
		for _, m := range append(slices.Clone(p.Models), p.ColdUsers) {
			rate := ""
			if m.Model == "incremental" && m.UpdateSeconds > 0 {
				rate = fmt.Sprintf("%.0f", float64(m.UpdateRows)/m.UpdateSeconds)
			}
			fmt.Fprintf(tw, "%s\t%d\t%.4f\t%.4f\t%d\t%d\t%.2f\t%s\t\n", m.Model, m.Events, m.HR, m.NDCG, m.Fallback, m.Updates, m.UpdateSeconds, rate)
		}
		tw.Flush()
	}
	for _, pr := range rep.Protocols {
		st := pr.Split
		fmt.Fprintf(w, "\n%s: %d train rows, %d test rows (%d relevant pairs; dropped: %d cold-user, %d cold-item, %d repeat, %d duplicate), %d test users, catalogue %d\n",
			pr.Protocol, st.TrainRows, st.TestRows, st.Relevant, st.ColdUserRows, st.ColdItemRows, st.RepeatRows, st.DuplicateRows, st.EvalUsers, st.Catalogue)
		if pr.Tune != nil {
			fmt.Fprintf(w, "tuned on %d settings (validation: %d train rows, %d test users): best %v\n",
				len(pr.Tune.Trials), pr.Tune.Validation.TrainRows, pr.Tune.Validation.EvalUsers, pr.Tune.Best)
		}
		if len(pr.Results) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "model\tK\tRecall\tNDCG\tHR\tMAP\tcoverage\t")
		for j := range pr.Results[0].AtK {
			for _, r := range pr.Results {
				a := r.AtK[j]
				fmt.Fprintf(tw, "%s\t%d\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t\n", r.Model, a.K, a.Recall, a.NDCG, a.HR, a.MAP, a.Coverage)
			}
		}
		tw.Flush()
	}
}

// writeCurve writes the prequential curve as CSV: one row per bucket,
// then HR and NDCG per model.
func writeCurve(path string, res *eval.PrequentialResult) error {
	var b strings.Builder
	b.WriteString("bucket,from,to,from_time,to_time,events")
	for _, m := range res.Models {
		fmt.Fprintf(&b, ",%s_hr,%s_ndcg", m.Model, m.Model)
	}
	b.WriteString("\n")
	for i, c := range res.Curve {
		fmt.Fprintf(&b, "%d,%d,%d,%d,%d,%d", i, c.From, c.To, c.FromTime, c.ToTime, c.Events)
		for j := range res.Models {
			fmt.Fprintf(&b, ",%.6f,%.6f", c.HR[j], c.NDCG[j])
		}
		b.WriteString("\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("--curve %s: %w", path, err)
	}
	return nil
}

// writeEvalJSON writes the report as indented JSON.
func writeEvalJSON(path string, rep *evalReport) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err == nil {
		err = os.WriteFile(path, append(b, '\n'), 0o644)
	}
	if err != nil {
		return fmt.Errorf("--json %s: %w", path, err)
	}
	return nil
}
