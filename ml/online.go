package ml

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"unsafe"
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
	// ItemDefer bounds the work a popular item costs per event. 0: every
	// item an update touches is re-solved in that update. s > 0: an item
	// that has a factor and n ≥ 2^(s+1) stored events is re-solved only
	// when an update carries its event count across a multiple of
	// 2^(⌊log₂ n⌋−s), i.e. about once per n/2^s new events, so an event
	// costs at most ~2^s·steps gathered rows of its item's history
	// however long that history is; in between the item keeps its factor,
	// solved on all but under 2^(1−s) of its events (the events are in
	// its history and count at its next solve). The rule depends only on
	// the stored histories, so a restored model defers the same items.
	ItemDefer int
	// MaxHistory, when > 0, caps each user's history at its newest
	// MaxHistory events: an event beyond it drops the user's oldest one
	// (from the user's and the item's history: a pair's weight becomes
	// the sum of its remaining events, summed in arrival order as when
	// they were added; a pair with none left is removed), and the item
	// that lost it is re-solved with the users of the update. A stream
	// that runs for months then holds a bounded history per user.
	MaxHistory int
}

// DefaultItemDefer is the streaming operator's OnlineOptions.ItemDefer
// (UpdateOptions.ItemDefer): an item is re-solved about once per 3–6% of
// new events (package doc, "Incremental updates").
const DefaultItemDefer = 5

// UpdateStats describe one Apply.
type UpdateStats struct {
	Interactions             int // events applied
	Users, Items             int // rows re-solved (the touched ones)
	DeferredItems            int // touched items not re-solved (OnlineOptions.ItemDefer)
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
	itemDefer int
	maxHist   int
	// alphaScale multiplies Config.Alpha in every solve (SetAlphaScale).
	alphaScale float64
	// evs holds each user's events in arrival order when MaxHistory
	// caps them (nil otherwise).
	evs [][]histEvent

	users, items side
	nnz          int64 // distinct (user, item) pairs

	// Rows changed by the last Apply or Retrain, ascending; rows the last
	// Apply touched whose solve failed, ascending.
	changedU, changedI []int32
	failedU, failedI   []int32

	// Scratch reused across Apply calls.
	seenU, seenI []uint32 // stamp per row: touched in the current Apply
	stamp        uint32
	old, fresh   []float32
	split        []int32
}

// side is one side of the model (users or items): ids, factors, histories.
type side struct {
	index   map[string]int32
	keys    [][]byte
	factors []float32 // rows × K
	rows    []histRow // each row's distinct partners, ascending, summed weights
	events  []int64   // each row's stored events (repeats counted)
	before  []int64   // events before the current Apply (rows touched in it)
	ready   []bool    // the row has a solved (or restored) factor
	gram    []float64 // K×K: Σ factorsᵀ factors
	updates int       // row updates since the last exact Gram
	fresh   []int32   // rows created in the current Apply
}

type histRow struct {
	idx []int32
	w   []float32
}

// histEvent is one event of a user's capped history.
type histEvent struct {
	item int32
	w    float32
}

// histRows is the rowSource of the rows sel of a side's histories: row j
// is rows[sel[j]].
type histRows struct {
	rows []histRow
	sel  []int32
}

func (h *histRows) Row(j int) ([]int32, []float32) {
	r := h.rows[h.sel[j]]
	return r.idx, r.w
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
	if o.ItemDefer < 0 || o.ItemDefer > 30 {
		return nil, fmt.Errorf("ml: online: item defer must be in 0..30, got %d", o.ItemDefer)
	}
	if o.MaxHistory < 0 {
		return nil, fmt.Errorf("ml: online: max history must be ≥ 0, got %d", o.MaxHistory)
	}
	m := &Online{cfg: cfg, k: k, refresh: o.GramRefresh, itemSteps: o.ItemCGSteps, itemDefer: o.ItemDefer, maxHist: o.MaxHistory, alphaScale: 1}
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

// UserEvents returns how many events user u's history holds (repeats
// counted; under MaxHistory at most that many): the length of its list
// in the recommend operator's state once an update applied it.
func (o *Online) UserEvents(u int32) int64 { return o.users.events[u] }

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

// Failed returns the rows the last Apply touched whose solve failed and
// was rolled back (ascending; borrowed until the next update): not in
// Changed, their factors as before, but their histories (a user's seen
// items, an item's users) grew.
func (o *Online) Failed() (users, items []int32) { return o.failedU, o.failedI }

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

// GramUpdates returns how many row updates each side's Gram matrix has
// taken incrementally since its last exact computation (the counters of
// OnlineOptions.GramRefresh), for checkpoints: a restore that sets them
// back (SetGramUpdates) recomputes the matrices exactly at the same
// update as a run that never stopped, so it continues bitwise like it.
func (o *Online) GramUpdates() (users, items int) { return o.users.updates, o.items.updates }

// SetGramUpdates restores the counters GramUpdates returned.
func (o *Online) SetGramUpdates(users, items int) error {
	if users < 0 || items < 0 {
		return fmt.Errorf("ml: online: Gram update counters must be ≥ 0, got %d and %d", users, items)
	}
	o.users.updates, o.items.updates = users, items
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
	// The key's bytes are the map key's (one copy per row, not two); keys
	// are handed out read-only (UserKey, ItemKey).
	s.keys = append(s.keys, unsafe.Slice(unsafe.StringData(kc), len(kc)))
	s.factors = slices.Grow(s.factors, k)[:len(s.factors)+k]
	v := s.factors[len(s.factors)-k:]
	clear(v)
	if init != nil {
		init(key, v)
	}
	s.rows = append(s.rows, histRow{})
	s.events = append(s.events, 0)
	s.before = append(s.before, 0)
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
		h.w[j] = addWeight(h.w[j], w)
		return false
	}
	h.idx = slices.Insert(h.idx, j, p)
	h.w = slices.Insert(h.w, j, w)
	return true
}

// addWeight adds an event's weight to a pair's: saturating, so a stored
// weight stays finite.
func addWeight(a, b float32) float32 {
	s := a + b
	if math.IsInf(float64(s), 0) {
		s = math.MaxFloat32
	}
	return s
}

// set sets partner p's weight; it must be there.
func (h *histRow) set(p int32, w float32) {
	j, _ := slices.BinarySearch(h.idx, p)
	h.w[j] = w
}

// remove removes partner p; it must be there.
func (h *histRow) remove(p int32) {
	j, _ := slices.BinarySearch(h.idx, p)
	h.idx = slices.Delete(h.idx, j, j+1)
	h.w = slices.Delete(h.w, j, j+1)
}

// dropOldest removes user u's oldest event (MaxHistory): the pair's
// weight becomes the sum of its remaining events in arrival order (what
// adding them afresh gives, so a model rebuilt from the capped histories
// is bitwise this one), or the pair goes when none is left. The item is
// marked touched: it is re-solved in this update.
func (o *Online) dropOldest(u int32) {
	ev := o.evs[u]
	i := ev[0].item
	ev = ev[:copy(ev, ev[1:])]
	o.evs[u] = ev
	var w float32
	n := 0
	for _, e := range ev {
		if e.item == i {
			if n == 0 {
				w = e.w
			} else {
				w = addWeight(w, e.w)
			}
			n++
		}
	}
	if n == 0 {
		o.users.rows[u].remove(i)
		o.items.rows[i].remove(u)
		o.nnz--
	} else {
		o.users.rows[u].set(i, w)
		o.items.rows[i].set(u, w)
	}
	o.touchItem(i)
	o.users.events[u]--
	o.items.events[i]--
}

// touchItem marks item i touched by the current Apply.
func (o *Online) touchItem(i int32) {
	o.seenI = growStamps(o.seenI, len(o.items.keys))
	if o.seenI[i] != o.stamp {
		o.seenI[i] = o.stamp
		o.changedI = append(o.changedI, i)
		o.items.before[i] = o.items.events[i]
	}
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
	o.failedU, o.failedI = nil, nil
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
		if o.seenU[u] != o.stamp {
			o.seenU[u] = o.stamp
			o.changedU = append(o.changedU, u)
		}
		o.touchItem(i)
		o.users.events[u]++
		o.items.events[i]++
		if o.maxHist > 0 {
			for len(o.evs) <= int(u) {
				o.evs = append(o.evs, nil)
			}
			o.evs[u] = append(o.evs[u], histEvent{item: i, w: it.Weight})
			if len(o.evs[u]) > o.maxHist {
				o.dropOldest(u)
			}
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

// SetAlphaScale makes every later solve (Apply, Retrain) use the
// confidence c = 1 + s·α·w instead of 1 + α·w: how the recommend
// operator decays confidence with age (UpdateOptions.HalfLife) without
// rewriting stored weights: it stores each weight inflated by 2^(t/H) for
// its sequence number t and scales α by 2^(−T/H) at sequence T, which
// gives every weight w·2^(−(T−t)/H). s must be finite and > 0.
func (o *Online) SetAlphaScale(s float64) error {
	if !(s > 0) || math.IsInf(s, 0) {
		return fmt.Errorf("ml: online: alpha scale must be finite and > 0, got %v", s)
	}
	o.alphaScale = s
	return nil
}

// AlphaScale returns the scale SetAlphaScale set (1 by default).
func (o *Online) AlphaScale() float64 { return o.alphaScale }

// ScaleWeights multiplies every stored weight by f, a power of two
// (exact, barring underflow): the recommend operator's rebase of its
// inflated weights (UpdateOptions.HalfLife).
func (o *Online) ScaleWeights(f float32) {
	for _, s := range []*side{&o.users, &o.items} {
		for _, h := range s.rows {
			for j := range h.w {
				h.w[j] *= f
			}
		}
	}
	for _, ev := range o.evs {
		for j := range ev {
			ev[j].w *= f
		}
	}
}

// Reserve makes room for users and items more rows, so that adding
// them (a restore of a large model: SetUser, SetItem, AddHistory) does
// not grow the index maps and arrays step by step.
func (o *Online) Reserve(users, items int) {
	for _, x := range []struct {
		s *side
		n int
	}{{&o.users, users}, {&o.items, items}} {
		s, n := x.s, x.n
		if n <= 0 {
			continue
		}
		if len(s.index) == 0 {
			s.index = make(map[string]int32, n)
		}
		s.keys = slices.Grow(s.keys, n)
		s.factors = slices.Grow(s.factors, n*o.k)
		s.rows = slices.Grow(s.rows, n)
		s.events = slices.Grow(s.events, n)
		s.before = slices.Grow(s.before, n)
		s.ready = slices.Grow(s.ready, n)
	}
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
		o.failedU, o.failedI = nil, nil
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
	if o.itemDefer > 0 {
		items = o.dueItems(items)
		st.DeferredItems = len(o.changedI) - len(items)
	}
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
	o.failedU, o.failedI = failedU, failedI
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

// dueItems filters touched (in place) down to the items this update
// re-solves: new ones, ones never solved, short histories, and those
// whose event count crossed a multiple of 2^(⌊log₂ n⌋−ItemDefer)
// (OnlineOptions.ItemDefer).
func (o *Online) dueItems(touched []int32) []int32 {
	out := touched[:0]
	for _, i := range touched {
		n0, n1 := o.items.before[i], o.items.events[i]
		if p := bits.Len64(uint64(n0)) - 1 - o.itemDefer; !o.items.ready[i] || p <= 0 || n0>>p != n1>>p {
			out = append(out, i)
		}
	}
	return out
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
	o.old = slices.Grow(o.old[:0], len(rows)*k)[:len(rows)*k]
	for j, r := range rows {
		copy(o.old[j*k:], s.vec(k, r))
	}
	o.fresh = append(o.fresh[:0], o.old...)
	cfg := o.cfg
	cfg.CGSteps = steps
	cfg.Alpha *= o.alphaScale
	// The rows are solved where they are (no CSR copy); their partners
	// are rows of other by construction (lookup), as the kernels require.
	err := solveRows(ctx, cfg, &histRows{rows: s.rows, sel: rows}, len(other.keys), other.factors, other.gram, o.fresh, nil, len(rows))
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
	cfg := o.cfg
	cfg.Alpha *= o.alphaScale
	if err := m.Fit(ctx, cfg, ui, nil); err != nil {
		return fmt.Errorf("ml: online: retrain: %w", err)
	}
	o.users.factors, o.items.factors = m.UserFactors, m.ItemFactors
	o.changedU, o.changedI = o.changedU[:0], o.changedI[:0]
	o.failedU, o.failedI = nil, nil
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
