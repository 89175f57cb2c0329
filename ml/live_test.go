package ml

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// TestScorerSetItem grows a Scorer item by item across panel and tile
// boundaries, overwrites random items in place, and checks every answer of
// TopKOf against a full sort of a plain copy of the same items (bruteTopK).
// Integer factors keep every dot product exact, so answers must be equal,
// ties included.
func TestScorerSetItem(t *testing.T) {
	for _, f := range []int{8, 16, 40} {
		rng := rand.New(rand.NewPCG(41, uint64(f)))
		s, err := NewItemScorer(f)
		if err != nil {
			t.Fatal(err)
		}
		vec := func() []float32 {
			v := make([]float32, f)
			for j := range v {
				v[j] = float32(rng.IntN(5) - 2)
			}
			return v
		}
		var plain []float32 // the oracle's copy of the items
		check := func(step string) {
			n := len(plain) / f
			for q := 0; q < 5; q++ {
				x := vec()
				var ex []int32
				for i := 0; i < n; i++ {
					if rng.IntN(7) == 0 {
						ex = append(ex, int32(i))
					}
				}
				k := 1 + rng.IntN(30)
				if q == 0 {
					k = n + 3 // more than there are
				}
				items, scores, err := s.TopKOf(x, k, ex, []int32{-1}, []float32{-1})
				if err != nil {
					t.Fatal(err)
				}
				m := &Model{Factors: f, NumUsers: 1, NumItems: n, UserFactors: x, ItemFactors: plain}
				exm, err := NewInteractions(1, n, make([]int32, len(ex)), ex, nil)
				if err != nil {
					t.Fatal(err)
				}
				wi, ws := bruteTopK(m, 0, k, exm)
				if items[0] != -1 || scores[0] != -1 || !slices.Equal(items[1:], wi) || !slices.Equal(scores[1:], ws) {
					t.Fatalf("f=%d %s, %d items, k=%d: got %v %v, want [-1 %v] [-1 %v]", f, step, n, k, items, scores, wi, ws)
				}
			}
		}
		for round := 0; round < 16; round++ {
			for add := rng.IntN(300); add > 0; add-- {
				v := vec()
				if err := s.SetItem(s.NumItems(), v); err != nil {
					t.Fatal(err)
				}
				plain = append(plain, v...)
			}
			for upd := rng.IntN(50); upd > 0 && s.NumItems() > 0; upd-- {
				i := rng.IntN(s.NumItems())
				v := vec()
				if err := s.SetItem(i, v); err != nil {
					t.Fatal(err)
				}
				copy(plain[i*f:], v)
			}
			check("round")
		}
		if s.NumItems() < 2*topkItemTile {
			t.Fatalf("only %d items: the test should span several tiles", s.NumItems())
		}
		if err := s.SetItem(s.NumItems()+1, vec()); err == nil {
			t.Fatal("SetItem accepted an item past the end")
		}
		if err := s.SetItem(0, make([]float32, f+1)); err == nil {
			t.Fatal("SetItem accepted a vector of the wrong length")
		}
		if _, _, err := s.TopKOf(make([]float32, f-1), 3, nil, nil, nil); err == nil {
			t.Fatal("TopKOf accepted a query of the wrong length")
		}
	}
}

// fakeOnline is a model in the shape Live.Sync reads (liveSource) whose
// updates the test controls: small integer factors, so every score is
// exact, and rows that are not ready. The Online-driven tests use the real
// model; this one reaches the corners (unready rows, ties) on purpose.
type fakeOnline struct {
	k                  int
	userKeys, itemKeys [][]byte
	uv, iv             []float32
	userItems          [][]int32 // ascending
	itemUsers          [][]int32
	uready, iready     []bool
	cu, ci             []int32
	fu, fi             []int32 // touched, solve failed: history grew, vector kept
	failRate           int     // 1 in failRate touched rows fails (0: none)
	pairs              int64
}

func (m *fakeOnline) Factors() int                           { return m.k }
func (m *fakeOnline) NumUsers() int                          { return len(m.userKeys) }
func (m *fakeOnline) NumItems() int                          { return len(m.itemKeys) }
func (m *fakeOnline) NumInteractions() int64                 { return m.pairs }
func (m *fakeOnline) Changed() ([]int32, []int32)            { return m.cu, m.ci }
func (m *fakeOnline) Failed() ([]int32, []int32)             { return m.fu, m.fi }
func (m *fakeOnline) UserKey(u int32) []byte                 { return m.userKeys[u] }
func (m *fakeOnline) ItemKey(i int32) []byte                 { return m.itemKeys[i] }
func (m *fakeOnline) UserVector(u int32) []float32           { return m.uv[int(u)*m.k : int(u)*m.k+m.k] }
func (m *fakeOnline) ItemVector(i int32) []float32           { return m.iv[int(i)*m.k : int(i)*m.k+m.k] }
func (m *fakeOnline) UserItems(u int32) ([]int32, []float32) { return m.userItems[u], nil }
func (m *fakeOnline) ItemUsers(i int32) ([]int32, []float32) { return m.itemUsers[i], nil }
func (m *fakeOnline) UserReady(u int32) bool                 { return m.uready[u] }
func (m *fakeOnline) ItemReady(i int32) bool                 { return m.iready[i] }

func fakeUserID(u int) int64  { return int64(u)*7 - 300 }
func fakeItemID(i int) string { return fmt.Sprintf("item-%d", i) }

// apply adds n random interactions (new users and items among them),
// gives every touched row a new vector (and, for a few new rows, leaves it
// not ready until touched again) and records them as changed.
func (m *fakeOnline) apply(rng *rand.Rand, n, newUsers, newItems int) {
	vec := func() []float32 {
		v := make([]float32, m.k)
		for j := range v {
			v[j] = float32(rng.IntN(5) - 2)
		}
		return v
	}
	for range newUsers {
		m.userKeys = append(m.userKeys, int64Key(fakeUserID(len(m.userKeys))))
		m.uv = append(m.uv, vec()...)
		m.userItems = append(m.userItems, nil)
		m.uready = append(m.uready, false)
	}
	for range newItems {
		m.itemKeys = append(m.itemKeys, []byte(fakeItemID(len(m.itemKeys))))
		m.iv = append(m.iv, vec()...)
		m.itemUsers = append(m.itemUsers, nil)
		m.iready = append(m.iready, false)
	}
	tu, ti := map[int32]bool{}, map[int32]bool{}
	for range n {
		u, i := int32(rng.IntN(len(m.userKeys))), int32(rng.IntN(len(m.itemKeys)))
		tu[u], ti[i] = true, true
		if p, found := slices.BinarySearch(m.userItems[u], i); !found {
			m.userItems[u] = slices.Insert(m.userItems[u], p, i)
			q, _ := slices.BinarySearch(m.itemUsers[i], u)
			m.itemUsers[i] = slices.Insert(m.itemUsers[i], q, u)
			m.pairs++
		}
	}
	m.cu, m.ci, m.fu, m.fi = m.cu[:0], m.ci[:0], m.fu[:0], m.fi[:0]
	fails := func() bool { return m.failRate > 0 && rng.IntN(m.failRate) == 0 }
	for u := range tu {
		if fails() { // rolled back: the factor and readiness stay
			m.fu = append(m.fu, u)
			continue
		}
		m.cu = append(m.cu, u)
		copy(m.uv[int(u)*m.k:], vec())
		m.uready[u] = rng.IntN(10) > 0 // a failed solve now and then
	}
	for i := range ti {
		if fails() {
			m.fi = append(m.fi, i)
			continue
		}
		m.ci = append(m.ci, i)
		copy(m.iv[int(i)*m.k:], vec())
		m.iready[i] = rng.IntN(10) > 0
	}
	slices.Sort(m.cu)
	slices.Sort(m.ci)
	slices.Sort(m.fu)
	slices.Sort(m.fi)
	// New rows nobody touched stay not ready and are not in Changed.
}

// bruteRecommend ranks every ready item the user has not seen by a full
// sort of exact dot products.
func (m *fakeOnline) bruteRecommend(u int32, k int) ([]any, []float32) {
	x := m.UserVector(u)
	type cand struct {
		item  int32
		score float32
	}
	var cs []cand
	for i := range m.itemKeys {
		if !m.iready[i] || slices.Contains(m.userItems[u], int32(i)) {
			continue
		}
		var s float32
		for j, v := range m.ItemVector(int32(i)) {
			s += v * x[j]
		}
		cs = append(cs, cand{int32(i), s})
	}
	return sortCands(cs, k, func(c cand) (int32, float32) { return c.item, c.score }, m.itemKeys)
}

func (m *fakeOnline) brutePopular(k int) ([]any, []float32) {
	type cand struct {
		item  int32
		score float32
	}
	var cs []cand
	for i := range m.itemKeys {
		if m.iready[i] {
			cs = append(cs, cand{int32(i), float32(len(m.itemUsers[i]))})
		}
	}
	return sortCands(cs, k, func(c cand) (int32, float32) { return c.item, c.score }, m.itemKeys)
}

// sortCands sorts by descending score, then ascending item, and returns
// the first k as item ids (strings: the fake's item kind) and scores.
func sortCands[C any](cs []C, k int, get func(C) (int32, float32), keys [][]byte) ([]any, []float32) {
	slices.SortFunc(cs, func(a, b C) int {
		ia, sa := get(a)
		ib, sb := get(b)
		switch {
		case sa != sb:
			if sa > sb {
				return -1
			}
			return 1
		}
		return int(ia - ib)
	})
	cs = cs[:min(k, len(cs))]
	ids, scores := make([]any, len(cs)), make([]float32, len(cs))
	for j, c := range cs {
		i, s := get(c)
		ids[j], scores[j] = string(keys[i]), s
	}
	return ids, scores
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for j := range a {
		ab += float64(a[j]) * float64(b[j])
		aa += float64(a[j]) * float64(a[j])
		bb += float64(b[j]) * float64(b[j])
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// checkLive compares every user's and some items' answers with brute force.
func checkLive(t *testing.T, l *Live, m *fakeOnline, updates uint64, rng *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	for u := range m.userKeys {
		id := strconv.FormatInt(fakeUserID(u), 10)
		k := 1 + rng.IntN(15)
		got, err := l.Recommend(ctx, id, k, false)
		if !m.uready[u] {
			if !errors.Is(err, ErrUnknownUser) {
				t.Fatalf("user %s is not ready: got %v, want ErrUnknownUser", id, err)
			}
			got, err = l.Recommend(ctx, id, k, true)
			wi, ws := m.brutePopular(k)
			if err != nil || !got.Fallback || !slices.Equal(got.Items, wi) || !slices.Equal(got.Scores, ws) {
				t.Fatalf("user %s, popular fallback: got %+v, %v; want %v %v", id, got, err, wi, ws)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		wi, ws := m.bruteRecommend(int32(u), k)
		if got.ID != fakeUserID(u) || got.Fallback || got.Updates != updates || got.Interactions != m.pairs ||
			!slices.Equal(got.Items, wi) || !slices.Equal(got.Scores, ws) {
			t.Fatalf("user %s k=%d after %d updates: got %+v, want %v %v", id, k, updates, got, wi, ws)
		}
	}
	for i := range m.itemKeys {
		id := fakeItemID(i)
		got, err := l.Similar(ctx, id, 10)
		if !m.iready[i] {
			if !errors.Is(err, ErrUnknownItem) {
				t.Fatalf("item %s is not ready: got %v, want ErrUnknownItem", id, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// Cosines in float32 vs float64: compare scores with a tolerance
		// and check nothing better was left out.
		var want []float64
		for j := range m.itemKeys {
			if j != i && m.iready[j] {
				want = append(want, cosine(m.ItemVector(int32(i)), m.ItemVector(int32(j))))
			}
		}
		slices.SortFunc(want, func(a, b float64) int { return cmp.Compare(b, a) })
		if len(got.Items) != min(10, len(want)) {
			t.Fatalf("similar %s: %d items, want %d", id, len(got.Items), min(10, len(want)))
		}
		for r, it := range got.Items {
			j := slices.IndexFunc(m.itemKeys, func(k []byte) bool { return string(k) == it })
			if j == i || j < 0 || !m.iready[j] {
				t.Fatalf("similar %s: item %v must not be served", id, it)
			}
			c := cosine(m.ItemVector(int32(i)), m.ItemVector(int32(j)))
			if math.Abs(c-float64(got.Scores[r])) > 1e-5 || math.Abs(want[r]-c) > 1e-5 {
				t.Fatalf("similar %s rank %d: %v with cosine %v (served %v), brute-force rank %d has %v", id, r+1, it, c, got.Scores[r], r+1, want[r])
			}
		}
	}
	if _, err := l.Recommend(ctx, "no-number", 3, true); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("non-integer user id: got %v, want ErrBadQuery", err)
	}
	if _, err := l.Recommend(ctx, "1", 0, true); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("k=0: got %v, want ErrBadQuery", err)
	}
	if _, err := l.Similar(ctx, "no such item", 3); !errors.Is(err, ErrUnknownItem) {
		t.Fatalf("unknown item: got %v", err)
	}
}

// TestLiveMatchesBruteForce syncs a Live after each of a sequence of
// updates (new rows, changed rows, rows not ready) and compares every
// user's recommendations, the popularity fallback and every item's similar
// items with brute force over the model at that point.
func TestLiveMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	m := &fakeOnline{k: 8, failRate: 6}
	l := NewLive(8, idInt64, idString)
	for step := 1; step <= 25; step++ {
		nu, ni := 0, 0
		if step == 1 {
			nu, ni = 50, 600
		} else if step%3 == 0 {
			nu, ni = rng.IntN(8), rng.IntN(40)
		}
		m.apply(rng, 1+rng.IntN(400), nu, ni)
		if err := l.sync(m); err != nil {
			t.Fatal(err)
		}
		checkLive(t, l, m, uint64(step), rng)
	}
	if n := l.cur.Load().scorer.NumItems(); n != len(m.itemKeys) || len(m.itemKeys) <= topkItemTile {
		t.Fatalf("%d items served of %d (want more than a tile)", n, len(m.itemKeys))
	}
	bad := &fakeOnline{k: 9}
	if err := l.sync(bad); err == nil {
		t.Fatal("Sync accepted a model with other factors")
	}
}

// TestLiveConcurrentReaders runs readers against a Live while the owner
// updates and syncs it. Before each Sync the owner records the brute-force
// answers of the model it is about to publish, by update count: every
// user's recommendations and popularity fallback, and every item's ready
// state. Every answer a reader gets must equal the recorded answer of the
// update count it reports, so a torn vector (half of one update, half of
// the next), a half-copied update, a stale seen list or popularity of a
// row whose solve failed (failRate) or a copy that missed the previous
// update's rows (the unpublished copy is two updates behind) fails the
// test. Run it under -race. The owner waits for a reader to have seen
// each update before the next one (no sleeps).
func TestLiveConcurrentReaders(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	m := &fakeOnline{k: 16, failRate: 8}
	l := NewLive(16, idInt64, idString)
	m.apply(rng, 3000, 40, 700)
	for u := range m.uready {
		m.uready[u] = true
	}
	for i := range m.iready {
		m.iready[i] = true
	}
	const gens, readers = 40, 4
	type answer struct {
		items, pop   []any
		scores, pops []float32
		ready        bool
	}
	var mu sync.Mutex
	want := map[uint64][]answer{} // update count -> per user
	record := func(g uint64) {
		as := make([]answer, len(m.userKeys))
		for u := range m.userKeys {
			as[u].ready = m.uready[u]
			if m.uready[u] {
				as[u].items, as[u].scores = m.bruteRecommend(int32(u), 5)
			}
			as[u].pop, as[u].pops = m.brutePopular(5)
		}
		mu.Lock()
		want[g] = as
		mu.Unlock()
	}
	record(1)
	if err := l.sync(m); err != nil {
		t.Fatal(err)
	}
	seen := make(chan uint64, readers)
	done := make(chan struct{})
	errs := make(chan error, readers)
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got LiveResult // reused: RecommendTo must not keep stale entries
			for q := r; ; q++ {
				select {
				case <-done:
					return
				default:
				}
				u := q % 40
				err := l.RecommendTo(context.Background(), strconv.FormatInt(fakeUserID(u), 10), 5, q%3 == 0, &got)
				mu.Lock()
				w := want[got.Updates][u]
				mu.Unlock()
				switch {
				case err != nil && (w.ready || !errors.Is(err, ErrUnknownUser)):
					errs <- fmt.Errorf("user %d: %v (ready at update %d: %v)", u, err, got.Updates, w.ready)
					return
				case err != nil:
				case !w.ready && (!got.Fallback || !slices.Equal(got.Items, w.pop) || !slices.Equal(got.Scores, w.pops)):
					errs <- fmt.Errorf("user %d at update %d (not ready): got %+v, want popular %v %v", u, got.Updates, got, w.pop, w.pops)
					return
				case w.ready && (got.Fallback || !slices.Equal(got.Items, w.items) || !slices.Equal(got.Scores, w.scores)):
					errs <- fmt.Errorf("user %d at update %d: got %v %v, want %v %v", u, got.Updates, got.Items, got.Scores, w.items, w.scores)
					return
				}
				select {
				case seen <- got.Updates:
				default:
				}
			}
		}()
	}
	for g := uint64(2); g <= gens; g++ {
		// Wait until a reader has answered from update g-1.
		for ok := false; !ok; {
			select {
			case s := <-seen:
				ok = s == g-1
			case err := <-errs:
				close(done)
				wg.Wait()
				t.Fatal(err)
			}
		}
		m.apply(rng, 60, int(g%2), int(40*(g%3))) // the arrays grow while readers read; some rows untouched
		for _, u := range m.cu {
			m.uready[u] = g%5 != 0 || u%7 != 0 // now and then a user goes unready
		}
		for _, i := range m.ci {
			m.iready[i] = true
		}
		record(g)
		if err := l.sync(m); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Syncs != gens || st.Queries == 0 || len(st.Latency) != len(LiveLatencyBuckets)+1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestLiveReaderHoldsCopy: a reader in the middle of a query (holding the
// published copy) does not hold up the next Sync, which publishes the
// other copy; the held copy keeps answering as the model was when the
// reader started, however the model changed since; the Sync after that
// (which must write the held copy) waits for the reader and then brings
// it up to date with both updates.
func TestLiveReaderHoldsCopy(t *testing.T) {
	rng := rand.New(rand.NewPCG(63, 64))
	m := &fakeOnline{k: 8}
	l := NewLive(8, idInt64, idString)
	ready := func() { // the changed rows ready: user u is asked about throughout
		for _, u := range m.cu {
			m.uready[u] = true
		}
		for _, i := range m.ci {
			m.iready[i] = true
		}
	}
	m.apply(rng, 400, 20, 100)
	ready()
	if err := l.sync(m); err != nil { // copy A published
		t.Fatal(err)
	}
	if err := l.sync(m); err != nil { // copy B published: both copies exist now
		t.Fatal(err)
	}
	const u = 3
	w1, s1 := m.bruteRecommend(u, 6)
	key := int64Key(fakeUserID(u))
	id := strconv.FormatInt(fakeUserID(u), 10)
	held := l.acquire() // a reader in the middle of its query on B
	m.apply(rng, 400, 5, 30)
	ready()
	if err := l.sync(m); err != nil { // writes A; must not wait for the reader on B
		t.Fatal(err)
	}
	var got LiveResult
	if err := l.recommendIn(held, key, id, 6, false, &got); err != nil || got.Updates != 2 || !slices.Equal(got.Items, w1) || !slices.Equal(got.Scores, s1) {
		t.Fatalf("the held copy after the next Sync: %+v, %v; want update 2: %v %v", got, err, w1, s1)
	}
	m.apply(rng, 400, 3, 20)
	ready()
	synced := make(chan error)
	go func() { synced <- l.sync(m) }() // writes B once the reader is out
	// The reader goes on reading B meanwhile: under -race a Sync that
	// wrote B now would be reported, and the answer would change.
	for range 3 {
		if err := l.recommendIn(held, key, id, 6, false, &got); err != nil || got.Updates != 2 || !slices.Equal(got.Items, w1) || !slices.Equal(got.Scores, s1) {
			t.Fatalf("the held copy during the Sync that waits for it: %+v, %v; want update 2: %v %v", got, err, w1, s1)
		}
	}
	held.release()
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	w4, s4 := m.bruteRecommend(u, 6)
	if err := l.RecommendTo(context.Background(), id, 6, false, &got); err != nil || got.Updates != 4 || !slices.Equal(got.Items, w4) || !slices.Equal(got.Scores, s4) {
		t.Fatalf("after the fourth Sync: %+v, %v; want update 4: %v %v", got, err, w4, s4)
	}
	checkLive(t, l, m, 4, rng)
}

// TestLiveSyncsOnline drives a real Online through a sequence of Apply
// calls (new and returning users and items), Syncs a Live after each and
// compares every user's recommendations with brute force over the model's
// factors and histories at that point: the scores to float32 rounding
// (the kernels sum in another order), the items excluded exactly.
func TestLiveSyncsOnline(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	const k = 16
	o, err := NewOnline(OnlineOptions{Config: Config{Factors: k, Seed: 3}})
	if err != nil {
		t.Fatal(err)
	}
	l := NewLive(k, idInt64, idString)
	ctx := context.Background()
	users, items := 30, 200
	for step := 1; step <= 12; step++ {
		if step%4 == 0 {
			users, items = users+10, items+150
		}
		batch := make([]Interaction, 300)
		for j := range batch {
			batch[j] = Interaction{User: Int64Key(fakeUserID(rng.IntN(users))), Item: []byte(fakeItemID(rng.IntN(items))), Weight: float32(1 + rng.IntN(3))}
		}
		st, err := o.Apply(ctx, batch)
		if err != nil || st.Failed != nil {
			t.Fatal(err, st.Failed)
		}
		if err := l.Sync(o); err != nil {
			t.Fatal(err)
		}
		m, ex := o.Model()
		for u := int32(0); u < int32(o.NumUsers()); u++ {
			id := strconv.FormatInt(keyInt64(o.UserKey(u)), 10)
			got, err := l.Recommend(ctx, id, 10, false)
			if err != nil {
				t.Fatal(err)
			}
			if got.Updates != uint64(step) || got.Interactions != o.NumInteractions() {
				t.Fatalf("step %d: answer read at update %d, %d interactions; want %d, %d", step, got.Updates, got.Interactions, step, o.NumInteractions())
			}
			wi, ws := bruteTopK(m, int(u), 10, ex)
			if len(got.Items) != len(wi) {
				t.Fatalf("step %d user %s: %d items, want %d", step, id, len(got.Items), len(wi))
			}
			seen, _ := o.UserItems(u)
			for r, it := range got.Items {
				i, ok := o.ItemIndex([]byte(it.(string)))
				if !ok || slices.Contains(seen, i) {
					t.Fatalf("step %d user %s: served item %v is unknown or seen", step, id, it)
				}
				exact := m.Score(int(u), int(i))
				if math.Abs(float64(got.Scores[r]-exact)) > 1e-4 || math.Abs(float64(got.Scores[r]-ws[r])) > 1e-4 {
					t.Fatalf("step %d user %s rank %d: %v scored %v (exact %v), brute-force rank score %v", step, id, r+1, it, got.Scores[r], exact, ws[r])
				}
			}
		}
	}
}

// benchFake is a model of users × items, Gaussian factors, every row
// ready, each user with about seen random items.
func benchFake(rng *rand.Rand, users, items, k, seen int) *fakeOnline {
	m := &fakeOnline{k: k}
	m.apply(rng, 0, users, items)
	for u := range m.uv {
		m.uv[u] = float32(rng.NormFloat64() * 0.3)
	}
	for i := range m.iv {
		m.iv[i] = float32(rng.NormFloat64() * 0.3)
	}
	for u := range users {
		for range seen {
			m.userItems[u] = append(m.userItems[u], int32(rng.IntN(items)))
		}
		slices.Sort(m.userItems[u])
		m.userItems[u] = slices.Compact(m.userItems[u])
		m.uready[u] = true
	}
	for i := range m.iready {
		m.iready[i] = true
	}
	return m
}

// BenchmarkLiveRecommend is one GET /recommend's model work: a user's
// top-10 among 20k items at K = 64 from a Live (50 seen items excluded),
// the result reused (RecommendTo), with and without the half-precision
// pass; cpu-ns/op is the process CPU time.
func BenchmarkLiveRecommend(b *testing.B) {
	const users, items, k = 10_000, 20_000, 64
	m := benchFake(rand.New(rand.NewPCG(5, 6)), users, items, k, 50)
	l := NewLive(k, idInt64, idString)
	if err := l.sync(m); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, users)
	for u := range ids {
		ids[u] = strconv.FormatInt(fakeUserID(u), 10)
	}
	var res LiveResult
	for _, half := range []bool{true, false} {
		name := "k=10/half" // the half-precision pass, then float32 for the candidates
		if !half {
			name = "k=10/float32"
		}
		i := 0
		kb(b, name, func() {
			was := halfScoring
			halfScoring = half
			defer func() { halfScoring = was }()
			if err := l.RecommendTo(context.Background(), ids[i%users], 10, false, &res); err != nil {
				b.Fatal(err)
			}
			i++
		})
	}
}

// TestLiveFailedUserSeen: a user whose update fails (its solve rolled
// back, Online.Failed) keeps its factor in the serving copy, but the item
// it just interacted with is never recommended to it again: its seen list
// is the model's, not the one from before the update.
func TestLiveFailedUserSeen(t *testing.T) {
	o, err := NewOnline(OnlineOptions{Config: Config{Factors: 8, Regularization: 0.1, Alpha: 1e30, Iterations: 3, Seed: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var hist []Interaction
	for u := 0; u < 20; u++ {
		for i := 0; i < 10; i++ {
			if (u+i)%3 == 0 {
				hist = append(hist, Interaction{User: int64Key(int64(u)), Item: int64Key(int64(i)), Weight: 1e-30})
			}
		}
	}
	o.AddHistory(hist)
	if err := o.Retrain(ctx, false); err != nil {
		t.Fatal(err)
	}
	l := NewLive(8, idInt64, idInt64)
	if err := l.Sync(o); err != nil {
		t.Fatal(err)
	}
	before, err := l.Recommend(ctx, "7", 10, false)
	if err != nil || !slices.Contains(before.Items, any(int64(1))) {
		t.Fatalf("user 7 before: %+v, %v (item 1 should be a candidate)", before, err)
	}
	u7, _ := o.UserIndex(int64Key(7))
	vec7 := slices.Clone(o.UserVector(u7))
	// α·w overflows for user 7's new interaction with item 1: its solve fails.
	st, err := o.Apply(ctx, []Interaction{{User: int64Key(7), Item: int64Key(1), Weight: 1e20}, {User: int64Key(8), Item: int64Key(2), Weight: 1e-30}})
	if err != nil || st.FailedUsers != 1 {
		t.Fatalf("apply: %+v, %v", st, err)
	}
	if fu, _ := o.Failed(); !slices.Equal(fu, []int32{u7}) {
		t.Fatalf("Failed users %v, want [%d]", fu, u7)
	}
	if err := l.Sync(o); err != nil {
		t.Fatal(err)
	}
	after, err := l.Recommend(ctx, "7", 10, false)
	if err != nil || slices.Contains(after.Items, any(int64(1))) {
		t.Fatalf("user 7 after a failed update with item 1: %+v, %v (item 1 is seen now)", after, err)
	}
	if g := l.cur.Load(); !slices.Equal(g.userVec[int(u7)*8:int(u7)*8+8], vec7) {
		t.Fatalf("user 7's served factor %v, want the one before the failed update %v", g.userVec[int(u7)*8:int(u7)*8+8], vec7)
	}
}

// BenchmarkLiveSync is one Sync after an update that changed 5,000 users
// and 3,000 items of a 100k × 20k model at K = 64 (each copy gets the
// previous update's rows too), the work on the owner's goroutine.
func BenchmarkLiveSync(b *testing.B) {
	const users, items, k = 100_000, 20_000, 64
	rng := rand.New(rand.NewPCG(9, 10))
	m := benchFake(rng, users, items, k, 20)
	l := NewLive(k, idInt64, idString)
	for range 2 { // both copies full
		if err := l.sync(m); err != nil {
			b.Fatal(err)
		}
	}
	pick := func(n, of int) []int32 {
		s := make([]int32, 0, n)
		for _, r := range rng.Perm(of)[:n] {
			s = append(s, int32(r))
		}
		slices.Sort(s)
		return s
	}
	kb(b, "5000users-3000items", func() {
		m.cu, m.ci = pick(5000, users), pick(3000, items)
		if err := l.sync(m); err != nil {
			b.Fatal(err)
		}
	})
}
