package ml

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Errors of Live queries (the HTTP layer maps them to 404 and 400).
var (
	ErrUnknownUser = errors.New("ml: live: unknown user")
	ErrUnknownItem = errors.New("ml: live: unknown item")
	ErrBadQuery    = errors.New("ml: live: bad query")
)

// liveSource is what Live.Sync reads from the model it copies (*Online).
// Sync runs on the owner's goroutine, so the source does not change while
// it is read.
type liveSource interface {
	Factors() int
	NumUsers() int
	NumItems() int
	NumInteractions() int64
	Changed() (users, items []int32)
	Failed() (users, items []int32)
	UserKey(u int32) []byte
	ItemKey(i int32) []byte
	UserVector(u int32) []float32
	ItemVector(i int32) []float32
	UserItems(u int32) ([]int32, []float32)
	ItemUsers(i int32) ([]int32, []float32)
	UserReady(u int32) bool
	ItemReady(i int32) bool
}

// Live is the serving copy of a live model: the factors, each user's seen
// items and each item's popularity, copied from the model after each
// update (Sync) and answering Recommend and Similar queries from any
// number of goroutines meanwhile. It holds two copies: readers use the
// published one, found through an atomic pointer, and never wait; Sync
// brings the other one up to date and publishes it. See the package
// documentation ("Live serving").
type Live struct {
	k                  int
	userKind, itemKind idKind

	cur    atomic.Pointer[liveGen]       // the published copy
	notify atomic.Pointer[chan struct{}] // closed at the next publish

	// Owner-only (Sync's goroutine).
	back         *liveGen // the copy Sync writes next (nil before the second Sync)
	prevU, prevI []int32  // rows the last Sync wrote, which back lacks
	unitBuf      []float32
	wu, wi       []int32 // rows written by the current Sync

	pool sync.Pool // *liveScratch

	statMu  sync.Mutex
	stats   LiveStats
	queries atomic.Uint64
	lat     [len(LiveLatencyBuckets) + 1]atomic.Uint64
	latSum  atomic.Int64 // nanoseconds
}

// liveGen is one of a Live's two copies of the model. Readers count
// themselves in (readers) while they read it; Sync writes it only when it
// is not published and no reader is left.
type liveGen struct {
	readers atomic.Int64
	retired atomic.Bool   // not published: the last reader out wakes Sync
	wake    chan struct{} // capacity 1

	updates      uint64
	interactions int64
	users        map[string]int32 // key -> dense index (the model's)
	userIDs      []any            // int64 or string
	userVec      []float32        // users × k
	userReady    []bool
	seen         [][]int32 // each user's items, ascending; never written once made (shared by both copies)
	items        map[string]int32
	itemIDs      []any
	itemReady    []bool
	unready      []int32   // items not ready, ascending
	pop          []int32   // distinct users per item
	unitVec      []float32 // items × k, each of norm 1 (or 0)
	scorer       *Scorer   // the item factors
	unit         *Scorer   // unitVec
}

func newLiveGen(k int) *liveGen {
	g := &liveGen{wake: make(chan struct{}, 1), users: map[string]int32{}, items: map[string]int32{}}
	g.scorer, _ = NewItemScorer(max(k, 1))
	g.unit, _ = NewItemScorer(max(k, 1))
	return g
}

// LiveLatencyBuckets are the upper bounds of LiveStats.Latency's buckets
// (the last bucket, beyond them, counts the rest).
var LiveLatencyBuckets = [...]time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond,
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
}

// LiveStats say how often the serving copy was updated, what the updates
// cost, and how many queries it answered how fast.
type LiveStats struct {
	// Syncs is the number of published updates (the version served).
	Syncs uint64 `json:"syncs"`
	// Copy and MaxCopy are the total and longest time Sync spent writing
	// the unpublished copy (readers go on meanwhile); Wait and MaxWait the
	// time it waited for the last readers of that copy (from before the
	// previous publish) to finish their queries. Readers never wait.
	Copy    time.Duration `json:"copy_ns"`
	MaxCopy time.Duration `json:"max_copy_ns"`
	Wait    time.Duration `json:"wait_ns"`
	MaxWait time.Duration `json:"max_wait_ns"`
	// Queries counts the answered Recommend and Similar queries (errors
	// included); Latency[j] those that took at most LiveLatencyBuckets[j]
	// and more than the bound before it, the last entry the rest: the time
	// of the model work (lookup, scoring, top-K), not of HTTP.
	Queries uint64   `json:"queries"`
	Latency []uint64 `json:"latency_buckets"`
	// LatencySum is the total time of those queries.
	LatencySum time.Duration `json:"latency_sum_ns"`
}

// Stats returns l's update and query statistics.
func (l *Live) Stats() LiveStats {
	l.statMu.Lock()
	s := l.stats
	l.statMu.Unlock()
	s.Queries = l.queries.Load()
	s.LatencySum = time.Duration(l.latSum.Load())
	s.Latency = make([]uint64, len(l.lat))
	for j := range l.lat {
		s.Latency[j] = l.lat[j].Load()
	}
	return s
}

// observe counts a query that started at t0.
func (l *Live) observe(t0 time.Time) {
	d := time.Since(t0)
	j := 0
	for j < len(LiveLatencyBuckets) && d > LiveLatencyBuckets[j] {
		j++
	}
	l.lat[j].Add(1)
	l.latSum.Add(int64(d))
	l.queries.Add(1)
}

type liveScratch struct {
	exclude []int32
	items   []int32
	scores  []float32
	h       heap
}

// NewLive returns an empty serving copy for a model of k factors whose
// user and item ids are of the given kinds.
func NewLive(k int, userKind, itemKind idKind) *Live {
	l := &Live{k: k, userKind: userKind, itemKind: itemKind}
	l.cur.Store(newLiveGen(k))
	ch := make(chan struct{})
	l.notify.Store(&ch)
	return l
}

// NewLiveOf is NewLive for ids of the given Arrow types (integers or
// strings, as the recommend operator's id columns).
func NewLiveOf(k int, userType, itemType arrow.DataType) (*Live, error) {
	uk, ok1 := idKindOf(userType)
	ik, ok2 := idKindOf(itemType)
	if !ok1 || !ok2 || k <= 0 {
		return nil, fmt.Errorf("ml: live: want k > 0 and integer or string ids, have k = %d, %s users and %s items", k, userType, itemType)
	}
	return NewLive(k, uk, ik), nil
}

// Version returns the number of updates published so far: the version a
// query started now would read.
func (l *Live) Version() uint64 { return l.cur.Load().updates }

// Updated returns a channel closed when the next update is published
// (take it before looking at the current version, so that no update
// falls between the look and the wait).
func (l *Live) Updated() <-chan struct{} { return *l.notify.Load() }

// acquire returns the published copy, counted in as read until release.
func (l *Live) acquire() *liveGen {
	for {
		g := l.cur.Load()
		g.readers.Add(1)
		if l.cur.Load() == g {
			return g
		}
		// Sync published the other copy meanwhile and may be writing this
		// one: leave it untouched.
		g.release()
	}
}

func (g *liveGen) release() {
	if g.readers.Add(-1) == 0 && g.retired.Load() {
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
}

// drain waits until no reader is left in g (retired: new readers leave it
// at once).
func (g *liveGen) drain() {
	for g.readers.Load() != 0 {
		<-g.wake
	}
}

// Sync brings l up to date with o after o's last Apply or Retrain and
// publishes it: the unpublished copy receives the rows the previous Sync
// changed (which it lacks) and the rows o changed (o.Changed) or touched
// without solving them (o.Failed: their seen items and popularity), and
// the new rows; on the first call, everything. Readers keep using the
// published copy meanwhile and switch to the new one at their next query;
// Sync waits only for queries that started on the unpublished copy before
// the previous publish. It must be called from o's owner, after every
// update of o.
//
// Rows an Apply rolled back keep their previous factor here too (a new
// one is copied not ready) while their new seen items are served at once,
// so a user is never recommended an item it already has.
func (l *Live) Sync(o *Online) error { return l.sync(o) }

var _ liveSource = (*Online)(nil)

func (l *Live) sync(src liveSource) error {
	k := l.k
	if src.Factors() != k {
		return fmt.Errorf("ml: live: the model has %d factors, the serving copy %d", src.Factors(), k)
	}
	front := l.cur.Load()
	nu, ni := src.NumUsers(), src.NumItems()
	if nu < len(front.userReady) || ni < len(front.itemReady) {
		return fmt.Errorf("ml: live: the model shrank (%d users, %d items; served: %d, %d)", nu, ni, len(front.userReady), len(front.itemReady))
	}
	// The rows this update changed: Changed and Failed (their histories).
	cu, ci := src.Changed()
	fu, fi := src.Failed()
	l.wu = mergeAscending(l.wu[:0], cu, fu)
	l.wi = mergeAscending(l.wi[:0], ci, fi)
	first := front.updates == 0
	g := l.back
	if g == nil || first {
		g = newLiveGen(k)
	}
	t0 := time.Now()
	g.drain()
	t1 := time.Now()
	if err := l.write(g, front, src, first); err != nil {
		return err
	}
	g.updates = front.updates + 1
	g.interactions = src.NumInteractions()
	g.retired.Store(false)
	l.cur.Store(g)
	front.retired.Store(true)
	ch := make(chan struct{})
	close(*l.notify.Swap(&ch))
	t2 := time.Now()
	if !first {
		l.back = front
	}
	l.prevU, l.prevI = append(l.prevU[:0], l.wu...), append(l.prevI[:0], l.wi...)
	l.statMu.Lock()
	st := &l.stats
	st.Syncs = g.updates
	st.Wait += t1.Sub(t0)
	st.MaxWait = max(st.MaxWait, t1.Sub(t0))
	st.Copy += t2.Sub(t1)
	st.MaxCopy = max(st.MaxCopy, t2.Sub(t1))
	l.statMu.Unlock()
	return nil
}

// write brings g, which holds the model as of the Sync before last (or
// nothing), up to date with src: the rows the last Sync wrote (l.prevU,
// l.prevI), those of this update (l.wu, l.wi) and every row g does not
// have. A row in neither list did not change since g was written, so
// src's values are those to copy. A user's seen list is shared with
// front, which is current, unless it changed in this update.
func (l *Live) write(g, front *liveGen, src liveSource, first bool) error {
	k := l.k
	nu, ni := src.NumUsers(), src.NumItems()
	oldU, oldI := len(g.userReady), len(g.itemReady)
	if first {
		oldU, oldI = 0, 0
	}
	for u := oldU; u < nu; u++ {
		g.users[string(src.UserKey(int32(u)))] = int32(u)
		g.userIDs = append(g.userIDs, keyID(l.userKind, string(src.UserKey(int32(u)))))
	}
	for i := oldI; i < ni; i++ {
		g.items[string(src.ItemKey(int32(i)))] = int32(i)
		g.itemIDs = append(g.itemIDs, keyID(l.itemKind, string(src.ItemKey(int32(i)))))
	}
	g.userVec, g.userReady, g.seen = room(g.userVec, nu*k)[:nu*k], room(g.userReady, nu)[:nu], room(g.seen, nu)[:nu]
	g.unitVec, g.itemReady, g.pop = room(g.unitVec, ni*k)[:ni*k], room(g.itemReady, ni)[:ni], room(g.pop, ni)[:ni]
	frontU := len(front.userReady)
	if first {
		frontU = 0
	}
	forRows(l.prevU, l.wu, oldU, nu, func(u int32, now bool) {
		copy(g.userVec[int(u)*k:int(u)*k+k], src.UserVector(u))
		if now || int(u) >= frontU {
			its, _ := src.UserItems(u)
			g.seen[u] = slices.Clone(its)
		} else {
			g.seen[u] = front.seen[u]
		}
		g.userReady[u] = src.UserReady(u)
	})
	flipped := false
	var err error
	forRows(l.prevI, l.wi, oldI, ni, func(i int32, _ bool) {
		vec := src.ItemVector(i)
		unit := appendUnit(l.unitBuf[:0], vec)
		l.unitBuf = unit
		copy(g.unitVec[int(i)*k:int(i)*k+k], unit)
		if e := g.scorer.SetItem(int(i), vec); e != nil && err == nil {
			err = e
		}
		if e := g.unit.SetItem(int(i), unit); e != nil && err == nil {
			err = e
		}
		users, _ := src.ItemUsers(i)
		g.pop[i] = int32(len(users))
		r := src.ItemReady(i)
		flipped = flipped || r != g.itemReady[i] || int(i) >= oldI && !r
		g.itemReady[i] = r
	})
	if err != nil {
		return fmt.Errorf("ml: live: %w", err)
	}
	if flipped {
		g.unready = g.unready[:0]
		for i, r := range g.itemReady {
			if !r {
				g.unready = append(g.unready, int32(i))
			}
		}
	}
	return nil
}

// forRows calls fn for every row below old that is in prev or now (both
// ascending), ascending, then for every row in [old, n): the rows a copy
// must write. fn's second argument says the row is in now or new.
func forRows(prev, now []int32, old, n int, fn func(r int32, inNow bool)) {
	for len(prev) > 0 || len(now) > 0 {
		var r int32
		in := false
		switch {
		case len(now) == 0 || len(prev) > 0 && prev[0] < now[0]:
			r, prev = prev[0], prev[1:]
		case len(prev) > 0 && prev[0] == now[0]:
			r, prev, now, in = now[0], prev[1:], now[1:], true
		default:
			r, now, in = now[0], now[1:], true
		}
		if int(r) < old {
			fn(r, in)
		}
	}
	for r := old; r < n; r++ {
		fn(int32(r), true)
	}
}

// room returns s with capacity for n elements: s itself or a grown copy.
func room[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s
	}
	t := make([]T, len(s), max(n, 2*cap(s)))
	copy(t, s)
	return t
}

// appendUnit appends v/‖v‖ (zeros when v is zero).
func appendUnit(dst, v []float32) []float32 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	inv := float32(0)
	if ss > 0 {
		inv = float32(1 / math.Sqrt(ss))
	}
	for _, x := range v {
		dst = append(dst, x*inv)
	}
	return dst
}

// keyID is the id a key stands for: int64 or string.
func keyID(kind idKind, key string) any {
	if kind == idInt64 && len(key) == 8 {
		return keyInt64([]byte(key))
	}
	return key
}

// parseKey appends to dst the key of a textual id of kind.
func parseKey(kind idKind, id string, dst []byte) ([]byte, error) {
	if kind == idInt64 {
		v, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return dst, fmt.Errorf("%w: id %q is not an int64 (the model's ids are)", ErrBadQuery, id)
		}
		return appendInt64Key(dst, v), nil
	}
	return append(dst, id...), nil
}

// LiveResult is the answer of a Live query.
type LiveResult struct {
	// ID is the user or item asked about, as the model's ids are: int64 or
	// string.
	ID any
	// Items are the answer, best first, and Scores theirs: x_u·y_i
	// (Recommend), the cosine of the two items' factors (Similar), or the
	// number of distinct users (the popularity fallback).
	Items  []any
	Scores []float32
	// Fallback says Recommend answered an unknown user with the most
	// popular items.
	Fallback bool
	// Updates is the number of Syncs the copy had when the query read it:
	// the model version served. Interactions is the model's number of
	// distinct (user, item) pairs at that Sync.
	Updates      uint64
	Interactions int64
}

func (l *Live) scratch() *liveScratch {
	if s, _ := l.pool.Get().(*liveScratch); s != nil {
		return s
	}
	return &liveScratch{}
}

// Recommend returns user's best k items by x_u·y_i, leaving out the items
// the user has and items not ready. An unknown user (or one whose first
// solve failed) is ErrUnknownUser, or, with fallbackPopular, gets the k
// items with the most distinct users (ties: the earlier seen item).
func (l *Live) Recommend(ctx context.Context, userID string, k int, fallbackPopular bool) (LiveResult, error) {
	var res LiveResult
	err := l.RecommendTo(ctx, userID, k, fallbackPopular, &res)
	return res, err
}

// RecommendTo is Recommend writing the answer into res, reusing the
// capacity of res.Items and res.Scores: with a result kept by the caller a
// query allocates nothing.
func (l *Live) RecommendTo(ctx context.Context, userID string, k int, fallbackPopular bool, res *LiveResult) error {
	t0 := time.Now()
	defer l.observe(t0)
	*res = LiveResult{Items: res.Items[:0], Scores: res.Scores[:0]}
	if err := ctx.Err(); err != nil {
		return err
	}
	if k <= 0 {
		return fmt.Errorf("%w: k must be > 0, got %d", ErrBadQuery, k)
	}
	var kb [8]byte
	key, err := parseKey(l.userKind, userID, kb[:0])
	if err != nil {
		return err
	}
	g := l.acquire()
	defer g.release()
	return l.recommendIn(g, key, userID, k, fallbackPopular, res)
}

// recommendIn answers RecommendTo from g, which the caller holds.
func (l *Live) recommendIn(g *liveGen, key []byte, userID string, k int, fallbackPopular bool, res *LiveResult) error {
	*res = LiveResult{Items: res.Items[:0], Scores: res.Scores[:0]}
	s := l.scratch()
	defer l.pool.Put(s)
	var err error
	res.Updates, res.Interactions = g.updates, g.interactions
	u, ok := g.users[string(key)]
	if !ok || !g.userReady[u] {
		if !fallbackPopular {
			return fmt.Errorf("%w %s", ErrUnknownUser, userID)
		}
		res.ID = keyID(l.userKind, string(key))
		res.Fallback = true
		kk := min(k, len(g.pop))
		s.h.reset(kk)
		for i, c := range g.pop {
			if kk > 0 && g.itemReady[i] {
				s.h.push(int32(i), float32(c))
			}
		}
		n := len(s.h.items)
		s.items, s.scores = slices.Grow(s.items[:0], n)[:n], slices.Grow(s.scores[:0], n)[:n]
		s.h.drain(s.items, s.scores)
		g.fill(res, s.items, s.scores)
		return nil
	}
	res.ID = g.userIDs[u]
	s.exclude = mergeAscending(s.exclude[:0], g.seen[u], g.unready)
	s.items, s.scores, err = g.scorer.TopKOf(g.userVec[int(u)*l.k:int(u)*l.k+l.k], k, s.exclude, s.items[:0], s.scores[:0])
	if err != nil {
		return err
	}
	g.fill(res, s.items, s.scores)
	return nil
}

// Similar returns the k items whose factors have the highest cosine with
// item's, leaving out the item itself and items not ready.
func (l *Live) Similar(ctx context.Context, itemID string, k int) (LiveResult, error) {
	var res LiveResult
	err := l.SimilarTo(ctx, itemID, k, &res)
	return res, err
}

// SimilarTo is Similar writing the answer into res (RecommendTo).
func (l *Live) SimilarTo(ctx context.Context, itemID string, k int, res *LiveResult) error {
	t0 := time.Now()
	defer l.observe(t0)
	*res = LiveResult{Items: res.Items[:0], Scores: res.Scores[:0]}
	if err := ctx.Err(); err != nil {
		return err
	}
	if k <= 0 {
		return fmt.Errorf("%w: k must be > 0, got %d", ErrBadQuery, k)
	}
	var kb [8]byte
	key, err := parseKey(l.itemKind, itemID, kb[:0])
	if err != nil {
		return err
	}
	s := l.scratch()
	defer l.pool.Put(s)
	g := l.acquire()
	defer g.release()
	i, ok := g.items[string(key)]
	if !ok || !g.itemReady[i] {
		return fmt.Errorf("%w %s", ErrUnknownItem, itemID)
	}
	res.ID, res.Updates, res.Interactions = g.itemIDs[i], g.updates, g.interactions
	s.exclude = mergeAscending(s.exclude[:0], []int32{i}, g.unready)
	s.items, s.scores, err = g.unit.TopKOf(g.unitVec[int(i)*l.k:int(i)*l.k+l.k], k, s.exclude, s.items[:0], s.scores[:0])
	if err != nil {
		return err
	}
	g.fill(res, s.items, s.scores)
	return nil
}

// fill appends the items (as ids) and scores to res's.
func (g *liveGen) fill(res *LiveResult, items []int32, scores []float32) {
	for _, it := range items {
		res.Items = append(res.Items, g.itemIDs[it])
	}
	res.Scores = append(res.Scores, scores...)
}

// mergeAscending appends the union of two ascending lists to dst.
func mergeAscending(dst, a, b []int32) []int32 {
	if len(b) == 0 {
		return append(dst, a...)
	}
	for len(a) > 0 && len(b) > 0 {
		switch {
		case a[0] < b[0]:
			dst, a = append(dst, a[0]), a[1:]
		case b[0] < a[0]:
			dst, b = append(dst, b[0]), b[1:]
		default:
			dst, a, b = append(dst, a[0]), a[1:], b[1:]
		}
	}
	return append(append(dst, a...), b...)
}
