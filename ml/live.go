package ml

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
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
// number of goroutines meanwhile. See the package documentation ("Live
// serving").
type Live struct {
	k                  int
	userKind, itemKind idKind

	// Owner-only (Sync's goroutine): staging for the next Sync.
	synced   bool
	unitBuf  []float32
	newUsers []string
	newItems []string

	mu           sync.RWMutex
	updates      uint64
	interactions int64
	users        map[string]int32 // key -> dense index (the model's)
	userIDs      []any            // int64 or string
	userVec      []float32        // users × k
	userReady    []bool
	seen         [][]int32 // each user's items, ascending
	items        map[string]int32
	itemIDs      []any
	itemReady    []bool
	unready      []int32   // items not ready, ascending
	pop          []int32   // distinct users per item
	unitVec      []float32 // items × k, each of norm 1 (or 0)
	scorer       *Scorer   // the item factors
	unit         *Scorer   // unitVec
	pool         sync.Pool // *liveScratch
	// held and maxHeld add up the time Syncs held the write lock.
	held, maxHeld time.Duration
}

// LiveStats say how often the serving copy was updated and how long the
// updates kept readers waiting.
type LiveStats struct {
	Syncs                 uint64
	LockHeld, MaxLockHeld time.Duration // total and longest write-lock hold of Sync
	// Users, Items and Interactions size the copy: ids known and distinct
	// (user, item) pairs at the last Sync.
	Users, Items int
	Interactions int64
}

// Stats returns l's update statistics.
func (l *Live) Stats() LiveStats {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return LiveStats{Syncs: l.updates, LockHeld: l.held, MaxLockHeld: l.maxHeld,
		Users: len(l.userIDs), Items: len(l.itemIDs), Interactions: l.interactions}
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
	l := &Live{k: k, userKind: userKind, itemKind: itemKind, users: map[string]int32{}, items: map[string]int32{}}
	l.scorer, _ = NewItemScorer(max(k, 1))
	l.unit, _ = NewItemScorer(max(k, 1))
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

// Sync copies into l what o's last Apply or Retrain changed (o.Changed;
// on the first call, everything): the changed users' and items' factors,
// seen items, popularity and readiness, and the new rows. Only the copy
// itself runs under l's write lock: O(changed·K) plus the changed users'
// histories, never the whole model. It must be called from o's owner,
// between updates.
//
// Rows an Apply rolled back are not in Changed: an existing row keeps its
// previous factor and seen items here too (its new interactions reach the
// copy with its next successful update); a new one is copied not ready.
func (l *Live) Sync(o *Online) error { return l.sync(o) }

var _ liveSource = (*Online)(nil)

func (l *Live) sync(src liveSource) error {
	k := l.k
	if src.Factors() != k {
		return fmt.Errorf("ml: live: the model has %d factors, the serving copy %d", src.Factors(), k)
	}
	nu, ni := src.NumUsers(), src.NumItems()
	oldU, oldI := len(l.userReady), len(l.itemReady)
	if nu < oldU || ni < oldI {
		return fmt.Errorf("ml: live: the model shrank (%d users, %d items; served: %d, %d)", nu, ni, oldU, oldI)
	}
	var cu, ci []int32
	if l.synced {
		cu, ci = src.Changed()
	} else {
		oldU, oldI = 0, 0
	}
	// Outside the lock (readers only read what is shared): keys of the new
	// rows, the changed items' unit vectors, and room in the arrays, so
	// that a growing model is never copied while readers wait.
	l.newUsers, l.newItems = l.newUsers[:0], l.newItems[:0]
	for u := len(l.userReady); u < nu; u++ {
		l.newUsers = append(l.newUsers, string(src.UserKey(int32(u))))
	}
	for i := len(l.itemReady); i < ni; i++ {
		l.newItems = append(l.newItems, string(src.ItemKey(int32(i))))
	}
	l.unitBuf = l.unitBuf[:0]
	forItems(ci, oldI, ni, func(i int32) {
		l.unitBuf = appendUnit(l.unitBuf, src.ItemVector(i))
	})
	userVec, userIDs, userReady, seen := room(l.userVec, nu*k), room(l.userIDs, nu), room(l.userReady, nu), room(l.seen, nu)
	unitVec, itemIDs, itemReady, pop := room(l.unitVec, ni*k), room(l.itemIDs, ni), room(l.itemReady, ni), room(l.pop, ni)

	l.mu.Lock()
	locked := time.Now()
	defer func() {
		held := time.Since(locked)
		l.held += held
		l.maxHeld = max(l.maxHeld, held)
		l.mu.Unlock()
	}()
	l.userVec, l.userIDs, l.userReady, l.seen = userVec[:nu*k], userIDs, userReady[:nu], seen[:nu]
	l.unitVec, l.itemIDs, l.itemReady, l.pop = unitVec[:ni*k], itemIDs, itemReady[:ni], pop[:ni]
	for _, key := range l.newUsers {
		l.users[key] = int32(len(l.userIDs))
		l.userIDs = append(l.userIDs, keyID(l.userKind, key))
	}
	for _, key := range l.newItems {
		l.items[key] = int32(len(l.itemIDs))
		l.itemIDs = append(l.itemIDs, keyID(l.itemKind, key))
	}
	forItems(cu, oldU, nu, func(u int32) {
		copy(l.userVec[int(u)*k:int(u)*k+k], src.UserVector(u))
		its, _ := src.UserItems(u)
		l.seen[u] = append(l.seen[u][:0], its...)
		l.userReady[u] = src.UserReady(u)
	})
	flipped := false
	j := 0
	var err error
	forItems(ci, oldI, ni, func(i int32) {
		unit := l.unitBuf[j*k : j*k+k]
		j++
		copy(l.unitVec[int(i)*k:int(i)*k+k], unit)
		if e := l.scorer.SetItem(int(i), src.ItemVector(i)); e != nil && err == nil {
			err = e
		}
		if e := l.unit.SetItem(int(i), unit); e != nil && err == nil {
			err = e
		}
		users, _ := src.ItemUsers(i)
		l.pop[i] = int32(len(users))
		r := src.ItemReady(i)
		flipped = flipped || r != l.itemReady[i] || int(i) >= oldI && !r
		l.itemReady[i] = r
	})
	if flipped {
		l.unready = l.unready[:0]
		for i, r := range l.itemReady {
			if !r {
				l.unready = append(l.unready, int32(i))
			}
		}
	}
	l.synced = true
	l.updates++
	l.interactions = src.NumInteractions()
	if err != nil {
		return fmt.Errorf("ml: live: %w", err)
	}
	return nil
}

// forItems calls fn for the rows of changed below old (ascending, as
// Changed returns them), then for every row in [old, n): the new ones.
func forItems(changed []int32, old, n int, fn func(int32)) {
	for _, r := range changed {
		if int(r) < old {
			fn(r)
		}
	}
	for r := old; r < n; r++ {
		fn(int32(r))
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

// parseID is the key of a textual id of kind, and the id.
func parseID(kind idKind, id string) (string, any, error) {
	if kind == idInt64 {
		v, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return "", nil, fmt.Errorf("%w: id %q is not an int64 (the model's ids are)", ErrBadQuery, id)
		}
		return string(int64Key(v)), v, nil
	}
	return id, id, nil
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
	if err := ctx.Err(); err != nil {
		return LiveResult{}, err
	}
	if k <= 0 {
		return LiveResult{}, fmt.Errorf("%w: k must be > 0, got %d", ErrBadQuery, k)
	}
	key, id, err := parseID(l.userKind, userID)
	if err != nil {
		return LiveResult{}, err
	}
	s := l.scratch()
	defer l.pool.Put(s)
	l.mu.RLock()
	defer l.mu.RUnlock()
	res := LiveResult{ID: id, Updates: l.updates, Interactions: l.interactions}
	u, ok := l.users[key]
	if !ok || !l.userReady[u] {
		if !fallbackPopular {
			return LiveResult{}, fmt.Errorf("%w %v", ErrUnknownUser, id)
		}
		res.Fallback = true
		kk := min(k, len(l.pop))
		s.h.reset(kk)
		for i, c := range l.pop {
			if kk > 0 && l.itemReady[i] {
				s.h.push(int32(i), float32(c))
			}
		}
		n := len(s.h.items)
		s.items, s.scores = slices.Grow(s.items[:0], n)[:n], slices.Grow(s.scores[:0], n)[:n]
		s.h.drain(s.items, s.scores)
		l.fill(&res, s.items, s.scores)
		return res, nil
	}
	s.exclude = mergeAscending(s.exclude[:0], l.seen[u], l.unready)
	s.items, s.scores, err = l.scorer.TopKOf(l.userVec[int(u)*l.k:int(u)*l.k+l.k], k, s.exclude, s.items[:0], s.scores[:0])
	if err != nil {
		return LiveResult{}, err
	}
	l.fill(&res, s.items, s.scores)
	return res, nil
}

// Similar returns the k items whose factors have the highest cosine with
// item's, leaving out the item itself and items not ready.
func (l *Live) Similar(ctx context.Context, itemID string, k int) (LiveResult, error) {
	if err := ctx.Err(); err != nil {
		return LiveResult{}, err
	}
	if k <= 0 {
		return LiveResult{}, fmt.Errorf("%w: k must be > 0, got %d", ErrBadQuery, k)
	}
	key, id, err := parseID(l.itemKind, itemID)
	if err != nil {
		return LiveResult{}, err
	}
	s := l.scratch()
	defer l.pool.Put(s)
	l.mu.RLock()
	defer l.mu.RUnlock()
	i, ok := l.items[key]
	if !ok || !l.itemReady[i] {
		return LiveResult{}, fmt.Errorf("%w %v", ErrUnknownItem, id)
	}
	res := LiveResult{ID: id, Updates: l.updates, Interactions: l.interactions}
	s.exclude = mergeAscending(s.exclude[:0], []int32{i}, l.unready)
	s.items, s.scores, err = l.unit.TopKOf(l.unitVec[int(i)*l.k:int(i)*l.k+l.k], k, s.exclude, s.items[:0], s.scores[:0])
	if err != nil {
		return LiveResult{}, err
	}
	l.fill(&res, s.items, s.scores)
	return res, nil
}

// fill sets res's items (as ids) and scores; under the read lock.
func (l *Live) fill(res *LiveResult, items []int32, scores []float32) {
	res.Items = make([]any, len(items))
	for j, it := range items {
		res.Items[j] = l.itemIDs[it]
	}
	res.Scores = append([]float32(nil), scores...)
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
