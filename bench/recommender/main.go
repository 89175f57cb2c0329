// Command recommender times riffle's iALS (package ml) and the `implicit`
// library's (PyPI, 0.7.x, CPU, conjugate gradient) side by side in one run,
// on the same matrices with the same hyperparameters and thread count, and
// prints Markdown tables: seconds per training iteration at each factor
// count, and the time to score every user's top-K.
//
//	go run ./bench/recommender --threads 2 --factors 64,128
//
// Datasets: MovieLens ml-latest-small (../shared/data, weight = rating;
// skipped with a note when absent) and a generated 100k users × 20k items ×
// 5M interactions matrix (seeded; item popularity skewed, weights 1..5).
// Both engines get the same CSR matrix after duplicates are summed;
// implicit's confidence is its input value (times its alpha, left at 1),
// so it is fed 1 + alpha·w, riffle's confidence. implicit runs in the
// project's Python environment (.venv, see requirements.txt) with its BLAS
// pinned to one thread, as implicit asks; it is timed inside its process
// (interpreter start-up and data loading excluded), riffle from the CSR
// matrix to the trained model. Seconds per iteration are a whole fit's
// time over its iterations, so per-fit set-up (transposing the matrix,
// initialising factors) is included for both. CPU is the process's
// user+system time over the same span: less sensitive than wall time to
// other load on a shared machine.
//
// With --plot DIR the timing tables are also written to DIR/recommender.md
// with charts beside them (PNG, numbers as CSV; package internal/chart):
// recommender-fit and recommender-topk, both engines' seconds per
// iteration and top-K seconds side by side per data set and factor count,
// and recommender-throughput, riffle's training throughput (interactions
// per second) of each iteration over time, from an extra fit one iteration
// at a time (Model.Fit with a warm start, so each point also pays the
// per-fit transpose). With --quality, --plot writes quality.md and
// quality-ndcg-K, the mean NDCG@K of riffle, implicit and popularity side
// by side per protocol.
//
// With --quality it compares ranking quality instead, on ml-latest-small:
// for every protocol of ml/eval, riffle's and implicit's NDCG and Recall at
// each K over several seeds, beside popularity, both models ranked and
// scored by the same ml/eval code (quality.go says how):
//
//	go run ./bench/recommender --quality --threads 2 --factors 64 --regularization 0.05 --alpha 1 --ml-iterations 15
//
// With --prequential it runs ml/eval's prequential protocol on
// ml-latest-small (through a topic on a Kafka broker with --brokers):
// riffle's incremental model (ml.Online), a full retrain, the frozen start
// and popularity beside implicit's partial_fit_users / partial_fit_items
// on the same events (prequential.go and prequential.py say how):
//
//	go run ./bench/recommender --prequential --brokers 127.0.0.1:44907 --threads 2 --factors 64 --regularization 30 --ml-iterations 10 --seeds 3
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riffle-dev/riffle/bench/internal/benchenv"
	"github.com/riffle-dev/riffle/internal/chart"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/ml/eval"
)

type dataset struct {
	name       string
	ui         *ml.Interactions
	iterations int
}

type timing struct {
	fitWall, fitCPU, topkWall, topkCPU time.Duration
}

func main() {
	threads := flag.Int("threads", runtime.GOMAXPROCS(0), "threads for both engines")
	factorList := flag.String("factors", "64,128", "comma-separated factor counts")
	reg := flag.Float64("regularization", 0.05, "λ")
	alpha := flag.Float64("alpha", 1, "confidence c = 1 + alpha·w")
	cgSteps := flag.Int("cg-steps", 3, "conjugate-gradient steps per row and half-epoch")
	mlIters := flag.Int("ml-iterations", 15, "iterations on ml-latest-small")
	genIters := flag.Int("gen-iterations", 5, "iterations on the generated matrix")
	genUsers := flag.Int("users", 100_000, "generated users")
	genItems := flag.Int("items", 20_000, "generated items")
	genNNZ := flag.Int("interactions", 5_000_000, "generated interactions (before summing duplicates)")
	k := flag.Int("k", 10, "top-K per user")
	runs := flag.Int("runs", 1, "timed runs per engine and setting (median reported)")
	ratings := flag.String("ratings", "", "ml-latest-small ratings.csv (default shared/data/ml-latest-small/ratings.csv beside the repo or up to two levels above)")
	dir := flag.String("dir", "", "scratch directory for the matrices handed to Python (default .cache/bench in the repo)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of riffle's runs to this file")
	qualityMode := flag.Bool("quality", false, "compare ranking quality on ml-latest-small instead of timing (the first --factors, --ml-iterations)")
	seeds := flag.Int("seeds", 5, "--quality: seeds per engine and protocol")
	qualityK := flag.String("quality-k", "10,20", "--quality: cut-offs")
	preq := flag.Bool("prequential", false, "run the prequential protocol on ml-latest-small instead of timing: riffle's incremental model, full retrain, frozen, popularity and implicit's partial_fit side by side (the first --factors, --ml-iterations)")
	brokers := flag.String("brokers", "", "--prequential: replay the ratings through a topic on this Kafka broker")
	batch := flag.Int("batch", eval.DefaultBatch, "--prequential: rows per micro-batch")
	retrainEvery := flag.Int("retrain-every", eval.DefaultBatch, "--prequential: rows between two full retrains of the reference")
	trainFrac := flag.Float64("train-fraction", eval.DefaultTrainFraction, "--prequential: share of the rows that trains the starting models")
	itemCG := flag.Int("item-cg-steps", 0, "--prequential: riffle's CG steps for items that have a factor (0: --cg-steps)")
	minWeight := flag.Float64("min-weight", 0, "--prequential: score only events of at least this weight")
	incCholesky := flag.Bool("incremental-cholesky", false, "--prequential: riffle's incremental updates solve exactly (Cholesky)")
	incCG := flag.Int("incremental-cg-steps", 0, "--prequential: riffle's CG steps for incremental updates (0: --cg-steps)")
	plot := flag.String("plot", "", "timing and --quality: also write the tables and charts of them (PNG with CSV) into this directory")
	flag.Parse()
	factors := positiveInts("--factors", *factorList)
	cfg := ml.Config{Regularization: *reg, Alpha: *alpha, CGSteps: *cgSteps, Solver: ml.SolverCG, Seed: 1, Threads: *threads}
	var err error
	if *preq {
		oo := &ml.OnlineOptions{ItemCGSteps: *itemCG, Config: ml.Config{CGSteps: *incCG}}
		if *incCholesky {
			oo.Config.Solver = ml.SolverCholesky
		}
		cfg.Factors, cfg.Iterations = factors[0], *mlIters
		err = prequential(cfg, eval.PrequentialOptions{TrainFraction: *trainFrac, Batch: *batch, RetrainEvery: *retrainEvery, K: 10,
			MinWeight: float32(*minWeight), Online: oo}, *seeds, *ratings, *dir, *brokers)
	} else if *qualityMode {
		cfg.Factors, cfg.Iterations = factors[0], *mlIters
		err = quality(cfg, *seeds, positiveInts("--quality-k", *qualityK), *ratings, *dir, *plot)
	} else {
		err = run(cfg, factors, *mlIters, *genIters, *genUsers, *genItems, *genNNZ, *k, *runs, *ratings, *dir, *cpuprofile, *plot)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "recommender:", err)
		os.Exit(1)
	}
}

// positiveInts parses the comma-separated value of flag name, or exits
// with status 2.
func positiveInts(name, value string) []int {
	var out []int
	for _, f := range strings.Split(value, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "recommender: bad %s %q\n", name, value)
			os.Exit(2)
		}
		out = append(out, n)
	}
	return out
}

// setup returns the project's Python, the scratch directory (created) and
// the ratings file, defaults applied.
func setup(ratings, dir string) (string, string, string, error) {
	root, err := oracle.RepoRoot()
	if err != nil {
		return "", "", "", err
	}
	python := filepath.Join(root, ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		return "", "", "", fmt.Errorf("no Python environment at %s: run scripts/python-env.sh (requirements.txt has implicit)", python)
	}
	if dir == "" {
		dir = filepath.Join(root, ".cache", "bench")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", "", err
	}
	if ratings == "" {
		ratings = findShared(root, filepath.Join("shared", "data", "ml-latest-small", "ratings.csv"))
	}
	return python, dir, ratings, nil
}

// quality runs the quality comparison on ml-latest-small; with plot it
// also writes the table to plot/quality.md and NDCG bars beside it
// (quality-ndcg-K).
func quality(cfg ml.Config, seeds int, ks []int, ratings, dir, plot string) (err error) {
	python, dir, ratings, err := setup(ratings, dir)
	if err != nil {
		return err
	}
	out, err := benchenv.NewOutput(plot, "quality")
	if err != nil {
		return err
	}
	defer out.Close(&err)
	runtime.GOMAXPROCS(cfg.Threads)
	ctx := context.Background()
	d, err := eval.ReadFile(ctx, ratings, eval.Columns{User: "userId", Item: "movieId", Weight: "rating", Time: "timestamp"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: ", ratings)
	bars, err := runQuality(ctx, out, python, dir, d, cfg, seeds, ks)
	if err != nil {
		return err
	}
	for i, b := range bars {
		if err := out.Plot(b, fmt.Sprintf("quality-ndcg-%d", ks[i])); err != nil {
			return err
		}
	}
	return nil
}

func run(cfg ml.Config, factors []int, mlIters, genIters, users, items, nnz, k, runs int, ratings, dir, cpuprofile, plot string) (err error) {
	python, dir, ratings, err := setup(ratings, dir)
	if err != nil {
		return err
	}
	out, err := benchenv.NewOutput(plot, "recommender")
	if err != nil {
		return err
	}
	defer out.Close(&err)
	engines := func() []chart.BarSeries { return []chart.BarSeries{{Name: "riffle"}, {Name: "implicit"}} }
	fit := &chart.Bars{Title: fmt.Sprintf("iALS training, %d threads: seconds per iteration", cfg.Threads), YLabel: "s/iter", Series: engines()}
	topk := &chart.Bars{Title: fmt.Sprintf("top-%d for every user, %d threads", k, cfg.Threads), YLabel: "seconds", Series: engines()}
	tput := &chart.Lines{Title: "riffle iALS training throughput per iteration", XLabel: "seconds", YLabel: "M interactions/s"}
	runtime.GOMAXPROCS(cfg.Threads)
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	var sets []dataset
	if ui, err := readRatings(ratings); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "ml-latest-small skipped: %s not found (see ../shared/data/README.md)\n\n", ratings)
	} else if err != nil {
		return err
	} else {
		sets = append(sets, dataset{"ml-latest-small", ui, mlIters})
	}
	gen, err := ml.SkewedInteractions(users, items, nnz, 1)
	if err != nil {
		return err
	}
	sets = append(sets, dataset{fmt.Sprintf("generated %dk×%dk", users/1000, items/1000), gen, genIters})

	fmt.Fprintf(out, "threads: %d, runs: %d, λ = %g, α = %g, CG steps: %d, top-%d, %s/%s, %d CPUs\n\n", cfg.Threads, runs, cfg.Regularization, cfg.Alpha, cfg.CGSteps, k,
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintln(out, "| data | users × items, interactions | K | iters | riffle s/iter | implicit s/iter | ratio | riffle CPU s/iter | implicit CPU s/iter | riffle top-K s | implicit top-K s | riffle top-K CPU s | implicit top-K CPU s |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, d := range sets {
		path := filepath.Join(dir, "recommender-"+strings.Fields(d.name)[0]+".csr")
		if err := writeCSR(path, d.ui, cfg.Alpha); err != nil {
			return err
		}
		for _, f := range factors {
			c := cfg
			c.Factors, c.Iterations = f, d.iterations
			var rs, is []timing
			for r := 0; r < runs; r++ {
				// Alternate engines so that neither gets a warmer machine.
				rt, err := timeRiffle(c, d.ui, k)
				if err != nil {
					return fmt.Errorf("riffle, %s, K=%d: %w", d.name, f, err)
				}
				it, err := timeImplicit(python, path, c, k)
				if err != nil {
					return fmt.Errorf("implicit, %s, K=%d: %w", d.name, f, err)
				}
				rs, is = append(rs, rt), append(is, it)
			}
			r, i := median(rs), median(is)
			n := float64(d.iterations)
			fmt.Fprintf(out, "| %s | %d × %d, %d | %d | %d | %.3f | %.3f | %.2f× | %.3f | %.3f | %.2f | %.2f | %.2f | %.2f |\n",
				d.name, d.ui.NumUsers, d.ui.NumItems, d.ui.NNZ(), f, d.iterations,
				r.fitWall.Seconds()/n, i.fitWall.Seconds()/n, r.fitWall.Seconds()/i.fitWall.Seconds(),
				r.fitCPU.Seconds()/n, i.fitCPU.Seconds()/n,
				r.topkWall.Seconds(), i.topkWall.Seconds(), r.topkCPU.Seconds(), i.topkCPU.Seconds())
			group := fmt.Sprintf("%s K=%d", strings.Fields(d.name)[0], f)
			fit.Groups, topk.Groups = append(fit.Groups, group), append(topk.Groups, group)
			fit.Series[0].Values = append(fit.Series[0].Values, r.fitWall.Seconds()/n)
			fit.Series[1].Values = append(fit.Series[1].Values, i.fitWall.Seconds()/n)
			topk.Series[0].Values = append(topk.Series[0].Values, r.topkWall.Seconds())
			topk.Series[1].Values = append(topk.Series[1].Values, i.topkWall.Seconds())
			if plot != "" {
				curve, err := iterationThroughput(c, d.ui, group)
				if err != nil {
					return fmt.Errorf("riffle, %s, K=%d: %w", d.name, f, err)
				}
				tput.Series = append(tput.Series, curve)
			}
		}
	}
	fmt.Fprintln(out, "\nratio: riffle's wall time over implicit's (< 1: riffle faster). top-K: every user's best k items, the user's training items excluded.")
	if err := out.Plot(fit, "recommender-fit"); err != nil {
		return err
	}
	if err := out.Plot(topk, "recommender-topk"); err != nil {
		return err
	}
	return out.Plot(tput, "recommender-throughput")
}

// iterationThroughput trains cfg.Iterations iterations of iALS on ui one at
// a time (a warm-started Model.Fit each) and returns the throughput curve:
// at the end of iteration j (seconds since the start), the interactions of
// ui over that iteration's seconds, in millions per second.
func iterationThroughput(cfg ml.Config, ui *ml.Interactions, name string) (chart.Series, error) {
	s := chart.Series{Name: name}
	m := ml.NewModel(cfg, ui.NumUsers, ui.NumItems)
	one := cfg
	one.Iterations = 1
	start, prev := time.Now(), 0.0
	for range cfg.Iterations {
		if err := m.Fit(context.Background(), one, ui, nil); err != nil {
			return s, err
		}
		at := time.Since(start).Seconds()
		s.X, s.Y = append(s.X, at), append(s.Y, float64(ui.NNZ())/(at-prev)/1e6)
		prev = at
	}
	return s, nil
}

func median(ts []timing) timing {
	pick := func(f func(timing) time.Duration) time.Duration {
		var ds []time.Duration
		for _, t := range ts {
			ds = append(ds, f(t))
		}
		return benchenv.Median(ds)
	}
	return timing{pick(func(t timing) time.Duration { return t.fitWall }), pick(func(t timing) time.Duration { return t.fitCPU }),
		pick(func(t timing) time.Duration { return t.topkWall }), pick(func(t timing) time.Duration { return t.topkCPU })}
}

func timeRiffle(cfg ml.Config, ui *ml.Interactions, k int) (timing, error) {
	var t timing
	runtime.GC()
	c0, w0 := benchenv.CPUSelf(), time.Now()
	m, err := ml.Train(context.Background(), cfg, ui, nil)
	if err != nil {
		return t, err
	}
	t.fitWall, t.fitCPU = time.Since(w0), benchenv.CPUSelf()-c0
	c0, w0 = benchenv.CPUSelf(), time.Now()
	got := 0
	err = m.TopK(context.Background(), nil, k, ui, cfg.Threads, func(_ int32, items []int32, _ []float32) error {
		got += len(items)
		return nil
	})
	if err != nil {
		return t, err
	}
	t.topkWall, t.topkCPU = time.Since(w0), benchenv.CPUSelf()-c0
	if got == 0 {
		return t, errors.New("top-k returned nothing")
	}
	return t, nil
}

// implicitScript fits implicit's CPU ALS on the CSR file and scores every
// user's top-k, printing the timings as JSON.
const implicitScript = `
import json, sys, time
import numpy as np, scipy.sparse as sp
from threadpoolctl import threadpool_limits
from implicit.cpu.als import AlternatingLeastSquares
path, factors, reg, iters, cg_steps, threads, k = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
with open(path, "rb") as f:
    users, items, nnz = np.frombuffer(f.read(24), dtype="<i8")
    indptr = np.frombuffer(f.read(8 * (users + 1)), dtype="<i8")
    indices = np.frombuffer(f.read(4 * nnz), dtype="<i4")
    conf = np.frombuffer(f.read(4 * nnz), dtype="<f4")
m = sp.csr_matrix((conf.copy(), indices.copy(), indptr.copy()), shape=(users, items))  # writable: implicit needs it
model = AlternatingLeastSquares(factors=factors, regularization=reg, alpha=1.0, iterations=iters, use_cg=True,
                                calculate_training_loss=False, num_threads=threads, random_state=1, dtype=np.float32)
model.cg_steps = cg_steps  # not a constructor argument in 0.7
with threadpool_limits(1, "blas"):
    w, c = time.perf_counter(), time.process_time()
    model.fit(m, show_progress=False)
    fit_wall, fit_cpu = time.perf_counter() - w, time.process_time() - c
    w, c = time.perf_counter(), time.process_time()
    ids, scores = model.recommend(np.arange(users), m, N=k, filter_already_liked_items=True)
    topk_wall, topk_cpu = time.perf_counter() - w, time.process_time() - c
assert ids.shape[0] == users
print(json.dumps({"fit_wall": fit_wall, "fit_cpu": fit_cpu, "topk_wall": topk_wall, "topk_cpu": topk_cpu}))
`

func timeImplicit(python, path string, cfg ml.Config, k int) (timing, error) {
	cmd := exec.Command(python, "-c", implicitScript, path, strconv.Itoa(cfg.Factors), strconv.FormatFloat(cfg.Regularization, 'g', -1, 64),
		strconv.Itoa(cfg.Iterations), strconv.Itoa(cfg.CGSteps), strconv.Itoa(cfg.Threads), strconv.Itoa(k))
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1", "OMP_NUM_THREADS=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return timing{}, fmt.Errorf("%v: %s", err, stderr.String())
	}
	var r struct{ FitWall, FitCPU, TopkWall, TopkCPU float64 }
	if err := json.Unmarshal(out, &struct {
		FitWall  *float64 `json:"fit_wall"`
		FitCPU   *float64 `json:"fit_cpu"`
		TopkWall *float64 `json:"topk_wall"`
		TopkCPU  *float64 `json:"topk_cpu"`
	}{&r.FitWall, &r.FitCPU, &r.TopkWall, &r.TopkCPU}); err != nil {
		return timing{}, fmt.Errorf("unexpected output %q: %v", out, err)
	}
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	return timing{sec(r.FitWall), sec(r.FitCPU), sec(r.TopkWall), sec(r.TopkCPU)}, nil
}

// writeCSR writes ui for the Python side: users, items, nnz (int64), indptr
// (int64), indices (int32) and confidences 1 + alpha·w (float32), little
// endian.
func writeCSR(path string, ui *ml.Interactions, alpha float64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	conf := make([]float32, len(ui.Weights))
	for i, v := range ui.Weights {
		conf[i] = float32(1 + alpha*float64(v))
	}
	for _, v := range []any{[]int64{int64(ui.NumUsers), int64(ui.NumItems), int64(ui.NNZ())}, ui.Indptr, ui.Indices, conf} {
		if err := binary.Write(w, binary.LittleEndian, v); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// findShared looks for rel beside the repository and up to two levels
// above it (a worktree under work/wt/ sees work/shared two levels up) and
// returns the first candidate when none exists.
func findShared(root, rel string) string {
	first := filepath.Join(root, "..", rel)
	for dir, i := filepath.Dir(root), 0; i < 3; dir, i = filepath.Dir(dir), i+1 {
		if p := filepath.Join(dir, rel); fileExists(p) {
			return p
		}
	}
	return first
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readRatings reads a MovieLens ratings.csv (userId,movieId,rating,...) with
// dense indices in ascending id order and weight = rating.
func readRatings(path string) (*ml.Interactions, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(header) < 3 || header[0] != "userId" || header[1] != "movieId" || header[2] != "rating" {
		return nil, fmt.Errorf("%s: header %v, want userId,movieId,rating,...", path, header)
	}
	var us, is []int64
	var ws []float32
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		u, err1 := strconv.ParseInt(rec[0], 10, 64)
		i, err2 := strconv.ParseInt(rec[1], 10, 64)
		w, err3 := strconv.ParseFloat(rec[2], 32)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		us, is, ws = append(us, u), append(is, i), append(ws, float32(w))
	}
	du, nu := dense(us)
	di, ni := dense(is)
	ui, err := ml.NewInteractions(nu, ni, du, di, ws)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ui, nil
}

// dense maps ids to 0..n-1 in ascending id order.
func dense(ids []int64) ([]int32, int) {
	u := slices.Clone(ids)
	slices.Sort(u)
	u = slices.Compact(u)
	out := make([]int32, len(ids))
	for j, id := range ids {
		p, _ := slices.BinarySearch(u, id)
		out[j] = int32(p)
	}
	return out, len(u)
}
