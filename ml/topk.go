package ml

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
)

const (
	topkUserBlock = 64  // users scored together against one item tile
	topkItemTile  = 512 // items per tile: 512×K float32 stay in L2
)

// TopK scores users (all users when nil) against every item and calls fn
// once per user, in the order of users, from the calling goroutine, with
// the user's best k items by descending score (ties: lower item index
// first) and their scores. Items stored in the user's row of exclude (when
// not nil; NumUsers×NumItems like the model) are left out, so a user with
// fewer than k candidates gets fewer. The slices passed to fn are borrowed
// until it returns. Scoring runs on threads goroutines (GOMAXPROCS when ≤
// 0) as a blocked product (64 users × 512-item tiles) feeding a bounded
// heap per user. fn's error stops the scan and is returned. It packs the
// item factors for the kernels on every call; for repeated queries against
// the same items make a Scorer once.
func (m *Model) TopK(ctx context.Context, users []int32, k int, exclude *Interactions, threads int, fn func(user int32, items []int32, scores []float32) error) error {
	s, err := m.NewScorer()
	if err != nil {
		return err
	}
	return s.TopK(ctx, users, k, exclude, threads, fn)
}

// Scorer answers top-K queries for a model with its item factors prepared
// once (packed into the scoring kernels' panels): the per-call cost is then
// only the users' scoring, which matters when serving one user at a time.
// It snapshots the item factors when made and reads the user factors from
// the model at each call (TopK), or scores a query vector given by the
// caller (TopKOf). SetItem updates one item's row of the snapshot in place
// and appends new items, so a live model (Live) keeps its Scorer current at
// O(K) per changed item rather than repacking every item.
//
// Queries are safe for concurrent use with each other; SetItem is not safe
// concurrently with anything (the caller's lock orders them: Live holds a
// write lock).
type Scorer struct {
	m     *Model    // the user factors of TopK; nil for NewItemScorer
	f, n  int       // factors, items
	items []float32 // packed panels of width pw, or a plain copy when pw = 0
	pw    int
	pool  sync.Pool // *topkScratch
	// half holds the item panels in binary16 for TopKOf (topk_half.go),
	// with bounds of the rounding (halfErr) and of the factors (halfMax);
	// NewItemScorer's Scorers on AVX-512 only, unless halfOff.
	half             []uint16
	halfErr, halfMax float32
	halfOff          bool
}

// NewScorer prepares m's item factors for TopK queries.
func (m *Model) NewScorer() (*Scorer, error) {
	if m.Factors <= 0 || len(m.UserFactors) != m.NumUsers*m.Factors || len(m.ItemFactors) != m.NumItems*m.Factors {
		return nil, fmt.Errorf("ml: top-k: model shape is inconsistent (%d users, %d items, %d factors; %d and %d values)",
			m.NumUsers, m.NumItems, m.Factors, len(m.UserFactors), len(m.ItemFactors))
	}
	s := &Scorer{m: m, f: m.Factors, n: m.NumItems, pw: panelWidth()}
	if s.pw > 0 {
		s.items = packPanels(m.ItemFactors, m.Factors, m.NumItems, s.pw)
	} else {
		s.items = slices.Clone(m.ItemFactors)
	}
	return s, nil
}

// NewItemScorer returns a Scorer without items or users, for vectors of f
// factors: items are added with SetItem, queries are TopKOf.
func NewItemScorer(f int) (*Scorer, error) {
	if f <= 0 {
		return nil, fmt.Errorf("ml: top-k: factors must be > 0, got %d", f)
	}
	s := &Scorer{f: f, pw: panelWidth()}
	s.halfOff = s.pw != 32
	return s, nil
}

// NumItems returns the number of items the Scorer holds.
func (s *Scorer) NumItems() int { return s.n }

// SetItem replaces item i's factors with vec (len Factors), or, when i is
// NumItems, appends it (amortised O(K): the panels grow like a slice).
// Not safe concurrently with queries.
func (s *Scorer) SetItem(i int, vec []float32) error {
	f := s.f
	switch {
	case len(vec) != f:
		return fmt.Errorf("ml: top-k: item %d has %d factors, the scorer %d", i, len(vec), f)
	case i < 0 || i > s.n:
		return fmt.Errorf("ml: top-k: item %d out of range [0,%d]", i, s.n)
	}
	if i == s.n {
		s.n++
		if s.pw == 0 {
			s.items = append(s.items, vec...)
			return nil
		}
		if i%s.pw == 0 {
			// A new zero panel.
			s.items = append(s.items, make([]float32, s.pw*f)...)
		}
	}
	if s.pw == 0 {
		copy(s.items[i*f:i*f+f], vec)
		return nil
	}
	if s.m == nil && !s.halfOff {
		s.setHalf(i, vec)
	}
	w := s.pw
	panel := s.items[(i/w)*w*f : (i/w+1)*w*f]
	j := i % w
	for t, v := range vec {
		panel[t*w+j] = v
	}
	return nil
}

// TopK is Model.TopK against the Scorer's item factors.
func (s *Scorer) TopK(ctx context.Context, users []int32, k int, exclude *Interactions, threads int, fn func(user int32, items []int32, scores []float32) error) error {
	m := s.m
	if m == nil {
		return fmt.Errorf("ml: top-k: this scorer has no users (NewItemScorer): query it with TopKOf")
	}
	if k <= 0 {
		return fmt.Errorf("ml: top-k: k must be > 0, got %d", k)
	}
	if len(m.UserFactors) != m.NumUsers*m.Factors {
		return fmt.Errorf("ml: top-k: model has %d user values for %d users × %d factors", len(m.UserFactors), m.NumUsers, m.Factors)
	}
	if exclude != nil && (exclude.NumUsers != m.NumUsers || exclude.NumItems != s.n) {
		return fmt.Errorf("ml: top-k: exclusions are %d×%d, model is %d×%d", exclude.NumUsers, exclude.NumItems, m.NumUsers, s.n)
	}
	for _, u := range users {
		if u < 0 || int(u) >= m.NumUsers {
			return fmt.Errorf("ml: top-k: user %d out of range [0,%d)", u, m.NumUsers)
		}
	}
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	k = min(k, s.n)
	n := m.NumUsers
	if users != nil {
		n = len(users)
	}
	userAt := func(j int) int32 {
		if users == nil {
			return int32(j)
		}
		return users[j]
	}
	// Waves of blocks: scored in parallel, then handed to fn in order.
	wave := topkUserBlock * threads * 4
	outItems := make([]int32, min(wave, n)*k)
	outScores := make([]float32, min(wave, n)*k)
	counts := make([]int, min(wave, n))
	var next int
	for start := 0; start < n; start = next {
		next = min(start+wave, n)
		err := parallelChunks(ctx, threads, next-start, topkUserBlock, func(lo, hi int, _ *int) error {
			sc := s.scratch()
			defer s.pool.Put(sc)
			blk := sc.users[:0]
			ex := sc.ex[:0]
			for j := lo; j < hi; j++ {
				u := userAt(start + j)
				blk = append(blk, u)
				var row []int32
				if exclude != nil {
					row, _ = exclude.Row(int(u))
				}
				ex = append(ex, row)
			}
			s.scoreBlock(m.UserFactors, blk, k, ex, sc, outItems[lo*k:hi*k], outScores[lo*k:hi*k], counts[lo:hi])
			clear(ex)
			return nil
		})
		if err != nil {
			return err
		}
		for j := start; j < next; j++ {
			o := j - start
			c := counts[o]
			if err := fn(userAt(j), outItems[o*k:o*k+c], outScores[o*k:o*k+c]); err != nil {
				return err
			}
		}
	}
	return nil
}

// TopKOf appends to items and scores the best k items for the query
// vector x (len Factors) by descending x·y_i (ties: lower item index
// first), leaving out the items of exclude (ascending item indices). It
// runs on the calling goroutine: the serving path, one query at a time.
func (s *Scorer) TopKOf(x []float32, k int, exclude []int32, items []int32, scores []float32) ([]int32, []float32, error) {
	if k <= 0 {
		return items, scores, fmt.Errorf("ml: top-k: k must be > 0, got %d", k)
	}
	if len(x) != s.f {
		return items, scores, fmt.Errorf("ml: top-k: query has %d factors, the scorer %d", len(x), s.f)
	}
	k = min(k, s.n)
	if k == 0 {
		return items, scores, nil
	}
	sc := s.scratch()
	defer s.pool.Put(sc)
	n0 := len(items)
	items, scores = slices.Grow(items, k)[:n0+k], slices.Grow(scores, k)[:n0+k]
	if !s.halfOff && halfScoring && useAVX512 && s.half != nil {
		c := s.topKHalf(x, k, exclude, sc, items[n0:], scores[n0:])
		return items[:n0+c], scores[:n0+c], nil
	}
	var c [1]int
	sc.one[0] = exclude
	s.scoreBlock(x, sc.zero[:], k, sc.one[:], sc, items[n0:], scores[n0:], c[:])
	sc.one[0] = nil
	return items[:n0+c[0]], scores[:n0+c[0]], nil
}

func (s *Scorer) scratch() *topkScratch {
	if sc, _ := s.pool.Get().(*topkScratch); sc != nil {
		return sc
	}
	return newTopkScratch()
}

type topkScratch struct {
	users  []int32   // a block's users
	ex     [][]int32 // their exclusions
	zero   [1]int32  // TopKOf's block: row 0, the query vector
	one    [1][]int32
	scores []float32 // topkUserBlock × topkItemTile
	heaps  []heap
	cands  []int32 // topKHalf's candidates and their half scores
	coarse []float32
	panel  []float32 // topKHalf's gathered candidates (32 × f) and their items
	batch  [32]int32
}

func newTopkScratch() *topkScratch {
	return &topkScratch{users: make([]int32, 0, topkUserBlock), ex: make([][]int32, 0, topkUserBlock),
		scores: make([]float32, topkUserBlock*topkItemTile), heaps: make([]heap, topkUserBlock)}
}

// scoreBlock fills the top-k lists of the users in blk (rows of
// userFactors) with ex[b] the ascending items user b leaves out; it
// consumes ex.
func (sc *Scorer) scoreBlock(userFactors []float32, blk []int32, k int, ex [][]int32, s *topkScratch, outItems []int32, outScores []float32, counts []int) {
	f := sc.f
	for b := range blk {
		s.heaps[b].reset(k)
	}
	for t0 := 0; t0 < sc.n; t0 += topkItemTile {
		t1 := min(t0+topkItemTile, sc.n)
		nt := t1 - t0
		switch {
		case sc.pw > 0 && len(blk) == 1 && oneRowKernel:
			u := int(blk[0]) * f
			scoreTilePanels1(userFactors[u:u+f], sc.items[t0*f:], f, nt, sc.pw, s.scores)
		case sc.pw > 0:
			scoreTilePanels(userFactors, blk, sc.items[t0*f:], f, nt, sc.pw, s.scores)
		default:
			scoreTile(userFactors, blk, sc.items[t0*f:t1*f], f, nt, s.scores)
		}
		for b := range blk {
			h := &s.heaps[b]
			row := s.scores[b*topkItemTile : b*topkItemTile+nt]
			e := ex[b]
			for j := 0; j < len(row); j++ {
				if h.full() {
					// Items ascend, so a later equal score never wins.
					if j += firstAbove(row[j:], h.scores[0]); j == len(row) {
						break
					}
				}
				it := int32(t0 + j)
				var skip bool
				if e, skip = excluded(e, it); skip {
					continue
				}
				h.push(it, row[j])
			}
			// Drop exclusions left behind in this tile.
			for len(e) > 0 && int(e[0]) < t1 {
				e = e[1:]
			}
			ex[b] = e
		}
	}
	for b := range blk {
		counts[b] = s.heaps[b].drain(outItems[b*k:b*k+k], outScores[b*k:b*k+k])
	}
}

// excluded advances e (ascending items) past the items below it and
// reports whether it is in e.
func excluded(e []int32, it int32) ([]int32, bool) {
	for len(e) > 0 && e[0] < it {
		e = e[1:]
	}
	return e, len(e) > 0 && e[0] == it
}

// scoreTile writes the scores of users blk against the nt item rows of tile
// into out (row b at out[b*topkItemTile:]).
func scoreTile(userFactors []float32, blk []int32, tile []float32, f, nt int, out []float32) {
	for b, u := range blk {
		x := userFactors[int(u)*f : int(u)*f+f]
		row := out[b*topkItemTile : b*topkItemTile+nt]
		for j := range row {
			row[j] = dot(x, tile[j*f:j*f+f])
		}
	}
}

// panelWidth is the item panel width of the scoring kernel in use: 32
// (AVX-512), 16 (AVX2) or 0 (portable Go, no packing).
func panelWidth() int {
	switch {
	case useAVX512:
		return 32
	case useAVX2:
		return 16
	}
	return 0
}

// packPanels lays the item factors out for the scoring kernels: panels of
// w items, each stored transposed (element t of the panel's item j at
// t*w+j), zero-padded to a multiple of w items. Item i's panel starts at
// (i/w)*w*f, so a tile starting at item t0 (a multiple of w) starts at
// t0*f.
func packPanels(items []float32, f, n, w int) []float32 {
	np := (n + w - 1) / w
	out := make([]float32, np*w*f)
	for i := 0; i < n; i++ {
		base := (i / w) * w * f
		j := i % w
		for t, v := range items[i*f : i*f+f] {
			out[base+t*w+j] = v
		}
	}
	return out
}

// scoreTilePanels is scoreTile on packed panels with the assembly kernels:
// the block's users in fours (the last four padded by repeating a user)
// against each panel of the tile.
func scoreTilePanels(userFactors []float32, blk []int32, panels []float32, f, nt, w int, out []float32) {
	np := (nt + w - 1) / w
	_ = panels[np*w*f-1]
	_ = out[((len(blk)+3)/4*4-1)*topkItemTile+np*w-1]
	for b := 0; b < len(blk); b += 4 {
		var u [4]*float32
		for r := range u {
			uu := blk[min(b+r, len(blk)-1)]
			u[r] = &userFactors[int(uu)*f]
		}
		for p := 0; p < np; p++ {
			if w == 32 {
				score4x32AVX512(f, u[0], u[1], u[2], u[3], &panels[p*w*f], &out[b*topkItemTile+p*w], topkItemTile)
			} else {
				score4x16AVX2(f, u[0], u[1], u[2], u[3], &panels[p*w*f], &out[b*topkItemTile+p*w], topkItemTile)
			}
		}
	}
}

// oneRowKernel selects scoreTilePanels1 for blocks of one user (off only
// in BenchmarkScorerOneUser, which compares it with a padded block).
var oneRowKernel = true

// scoreTilePanels1 is scoreTilePanels for a block of one user, x: a
// matrix-vector product over the tile's panels (score1x32AVX512 or
// score1x16AVX2), a quarter of the arithmetic of a padded block of four.
func scoreTilePanels1(x []float32, panels []float32, f, nt, w int, out []float32) {
	np := (nt + w - 1) / w
	_ = panels[np*w*f-1]
	_ = out[np*w-1]
	if w == 32 {
		score1x32AVX512(f, &x[0], &panels[0], np, &out[0])
	} else {
		score1x16AVX2(f, &x[0], &panels[0], np, &out[0])
	}
}

// heap is a bounded min-heap of (score, item) whose root is the worst kept
// candidate: lowest score, and among equal scores the higher item index.
type heap struct {
	k      int
	items  []int32
	scores []float32
}

func (h *heap) reset(k int) { h.k, h.items, h.scores = k, h.items[:0], h.scores[:0] }
func (h *heap) full() bool  { return len(h.items) == h.k }

// worse reports whether entry a ranks below entry b.
func (h *heap) worse(a, b int) bool {
	if h.scores[a] != h.scores[b] {
		return h.scores[a] < h.scores[b]
	}
	return h.items[a] > h.items[b]
}

func (h *heap) swap(a, b int) {
	h.items[a], h.items[b] = h.items[b], h.items[a]
	h.scores[a], h.scores[b] = h.scores[b], h.scores[a]
}

// push offers a candidate; when full it replaces the root if better.
func (h *heap) push(item int32, score float32) {
	if !h.full() {
		h.items = append(h.items, item)
		h.scores = append(h.scores, score)
		for c := len(h.items) - 1; c > 0; {
			p := (c - 1) / 2
			if !h.worse(c, p) {
				break
			}
			h.swap(c, p)
			c = p
		}
		return
	}
	if score < h.scores[0] || (score == h.scores[0] && item > h.items[0]) {
		return
	}
	h.items[0], h.scores[0] = item, score
	h.down(0, len(h.items))
}

func (h *heap) down(p, n int) {
	for {
		c := 2*p + 1
		if c >= n {
			return
		}
		if c+1 < n && h.worse(c+1, c) {
			c++
		}
		if !h.worse(c, p) {
			return
		}
		h.swap(c, p)
		p = c
	}
}

// drain writes the candidates best first into items/scores and returns how
// many there were; the heap is left empty.
func (h *heap) drain(items []int32, scores []float32) int {
	n := len(h.items)
	for e := n - 1; e > 0; e-- {
		h.swap(0, e)
		h.down(0, e)
	}
	// Now ascending from worst to best is reversed: index 0 holds the best.
	copy(items, h.items)
	copy(scores, h.scores)
	h.items, h.scores = h.items[:0], h.scores[:0]
	return n
}
