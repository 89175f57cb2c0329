package ml

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Prequential (test-then-train) evaluation: before a batch of interactions
// is applied to a model, each of its positive events is scored by the rank
// of its true item for its user among the items known at that moment that
// the user has not seen. A running job meters its live model this way
// (Observe before Online.Apply); ml/eval's prequential protocol drives the
// same meter over a replayed log with several models side by side. The
// exact definitions (event classes, candidates, ties, metrics) are in
// ml/eval/doc.go, "Prequential".

// PrequentialHistory is the interaction history events are classified
// against and candidates drawn from, as it stands before the batch: the
// items known so far (dense indices 0..NumItems()-1), each user's seen
// items and each item's users. *Online implements it.
type PrequentialHistory interface {
	NumItems() int
	UserIndex(key []byte) (int32, bool)
	ItemIndex(key []byte) (int32, bool)
	ItemKey(i int32) []byte
	UserItems(u int32) (items []int32, weights []float32)
	ItemUsers(i int32) (users []int32, weights []float32)
}

// PrequentialModel is a factor model the meter ranks with. Its index
// spaces may differ from the history's: rows are matched by key. A user it
// does not have, or whose row is not Ready, falls back to popularity; an
// item it does not have, or not ItemReady, scores −∞. *Online implements
// it.
type PrequentialModel interface {
	Factors() int
	UserIndex(key []byte) (int32, bool)
	ItemIndex(key []byte) (int32, bool)
	UserReady(u int32) bool
	ItemReady(i int32) bool
	UserVector(u int32) []float32
	ItemVector(i int32) []float32
}

// EventClass is what became of one event of a batch (ml/eval/doc.go).
type EventClass uint8

// Event classes, in the order they are tested.
const (
	// EventBelow: weight under PrequentialOptions.MinWeight, or not in the
	// sample (PrequentialOptions.Every): applied, not scored.
	EventBelow EventClass = iota
	// EventColdItem: the item is not in the history: nobody can rank it.
	EventColdItem
	// EventRepeat: the user has the item in the history already.
	EventRepeat
	// EventDuplicate: the same (user, item) pair came earlier in the batch.
	EventDuplicate
	// EventColdUser: the user is not in the history: ranked by popularity
	// for every model (the cold-start policy).
	EventColdUser
	// EventWarm: scored by every model.
	EventWarm
)

// PrequentialOptions configure a PrequentialMeter.
type PrequentialOptions struct {
	// K is the cut-off of HR@K and NDCG@K (default 10).
	K int
	// MinWeight: events with a smaller weight are not scored (they are
	// still applied by the caller). 0 scores every event.
	MinWeight float32
	// Every scores one event in Every of those at or above MinWeight (the
	// 1st, the Every+1-th, ...; 0 or 1: all), to bound a live job's cost:
	// a scored event costs O(items·factors) per model.
	Every int
	// Window, when > 0, also keeps each model's figures over its last
	// Window warm events in batch order (Recent): a long-running job's
	// current quality, where the sums cover the whole stream.
	Window int
}

// prequentialWindow holds the ranks of a model's last n warm events, with
// their hit count and NDCG sum kept current.
type prequentialWindow struct {
	ranks []int32 // ring of the last len ≤ n ranks
	next  int
	hits  int64
	ndcg  float64
}

func (w *prequentialWindow) add(rank, k, n int) {
	gain := func(r int32) float64 {
		if int(r) > k {
			return 0
		}
		return 1 / math.Log2(float64(r)+1)
	}
	if len(w.ranks) == n {
		old := w.ranks[w.next]
		if int(old) <= k {
			w.hits--
			w.ndcg -= gain(old)
		}
		w.ranks[w.next] = int32(rank)
		w.next = (w.next + 1) % n
	} else {
		w.ranks = append(w.ranks, int32(rank))
	}
	if rank <= k {
		w.hits++
		w.ndcg += gain(int32(rank))
	}
	if w.hits == 0 {
		w.ndcg = 0 // no drift from adding and removing the same terms
	}
}

func (w *prequentialWindow) figures() PrequentialFigures {
	return PrequentialFigures{Events: int64(len(w.ranks)), HRSum: float64(w.hits), NDCGSum: w.ndcg}
}

// PrequentialFigures are running prequential figures of one model: over
// Events scored events, the sums of HR@K and NDCG@K (means: HR(), NDCG()).
// Fallback counts the warm events the model could not score (unknown or
// not ready user) and ranked by popularity instead.
type PrequentialFigures struct {
	Events   int64   `json:"events"`
	HRSum    float64 `json:"hr_sum"`
	NDCGSum  float64 `json:"ndcg_sum"`
	Fallback int64   `json:"fallback"`
}

// HR is the mean HR@K (0 without events).
func (f PrequentialFigures) HR() float64 { return mean(f.HRSum, f.Events) }

// NDCG is the mean NDCG@K (0 without events).
func (f PrequentialFigures) NDCG() float64 { return mean(f.NDCGSum, f.Events) }

func mean(sum float64, n int64) float64 {
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// Add accumulates one event of the given rank (1-based).
func (f *PrequentialFigures) Add(rank, k int) {
	f.Events++
	if rank <= k {
		f.HRSum++
		f.NDCGSum += 1 / math.Log2(float64(rank)+1)
	}
}

// PrequentialCounts count the events a meter saw, by class.
type PrequentialCounts struct {
	Events     int64 `json:"events"`
	Below      int64 `json:"below"`
	ColdItems  int64 `json:"cold_items"`
	Repeats    int64 `json:"repeats"`
	Duplicates int64 `json:"duplicates"`
	ColdUsers  int64 `json:"cold_users"`
	Warm       int64 `json:"warm"`
}

// PrequentialEvent is one event of an observed batch, handed to the
// callback of ObserveModels: Ranks (borrowed) holds each model's rank of
// the true item (1-based), then popularity's, for warm events; for a cold
// user every entry is popularity's rank; for other classes it is nil.
type PrequentialEvent struct {
	Pos   int
	Class EventClass
	Ranks []int
}

// PrequentialMeter scores events before they are applied. It keeps
// running figures for each model, for popularity (an item's score is the
// number of distinct users who have it in the history) on the same warm
// events, and for the cold-user events (popularity). Not safe for
// concurrent use.
type PrequentialMeter struct {
	opts       PrequentialOptions
	counts     PrequentialCounts
	models     []PrequentialFigures
	popularity PrequentialFigures
	coldUsers  PrequentialFigures
	eligible   int64
	windows    []prequentialWindow // per model, with Window > 0

	// Scratch, reused across batches.
	classes []EventClass
	hIdx    [][2]int32 // per event: history user (-1 if unknown), item
	order   []int32    // warm and cold-user events grouped by user
	pop     []float32
	scores  []float32
	items   [][]float32 // per model: item factors in history order (nil row: −∞)
	ranks   []int
	pairs   map[pairKey]struct{}
}

type pairKey struct {
	user string
	item int32
}

// NewPrequentialMeter returns a meter for the given number of models.
func NewPrequentialMeter(o PrequentialOptions, models int) (*PrequentialMeter, error) {
	if o.K == 0 {
		o.K = 10
	}
	if o.K < 0 || o.Every < 0 || o.Window < 0 || models < 0 || !(o.MinWeight >= 0) || math.IsInf(float64(o.MinWeight), 0) {
		return nil, fmt.Errorf("ml: prequential: bad options %+v for %d models", o, models)
	}
	m := &PrequentialMeter{opts: o, models: make([]PrequentialFigures, models), pairs: map[pairKey]struct{}{}}
	if o.Window > 0 {
		m.windows = make([]prequentialWindow, models)
	}
	return m, nil
}

// Options returns the meter's options (K defaulted).
func (m *PrequentialMeter) Options() PrequentialOptions { return m.opts }

// Recent returns model j's figures over its last Options().Window warm
// events (the zero figures without a window).
func (m *PrequentialMeter) Recent(j int) PrequentialFigures {
	if m.windows == nil {
		return PrequentialFigures{}
	}
	return m.windows[j].figures()
}

// K is the meter's cut-off.
func (m *PrequentialMeter) K() int { return m.opts.K }

// Counts returns the events seen so far, by class.
func (m *PrequentialMeter) Counts() PrequentialCounts { return m.counts }

// Model returns model j's figures over the warm events.
func (m *PrequentialMeter) Model(j int) PrequentialFigures { return m.models[j] }

// Popularity returns popularity's figures over the warm events.
func (m *PrequentialMeter) Popularity() PrequentialFigures { return m.popularity }

// ColdUsers returns the figures of the cold-user events (ranked by
// popularity).
func (m *PrequentialMeter) ColdUsers() PrequentialFigures { return m.coldUsers }

// PrequentialState is what a meter has accumulated (its scratch left
// out): a streaming operator keeps it in its checkpoints, so a restored
// job's figures continue those of the run that took the checkpoint. The
// sums are float64 bit for bit (JSON keeps them: Go encodes a float64 in
// the shortest form that reads back the same).
type PrequentialState struct {
	Options    PrequentialOptions   `json:"options"`
	Counts     PrequentialCounts    `json:"counts"`
	Models     []PrequentialFigures `json:"models"`
	Popularity PrequentialFigures   `json:"popularity"`
	ColdUsers  PrequentialFigures   `json:"cold_users"`
	// Eligible counts the events at or above MinWeight (Every's sample).
	Eligible int64 `json:"eligible"`
	// Windows holds each model's last Window ranks (a ring: the next
	// rank overwrites Next once it is full), their hits and NDCG sum.
	Windows []PrequentialWindowState `json:"windows,omitempty"`
}

// PrequentialWindowState is one model's Recent window.
type PrequentialWindowState struct {
	Ranks []int32 `json:"ranks"`
	Next  int     `json:"next"`
	Hits  int64   `json:"hits"`
	NDCG  float64 `json:"ndcg"`
}

// State returns a copy of what the meter accumulated.
func (m *PrequentialMeter) State() PrequentialState {
	s := PrequentialState{Options: m.opts, Counts: m.counts, Models: slices.Clone(m.models), Popularity: m.popularity,
		ColdUsers: m.coldUsers, Eligible: m.eligible}
	for _, w := range m.windows {
		s.Windows = append(s.Windows, PrequentialWindowState{Ranks: slices.Clone(w.ranks), Next: w.next, Hits: w.hits, NDCG: w.ndcg})
	}
	return s
}

// SetState makes the meter continue from s, which must come from a meter
// with the same options and number of models.
func (m *PrequentialMeter) SetState(s PrequentialState) error {
	if s.Options != m.opts || len(s.Models) != len(m.models) || len(s.Windows) != len(m.windows) {
		return fmt.Errorf("ml: prequential: state of a meter with options %+v and %d models, this one has %+v and %d",
			s.Options, len(s.Models), m.opts, len(m.models))
	}
	for j, w := range s.Windows {
		if len(w.Ranks) > m.opts.Window || w.Next < 0 || w.Next >= max(len(w.Ranks), 1) || w.Next > 0 && len(w.Ranks) < m.opts.Window {
			return fmt.Errorf("ml: prequential: window %d: %d ranks, next %d, for a window of %d", j, len(w.Ranks), w.Next, m.opts.Window)
		}
	}
	m.counts, m.popularity, m.coldUsers, m.eligible = s.Counts, s.Popularity, s.ColdUsers, s.Eligible
	copy(m.models, s.Models)
	for j, w := range s.Windows {
		m.windows[j] = prequentialWindow{ranks: slices.Clone(w.Ranks), next: w.Next, hits: w.Hits, ndcg: w.NDCG}
	}
	return nil
}

// Observe scores batch against o, which is both the history and the
// model: call it just before o.Apply(ctx, batch), on the batch Apply gets.
// The meter must have been made for one model.
func (m *PrequentialMeter) Observe(o *Online, batch []Interaction) error {
	return m.ObserveModels(o, []PrequentialModel{o}, batch, nil)
}

// ObserveModels scores batch against the history h with each of models
// (as many as the meter was made for), before the batch is applied to any
// of them. each, if not nil, is called for every event in batch order.
func (m *PrequentialMeter) ObserveModels(h PrequentialHistory, models []PrequentialModel, batch []Interaction, each func(PrequentialEvent)) error {
	if len(models) != len(m.models) {
		return fmt.Errorf("ml: prequential: %d models for a meter of %d", len(models), len(m.models))
	}
	m.classify(h, batch)
	if len(m.order) > 0 {
		m.score(h, models, batch)
	}
	if m.windows != nil {
		nr := len(models) + 1
		for p, c := range m.classes {
			if c == EventWarm {
				for j := range models {
					m.windows[j].add(m.ranks[p*nr+j], m.opts.K, m.opts.Window)
				}
			}
		}
	}
	if each != nil {
		nr := len(models) + 1
		for p, c := range m.classes {
			ev := PrequentialEvent{Pos: p, Class: c}
			if c == EventWarm || c == EventColdUser {
				ev.Ranks = m.ranks[p*nr : (p+1)*nr]
			}
			each(ev)
		}
	}
	return nil
}

// classify sets the class of every event and lists the warm and cold-user
// ones, grouped by user, in m.order.
func (m *PrequentialMeter) classify(h PrequentialHistory, batch []Interaction) {
	m.classes = slices.Grow(m.classes[:0], len(batch))[:len(batch)]
	m.hIdx = slices.Grow(m.hIdx[:0], len(batch))[:len(batch)]
	m.order = m.order[:0]
	clear(m.pairs)
	every := int64(max(m.opts.Every, 1))
	for p := range batch {
		in := &batch[p]
		m.counts.Events++
		c := EventWarm
		u, uok := h.UserIndex(in.User)
		i, iok := h.ItemIndex(in.Item)
		if !uok {
			u = -1
		}
		switch {
		case !(in.Weight >= m.opts.MinWeight):
			c = EventBelow
		default:
			m.eligible++
			if (m.eligible-1)%every != 0 {
				c = EventBelow
				break
			}
			if !iok {
				c = EventColdItem
				break
			}
			if uok {
				if seen, _ := h.UserItems(u); contains32(seen, i) {
					c = EventRepeat
					break
				}
			}
			k := pairKey{string(in.User), i}
			if _, dup := m.pairs[k]; dup {
				c = EventDuplicate
				break
			}
			m.pairs[k] = struct{}{}
			if !uok {
				c = EventColdUser
			}
		}
		m.classes[p] = c
		m.hIdx[p] = [2]int32{u, i}
		switch c {
		case EventBelow:
			m.counts.Below++
		case EventColdItem:
			m.counts.ColdItems++
		case EventRepeat:
			m.counts.Repeats++
		case EventDuplicate:
			m.counts.Duplicates++
		case EventColdUser:
			m.counts.ColdUsers++
			m.order = append(m.order, int32(p))
		case EventWarm:
			m.counts.Warm++
			m.order = append(m.order, int32(p))
		}
	}
	// Group by user (cold users by key), keeping batch order within one.
	slices.SortStableFunc(m.order, func(a, b int32) int {
		ua, ub := m.hIdx[a][0], m.hIdx[b][0]
		if c := cmp.Compare(ua, ub); c != 0 || ua >= 0 {
			return c
		}
		return bytes.Compare(batch[a].User, batch[b].User)
	})
}

func contains32(sorted []int32, x int32) bool {
	_, ok := slices.BinarySearch(sorted, x)
	return ok
}

// score ranks the true item of every event in m.order for each model and
// popularity, and adds the ranks to the figures.
func (m *PrequentialMeter) score(h PrequentialHistory, models []PrequentialModel, batch []Interaction) {
	n := h.NumItems()
	nr := len(models) + 1
	m.ranks = slices.Grow(m.ranks[:0], len(batch)*nr)[:len(batch)*nr]
	// Popularity: distinct users per item, from the history.
	m.pop = slices.Grow(m.pop[:0], n)[:n]
	for i := range n {
		users, _ := h.ItemUsers(int32(i))
		m.pop[i] = float32(len(users))
	}
	// Each model's item factors in history order, gathered once a batch.
	for len(m.items) < len(models) {
		m.items = append(m.items, nil)
	}
	for j, mod := range models {
		m.items[j] = gatherItems(m.items[j], h, mod, n)
	}
	m.scores = slices.Grow(m.scores[:0], n)[:n]
	k := m.opts.K
	tie := func(t int32) func(c int32) bool {
		key := h.ItemKey(t)
		return func(c int32) bool { return bytes.Compare(h.ItemKey(c), key) < 0 }
	}
	for lo := 0; lo < len(m.order); {
		p0 := m.order[lo]
		hi := lo + 1
		for hi < len(m.order) && m.hIdx[m.order[hi]][0] == m.hIdx[p0][0] &&
			(m.hIdx[p0][0] >= 0 || bytes.Equal(batch[m.order[hi]].User, batch[p0].User)) {
			hi++
		}
		group := m.order[lo:hi]
		lo = hi
		var seen []int32
		if u := m.hIdx[p0][0]; u >= 0 {
			seen, _ = h.UserItems(u)
		}
		for _, p := range group {
			t := m.hIdx[p][1]
			r := RankAmong(m.pop, t, seen, tie(t))
			for j := range nr {
				m.ranks[int(p)*nr+j] = r
			}
			if m.classes[p] == EventColdUser {
				m.coldUsers.Add(r, k)
			} else {
				m.popularity.Add(r, k)
			}
		}
		if m.classes[p0] == EventColdUser {
			continue
		}
		key := batch[p0].User
		for j, mod := range models {
			mu, ok := mod.UserIndex(key)
			if !ok || !mod.UserReady(mu) {
				for _, p := range group {
					m.models[j].Add(m.ranks[int(p)*nr+nr-1], k)
					m.models[j].Fallback++
				}
				continue
			}
			scoreAll(m.scores, mod.UserVector(mu), m.items[j], mod.Factors())
			for _, p := range group {
				t := m.hIdx[p][1]
				r := RankAmong(m.scores, t, seen, tie(t))
				m.ranks[int(p)*nr+j] = r
				m.models[j].Add(r, k)
			}
		}
	}
}

// gatherItems copies mod's factor of every history item 0..n-1 into dst
// (row-major), a row of NaN for items mod lacks or has not ready.
func gatherItems(dst []float32, h PrequentialHistory, mod PrequentialModel, n int) []float32 {
	f := mod.Factors()
	dst = slices.Grow(dst[:0], n*f)[:n*f]
	nan := float32(math.NaN())
	for i := range n {
		row := dst[i*f : (i+1)*f]
		if mi, ok := mod.ItemIndex(h.ItemKey(int32(i))); ok && mod.ItemReady(mi) {
			copy(row, mod.ItemVector(mi))
			continue
		}
		for c := range row {
			row[c] = nan
		}
	}
	return dst
}

// scoreAll writes the score of every gathered item row for user vector u:
// the dot product, or −∞ for a row the model lacks (NaN) or whose score
// is not a number.
func scoreAll(dst, u, items []float32, f int) {
	for i := range dst {
		s := dot(u, items[i*f:(i+1)*f])
		if s != s {
			s = float32(math.Inf(-1))
		}
		dst[i] = s
	}
}

// RankAmong returns the 1-based rank of item t among the candidates: every
// index of scores except t and the items in seen (ascending, t not among
// them). A candidate c ranks ahead of t when scores[c] > scores[t], or
// when they are equal and tieBefore(c) (riffle: c's id is smaller). Scores
// must not be NaN (−∞ is allowed). It costs O(len(scores) + len(seen)),
// plus a tieBefore call per tie.
func RankAmong(scores []float32, t int32, seen []int32, tieBefore func(c int32) bool) int {
	st := scores[t]
	ahead := 0
	for c, s := range scores {
		if s > st {
			ahead++
		} else if s == st && int32(c) != t && tieBefore(int32(c)) {
			ahead++
		}
	}
	for _, c := range seen {
		if s := scores[c]; s > st || (s == st && c != t && tieBefore(c)) {
			ahead--
		}
	}
	return ahead + 1
}
