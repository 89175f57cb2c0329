package ml

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
)

// Interaction is one event for an Online model: User interacted with Item
// with a finite, positive Weight. Keys are the recommend operator's id
// encodings (int64 ids 8 bytes big endian with the sign bit flipped,
// strings their bytes); Online only compares them.
type Interaction struct {
	User, Item []byte
	Weight     float32
}

// OnlineOptions configure an Online model.
type OnlineOptions struct {
	// Config holds the hyperparameters. Solver and CGSteps apply to every
	// incremental update (CG warm-starts from the row's current factor; a
	// new row starts from zero); Iterations to Retrain.
	Config Config
	// GramRefresh bounds the rounding drift of the incrementally updated
	// Gram matrices: a side's matrix is recomputed exactly once that many
	// of its rows were updated since the last exact computation. 0 means
	// the side's row count, so the refresh adds O(K²) per row update
	// amortised, the order of the incremental update itself.
	GramRefresh int
	// ItemCGSteps is the number of CG steps for re-solving an item that
	// already has a factor (0: Config.CGSteps). An item's history is
	// usually long and a micro-batch adds little to it, so its warm start
	// is close to the new solution; fewer steps trade a little accuracy
	// for throughput, since the touched items' histories are most of an
	// update's work (BenchmarkOnlineApply, package doc). New items always
	// take Config.CGSteps.
	ItemCGSteps int
}

// UpdateStats describe one Apply.
type UpdateStats struct {
	Interactions             int // events applied
	Users, Items             int // rows re-solved (the touched ones)
	NewUsers, NewItems       int // rows seen for the first time
	FailedUsers, FailedItems int // rows whose solve failed and was rolled back
	GramRefreshed            bool
	// Failed is the numerical error of the first failed side (a
	// *RowError, with Side set and Row the dense index), nil when every
	// row was solved.
	Failed error
}

// Online is an iALS model that learns incrementally (package doc,
// "Incremental updates"). Users and items are added on first sight; Apply
// appends a batch of interactions to the users' and items' histories,
// re-solves the touched users against the current item factors, then the
// touched items against the updated user factors, and replaces the
// changed rows' contributions to both Gram matrices (GramUpdate), so a
// batch costs time in proportion to the touched rows' histories, not the
// model. Retrain runs full ALS sweeps over every history. Dense indices
// are assigned in order of first sight.
//
// An Online is not safe for concurrent use: one goroutine owns it (the
// recommend operator), and readers that serve queries while it learns
// work on a copy that is brought up to date after each update (Live).
type Online struct {
	cfg       Config
	k         int
	refresh   int
	itemSteps int

	users, items side
	nnz          int64 // distinct (user, item) pairs

	// Rows changed by the last Apply or Retrain, ascending.
	changedU, changedI []int32

	// Scratch reused across Apply calls.
	seenU, seenI []uint32 // stamp per row: touched in the current Apply
	stamp        uint32
	csr          Interactions
	old, fresh   []float32
	split        []int32
}

// side is one side of the model (users or items): ids, factors, histories.
type side struct {
	index   map[string]int32
	keys    [][]byte
	factors []float32 // rows × K
	rows    []histRow // each row's distinct partners, ascending, summed weights
	ready   []bool    // the row has a solved (or restored) factor
	gram    []float64 // K×K: Σ factorsᵀ factors
	updates int       // row updates since the last exact Gram
	fresh   []int32   // rows created in the current Apply
}

type histRow struct {
	idx []int32
	w   []float32
}

// NewOnline returns an empty model.
func NewOnline(o OnlineOptions) (*Online, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.GramRefresh < 0 {
		return nil, fmt.Errorf("ml: online: gram refresh must be ≥ 0, got %d", o.GramRefresh)
	}
	cfg := o.Config.EnsureDefaults()
	k := cfg.Factors
	if o.ItemCGSteps < 0 {
		return nil, fmt.Errorf("ml: online: item CG steps must be ≥ 0, got %d", o.ItemCGSteps)
	}
	m := &Online{cfg: cfg, k: k, refresh: o.GramRefresh, itemSteps: o.ItemCGSteps}
	for _, s := range []*side{&m.users, &m.items} {
		s.index = map[string]int32{}
		s.gram = make([]float64, k*k)
	}
	return m, nil
}

// Config returns the model's hyperparameters (defaults applied).
func (o *Online) Config() Config { return o.cfg }

// Factors is K.
func (o *Online) Factors() int { return o.k }

// NumUsers is the number of users seen.
func (o *Online) NumUsers() int { return len(o.users.keys) }

// NumItems is the number of items seen.
func (o *Online) NumItems() int { return len(o.items.keys) }

// NumInteractions is the number of distinct (user, item) pairs.
func (o *Online) NumInteractions() int64 { return o.nnz }

// UserIndex returns the dense index of a user key.
func (o *Online) UserIndex(key []byte) (int32, bool) {
	u, ok := o.users.index[string(key)]
	return u, ok
}

// ItemIndex returns the dense index of an item key.
func (o *Online) ItemIndex(key []byte) (int32, bool) {
	i, ok := o.items.index[string(key)]
	return i, ok
}

// UserKey returns user u's key (borrowed).
func (o *Online) UserKey(u int32) []byte { return o.users.keys[u] }

// ItemKey returns item i's key (borrowed).
func (o *Online) ItemKey(i int32) []byte { return o.items.keys[i] }

// UserVector returns user u's factor (borrowed: valid until the next
// Apply, Retrain or Set).
func (o *Online) UserVector(u int32) []float32 { return o.users.vec(o.k, u) }

// ItemVector returns item i's factor (borrowed, like UserVector).
func (o *Online) ItemVector(i int32) []float32 { return o.items.vec(o.k, i) }

// UserItems returns user u's distinct items, ascending, with their summed
// weights (borrowed).
func (o *Online) UserItems(u int32) ([]int32, []float32) {
	r := o.users.rows[u]
	return r.idx, r.w
}

// ItemUsers returns item i's distinct users, ascending, with their summed
// weights (borrowed).
func (o *Online) ItemUsers(i int32) ([]int32, []float32) {
	r := o.items.rows[i]
	return r.idx, r.w
}

// UserReady says whether user u has a factor to serve: false for a user
// whose every solve so far failed (or was never solved).
func (o *Online) UserReady(u int32) bool { return o.users.ready[u] }

// ItemReady is UserReady for item i.
func (o *Online) ItemReady(i int32) bool { return o.items.ready[i] }

// Changed returns the rows whose factors the last Apply, Retrain or
// RefreshGrams-free restore (SetUser, SetItem) changed, ascending
// (borrowed: valid until the next call that changes the model).
func (o *Online) Changed() (users, items []int32) { return o.changedU, o.changedI }

// UserGram and ItemGram return the current Gram matrices XᵀX and YᵀY
// (K×K, float64, borrowed), for checkpoints.
func (o *Online) UserGram() []float64 { return o.users.gram }

// ItemGram: see UserGram.
func (o *Online) ItemGram() []float64 { return o.items.gram }

// SetGrams replaces both Gram matrices (a restore of checkpointed ones,
// so the restored model continues bitwise as the checkpointed one would).
func (o *Online) SetGrams(user, item []float64) error {
	n := o.k * o.k
	if len(user) != n || len(item) != n {
		return fmt.Errorf("ml: online: Gram matrices of %d and %d values, want %d", len(user), len(item), n)
	}
	copy(o.users.gram, user)
	copy(o.items.gram, item)
	return nil
}

func (s *side) vec(k int, r int32) []float32 { return s.factors[int(r)*k : int(r+1)*k] }

// lookup returns key's row, creating it (factor init, not ready) when new.
func (s *side) lookup(key []byte, k int, init func(key []byte, dst []float32)) (int32, bool) {
	if r, ok := s.index[string(key)]; ok {
		return r, false
	}
	r := int32(len(s.keys))
	kc := string(key)
	s.index[kc] = r
	s.keys = append(s.keys, []byte(kc))
	s.factors = slices.Grow(s.factors, k)[:len(s.factors)+k]
	v := s.factors[len(s.factors)-k:]
	clear(v)
	if init != nil {
		init(key, v)
	}
	s.rows = append(s.rows, histRow{})
	s.ready = append(s.ready, false)
	s.fresh = append(s.fresh, r)
	return r, true
}

// add adds w to the row's weight for partner p; it reports whether the
// pair is new.
func (h *histRow) add(p int32, w float32) bool {
	n := len(h.idx)
	j := n
	if n > 0 && h.idx[n-1] >= p {
		j, _ = slices.BinarySearch(h.idx, p)
	}
	if j < n && h.idx[j] == p {
		s := h.w[j] + w
		if math.IsInf(float64(s), 0) {
			s = math.MaxFloat32 // saturate: a stored weight stays finite
		}
		h.w[j] = s
		return false
	}
	h.idx = slices.Insert(h.idx, j, p)
	h.w = slices.Insert(h.w, j, w)
	return true
}

// itemInit gives a new item a small factor drawn from a generator seeded
// by the model's seed and the item's key: the same for the same key
// whenever and wherever it is first seen (a restore re-creates it), and
// never zero, so a new item does not tie with every other at score 0
// before its first solve.
func (o *Online) itemInit(key []byte, dst []float32) {
	h := fnv.New64a()
	h.Write(key)
	rng := rand.New(rand.NewPCG(uint64(o.cfg.Seed), h.Sum64()))
	s := float32(o.cfg.InitScale)
	for j := range dst {
		dst[j] = rng.Float32() * s
	}
}

// addHistory appends batch to the histories, creating rows on first sight
// and marking the touched rows (stamp) in o.changedU / o.changedI.
func (o *Online) addHistory(batch []Interaction) {
	o.stamp++
	if o.stamp == 0 { // wrapped: clear the stamps
		clear(o.seenU)
		clear(o.seenI)
		o.stamp = 1
	}
	o.users.fresh, o.items.fresh = o.users.fresh[:0], o.items.fresh[:0]
	o.changedU, o.changedI = o.changedU[:0], o.changedI[:0]
	for _, it := range batch {
		u, _ := o.users.lookup(it.User, o.k, nil)
		i, newItem := o.items.lookup(it.Item, o.k, o.itemInit)
		if newItem {
			// The new item's init enters the item Gram now, so every solve
			// of this batch sees YᵀY of the factors it reads.
			GramUpdate(o.items.gram, o.k, nil, o.items.vec(o.k, i))
		}
		if o.users.rows[u].add(i, it.Weight) {
			o.nnz++
		}
		o.items.rows[i].add(u, it.Weight)
		o.seenU = growStamps(o.seenU, len(o.users.keys))
		o.seenI = growStamps(o.seenI, len(o.items.keys))
		if o.seenU[u] != o.stamp {
			o.seenU[u] = o.stamp
			o.changedU = append(o.changedU, u)
		}
		if o.seenI[i] != o.stamp {
			o.seenI[i] = o.stamp
			o.changedI = append(o.changedI, i)
		}
	}
	slices.Sort(o.changedU)
	slices.Sort(o.changedI)
}

func growStamps(s []uint32, n int) []uint32 {
	if len(s) >= n {
		return s
	}
	return append(s, make([]uint32, max(n-len(s), len(s)))...)
}

// AddHistory appends batch to the histories without solving anything:
// the restore path (factors come from SetUser and SetItem) and the fill
// before a first Retrain. New items get their seeded initial factor; rows
// stay not ready until solved or set.
func (o *Online) AddHistory(batch []Interaction) {
	o.addHistory(batch)
	o.changedU, o.changedI = o.changedU[:0], o.changedI[:0]
}

// SetUser sets user key's factor (adding the user if new) and marks it
// ready: the restore path. The Gram matrix is not updated: call
// RefreshGrams or SetGrams when done.
func (o *Online) SetUser(key []byte, vec []float32) (int32, error) {
	return o.set(&o.users, key, vec, nil)
}

// SetItem is SetUser for an item.
func (o *Online) SetItem(key []byte, vec []float32) (int32, error) {
	return o.set(&o.items, key, vec, o.itemInit)
}

func (o *Online) set(s *side, key []byte, vec []float32, init func([]byte, []float32)) (int32, error) {
	if len(vec) != o.k {
		return 0, fmt.Errorf("ml: online: factor of %d values, model has %d factors", len(vec), o.k)
	}
	r, _ := s.lookup(key, o.k, init)
	copy(s.vec(o.k, r), vec)
	s.ready[r] = true
	return r, nil
}

// RefreshGrams recomputes both Gram matrices exactly from the factors.
func (o *Online) RefreshGrams() {
	for _, s := range []*side{&o.users, &o.items} {
		gramThreads(s.factors, o.k, s.gram, o.cfg.Threads)
		s.updates = 0
	}
}

// Apply adds batch to the histories and updates the model: the touched
// users are re-solved against the item factors, then the touched items
// against the user factors (package doc, "Incremental updates"). A row
// whose solve fails numerically keeps its previous factor (a new row
// stays not ready), is counted in the stats and is left out of Changed;
// the other rows keep their new factors and the batch stays in the
// histories. Apply returns an error only when the context ends or the
// inputs are inconsistent; then the histories hold the batch but some
// factors may be stale (a later Apply or Retrain brings them up to date).
func (o *Online) Apply(ctx context.Context, batch []Interaction) (UpdateStats, error) {
	st := UpdateStats{Interactions: len(batch)}
	if len(batch) == 0 {
		o.changedU, o.changedI = o.changedU[:0], o.changedI[:0]
		return st, nil
	}
	for j, it := range batch {
		if err := checkWeight(float64(it.Weight)); err != nil || it.Weight == 0 {
			if err == nil {
				err = errors.New("weight is 0")
			}
			return st, fmt.Errorf("ml: online: interaction %d: %w", j, err)
		}
	}
	o.addHistory(batch)
	st.NewUsers, st.NewItems = len(o.users.fresh), len(o.items.fresh)
	users, items := o.changedU, o.changedI
	st.Users, st.Items = len(users), len(items)
	// Users against the items, then items against the updated users.
	failedU, errU := o.solveSide(ctx, &o.users, &o.items, users, o.cfg.CGSteps)
	if errU != nil && !errors.Is(errU, ErrNumerical) {
		return st, errU
	}
	// Items that had a factor take ItemCGSteps, new ones the full count.
	steps := o.itemSteps
	if steps == 0 {
		steps = o.cfg.CGSteps
	}
	var failedI []int32
	var errI error
	if steps == o.cfg.CGSteps || len(o.items.fresh) == 0 {
		failedI, errI = o.solveSide(ctx, &o.items, &o.users, items, steps)
	} else {
		o.split = o.split[:0]
		old := items[:0:0]
		for _, i := range items {
			if o.seenFresh(i) {
				o.split = append(o.split, i)
			} else {
				old = append(old, i)
			}
		}
		var f2 []int32
		var e2 error
		failedI, errI = o.solveSide(ctx, &o.items, &o.users, old, steps)
		if errI == nil || errors.Is(errI, ErrNumerical) {
			f2, e2 = o.solveSide(ctx, &o.items, &o.users, o.split, o.cfg.CGSteps)
		}
		if errI == nil {
			errI = e2
		}
		failedI = mergeSorted(failedI, f2)
	}
	if errI != nil && !errors.Is(errI, ErrNumerical) {
		return st, errI
	}
	st.FailedUsers, st.FailedItems = len(failedU), len(failedI)
	if errU != nil {
		st.Failed = errU
	} else if errI != nil {
		st.Failed = errI
	}
	o.changedU = dropSorted(users, failedU)
	o.changedI = dropSorted(items, failedI)
	for _, s := range []*side{&o.users, &o.items} {
		n := o.refresh
		if n == 0 {
			n = len(s.keys)
		}
		if s.updates >= n {
			gramThreads(s.factors, o.k, s.gram, o.cfg.Threads)
			s.updates = 0
			st.GramRefreshed = true
		}
	}
	return st, nil
}

// solveSide re-solves rows of s (ascending) against other's factors and
// Gram matrix, then replaces their contributions to s's Gram matrix. It
// returns the rows that failed numerically (rolled back) with the
// *RowError (Side and Row naming the side's dense index). steps is the
// number of CG steps (ignored by the Cholesky solver).
func (o *Online) solveSide(ctx context.Context, s, other *side, rows []int32, steps int) ([]int32, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	k := o.k
	// A CSR of just these rows, columns in the other side's index space.
	c := &o.csr
	c.NumUsers, c.NumItems = len(rows), len(other.keys)
	c.Indptr = append(c.Indptr[:0], 0)
	c.Indices, c.Weights = c.Indices[:0], c.Weights[:0]
	o.old = slices.Grow(o.old[:0], len(rows)*k)[:len(rows)*k]
	for j, r := range rows {
		h := s.rows[r]
		c.Indices = append(c.Indices, h.idx...)
		c.Weights = append(c.Weights, h.w...)
		c.Indptr = append(c.Indptr, int64(len(c.Indices)))
		copy(o.old[j*k:], s.vec(k, r))
	}
	o.fresh = append(o.fresh[:0], o.old...)
	cfg := o.cfg
	cfg.CGSteps = steps
	err := SolveRows(ctx, cfg, c, other.factors, other.gram, o.fresh, nil)
	var failed []int32
	if err != nil {
		var re *RowError
		if !errors.As(err, &re) {
			return nil, err
		}
		// Failed rows were rolled back to their old values in o.fresh.
		failed = make([]int32, len(re.Failed))
		for j, f := range re.Failed {
			failed[j] = rows[f]
		}
		side := "user"
		if s == &o.items {
			side = "item"
		}
		err = &RowError{Side: side, Row: int(failed[0]), Reason: re.Reason, Failed: failed}
	}
	GramUpdate(s.gram, k, o.old, o.fresh)
	f := 0
	for j, r := range rows {
		copy(s.vec(k, r), o.fresh[j*k:(j+1)*k])
		if f < len(failed) && failed[f] == r {
			f++
			continue
		}
		s.ready[r] = true
	}
	s.updates += len(rows)
	return failed, err
}

// seenFresh says whether item i was created by the current Apply (the
// items' fresh list is ascending: rows are created in index order).
func (o *Online) seenFresh(i int32) bool {
	_, ok := slices.BinarySearch(o.items.fresh, i)
	return ok
}

// mergeSorted merges two ascending lists.
func mergeSorted(a, b []int32) []int32 {
	if len(b) == 0 {
		return a
	}
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return out
}

// dropSorted returns a without the elements of b (both ascending), in
// place.
func dropSorted(a, b []int32) []int32 {
	if len(b) == 0 {
		return a
	}
	out, j := a[:0], 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j < len(b) && b[j] == x {
			continue
		}
		out = append(out, x)
	}
	return out
}

// Interactions returns the user×item matrix of every history (a copy).
func (o *Online) Interactions() *Interactions {
	nu := len(o.users.keys)
	m := &Interactions{NumUsers: nu, NumItems: len(o.items.keys), Indptr: make([]int64, nu+1)}
	m.Indices = make([]int32, 0, o.nnz)
	m.Weights = make([]float32, 0, o.nnz)
	for u, h := range o.users.rows {
		m.Indices = append(m.Indices, h.idx...)
		m.Weights = append(m.Weights, h.w...)
		m.Indptr[u+1] = int64(len(m.Indices))
	}
	return m
}

// Model returns a copy of the current factors as a Model, with the
// user×item matrix (for TopK exclusions, exports and evaluation).
func (o *Online) Model() (*Model, *Interactions) {
	m := &Model{Factors: o.k, NumUsers: len(o.users.keys), NumItems: len(o.items.keys),
		UserFactors: slices.Clone(o.users.factors), ItemFactors: slices.Clone(o.items.factors)}
	return m, o.Interactions()
}

// Retrain runs Config.Iterations full ALS sweeps over every history:
// warm-started from the current factors when warm, else from NewModel's
// seeded start (the first training of a model filled by AddHistory, or
// the full-retrain reference of the prequential protocol). The model is
// replaced only when the training succeeds; every row is then ready and
// changed, and both Gram matrices are exact.
func (o *Online) Retrain(ctx context.Context, warm bool) error {
	ui := o.Interactions()
	var m *Model
	if warm {
		m, _ = o.Model()
	} else {
		m = NewModel(o.cfg, ui.NumUsers, ui.NumItems)
	}
	if err := m.Fit(ctx, o.cfg, ui, nil); err != nil {
		return fmt.Errorf("ml: online: retrain: %w", err)
	}
	o.users.factors, o.items.factors = m.UserFactors, m.ItemFactors
	o.changedU, o.changedI = o.changedU[:0], o.changedI[:0]
	for u := range o.users.ready {
		o.users.ready[u] = true
		o.changedU = append(o.changedU, int32(u))
	}
	for i := range o.items.ready {
		o.items.ready[i] = true
		o.changedI = append(o.changedI, int32(i))
	}
	o.RefreshGrams()
	return nil
}
