package ml

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// randInteractions draws nnz (user, item, weight) triples, duplicates
// included, with weights in {0.5, 1, ..., 5}.
func randInteractions(t testing.TB, rng *rand.Rand, users, items, nnz int) *Interactions {
	t.Helper()
	us, is, ws := make([]int32, nnz), make([]int32, nnz), make([]float32, nnz)
	for j := range us {
		us[j] = int32(rng.IntN(users))
		is[j] = int32(rng.IntN(items))
		ws[j] = float32(1+rng.IntN(10)) / 2
	}
	m, err := NewInteractions(users, items, us, is, ws)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func randFactors(rng *rand.Rand, n int, scale float64) []float32 {
	f := make([]float32, n)
	for i := range f {
		f[i] = float32(rng.NormFloat64() * scale)
	}
	return f
}

func TestNewInteractionsMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const users, items, n = 37, 23, 600
	us, is, ws := make([]int32, n), make([]int32, n), make([]float32, n)
	want := map[[2]int32]float64{}
	for j := range us {
		us[j], is[j] = int32(rng.IntN(users)), int32(rng.IntN(items))
		ws[j] = float32(rng.IntN(3)) // zeros included: a pair summing to 0 is dropped
		want[[2]int32{us[j], is[j]}] += float64(ws[j])
	}
	m, err := NewInteractions(users, items, us, is, ws)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	got := map[[2]int32]float64{}
	for u := 0; u < users; u++ {
		idx, w := m.Row(u)
		for p, i := range idx {
			got[[2]int32{int32(u), i}] = float64(w[p])
		}
	}
	for key, v := range want {
		if v == 0 {
			delete(want, key)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d pairs, want %d", len(got), len(want))
	}
	for key, v := range want {
		if got[key] != v {
			t.Fatalf("pair %v: weight %v, want %v", key, got[key], v)
		}
	}
	// Transpose equals building from swapped triples.
	tr, err := NewInteractions(items, users, is, us, ws)
	if err != nil {
		t.Fatal(err)
	}
	mt := m.Transpose()
	if err := mt.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mt.Indptr, tr.Indptr) || !slices.Equal(mt.Indices, tr.Indices) || !slices.Equal(mt.Weights, tr.Weights) {
		t.Fatal("Transpose differs from building the item×user matrix directly")
	}
	// weights nil counts each occurrence as 1.
	ones, err := NewInteractions(users, items, us, is, nil)
	if err != nil {
		t.Fatal(err)
	}
	cnt := map[[2]int32]float32{}
	for j := range us {
		cnt[[2]int32{us[j], is[j]}]++
	}
	for u := 0; u < users; u++ {
		idx, w := ones.Row(u)
		for p, i := range idx {
			if cnt[[2]int32{int32(u), i}] != w[p] {
				t.Fatalf("nil weights: pair (%d,%d) weight %v, want %v", u, i, w[p], cnt[[2]int32{int32(u), i}])
			}
		}
	}
}

func TestBadInteractions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		u, i   []int32
		w      []float32
		substr string
	}{
		{"negative", []int32{0, 1}, []int32{0, 1}, []float32{1, -2}, "interaction 1 (user 1, item 1): weight -2 is negative"},
		{"nan", []int32{0, 1, 2}, []int32{0, 1, 1}, []float32{1, 1, float32(math.NaN())}, "interaction 2 (user 2, item 1): weight is NaN"},
		{"inf", []int32{0}, []int32{0}, []float32{float32(math.Inf(1))}, "interaction 0 (user 0, item 0): weight +Inf is infinite"},
		{"user range", []int32{0, 3}, []int32{0, 0}, nil, "interaction 1: user 3 out of range [0,3)"},
		{"item range", []int32{0, 0}, []int32{0, -1}, nil, "interaction 1: item -1 out of range [0,2)"},
		{"lengths", []int32{0, 0}, []int32{0}, nil, "differ in length"},
		{"overflow", []int32{0, 0}, []int32{1, 1}, []float32{math.MaxFloat32, math.MaxFloat32}, "(user 0, item 1): summed weight"},
	} {
		_, err := NewInteractions(3, 2, tc.u, tc.i, tc.w)
		if err == nil || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.substr)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Factors: 8, Regularization: 0.1, Alpha: 1}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mut    func(*Config)
		substr string
	}{
		{func(c *Config) { c.Factors = 0 }, "factors must be > 0"},
		{func(c *Config) { c.Regularization = -1 }, "regularization"},
		{func(c *Config) { c.Regularization = math.NaN() }, "regularization"},
		{func(c *Config) { c.Alpha = -0.5 }, "alpha"},
		{func(c *Config) { c.Iterations = -1 }, "iterations"},
		{func(c *Config) { c.Solver = 7 }, "unknown solver"},
		{func(c *Config) { c.CGSteps = -2 }, "cg steps"},
		{func(c *Config) { c.InitScale = math.Inf(1) }, "init scale"},
		{func(c *Config) { c.FrequencyExponent = -1 }, "frequency exponent"},
	} {
		c := good
		tc.mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("error %v, want one containing %q", err, tc.substr)
		}
		if _, err := Train(context.Background(), c, &Interactions{Indptr: []int64{0}}, nil); err == nil {
			t.Errorf("Train accepted a bad config (%q)", tc.substr)
		}
	}
}

// closedForm solves (YᵀC_uY + λ_uI) x = YᵀC_u p_u with dense matrices in
// gonum's mat: the full N×N diagonal C_u and the full preference vector.
func closedForm(t *testing.T, cfg Config, y []float32, n, k int, idx []int32, w []float32) []float64 {
	t.Helper()
	Y := mat.NewDense(n, k, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			Y.Set(i, j, float64(y[i*k+j]))
		}
	}
	c := make([]float64, n)
	p := make([]float64, n)
	for i := range c {
		c[i] = 1
	}
	wsum := 0.0
	for q, i := range idx {
		c[i] = 1 + cfg.Alpha*float64(w[q])
		p[i] = 1
		wsum += float64(w[q])
	}
	lambda := cfg.Regularization
	if cfg.FrequencyScaled {
		nu := cfg.FrequencyExponent
		if nu == 0 {
			nu = 1
		}
		lambda *= math.Pow((float64(n)+cfg.Alpha*wsum)/float64(n), nu)
	}
	C := mat.NewDiagDense(n, c)
	var CY, A mat.Dense
	CY.Mul(C, Y)
	A.Mul(Y.T(), &CY)
	for j := 0; j < k; j++ {
		A.Set(j, j, A.At(j, j)+lambda)
	}
	var Cp, b, x mat.VecDense
	Cp.MulVec(C, mat.NewVecDense(n, p))
	b.MulVec(Y.T(), &Cp)
	if err := x.SolveVec(&A, &b); err != nil {
		t.Fatal(err)
	}
	return x.RawVector().Data
}

func TestSolveRowsClosedForm(t *testing.T) {
	const users, items, k = 40, 60, 8
	rng := rand.New(rand.NewPCG(3, 4))
	ui := randInteractions(t, rng, users, items, 500)
	y := randFactors(rng, items*k, 0.4)
	gram := make([]float64, k*k)
	Gram(y, k, gram)
	for _, solver := range []Solver{SolverCholesky, SolverCG} {
		for _, freq := range []bool{false, true} {
			cfg := Config{Factors: k, Regularization: 0.3, Alpha: 2.5, FrequencyScaled: freq, Solver: solver, CGSteps: 3 * k, Threads: 3}
			if freq {
				cfg.FrequencyExponent = 0.7
			}
			dst := randFactors(rng, users*k, 0.1) // CG warm start
			if err := SolveRows(context.Background(), cfg, ui, y, gram, dst, nil); err != nil {
				t.Fatal(err)
			}
			for u := 0; u < users; u++ {
				idx, w := ui.Row(u)
				want := closedForm(t, cfg, y, items, k, idx, w)
				for j := 0; j < k; j++ {
					if d := math.Abs(float64(dst[u*k+j]) - want[j]); d > 1e-4 {
						t.Fatalf("%v freq=%v user %d factor %d: %v, closed form %v (diff %g)", solver, freq, u, j, dst[u*k+j], want[j], d)
					}
				}
			}
		}
	}
}

func TestSolveRowsSubset(t *testing.T) {
	const users, items, k = 30, 50, 6
	rng := rand.New(rand.NewPCG(5, 6))
	ui := randInteractions(t, rng, users, items, 300)
	y := randFactors(rng, items*k, 0.4)
	gram := make([]float64, k*k)
	Gram(y, k, gram)
	cfg := Config{Factors: k, Regularization: 0.1, Alpha: 1, Solver: SolverCholesky}
	start := randFactors(rng, users*k, 0.1)
	dst := slices.Clone(start)
	rows := []int32{3, 17, 29}
	if err := SolveRows(context.Background(), cfg, ui, y, gram, dst, rows); err != nil {
		t.Fatal(err)
	}
	for u := 0; u < users; u++ {
		touched := slices.Contains(rows, int32(u))
		same := slices.Equal(dst[u*k:u*k+k], start[u*k:u*k+k])
		if touched == same {
			t.Fatalf("row %d: touched=%v but unchanged=%v", u, touched, same)
		}
	}
}

func TestCGConvergesToCholesky(t *testing.T) {
	const users, items, k = 50, 80, 16
	rng := rand.New(rand.NewPCG(7, 8))
	ui := randInteractions(t, rng, users, items, 900)
	y := randFactors(rng, items*k, 0.3)
	gram := make([]float64, k*k)
	Gram(y, k, gram)
	exact := make([]float32, users*k)
	base := Config{Factors: k, Regularization: 0.05, Alpha: 4}
	ch := base
	ch.Solver = SolverCholesky
	if err := SolveRows(context.Background(), ch, ui, y, gram, exact, nil); err != nil {
		t.Fatal(err)
	}
	start := randFactors(rng, users*k, 0.05)
	prev := math.Inf(1)
	for _, steps := range []int{1, 2, 4, 8, 32} {
		cg := base
		cg.CGSteps = steps
		x := slices.Clone(start)
		if err := SolveRows(context.Background(), cg, ui, y, gram, x, nil); err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i := range x {
			worst = max(worst, math.Abs(float64(x[i]-exact[i])))
		}
		t.Logf("CG %2d steps: max |x − x_cholesky| = %.3g", steps, worst)
		if worst > prev {
			t.Errorf("CG error grew from %g to %g at %d steps", prev, worst, steps)
		}
		prev = worst
	}
	if prev > 1e-4 {
		t.Fatalf("CG with 32 steps is %g from Cholesky, want ≤ 1e-4", prev)
	}
}

func TestGramAndUpdate(t *testing.T) {
	for _, k := range []int{7, 8, 36} { // 8 and 36: the assembly kernel
		testGramAndUpdate(t, 5001, k)
	}
}

func testGramAndUpdate(t *testing.T, n, k int) {
	rng := rand.New(rand.NewPCG(9, uint64(k)))
	y := randFactors(rng, n*k, 1)
	g := make([]float64, k*k)
	Gram(y, k, g)
	for a := 0; a < k; a++ {
		for b := 0; b < k; b++ {
			want := 0.0
			for i := 0; i < n; i++ {
				want += float64(y[i*k+a]) * float64(y[i*k+b])
			}
			if math.Abs(g[a*k+b]-want) > 1e-9*math.Max(1, math.Abs(want)) {
				t.Fatalf("gram[%d,%d] = %v, want %v", a, b, g[a*k+b], want)
			}
		}
	}
	// Replace row 17 (the direct path), then rows 100..139 (the kernel
	// path), then drop rows 200..209 and append 3 new ones; after each,
	// compare with a fresh Gram.
	check := func(what string, y []float32) {
		fresh := make([]float64, k*k)
		Gram(y, k, fresh)
		for i := range g {
			if math.Abs(g[i]-fresh[i]) > 1e-9*math.Max(1, math.Abs(fresh[i])) {
				t.Fatalf("k=%d %s: updated gram[%d] = %v, fresh %v", k, what, i, g[i], fresh[i])
			}
		}
	}
	old := slices.Clone(y[17*k : 18*k])
	copy(y[17*k:18*k], randFactors(rng, k, 1))
	GramUpdate(g, k, old, y[17*k:18*k])
	check("one row", y)
	old = slices.Clone(y[100*k : 140*k])
	copy(y[100*k:140*k], randFactors(rng, 40*k, 1))
	GramUpdate(g, k, old, y[100*k:140*k])
	check("40 rows", y)
	removed := slices.Clone(y[200*k : 210*k])
	added := randFactors(rng, 3*k, 1)
	y = append(slices.Delete(y, 200*k, 210*k), added...)
	GramUpdate(g, k, removed, added)
	check("10 removed, 3 added", y)
}

// bruteLoss evaluates the objective pair by pair.
func bruteLoss(cfg Config, ui *Interactions, m *Model) float64 {
	k := m.Factors
	total := 0.0
	isum := make([]float64, ui.NumItems)
	for u := 0; u < ui.NumUsers; u++ {
		idx, w := ui.Row(u)
		obs := map[int32]float64{}
		wsum := 0.0
		for q, i := range idx {
			obs[i] = float64(w[q])
			wsum += float64(w[q])
			isum[i] += float64(w[q])
		}
		for i := 0; i < ui.NumItems; i++ {
			pred := 0.0
			for j := 0; j < k; j++ {
				pred += float64(m.UserFactors[u*k+j]) * float64(m.ItemFactors[i*k+j])
			}
			c, p := 1.0, 0.0
			if wv, ok := obs[int32(i)]; ok {
				c, p = 1+cfg.Alpha*wv, 1
			}
			total += c * (p - pred) * (p - pred)
		}
		total += cfg.EnsureDefaults().rowLambda(wsum, ui.NumItems) * dot64(m.UserVector(u), m.UserVector(u))
	}
	for i := 0; i < ui.NumItems; i++ {
		total += cfg.EnsureDefaults().rowLambda(isum[i], ui.NumUsers) * dot64(m.ItemVector(i), m.ItemVector(i))
	}
	return total
}

func TestLossDecreasesMonotonically(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	ui := randInteractions(t, rng, 120, 90, 2000)
	for _, solver := range []Solver{SolverCholesky, SolverCG} {
		for _, freq := range []bool{false, true} {
			cfg := Config{Factors: 10, Regularization: 0.2, Alpha: 3, FrequencyScaled: freq, Solver: solver, Iterations: 8, Seed: 1, InitScale: 0.1}
			var losses []float64
			m, err := Train(context.Background(), cfg, ui, func(_ int, loss float64) { losses = append(losses, loss) })
			if err != nil {
				t.Fatal(err)
			}
			if bl := bruteLoss(cfg, ui, m); math.Abs(bl-losses[len(losses)-1]) > 1e-6*bl {
				t.Fatalf("Loss %v, pair-by-pair %v", losses[len(losses)-1], bl)
			}
			for i := 1; i < len(losses); i++ {
				if losses[i] > losses[i-1]*(1+1e-6) {
					t.Fatalf("%v freq=%v: loss rose from %v to %v at iteration %d", solver, freq, losses[i-1], losses[i], i+1)
				}
			}
			t.Logf("%v freq=%v: loss %v → %v", solver, freq, losses[0], losses[len(losses)-1])
		}
	}
}

func TestTrainDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	ui := randInteractions(t, rng, 700, 300, 8000)
	train := func(threads int, seed int64, s Solver) *Model {
		m, err := Train(context.Background(), Config{Factors: 12, Regularization: 0.1, Alpha: 2, Iterations: 3, Seed: seed, Threads: threads, Solver: s}, ui, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, s := range []Solver{SolverCG, SolverCholesky} {
		a := train(1, 5, s)
		for _, th := range []int{1, 2, 5} {
			b := train(th, 5, s)
			if !slices.Equal(a.UserFactors, b.UserFactors) || !slices.Equal(a.ItemFactors, b.ItemFactors) {
				t.Fatalf("%v: factors at %d threads differ from 1 thread", s, th)
			}
		}
		if c := train(2, 6, s); slices.Equal(a.UserFactors, c.UserFactors) {
			t.Fatalf("%v: seeds 5 and 6 gave the same factors", s)
		}
	}
}

func TestNumericalTroubleNamesRow(t *testing.T) {
	const users, items, k = 10, 20, 4
	rng := rand.New(rand.NewPCG(15, 16))
	ui := randInteractions(t, rng, users, items, 80)
	ctx := context.Background()
	// All-zero item factors with λ = 0: every normal-equation matrix is 0.
	zero := make([]float32, items*k)
	g := make([]float64, k*k)
	dst := make([]float32, users*k)
	err := SolveRows(ctx, Config{Factors: k, Solver: SolverCholesky}, ui, zero, g, dst, []int32{7, 4})
	var re *RowError
	if !errors.As(err, &re) || re.Row != 4 || !errors.Is(err, ErrNumerical) || !strings.Contains(err.Error(), "singular") {
		t.Fatalf("singular Cholesky: got %v, want a RowError for row 4", err)
	}
	// A NaN in one item's factor (the Gram matrix computed before it went
	// bad): exactly the users who have that item fail, the lowest is named.
	y := randFactors(rng, items*k, 0.3)
	Gram(y, k, g)
	const bad = 5
	y[bad*k+2] = float32(math.NaN())
	var affected []int32
	for u := 0; u < users; u++ {
		if idx, _ := ui.Row(u); slices.Contains(idx, bad) {
			affected = append(affected, int32(u))
		}
	}
	if len(affected) < 2 {
		t.Fatal("fewer than two users have the bad item")
	}
	for _, s := range []Solver{SolverCG, SolverCholesky} {
		start := randFactors(rng, users*k, 0.1)
		dst := slices.Clone(start)
		err = SolveRows(ctx, Config{Factors: k, Regularization: 0.1, Alpha: 1, Solver: s, Threads: 2}, ui, y, g, dst, nil)
		if !errors.As(err, &re) || !errors.Is(err, ErrNumerical) || re.Row != int(affected[0]) || !slices.Equal(re.Failed, affected) {
			t.Fatalf("%v with a NaN factor: got %v, want a RowError for users %v", s, err, affected)
		}
		// Failed rows are rolled back; the others are solved.
		for u := 0; u < users; u++ {
			same := slices.Equal(dst[u*k:u*k+k], start[u*k:u*k+k])
			if same != slices.Contains(affected, int32(u)) {
				t.Fatalf("%v: user %d unchanged=%v, failed=%v", s, u, same, slices.Contains(affected, int32(u)))
			}
		}
		t.Logf("%v: %v", s, err)
	}
	// Tiny item factors (1e-39) and λ = 0 make every exact solution about
	// 1e39, beyond float32: the Cholesky solve writes it, sees the infinity
	// and must roll each row back to its previous value.
	tiny := randFactors(rng, items*k, 1)
	for i := range tiny {
		tiny[i] *= 1e-39
	}
	Gram(tiny, k, g)
	start := randFactors(rng, users*k, 0.1)
	dst = slices.Clone(start)
	err = SolveRows(ctx, Config{Factors: k, Alpha: 1, Solver: SolverCholesky}, ui, tiny, g, dst, nil)
	if !errors.As(err, &re) || len(re.Failed) < users/2 || !strings.Contains(err.Error(), "infinite") {
		t.Fatalf("overflowing solutions: got %v, want most users to fail", err)
	}
	for _, u := range re.Failed {
		if !slices.Equal(dst[int(u)*k:int(u)*k+k], start[int(u)*k:int(u)*k+k]) {
			t.Fatalf("failed user %d was not rolled back: %v", u, dst[int(u)*k:int(u)*k+k])
		}
	}
	// Train names the side: 2 users cannot span K = 4 dimensions, so with
	// λ = 0 every item's normal equations are singular.
	two, err := NewInteractions(2, 6, []int32{0, 1, 1}, []int32{0, 3, 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Train(ctx, Config{Factors: k, Alpha: 1, Solver: SolverCholesky, Iterations: 1}, two, nil)
	if !errors.As(err, &re) || re.Side != "item" || re.Row != 0 || !strings.Contains(err.Error(), "item 0") {
		t.Fatalf("Train: got %v, want a singular item 0", err)
	}
}

func TestSolveRowsShapes(t *testing.T) {
	ui := &Interactions{NumUsers: 2, NumItems: 3, Indptr: []int64{0, 0, 0}}
	cfg := Config{Factors: 2}
	if err := SolveRows(context.Background(), cfg, ui, make([]float32, 5), make([]float64, 4), make([]float32, 4), nil); err == nil {
		t.Fatal("accepted fixed factors of the wrong length")
	}
	if err := SolveRows(context.Background(), cfg, ui, make([]float32, 6), make([]float64, 4), make([]float32, 4), []int32{2}); err == nil {
		t.Fatal("accepted an out-of-range row")
	}
}

// bruteTopK ranks all non-excluded items by a full sort.
func bruteTopK(m *Model, u int, k int, exclude *Interactions) ([]int32, []float32) {
	var ex []int32
	if exclude != nil {
		ex, _ = exclude.Row(u)
	}
	type cand struct {
		item  int32
		score float32
	}
	var cs []cand
	for i := 0; i < m.NumItems; i++ {
		if slices.Contains(ex, int32(i)) {
			continue
		}
		var s float32
		// Same float32 arithmetic as the kernel is not assumed: scores
		// below are compared with a tolerance, ranks by the ordering rule.
		for j := 0; j < m.Factors; j++ {
			s += m.UserFactors[u*m.Factors+j] * m.ItemFactors[i*m.Factors+j]
		}
		cs = append(cs, cand{int32(i), s})
	}
	sort.Slice(cs, func(a, b int) bool {
		if cs[a].score != cs[b].score {
			return cs[a].score > cs[b].score
		}
		return cs[a].item < cs[b].item
	})
	cs = cs[:min(k, len(cs))]
	items, scores := make([]int32, len(cs)), make([]float32, len(cs))
	for i, c := range cs {
		items[i], scores[i] = c.item, c.score
	}
	return items, scores
}

func TestTopKMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	const users, items, k = 150, 1300, 8 // items span several 512-item tiles
	m := &Model{Factors: k, NumUsers: users, NumItems: items}
	// Small integer factors: dot products are exact in float32 whatever the
	// summation order, and many scores tie, exercising the tie rule.
	m.UserFactors = make([]float32, users*k)
	m.ItemFactors = make([]float32, items*k)
	for i := range m.UserFactors {
		m.UserFactors[i] = float32(rng.IntN(5) - 2)
	}
	for i := range m.ItemFactors {
		m.ItemFactors[i] = float32(rng.IntN(5) - 2)
	}
	ex := randInteractions(t, rng, users, items, 20000)
	// User 3 excludes all but 4 items: fewer than k results.
	{
		us, is := []int32{}, []int32{}
		for i := 0; i < items; i++ {
			if i%400 != 7 {
				us, is = append(us, 3), append(is, int32(i))
			}
		}
		for u := 0; u < users; u++ {
			if u == 3 {
				continue
			}
			idx, _ := ex.Row(u)
			for _, i := range idx {
				us, is = append(us, int32(u)), append(is, i)
			}
		}
		var err error
		if ex, err = NewInteractions(users, items, us, is, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		users   []int32
		kk      int
		exclude *Interactions
		threads int
	}{
		{nil, 10, ex, 1},
		{nil, 10, ex, 3},
		{[]int32{149, 3, 0, 77, 3}, 25, ex, 2},
		{nil, 7, nil, 2},
		{[]int32{5}, items + 10, nil, 1},
	} {
		var seen []int32
		err := m.TopK(context.Background(), tc.users, tc.kk, tc.exclude, tc.threads, func(u int32, its []int32, sc []float32) error {
			seen = append(seen, u)
			wi, ws := bruteTopK(m, int(u), tc.kk, tc.exclude)
			if !slices.Equal(its, wi) || !slices.Equal(sc, ws) {
				t.Fatalf("user %d (k=%d): got %v %v, want %v %v", u, tc.kk, its, sc, wi, ws)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := tc.users
		if want == nil {
			for u := 0; u < users; u++ {
				want = append(want, int32(u))
			}
		}
		if !slices.Equal(seen, want) {
			t.Fatalf("users visited %v, want %v", seen, want)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := m.TopK(context.Background(), nil, 3, nil, 2, func(int32, []int32, []float32) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("callback error: got %v after %d calls", err, calls)
	}
	if err := m.TopK(context.Background(), []int32{users}, 3, nil, 2, nil); err == nil {
		t.Fatal("accepted an out-of-range user")
	}
}

func TestTopKRealValuedScores(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	const users, items, k = 70, 2000, 32
	m := &Model{Factors: k, NumUsers: users, NumItems: items, UserFactors: randFactors(rng, users*k, 1), ItemFactors: randFactors(rng, items*k, 1)}
	ex := randInteractions(t, rng, users, items, 5000)
	err := m.TopK(context.Background(), nil, 20, ex, 2, func(u int32, its []int32, sc []float32) error {
		wi, ws := bruteTopK(m, int(u), 20, ex)
		// Summation order may differ: allow near-ties to swap, but scores
		// must agree to float32 rounding and every returned item be a
		// non-excluded item whose exact score is within rounding of the
		// brute-force k-th.
		for r := range wi {
			if math.Abs(float64(sc[r]-ws[r])) > 1e-4 {
				t.Fatalf("user %d rank %d: score %v, want %v", u, r, sc[r], ws[r])
			}
		}
		exRow, _ := ex.Row(int(u))
		for _, i := range its {
			if slices.Contains(exRow, i) {
				t.Fatalf("user %d: excluded item %d recommended", u, i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFitResumes(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	ui := randInteractions(t, rng, 200, 120, 3000)
	cfg := Config{Factors: 16, Regularization: 0.1, Alpha: 2, Iterations: 6, Seed: 3}
	whole, err := Train(context.Background(), cfg, ui, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Iterations = 3
	half, err := Train(context.Background(), cfg, ui, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := half.Fit(context.Background(), cfg, ui, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(whole.UserFactors, half.UserFactors) || !slices.Equal(whole.ItemFactors, half.ItemFactors) {
		t.Fatal("3 + 3 iterations differ from 6")
	}
	for u := 0; u < 5; u++ {
		for i := 0; i < 5; i++ {
			if d := math.Abs(float64(half.Score(u, i)) - dot64(half.UserVector(u), half.ItemVector(i))); d > 1e-5 {
				t.Fatalf("Score(%d,%d) off by %g", u, i, d)
			}
		}
	}
	cfg.Factors = 8
	if err := half.Fit(context.Background(), cfg, ui, nil); err == nil || !strings.Contains(err.Error(), "16 factors") {
		t.Fatalf("Fit with the wrong factor count: %v", err)
	}
}

func TestEmptyShapes(t *testing.T) {
	ctx := context.Background()
	for _, shape := range [][2]int{{0, 0}, {5, 0}, {0, 7}, {3, 4}} {
		ui, err := NewInteractions(shape[0], shape[1], nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []Solver{SolverCG, SolverCholesky} {
			m, err := Train(ctx, Config{Factors: 8, Regularization: 0.1, Iterations: 2, Solver: s}, ui, func(int, float64) {})
			if err != nil {
				t.Fatalf("%v on %v: %v", s, shape, err)
			}
			// No interactions: the minimiser is all zeros (CG from the
			// random start gets there up to float32 rounding).
			for _, v := range append(slices.Clone(m.UserFactors), m.ItemFactors...) {
				if math.Abs(float64(v)) > 1e-6 {
					t.Fatalf("%v on %v: nonzero factor %v", s, shape, v)
				}
			}
			calls := 0
			if err := m.TopK(ctx, nil, 3, ui, 2, func(_ int32, items []int32, _ []float32) error {
				calls++
				if len(items) != min(3, shape[1]) {
					t.Fatalf("%v: %d items", shape, len(items))
				}
				return nil
			}); err != nil || calls != shape[0] {
				t.Fatalf("TopK on %v: %v after %d calls", shape, err, calls)
			}
		}
	}
}

func TestCancel(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	ui := randInteractions(t, rng, 500, 100, 3000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, Config{Factors: 8, Iterations: 2}, ui, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Train on a cancelled context: %v", err)
	}
	m := NewModel(Config{Factors: 8}, 500, 100)
	if err := m.TopK(ctx, nil, 5, nil, 2, func(int32, []int32, []float32) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("TopK on a cancelled context: %v", err)
	}
}

func TestSolveRowsRejectsBadCSR(t *testing.T) {
	// Hand-built matrices reach the kernels, which index without bounds
	// checks: a bad column or offset must be refused first.
	cfg := Config{Factors: 8, Regularization: 0.1}
	fixed, g := make([]float32, 3*8), make([]float64, 64)
	for _, m := range []*Interactions{
		{NumUsers: 2, NumItems: 3, Indptr: []int64{0, 1, 2}, Indices: []int32{0, 3}, Weights: []float32{1, 1}},
		{NumUsers: 2, NumItems: 3, Indptr: []int64{0, 1, 2}, Indices: []int32{-1, 2}, Weights: []float32{1, 1}},
		{NumUsers: 2, NumItems: 3, Indptr: []int64{0, 2, 1}, Indices: []int32{0}, Weights: []float32{1}},
	} {
		if err := SolveRows(context.Background(), cfg, m, fixed, g, make([]float32, 16), nil); err == nil {
			t.Fatalf("accepted %+v", m)
		}
	}
}

// TestSolveRowsGroupingInvariant: a row's solution does not depend on which
// rows it is solved with (CG solves four in lockstep), so re-solving a
// subset gives bitwise the rows a full solve gives.
func TestSolveRowsGroupingInvariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	for _, k := range []int{16, 24, 64} {
		ui := randInteractions(t, rng, 90, 70, 1500)
		y := randFactors(rng, 70*k, 0.3)
		g := make([]float64, k*k)
		Gram(y, k, g)
		cfg := Config{Factors: k, Regularization: 0.1, Alpha: 2, CGSteps: 4}
		start := randFactors(rng, 90*k, 0.1)
		all := slices.Clone(start)
		if err := SolveRows(context.Background(), cfg, ui, y, g, all, nil); err != nil {
			t.Fatal(err)
		}
		sub := slices.Clone(start)
		rows := []int32{88, 5, 6, 40, 41, 2, 77} // a group of four and one of three
		if err := SolveRows(context.Background(), cfg, ui, y, g, sub, rows); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if !slices.Equal(sub[int(r)*k:int(r)*k+k], all[int(r)*k:int(r)*k+k]) {
				t.Fatalf("k=%d row %d differs when solved in another group", k, r)
			}
		}
	}
}

func TestScorerSnapshotAndConcurrency(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	const users, items, k = 40, 700, 16
	m := &Model{Factors: k, NumUsers: users, NumItems: items, UserFactors: randFactors(rng, users*k, 1), ItemFactors: randFactors(rng, items*k, 1)}
	ex := randInteractions(t, rng, users, items, 3000)
	sc, err := m.NewScorer()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32][]int32{}
	for u := int32(0); u < users; u++ {
		want[u], _ = bruteTopK(m, int(u), 10, ex)
	}
	// The item factors are snapshotted: changing the model's items after
	// NewScorer does not change the Scorer's answers.
	saved := slices.Clone(m.ItemFactors)
	for i := range m.ItemFactors {
		m.ItemFactors[i] = -m.ItemFactors[i]
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := int32(g); u < users; u += 8 {
				err := sc.TopK(context.Background(), []int32{u}, 10, ex, 1, func(uu int32, its []int32, _ []float32) error {
					if !slices.Equal(its, want[uu]) {
						return fmt.Errorf("user %d: %v, want %v", uu, its, want[uu])
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	copy(m.ItemFactors, saved)
}
