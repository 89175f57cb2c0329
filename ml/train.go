package ml

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Model holds the factors: UserFactors is NumUsers×Factors and ItemFactors
// NumItems×Factors, both row-major, so user u's vector is
// UserFactors[u*Factors:(u+1)*Factors]. The predicted preference of (u, i)
// is the dot product of the two rows.
type Model struct {
	Factors            int
	NumUsers, NumItems int
	UserFactors        []float32
	ItemFactors        []float32
}

// UserVector returns user u's factor row (borrowed).
func (m *Model) UserVector(u int) []float32 { return m.UserFactors[u*m.Factors : (u+1)*m.Factors] }

// ItemVector returns item i's factor row (borrowed).
func (m *Model) ItemVector(i int) []float32 { return m.ItemFactors[i*m.Factors : (i+1)*m.Factors] }

// Score is the predicted preference of user u for item i.
func (m *Model) Score(u, i int) float32 { return dot(m.UserVector(u), m.ItemVector(i)) }

// ErrNumerical classifies numerical trouble: a NaN or infinite factor, a
// diverging conjugate-gradient solve or a singular normal-equation matrix.
// The error returned is a *RowError naming the row; errors.Is(err,
// ErrNumerical) holds for it.
var ErrNumerical = errors.New("ml: numerical trouble")

// RowError reports numerical trouble in one row's solve.
type RowError struct {
	Side   string  // "user" or "item" when known (Train sets it), else ""
	Row    int     // the lowest failing row's dense index
	Reason string  // what went wrong in that row
	Failed []int32 // every failing row, ascending (Row is Failed[0])
}

func (e *RowError) Error() string {
	side := e.Side
	if side == "" {
		side = "row"
	}
	if len(e.Failed) > 1 {
		return fmt.Sprintf("ml: %s %d: %s (and %d more %ss)", side, e.Row, e.Reason, len(e.Failed)-1, side)
	}
	return fmt.Sprintf("ml: %s %d: %s", side, e.Row, e.Reason)
}

func (e *RowError) Unwrap() error { return ErrNumerical }

// NewModel allocates a model whose factors are drawn uniformly from
// [0, cfg.InitScale) by a generator seeded with cfg.Seed: users first, then
// items, row by row, so the same seed gives the same start at any thread
// count.
func NewModel(cfg Config, numUsers, numItems int) *Model {
	cfg = cfg.EnsureDefaults()
	k := cfg.Factors
	m := &Model{Factors: k, NumUsers: numUsers, NumItems: numItems,
		UserFactors: make([]float32, numUsers*k), ItemFactors: make([]float32, numItems*k)}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15))
	s := float32(cfg.InitScale)
	for i := range m.UserFactors {
		m.UserFactors[i] = rng.Float32() * s
	}
	for i := range m.ItemFactors {
		m.ItemFactors[i] = rng.Float32() * s
	}
	return m
}

// Train fits an iALS model (Hu, Koren and Volinsky 2008) to ui, the
// user×item interactions, from NewModel's seeded start: cfg.Iterations
// sweeps of Model.Fit. Rows are solved in parallel on cfg.Threads
// goroutines; each row's solve reads only shared inputs and its own
// previous factor, so the result is bitwise the same for a seed at any
// thread count.
func Train(ctx context.Context, cfg Config, ui *Interactions, progress func(iter int, loss float64)) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := NewModel(cfg, ui.NumUsers, ui.NumItems)
	if err := m.Fit(ctx, cfg, ui, progress); err != nil {
		return nil, err
	}
	return m, nil
}

// Fit runs cfg.Iterations ALS sweeps on ui starting from m's current
// factors (a warm start: resuming training, or retraining after new
// interactions without losing the model): each sweep solves every user
// against the item factors, then every item against the user factors.
// progress, when set, is called after each sweep with the loss (which
// costs about one more half-epoch of arithmetic). ui must be
// m.NumUsers×m.NumItems and cfg.Factors m.Factors. On error m holds the
// factors of the last completed half-epoch, failed rows rolled back.
func (m *Model) Fit(ctx context.Context, cfg Config, ui *Interactions, progress func(iter int, loss float64)) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.EnsureDefaults()
	if len(ui.Indptr) != ui.NumUsers+1 || len(ui.Indices) != len(ui.Weights) {
		return fmt.Errorf("ml: fit: interactions are not a valid CSR matrix")
	}
	if ui.NumUsers != m.NumUsers || ui.NumItems != m.NumItems || cfg.Factors != m.Factors {
		return fmt.Errorf("ml: fit: model is %d×%d with %d factors, interactions %d×%d, config %d factors",
			m.NumUsers, m.NumItems, m.Factors, ui.NumUsers, ui.NumItems, cfg.Factors)
	}
	iu := ui.Transpose()
	k := cfg.Factors
	gram := make([]float64, k*k)
	for it := 1; it <= cfg.Iterations; it++ {
		gramThreads(m.ItemFactors, k, gram, cfg.Threads)
		if err := SolveRows(ctx, cfg, ui, m.ItemFactors, gram, m.UserFactors, nil); err != nil {
			return sideError(err, "user", it)
		}
		gramThreads(m.UserFactors, k, gram, cfg.Threads)
		if err := SolveRows(ctx, cfg, iu, m.UserFactors, gram, m.ItemFactors, nil); err != nil {
			return sideError(err, "item", it)
		}
		if progress != nil {
			progress(it, Loss(cfg, ui, m))
		}
	}
	return nil
}

func sideError(err error, side string, it int) error {
	var re *RowError
	if errors.As(err, &re) {
		re.Side = side
	}
	return fmt.Errorf("ml: iteration %d, solving %ss: %w", it, side, err)
}

// SolveRows solves, for each row r of m (every row when rows is nil, else
// the listed ones), the iALS normal equations
//
//	(FᵀC_rF + λ_r I) x = FᵀC_r p_r
//
// against the fixed other-side factors F (fixed, m.NumItems×K row-major),
// using the Gram trick: gram must hold FᵀF (K×K, float64, as Gram
// computes), so only row r's own interactions are visited:
// FᵀC_rF = FᵀF + Σ_{i∈I_r} (c_ri − 1) f_i f_iᵀ. The solution is written to
// dst[r*K:(r+1)*K]; with SolverCG the value found there is the warm start.
// Rows are solved in parallel on cfg.Threads goroutines. On numerical
// trouble it returns a *RowError naming the lowest failing row and listing
// all of them; each failed row is rolled back to the value it had before
// the call, the others keep their new values.
func SolveRows(ctx context.Context, cfg Config, m *Interactions, fixed []float32, gram []float64, dst []float32, rows []int32) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.EnsureDefaults()
	k := cfg.Factors
	if len(fixed) != m.NumItems*k || len(gram) != k*k || len(dst) != m.NumUsers*k {
		return fmt.Errorf("ml: solve: shapes disagree: %d×%d interactions, %d fixed factors, %d gram, %d dst for K=%d",
			m.NumUsers, m.NumItems, len(fixed), len(gram), len(dst), k)
	}
	n := m.NumUsers
	if rows != nil {
		n = len(rows)
		for _, r := range rows {
			if r < 0 || int(r) >= m.NumUsers {
				return fmt.Errorf("ml: solve: row %d out of range [0,%d)", r, m.NumUsers)
			}
		}
	}
	// The kernels index fixed by these without bounds checks.
	if len(m.Indptr) != m.NumUsers+1 || m.Indptr[0] != 0 || m.Indptr[m.NumUsers] != int64(len(m.Indices)) || len(m.Weights) != len(m.Indices) {
		return fmt.Errorf("ml: solve: interactions are not a valid CSR matrix")
	}
	// Only the rows to solve, so that re-solving a few touched rows (the
	// incremental path) does not scan the whole matrix.
	checkRow := func(r int) error {
		lo, hi := m.Indptr[r], m.Indptr[r+1]
		if lo > hi || hi > int64(len(m.Indices)) {
			return fmt.Errorf("ml: solve: row %d: bad row offsets", r)
		}
		for _, i := range m.Indices[lo:hi] {
			if i < 0 || int(i) >= m.NumItems {
				return fmt.Errorf("ml: solve: row %d: interaction column %d out of range [0,%d)", r, i, m.NumItems)
			}
		}
		return nil
	}
	if rows == nil {
		for r := 0; r < m.NumUsers; r++ {
			if err := checkRow(r); err != nil {
				return err
			}
		}
	} else {
		for _, r := range rows {
			if err := checkRow(int(r)); err != nil {
				return err
			}
		}
	}
	return solveRows(ctx, cfg, m, m.NumItems, fixed, gram, dst, rows, n)
}

// rowSource gives a row's interactions (partner columns and weights):
// *Interactions, or the incremental model's histories (Online), which
// are solved where they are rather than copied into a CSR first.
type rowSource interface {
	Row(r int) ([]int32, []float32)
}

// solveRows is SolveRows on rows of src whose columns are known to be in
// [0, cols) (the kernels index fixed by them without bounds checks): n
// rows, rows[j] or j; cfg has its defaults.
func solveRows(ctx context.Context, cfg Config, src rowSource, cols int, fixed []float32, gram []float64, dst []float32, rows []int32, n int) error {
	k := cfg.Factors
	g32 := make([]float32, k*k)
	for i, v := range gram {
		g32[i] = float32(v)
	}
	s := &solver{cfg: cfg, k: k, m: src, cols: cols, fixed: fixed, gram: gram, gram32: g32, dst: dst}
	var (
		mu     sync.Mutex
		first  *RowError
		failed []int32
		bufs   = make([]*scratch, cfg.Threads)
		worker atomic.Int32
	)
	err := parallelChunks(ctx, cfg.Threads, n, 64, func(lo, hi int, w *int) error {
		if *w < 0 {
			*w = int(worker.Add(1) - 1)
			bufs[*w] = newScratch(k, cfg.Solver)
		}
		sc := bufs[*w]
		var group [4]int
		var reasons [4]string
		for j := lo; j < hi; j += 4 {
			g := group[:min(4, hi-j)]
			for t := range g {
				g[t] = j + t
				if rows != nil {
					g[t] = int(rows[j+t])
				}
			}
			s.solveGroup(g, sc, reasons[:len(g)])
			for t, r := range g {
				if reasons[t] == "" {
					continue
				}
				mu.Lock()
				failed = append(failed, int32(r))
				if first == nil || r < first.Row {
					first = &RowError{Row: r, Reason: reasons[t]}
				}
				mu.Unlock()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if first != nil {
		slices.Sort(failed)
		first.Failed = failed
		return first
	}
	return nil
}

// parallelChunks runs fn over [0,n) in chunks of size chunk claimed in turn
// by threads goroutines; w is per-goroutine state starting at -1. It stops
// claiming chunks when ctx is done and returns ctx's error or fn's first.
func parallelChunks(ctx context.Context, threads, n, chunk int, fn func(lo, hi int, w *int) error) error {
	chunks := (n + chunk - 1) / chunk
	if chunks == 0 {
		return ctx.Err()
	}
	if threads > chunks {
		threads = chunks
	}
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		ferr    error
		stop    atomic.Bool
	)
	run := func() {
		defer wg.Done()
		w := -1
		for !stop.Load() {
			c := int(next.Add(1) - 1)
			if c >= chunks {
				return
			}
			if err := ctx.Err(); err != nil {
				errOnce.Do(func() { ferr = err })
				stop.Store(true)
				return
			}
			lo, hi := c*chunk, min((c+1)*chunk, n)
			if err := fn(lo, hi, &w); err != nil {
				errOnce.Do(func() { ferr = err })
				stop.Store(true)
				return
			}
		}
	}
	wg.Add(threads)
	for t := 1; t < threads; t++ {
		go run()
	}
	run()
	wg.Wait()
	return ferr
}

type solver struct {
	cfg    Config
	k      int
	m      rowSource
	cols   int // the other side's rows (m's columns)
	fixed  []float32
	gram   []float64
	gram32 []float32
	dst    []float32
}

type scratch struct {
	x4, r4, p4, ap4 []float32    // CG vectors of a group of four rows
	c, cm1, zero    [4][]float32 // CG per-interaction coefficients per row
	a, b            []float64    // Cholesky
	y               []float64
	y4              []float64 // four scaled rows for the Gram kernel
	prev            []float32 // the group's factors before the solve, for rollback
}

func newScratch(k int, s Solver) *scratch {
	sc := &scratch{prev: make([]float32, 4*k)}
	if s == SolverCholesky {
		sc.a, sc.b, sc.y, sc.y4 = make([]float64, k*k), make([]float64, k), make([]float64, k), make([]float64, 4*k)
	} else {
		sc.x4, sc.r4, sc.p4, sc.ap4 = make([]float32, 4*k), make([]float32, 4*k), make([]float32, 4*k), make([]float32, 4*k)
	}
	return sc
}

// solveGroup solves up to four rows into dst, writing each row's failure
// reason (or "") into reasons. CG solves them in lockstep so that one pass
// over the Gram matrix serves all four (symv4); each row's arithmetic is
// the same as if it were solved alone, so grouping does not change the
// result. A failed row is rolled back.
func (s *solver) solveGroup(rows []int, sc *scratch, reasons []string) {
	k := s.k
	var lambdas [4]float64
	for g, r := range rows {
		reasons[g] = ""
		copy(sc.prev[g*k:g*k+k], s.dst[r*k:r*k+k])
		wsum := 0.0
		if s.cfg.FrequencyScaled {
			_, w := s.m.Row(r)
			for _, v := range w {
				wsum += float64(v)
			}
		}
		lambdas[g] = s.cfg.rowLambda(wsum, s.cols)
	}
	if s.cfg.Solver == SolverCholesky {
		for g, r := range rows {
			idx, w := s.m.Row(r)
			reasons[g] = s.cholesky(idx, w, lambdas[g], s.dst[r*k:r*k+k], sc)
		}
	} else {
		s.cgGroup(rows, lambdas[:len(rows)], sc, reasons)
	}
	for g, r := range rows {
		x := s.dst[r*k : r*k+k]
		if reasons[g] == "" {
			for _, v := range x {
				if v-v != 0 { // NaN or ±Inf
					reasons[g] = "solution has a NaN or infinite factor"
					break
				}
			}
		}
		if reasons[g] != "" {
			copy(x, sc.prev[g*k:g*k+k]) // roll the row back
		}
	}
}

// cgGroup runs the conjugate-gradient steps on (G + λI + Σ(c−1)f fᵀ) x =
// Σ c f for up to four rows from their current x, in float32: each product
// visits only the row's interactions plus one K×K matrix-vector product,
// shared by the group. A row stops early when its residual vanishes or it
// fails; the others go on.
func (s *solver) cgGroup(rows []int, lambdas []float64, sc *scratch, reasons []string) {
	k := s.k
	n := len(rows)
	alpha := float32(s.cfg.Alpha)
	x4, r4, p4, ap4 := sc.x4, sc.r4, sc.p4, sc.ap4
	var (
		rs, rs0 [4]float64
		done    [4]bool
		lam     [4]float32
	)
	for g, r := range rows {
		copy(x4[g*k:g*k+k], s.dst[r*k:r*k+k])
		lam[g] = float32(lambdas[g])
	}
	// r = b − A x = Σ [c − (c−1)(f·x)] f − (G + λI) x
	symv4(s.gram32, k, x4, r4, n)
	for g, row := range rows {
		idx, w := s.m.Row(row)
		// Per-interaction coefficients: c = 1 + αw and c − 1 = αw.
		if cap(sc.c[g]) < len(idx) {
			sc.c[g], sc.cm1[g], sc.zero[g] = make([]float32, len(idx)), make([]float32, len(idx)), make([]float32, len(idx))
		}
		c, cm1 := sc.c[g][:len(idx)], sc.cm1[g][:len(idx)]
		for j, v := range w {
			cm1[j] = -alpha * v
			c[j] = 1 - cm1[j]
		}
		x, r := s.dst[row*k:row*k+k], r4[g*k:g*k+k]
		for j := range r {
			r[j] = -r[j] - lam[g]*x[j]
		}
		gatherDotAxpy(s.fixed, k, idx, c, cm1, x, r)
		for j := range cm1 {
			cm1[j] = -cm1[j]
		}
		copy(p4[g*k:g*k+k], r)
		rs[g] = float64(dot(r, r))
		rs0[g] = rs[g]
	}
	for step := 0; step < s.cfg.CGSteps; step++ {
		active := false
		for g := range rows {
			if rs[g] < 1e-20 {
				done[g] = true
			}
			active = active || !done[g]
		}
		if !active {
			break
		}
		symv4(s.gram32, k, p4, ap4, n)
		for g, row := range rows {
			if done[g] {
				continue
			}
			idx, _ := s.m.Row(row)
			x, r, p, ap := s.dst[row*k:row*k+k], r4[g*k:g*k+k], p4[g*k:g*k+k], ap4[g*k:g*k+k]
			axpy(lam[g], p, ap)
			gatherDotAxpy(s.fixed, k, idx, sc.zero[g][:len(idx)], sc.cm1[g][:len(idx)], p, ap)
			pap := float64(dot(p, ap))
			if math.IsNaN(pap) || math.IsInf(pap, 0) {
				reasons[g], done[g] = fmt.Sprintf("conjugate gradient: pᵀAp is %g at step %d (a NaN or infinite input)", pap, step), true
				continue
			}
			if !(pap > 0) {
				reasons[g], done[g] = fmt.Sprintf("conjugate gradient: pᵀAp = %g at step %d, the matrix is not positive definite", pap, step), true
				continue
			}
			a := float32(rs[g] / pap)
			axpy(a, p, x)
			axpy(-a, ap, r)
			rsNew := float64(dot(r, r))
			if math.IsNaN(rsNew) || math.IsInf(rsNew, 0) || rsNew > 1e12*rs0[g] {
				reasons[g], done[g] = fmt.Sprintf("conjugate gradient diverged at step %d (residual² %g from %g)", step, rsNew, rs0[g]), true
				continue
			}
			beta := float32(rsNew / rs[g])
			for j := range p {
				p[j] = r[j] + beta*p[j]
			}
			rs[g] = rsNew
		}
	}
}

// cholesky forms A = G + λI + Σ(c−1) f fᵀ and b = Σ c f in float64 and
// solves A x = b exactly.
func (s *solver) cholesky(idx []int32, w []float32, lambda float64, x []float32, sc *scratch) string {
	k := s.k
	a, b, y := sc.a, sc.b, sc.y
	copy(a, s.gram)
	for j := 0; j < k; j++ {
		a[j*k+j] += lambda
		b[j] = 0
	}
	if useAVX2 && k%4 == 0 {
		// (c−1) f fᵀ = (√(c−1) f)(√(c−1) f)ᵀ: four scaled rows at a time
		// through the Gram kernel (upper triangle, which is all the
		// factorisation reads).
		y4 := sc.y4
		r := 0
		for n, i := range idx {
			f := s.fixed[int(i)*k : int(i)*k+k]
			cm1 := s.cfg.Alpha * float64(w[n])
			sq := math.Sqrt(cm1)
			row := y4[r*k : r*k+k]
			for j, v := range f {
				row[j] = sq * float64(v)
				b[j] += (1 + cm1) * float64(v)
			}
			if r++; r == 4 {
				gramRank4AVX2(&y4[0], k, &a[0])
				r = 0
			}
		}
		if r > 0 {
			clear(y4[r*k:])
			gramRank4AVX2(&y4[0], k, &a[0])
		}
	} else {
		for n, i := range idx {
			f := s.fixed[int(i)*k : int(i)*k+k]
			for j, v := range f {
				y[j] = float64(v)
			}
			cm1 := s.cfg.Alpha * float64(w[n])
			// Upper triangle only; mirrored by the factorisation's reads.
			for r := 0; r < k; r++ {
				axpy64(cm1*y[r], y[r:], a[r*k+r:r*k+k])
			}
			axpy64(1+cm1, y, b)
		}
	}
	if reason := choleskySolve(a, k, b, y); reason != "" {
		return reason
	}
	for j := range x {
		x[j] = float32(b[j])
	}
	return ""
}

// choleskySolve factors the symmetric matrix whose upper triangle is in a
// (row-major k×k; the lower triangle is ignored and overwritten) as UᵀU in
// place and overwrites b with the solution of a x = b. It fails on a
// pivot that is not clearly positive (≤ 10⁻¹² of its original diagonal).
// diag is k of scratch. Right-looking, so every update is a contiguous
// row axpy.
func choleskySolve(a []float64, k int, b, diag []float64) string {
	for j := 0; j < k; j++ {
		diag[j] = a[j*k+j]
	}
	for j := 0; j < k; j++ {
		d := a[j*k+j]
		if !(d > 1e-12*math.Abs(diag[j])) || math.IsInf(d, 0) {
			return fmt.Sprintf("Cholesky: normal-equation matrix is singular or not positive definite (pivot %d is %g)", j, d)
		}
		d = math.Sqrt(d)
		a[j*k+j] = d
		row := a[j*k+j+1 : j*k+k]
		inv := 1 / d
		for c := range row {
			row[c] *= inv
		}
		// Trailing update: a[r, r:] −= U[j,r]·U[j, r:] for r > j.
		for r := j + 1; r < k; r++ {
			axpy64(-a[j*k+r], a[j*k+r:j*k+k], a[r*k+r:r*k+k])
		}
	}
	// Uᵀ z = b (column sweeps), then U x = z (row dot products).
	for j := 0; j < k; j++ {
		b[j] /= a[j*k+j]
		axpy64(-b[j], a[j*k+j+1:j*k+k], b[j+1:k])
	}
	for j := k - 1; j >= 0; j-- {
		v := b[j]
		for c := j + 1; c < k; c++ {
			v -= a[j*k+c] * b[c]
		}
		b[j] = v / a[j*k+j]
	}
	return ""
}

// Gram writes factorsᵀ·factors (K×K, row-major, both triangles) into dst,
// for factors holding rows of length k. It sums in float64: the Gram
// matrix adds up one term per row of the whole other side (up to millions)
// and, in the incremental path, absorbs many updates, where float32 would
// drift. Deterministic: the summation order does not depend on the number
// of goroutines (it uses GOMAXPROCS of them).
func Gram(factors []float32, k int, dst []float64) {
	gramThreads(factors, k, dst, runtime.GOMAXPROCS(0))
}

// GramUpdate replaces rows' contributions to a Gram matrix: dst +=
// addedᵀadded − removedᵀremoved, where removed and added each hold any
// number of rows of k values (either may be empty: rows that appear or
// disappear). To replace a batch of changed rows pass their old values as
// removed and their new ones as added. The incremental path uses it
// (O(K²) per row) and recomputes with Gram now and then to bound rounding
// drift. Both sums are formed separately in float64 and subtracted, so a
// row removed and added unchanged cancels exactly.
func GramUpdate(dst []float64, k int, removed, added []float32) {
	if len(removed)+len(added) <= 4*k {
		// A few rows: direct, no scratch.
		for _, sg := range []struct {
			rows []float32
			sign float64
		}{{added, 1}, {removed, -1}} {
			for off := 0; off+k <= len(sg.rows); off += k {
				row := sg.rows[off : off+k]
				for a := 0; a < k; a++ {
					f := sg.sign * float64(row[a])
					for c := 0; c < k; c++ {
						dst[a*k+c] += f * float64(row[c])
					}
				}
			}
		}
		return
	}
	plus, minus := make([]float64, k*k), make([]float64, k*k)
	gramRows(added, k, plus)
	gramRows(removed, k, minus)
	for a := 0; a < k; a++ {
		for c := a; c < k; c++ {
			d := plus[a*k+c] - minus[a*k+c]
			dst[a*k+c] += d
			if c != a {
				dst[c*k+a] += d
			}
		}
	}
}

const gramChunk = 2048

func gramThreads(factors []float32, k int, dst []float64, threads int) {
	n := len(factors) / k
	chunks := (n + gramChunk - 1) / gramChunk
	parts := make([][]float64, chunks)
	parallelChunks(context.Background(), threads, n, gramChunk, func(lo, hi int, _ *int) error {
		g := make([]float64, k*k)
		gramRows(factors[lo*k:hi*k], k, g)
		parts[lo/gramChunk] = g
		return nil
	})
	clear(dst)
	for _, g := range parts {
		for i, v := range g {
			dst[i] += v
		}
	}
	for a := 0; a < k; a++ {
		for b := 0; b < a; b++ {
			dst[a*k+b] = dst[b*k+a]
		}
	}
}

// gramRows adds the upper triangle of rowsᵀrows into g (and, with the
// assembly kernel, a few entries below the diagonal that Gram mirrors
// over).
func gramRows(rows []float32, k int, g []float64) {
	if useAVX2 && k%4 == 0 {
		y := make([]float64, 4*k)
		_ = g[k*k-1]
		for off := 0; off < len(rows); off += 4 * k {
			clear(y)
			for j, v := range rows[off:min(off+4*k, len(rows))] {
				y[j] = float64(v)
			}
			gramRank4AVX2(&y[0], k, &g[0])
		}
		return
	}
	y := make([]float64, k)
	for off := 0; off+k <= len(rows); off += k {
		for j, v := range rows[off : off+k] {
			y[j] = float64(v)
		}
		for a := 0; a < k; a++ {
			axpy64(y[a], y[a:], g[a*k+a:a*k+k])
		}
	}
}

// Loss is the iALS objective at m:
//
//	Σ_u Σ_i c_ui (p_ui − x_u·y_i)² + Σ_u λ_u‖x_u‖² + Σ_i λ_i‖y_i‖²
//
// over all user×item pairs (c = 1, p = 0 for pairs not in ui), computed
// with the Gram trick in float64.
func Loss(cfg Config, ui *Interactions, m *Model) float64 {
	cfg = cfg.EnsureDefaults()
	k := m.Factors
	g := make([]float64, k*k)
	gramThreads(m.ItemFactors, k, g, cfg.Threads)
	const chunk = 1024
	users := ui.NumUsers
	parts := make([]float64, (users+chunk-1)/chunk)
	parallelChunks(context.Background(), cfg.Threads, users, chunk, func(lo, hi int, _ *int) error {
		sum := 0.0
		for u := lo; u < hi; u++ {
			x := m.UserVector(u)
			sum += quad(g, k, x)
			idx, w := ui.Row(u)
			wsum := 0.0
			for n, i := range idx {
				pred := dot64(x, m.ItemVector(int(i)))
				c := 1 + cfg.Alpha*float64(w[n])
				sum += c*(1-pred)*(1-pred) - pred*pred
				wsum += float64(w[n])
			}
			sum += cfg.rowLambda(wsum, ui.NumItems) * dot64(x, x)
		}
		parts[lo/chunk] = sum
		return nil
	})
	total := 0.0
	for _, v := range parts {
		total += v
	}
	// Item regularization needs each item's weight sum (frequency scaling).
	isum := make([]float64, ui.NumItems)
	for p, i := range ui.Indices {
		isum[i] += float64(ui.Weights[p])
	}
	for i := 0; i < ui.NumItems; i++ {
		y := m.ItemVector(i)
		total += cfg.rowLambda(isum[i], ui.NumUsers) * dot64(y, y)
	}
	return total
}

func quad(g []float64, k int, x []float32) float64 {
	s := 0.0
	for a := 0; a < k; a++ {
		v := 0.0
		for b := 0; b < k; b++ {
			v += g[a*k+b] * float64(x[b])
		}
		s += float64(x[a]) * v
	}
	return s
}

func dot64(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}
