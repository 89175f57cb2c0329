package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/riffle-dev/riffle/internal/chart"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/ml/eval"
)

// The quality comparison (--quality): for every protocol of ml/eval, riffle's
// iALS and implicit's are trained on the split's train matrix with the same
// hyperparameters, once per seed; implicit's factors are read back into an
// ml.Model, so both models are ranked and scored by the same code
// (eval.Evaluate: the user's train items excluded, ties by item index). As
// a check that the factors were read back right, implicit's own top-K
// (model.recommend) for the first checkUsers users must agree with
// ml.Model.TopK over those factors (positions may differ only where
// float32 scores tie or nearly tie).

// checkUsers is the number of users whose implicit top-K is compared with
// ml.Model.TopK over implicit's factors.
const checkUsers = 200

// minAgreement is the share of top-K positions at which the two must hold
// the same item; factors read back wrong agree at a few percent at most.
const minAgreement = 0.95

// qualityScript fits implicit's CPU ALS on the CSR file once per seed and
// writes its user and item factors (float32, row-major) and its own top-k
// of the first check users (int32) beside prefix.
const qualityScript = `
import json, sys
import numpy as np, scipy.sparse as sp
from threadpoolctl import threadpool_limits
from implicit.cpu.als import AlternatingLeastSquares
path, factors, reg, iters, cg_steps, threads, seeds, prefix, check, k = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), [int(s) for s in sys.argv[7].split(",")], sys.argv[8], int(sys.argv[9]), int(sys.argv[10])
with open(path, "rb") as f:
    users, items, nnz = np.frombuffer(f.read(24), dtype="<i8")
    indptr = np.frombuffer(f.read(8 * (users + 1)), dtype="<i8")
    indices = np.frombuffer(f.read(4 * nnz), dtype="<i4")
    conf = np.frombuffer(f.read(4 * nnz), dtype="<f4")
m = sp.csr_matrix((conf.copy(), indices.copy(), indptr.copy()), shape=(users, items))
out = []
for seed in seeds:
    model = AlternatingLeastSquares(factors=factors, regularization=reg, alpha=1.0, iterations=iters, use_cg=True,
                                    calculate_training_loss=False, num_threads=threads, random_state=seed, dtype=np.float32)
    model.cg_steps = cg_steps
    with threadpool_limits(1, "blas"):
        model.fit(m, show_progress=False)
        n = min(check, users)
        ids, _ = model.recommend(np.arange(n), m[:n], N=k, filter_already_liked_items=True)
    uf, itf = np.ascontiguousarray(model.user_factors, dtype="<f4"), np.ascontiguousarray(model.item_factors, dtype="<f4")
    assert uf.shape == (users, factors) and itf.shape == (items, factors), (uf.shape, itf.shape)
    uf.tofile(f"{prefix}-{seed}-user.f32")
    itf.tofile(f"{prefix}-{seed}-item.f32")
    np.ascontiguousarray(ids, dtype="<i4").tofile(f"{prefix}-{seed}-check.i32")
    out.append({"seed": seed, "check_users": int(n)})
print(json.dumps(out))
`

// qualityRow is one model's figures over the seeds: per K, the NDCG and
// Recall of each seed.
type qualityRow struct {
	model        string
	ndcg, recall map[int][]float64
}

func (r *qualityRow) add(res *eval.Result) {
	for _, a := range res.AtK {
		r.ndcg[a.K] = append(r.ndcg[a.K], a.NDCG)
		r.recall[a.K] = append(r.recall[a.K], a.Recall)
	}
}

func newRow(model string) *qualityRow {
	return &qualityRow{model: model, ndcg: map[int][]float64{}, recall: map[int][]float64{}}
}

// runQuality prints, for every protocol, the Markdown table of riffle's,
// implicit's and popularity's NDCG and Recall at each K (mean ± sample
// s.d. over the seeds 1..seeds) on d, and returns for each K the bar chart
// of the mean NDCGs (groups: protocols; series: the models).
func runQuality(ctx context.Context, w io.Writer, python, dir string, d *eval.Dataset, cfg ml.Config, seeds int, ks []int) ([]*chart.Bars, error) {
	fmt.Fprintf(w, "%d rows, %d users, %d items; factors %d, λ = %g, α = %g, %d iterations, CG %d steps, %d threads; seeds 1..%d (mean ± s.d.)\n\n",
		d.Len(), d.UserIDs.Len(), d.ItemIDs.Len(), cfg.Factors, cfg.Regularization, cfg.Alpha, cfg.Iterations, cfg.CGSteps, cfg.Threads, seeds)
	header := "| protocol | model |"
	sep := "|---|---|"
	for _, k := range ks {
		header += fmt.Sprintf(" NDCG@%d | Recall@%d |", k, k)
		sep += "---|---|"
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, sep)
	maxK := ks[0]
	for _, k := range ks {
		maxK = max(maxK, k)
	}
	var notes []string
	bars := make([]*chart.Bars, len(ks))
	for i, k := range ks {
		bars[i] = &chart.Bars{Title: fmt.Sprintf("NDCG@%d, mean over %d seeds (factors %d)", k, seeds, cfg.Factors), YLabel: fmt.Sprintf("NDCG@%d", k),
			Series: []chart.BarSeries{{Name: "riffle"}, {Name: "implicit"}, {Name: "popularity"}}}
	}
	for _, p := range eval.Protocols {
		s, err := eval.NewSplit(d, p, eval.DefaultTestPercent)
		if err != nil {
			return nil, err
		}
		if s.Stats.EvalUsers == 0 {
			notes = append(notes, fmt.Sprintf("%s: no user to evaluate", p))
			continue
		}
		riffle, implicit, pop := newRow("riffle"), newRow("implicit"), newRow("popularity")
		var seedList []string
		for seed := 1; seed <= seeds; seed++ {
			c := cfg
			c.Seed = int64(seed)
			m, err := ml.Train(ctx, c, s.Train, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: riffle, seed %d: %w", p, seed, err)
			}
			res, err := eval.Evaluate(ctx, s, m, "riffle", ks, cfg.Threads)
			if err != nil {
				return nil, err
			}
			riffle.add(res)
			seedList = append(seedList, strconv.Itoa(seed))
		}
		prefix := filepath.Join(dir, "quality-"+string(p))
		models, agree, err := implicitModels(ctx, python, prefix, s.Train, cfg, seedList, maxK)
		if err != nil {
			return nil, fmt.Errorf("%s: implicit: %w", p, err)
		}
		for _, m := range models {
			res, err := eval.Evaluate(ctx, s, m, "implicit", ks, cfg.Threads)
			if err != nil {
				return nil, err
			}
			implicit.add(res)
		}
		pm, err := eval.Popularity{}.Fit(ctx, s.Train)
		if err != nil {
			return nil, err
		}
		res, err := eval.Evaluate(ctx, s, pm, "popularity", ks, cfg.Threads)
		if err != nil {
			return nil, err
		}
		pop.add(res)
		name := fmt.Sprintf("%s (%d users)", p, s.Stats.EvalUsers)
		for i, k := range ks {
			bars[i].Groups = append(bars[i].Groups, string(p))
			for j, r := range []*qualityRow{riffle, implicit, pop} {
				bars[i].Series[j].Values = append(bars[i].Series[j].Values, mean(r.ndcg[k]))
			}
		}
		for _, r := range []*qualityRow{riffle, implicit, pop} {
			line := fmt.Sprintf("| %s | %s |", name, r.model)
			for _, k := range ks {
				line += fmt.Sprintf(" %s | %s |", meanSD(r.ndcg[k]), meanSD(r.recall[k]))
			}
			fmt.Fprintln(w, line)
		}
		notes = append(notes, fmt.Sprintf("%s: implicit's own top-%d of its first users equals ml.Model.TopK over its factors at %.2f%% of positions", p, maxK, 100*agree))
	}
	fmt.Fprintln(w)
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	return bars, nil
}

// implicitModels trains implicit on train once per seed and returns its
// models as ml.Models, with the share of top-k positions at which
// implicit's own recommendations for the first users agree with
// ml.Model.TopK over its factors (the lowest over the seeds).
func implicitModels(ctx context.Context, python, prefix string, train *ml.Interactions, cfg ml.Config, seeds []string, k int) ([]*ml.Model, float64, error) {
	csr := prefix + ".csr"
	if err := writeCSR(csr, train, cfg.Alpha); err != nil {
		return nil, 0, err
	}
	cmd := exec.CommandContext(ctx, python, "-c", qualityScript, csr, strconv.Itoa(cfg.Factors), strconv.FormatFloat(cfg.Regularization, 'g', -1, 64),
		strconv.Itoa(cfg.Iterations), strconv.Itoa(cfg.CGSteps), strconv.Itoa(cfg.Threads), strings.Join(seeds, ","), prefix, strconv.Itoa(checkUsers), strconv.Itoa(k))
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1", "OMP_NUM_THREADS=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	var runs []struct {
		Seed       int `json:"seed"`
		CheckUsers int `json:"check_users"`
	}
	if err := json.Unmarshal(out, &runs); err != nil || len(runs) != len(seeds) {
		return nil, 0, fmt.Errorf("unexpected output %q: %v", out, err)
	}
	agree := 1.0
	var models []*ml.Model
	for _, r := range runs {
		base := fmt.Sprintf("%s-%d", prefix, r.Seed)
		m := &ml.Model{Factors: cfg.Factors, NumUsers: train.NumUsers, NumItems: train.NumItems}
		if m.UserFactors, err = readFloats(base+"-user.f32", train.NumUsers*cfg.Factors); err != nil {
			return nil, 0, err
		}
		if m.ItemFactors, err = readFloats(base+"-item.f32", train.NumItems*cfg.Factors); err != nil {
			return nil, 0, err
		}
		a, err := agreement(ctx, m, train, base+"-check.i32", r.CheckUsers, k, cfg.Threads)
		if err != nil {
			return nil, 0, err
		}
		if a < minAgreement {
			return nil, 0, fmt.Errorf("seed %d: implicit's top-%d agrees with ml.Model.TopK over its factors at only %.1f%% of positions: the factors were not read back right", r.Seed, k, 100*a)
		}
		agree = min(agree, a)
		models = append(models, m)
	}
	return models, agree, nil
}

// agreement is the share of the top-k positions of the first n users at
// which implicit's list (file path, int32 n×k) and m.TopK hold the same
// item.
func agreement(ctx context.Context, m *ml.Model, train *ml.Interactions, path string, n, k, threads int) (float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if len(data) != 4*n*k {
		return 0, fmt.Errorf("%s: %d bytes, want %d users × %d items", path, len(data), n, k)
	}
	theirs := make([]int32, n*k)
	if _, err := binary.Decode(data, binary.LittleEndian, theirs); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	users := make([]int32, n)
	for i := range users {
		users[i] = int32(i)
	}
	same := make([]int, n)
	err = m.TopK(ctx, users, k, train, threads, func(u int32, items []int32, _ []float32) error {
		for j, it := range items {
			if theirs[int(u)*k+j] == it {
				same[u]++
			}
		}
		return nil
	})
	total := 0
	for _, c := range same {
		total += c
	}
	return float64(total) / float64(n*k), err
}

func readFloats(path string, n int) ([]float32, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) != 4*n {
		return nil, fmt.Errorf("%s: %d bytes, want %d float32s", path, len(data), n)
	}
	out := make([]float32, n)
	if _, err := binary.Decode(data, binary.LittleEndian, out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// meanSD formats the mean and sample standard deviation of xs (the mean
// alone for one value or when all are equal).
func meanSD(xs []float64) string {
	mean := mean(xs)
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	if len(xs) < 2 || ss == 0 {
		return fmt.Sprintf("%.4f", mean)
	}
	return fmt.Sprintf("%.4f ± %.4f", mean, math.Sqrt(ss/float64(len(xs)-1)))
}
