package ml

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// fakeHistory is a history kept the plainest way: rows in first-sight
// order, each user's items as a set. It is the test's stand-in for Online.
type fakeHistory struct {
	userIdx, itemIdx map[string]int32
	itemKeys         [][]byte
	userItems        [][]int32 // ascending
	itemUsers        [][]int32 // ascending
}

func newFakeHistory() *fakeHistory {
	return &fakeHistory{userIdx: map[string]int32{}, itemIdx: map[string]int32{}}
}

func (h *fakeHistory) NumItems() int { return len(h.itemKeys) }
func (h *fakeHistory) UserIndex(k []byte) (int32, bool) {
	u, ok := h.userIdx[string(k)]
	return u, ok
}
func (h *fakeHistory) ItemIndex(k []byte) (int32, bool) {
	i, ok := h.itemIdx[string(k)]
	return i, ok
}
func (h *fakeHistory) ItemKey(i int32) []byte                 { return h.itemKeys[i] }
func (h *fakeHistory) UserItems(u int32) ([]int32, []float32) { return h.userItems[u], nil }
func (h *fakeHistory) ItemUsers(i int32) ([]int32, []float32) { return h.itemUsers[i], nil }
func insertSorted(s []int32, x int32) []int32 {
	p, ok := slices.BinarySearch(s, x)
	if ok {
		return s
	}
	return slices.Insert(s, p, x)
}

func (h *fakeHistory) apply(batch []Interaction) {
	for _, in := range batch {
		u, ok := h.userIdx[string(in.User)]
		if !ok {
			u = int32(len(h.userItems))
			h.userIdx[string(in.User)] = u
			h.userItems = append(h.userItems, nil)
		}
		i, ok := h.itemIdx[string(in.Item)]
		if !ok {
			i = int32(len(h.itemKeys))
			h.itemIdx[string(in.Item)] = i
			h.itemKeys = append(h.itemKeys, in.Item)
			h.itemUsers = append(h.itemUsers, nil)
		}
		h.userItems[u] = insertSorted(h.userItems[u], i)
		h.itemUsers[i] = insertSorted(h.itemUsers[i], u)
	}
}

// fakeModel holds factors by key; missing keys are unknown rows.
type fakeModel struct {
	k            int
	users, items map[string][]float32
	notReady     map[string]bool // user or item keys ("u"/"i" prefixed) not ready
	uKeys, iKeys []string
}

func (m *fakeModel) Factors() int { return m.k }
func (m *fakeModel) UserIndex(k []byte) (int32, bool) {
	if _, ok := m.users[string(k)]; !ok {
		return 0, false
	}
	m.uKeys = append(m.uKeys, string(k))
	return int32(len(m.uKeys) - 1), true
}
func (m *fakeModel) ItemIndex(k []byte) (int32, bool) {
	if _, ok := m.items[string(k)]; !ok {
		return 0, false
	}
	m.iKeys = append(m.iKeys, string(k))
	return int32(len(m.iKeys) - 1), true
}
func (m *fakeModel) UserReady(u int32) bool       { return !m.notReady["u"+m.uKeys[u]] }
func (m *fakeModel) ItemReady(i int32) bool       { return !m.notReady["i"+m.iKeys[i]] }
func (m *fakeModel) UserVector(u int32) []float32 { return m.users[m.uKeys[u]] }
func (m *fakeModel) ItemVector(i int32) []float32 { return m.items[m.iKeys[i]] }

// oracleRank ranks, by brute force over the items known to h, item target
// for user among the known items user has not seen: score(c) is score's
// value (nil: −∞ for every item), ahead when greater, or equal with a
// smaller key.
func oracleRank(h *fakeHistory, user, target []byte, score func(item []byte) (float64, bool)) int {
	var seen map[string]bool
	if u, ok := h.userIdx[string(user)]; ok {
		seen = map[string]bool{}
		for _, i := range h.userItems[u] {
			seen[string(h.itemKeys[i])] = true
		}
	}
	val := func(item []byte) float64 {
		if s, ok := score(item); ok {
			return s
		}
		return math.Inf(-1)
	}
	st := val(target)
	rank := 1
	for _, c := range h.itemKeys {
		if seen[string(c)] || bytes.Equal(c, target) {
			continue
		}
		sc := val(c)
		if sc > st || (sc == st && bytes.Compare(c, target) < 0) {
			rank++
		}
	}
	return rank
}

// TestPrequentialMeterOracle checks every event's class and rank, and the
// running figures, against a brute-force reading of the definitions, on
// random streams with integer factors (exact float32 dot products, so
// ties are frequent and exact), models that lack or have not ready some
// users and items, weights below the threshold and repeated pairs.
func TestPrequentialMeterOracle(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		const f = 8
		nUsers, nItems := 4+r.IntN(12), 5+r.IntN(30)
		mk := func(id int) []byte { return int64Key(int64(id - 3)) } // some negative ids: key order is id order
		models := make([]*fakeModel, 2)
		for j := range models {
			m := &fakeModel{k: f, users: map[string][]float32{}, items: map[string][]float32{}, notReady: map[string]bool{}}
			vec := func() []float32 {
				v := make([]float32, f)
				for c := range v {
					v[c] = float32(r.IntN(5) - 2)
				}
				return v
			}
			for u := range nUsers {
				if j == 0 || r.IntN(4) > 0 {
					m.users[string(mk(u))] = vec()
					m.notReady["u"+string(mk(u))] = r.IntN(10) == 0
				}
			}
			for i := range nItems {
				if j == 0 || r.IntN(4) > 0 {
					m.items[string(mk(i))] = vec()
					m.notReady["i"+string(mk(i))] = r.IntN(10) == 0
				}
			}
			models[j] = m
		}
		opts := PrequentialOptions{K: 1 + r.IntN(6), MinWeight: float32(r.IntN(2)), Window: 1 + r.IntN(30)}
		warmRanks := make([][]int, len(models)) // each model's warm events' ranks, in batch order
		meter, err := NewPrequentialMeter(opts, len(models))
		if err != nil {
			t.Fatal(err)
		}
		h := newFakeHistory()
		var want []PrequentialFigures = make([]PrequentialFigures, len(models))
		var wantPop, wantCold PrequentialFigures
		var wantCounts PrequentialCounts
		for b := range 40 {
			batch := make([]Interaction, 1+r.IntN(12))
			for p := range batch {
				batch[p] = Interaction{User: mk(r.IntN(nUsers)), Item: mk(r.IntN(nItems)), Weight: float32(r.IntN(3)) + 0.5}
				if p > 0 && r.IntN(6) == 0 {
					batch[p] = batch[r.IntN(p)] // a duplicate within the batch
				}
			}
			// The oracle, event by event in batch order.
			type wantEv struct {
				class EventClass
				ranks []int
			}
			var evs []wantEv
			earlier := map[string]bool{}
			for _, in := range batch {
				wantCounts.Events++
				_, userKnown := h.userIdx[string(in.User)]
				_, itemKnown := h.itemIdx[string(in.Item)]
				hasIt := false
				if u, ok := h.userIdx[string(in.User)]; ok && itemKnown {
					hasIt = contains32(h.userItems[u], h.itemIdx[string(in.Item)])
				}
				pair := string(in.User) + "/" + string(in.Item)
				var c EventClass
				switch {
				case in.Weight < opts.MinWeight:
					c = EventBelow
					wantCounts.Below++
				case !itemKnown:
					c = EventColdItem
					wantCounts.ColdItems++
				case hasIt:
					c = EventRepeat
					wantCounts.Repeats++
				case earlier[pair]:
					c = EventDuplicate
					wantCounts.Duplicates++
				case !userKnown:
					c = EventColdUser
					wantCounts.ColdUsers++
				default:
					c = EventWarm
					wantCounts.Warm++
				}
				if c >= EventDuplicate {
					earlier[pair] = true
				}
				ev := wantEv{class: c}
				if c == EventColdUser || c == EventWarm {
					pop := oracleRank(h, in.User, in.Item, func(item []byte) (float64, bool) {
						return float64(len(h.itemUsers[h.itemIdx[string(item)]])), true
					})
					for j, m := range models {
						uv, ok := m.users[string(in.User)]
						if c == EventColdUser || !ok || m.notReady["u"+string(in.User)] {
							ev.ranks = append(ev.ranks, pop)
							if c == EventWarm {
								want[j].Add(pop, opts.K)
								want[j].Fallback++
								warmRanks[j] = append(warmRanks[j], pop)
							}
							continue
						}
						rk := oracleRank(h, in.User, in.Item, func(item []byte) (float64, bool) {
							iv, ok := m.items[string(item)]
							if !ok || m.notReady["i"+string(item)] {
								return 0, false
							}
							var s float64
							for c := range uv {
								s += float64(uv[c]) * float64(iv[c])
							}
							return s, true
						})
						ev.ranks = append(ev.ranks, rk)
						want[j].Add(rk, opts.K)
						warmRanks[j] = append(warmRanks[j], rk)
					}
					ev.ranks = append(ev.ranks, pop)
					if c == EventColdUser {
						wantCold.Add(pop, opts.K)
					} else {
						wantPop.Add(pop, opts.K)
					}
				}
				evs = append(evs, ev)
			}
			var got []PrequentialEvent
			pm := []PrequentialModel{models[0], models[1]}
			err := meter.ObserveModels(h, pm, batch, func(e PrequentialEvent) {
				e.Ranks = slices.Clone(e.Ranks)
				got = append(got, e)
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(batch) {
				t.Fatalf("seed %d batch %d: %d events reported, want %d", seed, b, len(got), len(batch))
			}
			for p, e := range got {
				if e.Pos != p || e.Class != evs[p].class || !slices.Equal(e.Ranks, evs[p].ranks) {
					t.Fatalf("seed %d batch %d event %d (%x→%x): got class %d ranks %v, want class %d ranks %v",
						seed, b, p, batch[p].User, batch[p].Item, e.Class, e.Ranks, evs[p].class, evs[p].ranks)
				}
			}
			h.apply(batch)
			for j := range models { // the window: the last opts.Window warm events
				var w PrequentialFigures
				for _, rk := range warmRanks[j][max(0, len(warmRanks[j])-opts.Window):] {
					w.Add(rk, opts.K)
				}
				if got := meter.Recent(j); !sameFigures(got, w) {
					t.Fatalf("seed %d batch %d: model %d window of %d: %+v, want %+v", seed, b, j, opts.Window, got, w)
				}
			}
		}
		if got := meter.Counts(); got != wantCounts {
			t.Errorf("seed %d: counts %+v, want %+v", seed, got, wantCounts)
		}
		for j := range models {
			if got := meter.Model(j); !sameFigures(got, want[j]) {
				t.Errorf("seed %d: model %d figures %+v, want %+v", seed, j, got, want[j])
			}
		}
		if got := meter.Popularity(); !sameFigures(got, wantPop) {
			t.Errorf("seed %d: popularity %+v, want %+v", seed, got, wantPop)
		}
		if got := meter.ColdUsers(); !sameFigures(got, wantCold) {
			t.Errorf("seed %d: cold users %+v, want %+v", seed, got, wantCold)
		}
		if wantCounts.Warm == 0 || wantCounts.Duplicates == 0 || wantCounts.Repeats == 0 {
			t.Logf("seed %d: counts %+v", seed, wantCounts)
		}
	}
}

func sameFigures(a, b PrequentialFigures) bool {
	return a.Events == b.Events && a.Fallback == b.Fallback && math.Abs(a.HRSum-b.HRSum) < 1e-9 && math.Abs(a.NDCGSum-b.NDCGSum) < 1e-9
}

// TestPrequentialEvery: with Every = 3 only the 1st, 4th, 7th, ...
// eligible event is scored; the others count as below.
func TestPrequentialEvery(t *testing.T) {
	meter, err := NewPrequentialMeter(PrequentialOptions{Every: 3, MinWeight: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := newFakeHistory()
	h.apply([]Interaction{{User: int64Key(1), Item: int64Key(1), Weight: 1}, {User: int64Key(2), Item: int64Key(2), Weight: 1}})
	var batch []Interaction
	for i := range 10 {
		w := float32(1)
		if i%2 == 1 {
			w = 0.5 // not eligible
		}
		batch = append(batch, Interaction{User: int64Key(1), Item: int64Key(2), Weight: w})
	}
	var classes []EventClass
	if err := meter.ObserveModels(h, nil, batch, func(e PrequentialEvent) { classes = append(classes, e.Class) }); err != nil {
		t.Fatal(err)
	}
	// Eligible events are positions 0,2,4,6,8: the 1st (0) and 4th (6)
	// are scored; 6 repeats the pair of 0.
	want := []EventClass{EventWarm, EventBelow, EventBelow, EventBelow, EventBelow, EventBelow, EventDuplicate, EventBelow, EventBelow, EventBelow}
	if !slices.Equal(classes, want) {
		t.Fatalf("classes %v, want %v", classes, want)
	}
}
