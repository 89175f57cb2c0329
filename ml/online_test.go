package ml

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// onlineBatch draws n interactions among users×items (ids as int64 keys),
// item popularity skewed.
func onlineBatch(rng *rand.Rand, n, users, items int) []Interaction {
	out := make([]Interaction, n)
	for j := range out {
		r := rng.Float64()
		out[j] = Interaction{User: int64Key(int64(rng.IntN(users))), Item: int64Key(int64(float64(items) * r * r)),
			Weight: float32(1 + rng.IntN(4))}
	}
	return out
}

// denseOf returns the model's user×item matrix and factors as plain slices
// indexed by the Online's dense indices.
func itemFactorsOf(o *Online) []float32 {
	out := make([]float32, 0, o.NumItems()*o.Factors())
	for i := 0; i < o.NumItems(); i++ {
		out = append(out, o.ItemVector(int32(i))...)
	}
	return out
}

func userFactorsOf(o *Online) []float32 {
	out := make([]float32, 0, o.NumUsers()*o.Factors())
	for u := 0; u < o.NumUsers(); u++ {
		out = append(out, o.UserVector(int32(u))...)
	}
	return out
}

// TestOnlineUpdateIsLeastSquares: with the exact solver, every touched
// user's new factor is the closed-form least-squares solution of its whole
// history against the item factors as they were before the update, and
// every touched item's the solution against the updated user factors; the
// incrementally kept Gram matrices equal exact ones.
func TestOnlineUpdateIsLeastSquares(t *testing.T) {
	const users, items, k = 60, 40, 8
	for _, freq := range []bool{false, true} {
		cfg := Config{Factors: k, Regularization: 0.2, Alpha: 1.5, Solver: SolverCholesky, Iterations: 4, Seed: 3, FrequencyScaled: freq, Threads: 2}
		o, err := NewOnline(OnlineOptions{Config: cfg, GramRefresh: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		ctx := context.Background()
		o.AddHistory(onlineBatch(rng, 600, users, items))
		if err := o.Retrain(ctx, false); err != nil {
			t.Fatal(err)
		}
		for round := 0; round < 5; round++ {
			// Only known items so the user half sees exactly yBefore.
			batch := onlineBatch(rng, 40, users+10, items)
			batch = slices.DeleteFunc(batch, func(it Interaction) bool { _, ok := o.ItemIndex(it.Item); return !ok })
			yBefore := itemFactorsOf(o)
			st, err := o.Apply(ctx, batch)
			if err != nil || st.Failed != nil {
				t.Fatal(err, st.Failed)
			}
			cu, ci := o.Changed()
			if len(cu) != st.Users || len(ci) != st.Items || st.Users == 0 {
				t.Fatalf("changed %d users %d items, stats %+v", len(cu), len(ci), st)
			}
			for _, u := range cu {
				idx, w := o.UserItems(u)
				want := closedForm(t, cfg, yBefore, o.NumItems(), k, idx, w)
				assertClose(t, "user", o.UserVector(u), want, 1e-4)
			}
			x := userFactorsOf(o)
			for _, i := range ci {
				idx, w := o.ItemUsers(i)
				want := closedForm(t, cfg, x, o.NumUsers(), k, idx, w)
				assertClose(t, "item", o.ItemVector(i), want, 1e-4)
			}
			for _, g := range []struct {
				name string
				inc  []float64
				f    []float32
			}{{"user", o.UserGram(), x}, {"item", o.ItemGram(), itemFactorsOf(o)}} {
				exact := make([]float64, k*k)
				Gram(g.f, k, exact)
				for j := range exact {
					if d := math.Abs(exact[j] - g.inc[j]); d > 1e-9*(1+math.Abs(exact[j])) {
						t.Fatalf("round %d: %s Gram entry %d: incremental %v, exact %v", round, g.name, j, g.inc[j], exact[j])
					}
				}
			}
		}
	}
}

func assertClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	for j := range want {
		if d := math.Abs(float64(got[j]) - want[j]); d > tol*(1+math.Abs(want[j])) {
			t.Fatalf("%s factor %d: %v, closed form %v", what, j, got[j], want[j])
		}
	}
}

// TestOnlineColdStart: a user and an item seen for the first time get
// non-zero factors on their first update, and the new user's scores are
// not all tied.
func TestOnlineColdStart(t *testing.T) {
	const k = 8
	o, err := NewOnline(OnlineOptions{Config: Config{Factors: k, Regularization: 0.1, Alpha: 2, Iterations: 5, Seed: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	ctx := context.Background()
	o.AddHistory(onlineBatch(rng, 500, 50, 30))
	if err := o.Retrain(ctx, false); err != nil {
		t.Fatal(err)
	}
	newUser, newItem := int64Key(1000), int64Key(2000)
	batch := []Interaction{{User: newUser, Item: int64Key(3), Weight: 1}, {User: newUser, Item: int64Key(5), Weight: 2},
		{User: int64Key(1), Item: newItem, Weight: 1}}
	st, err := o.Apply(ctx, batch)
	if err != nil || st.NewUsers != 1 || st.NewItems != 1 || st.Failed != nil {
		t.Fatalf("stats %+v, err %v", st, err)
	}
	u, _ := o.UserIndex(newUser)
	i, _ := o.ItemIndex(newItem)
	if !o.UserReady(u) || !o.ItemReady(i) {
		t.Fatal("new rows not ready after their first update")
	}
	for _, v := range [][]float32{o.UserVector(u), o.ItemVector(i)} {
		if slices.Equal(v, make([]float32, k)) {
			t.Fatal("a new row's factor is zero")
		}
	}
	scores := map[float32]bool{}
	for j := 0; j < o.NumItems(); j++ {
		scores[dot(o.UserVector(u), o.ItemVector(int32(j)))] = true
	}
	if len(scores) < o.NumItems()/2 {
		t.Fatalf("new user's %d item scores take only %d distinct values", o.NumItems(), len(scores))
	}
}

// TestOnlineRollback: a row whose solve fails (an overflowing confidence)
// keeps its previous factor and is left out of Changed; the rest of the
// batch is applied.
func TestOnlineRollback(t *testing.T) {
	const k = 8
	o, err := NewOnline(OnlineOptions{Config: Config{Factors: k, Regularization: 0.1, Alpha: 1e30, Iterations: 3, Seed: 1, Threads: 2}})
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
	u7, _ := o.UserIndex(int64Key(7))
	before := slices.Clone(o.UserVector(u7))
	// α·w overflows float32 for user 7's new weight: its solve fails.
	batch := []Interaction{{User: int64Key(7), Item: int64Key(1), Weight: 1e20}, {User: int64Key(8), Item: int64Key(2), Weight: 1e-30},
		{User: int64Key(500), Item: int64Key(3), Weight: 1e20}}
	st, err := o.Apply(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	var re *RowError
	if st.FailedUsers != 2 || !errors.As(st.Failed, &re) || re.Side != "user" || !errors.Is(st.Failed, ErrNumerical) {
		t.Fatalf("stats %+v", st)
	}
	if !slices.Equal(o.UserVector(u7), before) {
		t.Fatal("failed user's factor changed")
	}
	u500, _ := o.UserIndex(int64Key(500))
	if o.UserReady(u500) {
		t.Fatal("a new user whose first solve failed is ready")
	}
	cu, _ := o.Changed()
	u8, _ := o.UserIndex(int64Key(8))
	if slices.Contains(cu, u7) || slices.Contains(cu, u500) || !slices.Contains(cu, u8) {
		t.Fatalf("changed users %v (7=%d 8=%d 500=%d)", cu, u7, u8, u500)
	}
}

// TestOnlineRestore: a model rebuilt from its factors, histories and Gram
// matrices (the checkpoint's content) continues bitwise like the original.
func TestOnlineRestore(t *testing.T) {
	const k = 16
	cfg := Config{Factors: k, Regularization: 0.05, Alpha: 1, Iterations: 3, Seed: 9, Threads: 2}
	a, _ := NewOnline(OnlineOptions{Config: cfg})
	rng := rand.New(rand.NewPCG(11, 12))
	ctx := context.Background()
	var all []Interaction
	first := onlineBatch(rng, 2000, 200, 100)
	all = append(all, first...)
	a.AddHistory(first)
	if err := a.Retrain(ctx, false); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b := onlineBatch(rng, 300, 250, 120)
		all = append(all, b...)
		if _, err := a.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// Rebuild as the operator restores a checkpoint: factors in dense
	// order (the index stored with each), then the histories user by user
	// in key order, each user's events in the order they came.
	b, _ := NewOnline(OnlineOptions{Config: cfg})
	for u := 0; u < a.NumUsers(); u++ {
		if _, err := b.SetUser(a.UserKey(int32(u)), a.UserVector(int32(u))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < a.NumItems(); i++ {
		if _, err := b.SetItem(a.ItemKey(int32(i)), a.ItemVector(int32(i))); err != nil {
			t.Fatal(err)
		}
	}
	byUser := slices.Clone(all)
	slices.SortStableFunc(byUser, func(x, y Interaction) int { return slices.Compare(x.User, y.User) })
	b.AddHistory(byUser)
	if err := b.SetGrams(a.UserGram(), a.ItemGram()); err != nil {
		t.Fatal(err)
	}
	next := onlineBatch(rng, 400, 300, 130)
	for _, m := range []*Online{a, b} {
		if _, err := m.Apply(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	for u := 0; u < a.NumUsers(); u++ {
		v, ok := b.UserIndex(a.UserKey(int32(u)))
		if !ok || !slices.Equal(a.UserVector(int32(u)), b.UserVector(v)) {
			t.Fatalf("user %d differs after restore", u)
		}
	}
	for i := 0; i < a.NumItems(); i++ {
		j, ok := b.ItemIndex(a.ItemKey(int32(i)))
		if !ok || !slices.Equal(a.ItemVector(int32(i)), b.ItemVector(j)) {
			t.Fatalf("item %d differs after restore", i)
		}
	}
}

// plantedInteractions draws events from a planted model: users and items
// in c clusters; a user picks an item of its own cluster with probability
// 0.8 (popular ones more often), else any item.
func plantedInteractions(rng *rand.Rand, n, users, items, c int) []Interaction {
	out := make([]Interaction, n)
	per := items / c
	for j := range out {
		u := rng.IntN(users)
		var i int
		if rng.Float64() < 0.8 {
			r := rng.Float64()
			i = (u%c)*per + int(float64(per)*r*r)
		} else {
			i = rng.IntN(items)
		}
		out[j] = Interaction{User: int64Key(int64(u)), Item: int64Key(int64(i)), Weight: 1}
	}
	return out
}

// TestOnlineTracksRetrain: trained on half of a planted stream and then
// updated incrementally on the other half, the model agrees with a full
// retrain on the whole stream: per user, the correlation of the two
// models' score vectors over the items, and the overlap of their top-10
// lists (seen items excluded), are above the bounds stated here.
func TestOnlineTracksRetrain(t *testing.T) {
	for _, s := range []int{0, DefaultItemDefer, 3} {
		t.Run(fmt.Sprintf("item_defer=%d", s), func(t *testing.T) { testOnlineTracksRetrain(t, s) })
	}
}

func testOnlineTracksRetrain(t *testing.T, itemDefer int) {
	const users, items, clusters, k = 400, 200, 8, 16
	cfg := Config{Factors: k, Regularization: 0.1, Alpha: 2, Iterations: 10, CGSteps: 3, Seed: 5, Threads: 2}
	rng := rand.New(rand.NewPCG(21, 22))
	events := plantedInteractions(rng, 16000, users, items, clusters)
	ctx := context.Background()
	inc, _ := NewOnline(OnlineOptions{Config: cfg, ItemDefer: itemDefer})
	inc.AddHistory(events[:8000])
	if err := inc.Retrain(ctx, false); err != nil {
		t.Fatal(err)
	}
	deferred := 0
	for lo := 8000; lo < len(events); lo += 500 {
		st, err := inc.Apply(ctx, events[lo:lo+500])
		if err != nil || st.Failed != nil {
			t.Fatal(err, st.Failed)
		}
		deferred += st.DeferredItems
	}
	full, _ := NewOnline(OnlineOptions{Config: cfg})
	full.AddHistory(events)
	if err := full.Retrain(ctx, false); err != nil {
		t.Fatal(err)
	}
	// The reference noise: a full retrain from another seed.
	cfg2 := cfg
	cfg2.Seed = 6
	full2, _ := NewOnline(OnlineOptions{Config: cfg2})
	full2.AddHistory(events)
	if err := full2.Retrain(ctx, false); err != nil {
		t.Fatal(err)
	}
	corr, overlap := agreement(t, inc, full, users, items)
	corr2, overlap2 := agreement(t, full2, full, users, items)
	t.Logf("incremental (%d item solves deferred) vs full retrain: mean score correlation %.3f, top-10 overlap %.3f; full retrain from another seed: %.3f, %.3f",
		deferred, corr, overlap, corr2, overlap2)
	if corr < 0.9 || overlap < 0.7 || corr < corr2-0.05 || overlap < overlap2-0.1 {
		t.Fatalf("incremental model strays from the full retrain: correlation %.3f (want ≥ 0.9 and ≥ %.3f), overlap %.3f (want ≥ 0.7 and ≥ %.3f)",
			corr, corr2-0.05, overlap, overlap2-0.1)
	}
}

// agreement compares two models over the same ids: the mean over users of
// the Pearson correlation of their score vectors over every item, and the
// mean overlap of their top-10 lists (seen items excluded).
func agreement(t *testing.T, a, b *Online, users, items int) (corr, overlap float64) {
	const topk = 10
	ctx := context.Background()
	top := func(o *Online) [][]int32 {
		m, ui := o.Model()
		out := make([][]int32, m.NumUsers)
		if err := m.TopK(ctx, nil, topk, ui, 1, func(u int32, it []int32, _ []float32) error {
			out[u] = slices.Clone(it)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	ta, tb := top(a), top(b)
	for u := 0; u < users; u++ {
		key := int64Key(int64(u))
		ua, _ := a.UserIndex(key)
		ub, _ := b.UserIndex(key)
		sa, sb := make([]float64, items), make([]float64, items)
		for i := 0; i < items; i++ {
			ia, _ := a.ItemIndex(int64Key(int64(i)))
			ib, _ := b.ItemIndex(int64Key(int64(i)))
			sa[i] = float64(dot(a.UserVector(ua), a.ItemVector(ia)))
			sb[i] = float64(dot(b.UserVector(ub), b.ItemVector(ib)))
		}
		corr += pearson(sa, sb)
		in := map[string]bool{}
		for _, i := range tb[ub] {
			in[string(b.ItemKey(i))] = true
		}
		n := 0
		for _, i := range ta[ua] {
			if in[string(a.ItemKey(i))] {
				n++
			}
		}
		overlap += float64(n) / topk
	}
	return corr / float64(users), overlap / float64(users)
}

func pearson(a, b []float64) float64 {
	var ma, mb float64
	for i := range a {
		ma += a[i]
		mb += b[i]
	}
	ma /= float64(len(a))
	mb /= float64(len(b))
	var sab, saa, sbb float64
	for i := range a {
		sab += (a[i] - ma) * (b[i] - mb)
		saa += (a[i] - ma) * (a[i] - ma)
		sbb += (b[i] - mb) * (b[i] - mb)
	}
	return sab / math.Sqrt(saa*sbb)
}

// TestOnlineDeterministic: the same batches give bitwise the same model at
// any thread count.
func TestOnlineDeterministic(t *testing.T) {
	run := func(threads int) *Online {
		o, _ := NewOnline(OnlineOptions{Config: Config{Factors: 16, Regularization: 0.1, Alpha: 1, Iterations: 3, Seed: 2, Threads: threads}, GramRefresh: 700})
		rng := rand.New(rand.NewPCG(31, 32))
		ctx := context.Background()
		o.AddHistory(onlineBatch(rng, 3000, 300, 150))
		if err := o.Retrain(ctx, false); err != nil {
			t.Fatal(err)
		}
		for range 6 {
			if _, err := o.Apply(ctx, onlineBatch(rng, 500, 400, 200)); err != nil {
				t.Fatal(err)
			}
		}
		return o
	}
	a, b := run(1), run(4)
	if !slices.Equal(userFactorsOf(a), userFactorsOf(b)) || !slices.Equal(itemFactorsOf(a), itemFactorsOf(b)) ||
		!slices.Equal(a.UserGram(), b.UserGram()) {
		t.Fatal("threads change the model")
	}
}

// TestOnlineRejectsBadWeights: Apply refuses a batch with a zero,
// negative, NaN or infinite weight before touching the model.
func TestOnlineRejectsBadWeights(t *testing.T) {
	o, _ := NewOnline(OnlineOptions{Config: Config{Factors: 4}})
	for _, w := range []float32{0, -1, float32(math.NaN()), float32(math.Inf(1))} {
		_, err := o.Apply(context.Background(), []Interaction{{User: int64Key(1), Item: int64Key(1), Weight: 1}, {User: int64Key(2), Item: int64Key(2), Weight: w}})
		if err == nil || o.NumUsers() != 0 {
			t.Fatalf("weight %v: err %v, %d users", w, err, o.NumUsers())
		}
	}
}

// TestOnlineItemDefer: with ItemDefer s, every touched item is either
// re-solved (the exact least-squares solution of its whole history, as
// without deferral) or keeps its factor bitwise, and it is deferred only
// when the rule allows: a ready item with n ≥ 2^(s+1) events that has
// taken fewer than n/2^s events since its last solve (counted here, from
// the batches, independently of the model's counters).
func TestOnlineItemDefer(t *testing.T) {
	const users, items, k, s = 300, 40, 8, 3
	cfg := Config{Factors: k, Regularization: 0.2, Alpha: 1.5, Solver: SolverCholesky, Iterations: 3, Seed: 4, Threads: 2}
	o, err := NewOnline(OnlineOptions{Config: cfg, GramRefresh: 1 << 30, ItemDefer: s})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(41, 42))
	ctx := context.Background()
	events := map[string]int{}  // item key -> events so far
	atSolve := map[string]int{} // item key -> events at its last solve
	first := onlineBatch(rng, 3000, users, items)
	for _, it := range first {
		events[string(it.Item)]++
	}
	o.AddHistory(first)
	if err := o.Retrain(ctx, false); err != nil {
		t.Fatal(err)
	}
	for key, n := range events {
		atSolve[key] = n
	}
	deferred, solved := 0, 0
	for round := 0; round < 30; round++ {
		batch := onlineBatch(rng, 60, users, items+2)
		before := map[string][]float32{}
		touched := map[string]bool{}
		for _, it := range batch {
			events[string(it.Item)]++
			if i, ok := o.ItemIndex(it.Item); ok && !touched[string(it.Item)] {
				before[string(it.Item)] = slices.Clone(o.ItemVector(i))
			}
			touched[string(it.Item)] = true
		}
		st, err := o.Apply(ctx, batch)
		if err != nil || st.Failed != nil {
			t.Fatal(err, st.Failed)
		}
		_, ci := o.Changed()
		changed := map[string]bool{}
		x := userFactorsOf(o)
		for _, i := range ci {
			key := string(o.ItemKey(i))
			changed[key] = true
			atSolve[key] = events[key]
			idx, w := o.ItemUsers(i)
			assertClose(t, "item", o.ItemVector(i), closedForm(t, cfg, x, o.NumUsers(), k, idx, w), 1e-4)
			solved++
		}
		if st.DeferredItems != len(touched)-len(ci) {
			t.Fatalf("round %d: %d deferred, %d touched, %d re-solved", round, st.DeferredItems, len(touched), len(ci))
		}
		for key := range touched {
			if changed[key] {
				continue
			}
			deferred++
			n, last := events[key], atSolve[key]
			if b, ok := before[key]; !ok || n < 1<<(s+1) || (n-last)<<s >= n {
				t.Fatalf("round %d: item %x deferred with %d events, %d at its last solve (known before: %v)", round, key, n, last, ok)
			} else if i, _ := o.ItemIndex([]byte(key)); !slices.Equal(o.ItemVector(i), b) {
				t.Fatalf("round %d: deferred item %x changed", round, key)
			}
		}
	}
	if deferred == 0 || solved == 0 {
		t.Fatalf("%d items deferred, %d re-solved: the test does not exercise both", deferred, solved)
	}
	t.Logf("%d item solves deferred, %d done", deferred, solved)
}

// cappedHistories is the brute-force oracle of OnlineOptions.MaxHistory:
// each user's newest n events (all of them when n is 0), in arrival
// order, and its pairs' weights summed in that order.
func cappedHistories(events []Interaction, n int) (kept map[string][]Interaction, pairs map[string]map[string]float32) {
	kept = map[string][]Interaction{}
	for _, e := range events {
		l := append(kept[string(e.User)], e)
		if n > 0 && len(l) > n {
			l = l[len(l)-n:]
		}
		kept[string(e.User)] = l
	}
	pairs = map[string]map[string]float32{}
	for u, l := range kept {
		pairs[u] = map[string]float32{}
		for _, e := range l {
			pairs[u][string(e.Item)] += e.Weight
		}
	}
	return kept, pairs
}

// checkHistories compares the model's user and item histories with the
// oracle's pairs.
func checkHistories(t *testing.T, o *Online, pairs map[string]map[string]float32) {
	t.Helper()
	nnz := 0
	byItem := map[string]map[string]float32{}
	for u, ps := range pairs {
		ui, ok := o.UserIndex([]byte(u))
		if !ok {
			t.Fatalf("user %x missing", u)
		}
		idx, w := o.UserItems(ui)
		if len(idx) != len(ps) {
			t.Fatalf("user %x: %d items, oracle %d", u, len(idx), len(ps))
		}
		for j, i := range idx {
			key := string(o.ItemKey(i))
			if want, ok := ps[key]; !ok || w[j] != want {
				t.Fatalf("user %x item %x: weight %v, oracle %v (present %v)", u, key, w[j], want, ok)
			}
			if byItem[key] == nil {
				byItem[key] = map[string]float32{}
			}
			byItem[key][u] = w[j]
		}
		nnz += len(ps)
	}
	if o.NumInteractions() != int64(nnz) {
		t.Fatalf("%d pairs, oracle %d", o.NumInteractions(), nnz)
	}
	for i := int32(0); i < int32(o.NumItems()); i++ {
		idx, w := o.ItemUsers(i)
		want := byItem[string(o.ItemKey(i))]
		if len(idx) != len(want) {
			t.Fatalf("item %x: %d users, oracle %d", o.ItemKey(i), len(idx), len(want))
		}
		for j, u := range idx {
			if want[string(o.UserKey(u))] != w[j] {
				t.Fatalf("item %x user %x: weight %v, oracle %v", o.ItemKey(i), o.UserKey(u), w[j], want[string(o.UserKey(u))])
			}
		}
	}
}

// TestOnlineMaxHistory: with a cap of n events per user the model's
// histories are, after every update, the brute-force oracle's (each
// user's newest n events, pairs summed; items' the transpose); every
// user and item an update touched (an item also when it lost an event)
// is the exact least-squares solution of its capped history; and a model
// rebuilt from the capped histories (as a restore rebuilds it) continues
// bitwise like the original.
func TestOnlineMaxHistory(t *testing.T) {
	const users, items, k, n = 40, 30, 8, 7
	cfg := Config{Factors: k, Regularization: 0.2, Alpha: 1.5, Solver: SolverCholesky, Iterations: 3, Seed: 6, Threads: 2}
	opts := OnlineOptions{Config: cfg, GramRefresh: 1 << 30, MaxHistory: n}
	o, err := NewOnline(opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(51, 52))
	ctx := context.Background()
	all := onlineBatch(rng, 500, users, items)
	o.AddHistory(all)
	if err := o.Retrain(ctx, false); err != nil {
		t.Fatal(err)
	}
	_, pairs := cappedHistories(all, n)
	checkHistories(t, o, pairs)
	for round := 0; round < 8; round++ {
		batch := onlineBatch(rng, 30, users+5, items)
		batch = slices.DeleteFunc(batch, func(it Interaction) bool { _, ok := o.ItemIndex(it.Item); return !ok })
		all = append(all, batch...)
		yBefore := itemFactorsOf(o)
		st, err := o.Apply(ctx, batch)
		if err != nil || st.Failed != nil {
			t.Fatal(err, st.Failed)
		}
		prev := pairs
		_, pairs = cappedHistories(all, n)
		checkHistories(t, o, pairs)
		cu, ci := o.Changed()
		// Every item whose capped history changed (a new event or an
		// event dropped) was re-solved.
		for u, ps := range pairs {
			for it, w := range ps {
				if prev[u][it] != w {
					if i, _ := o.ItemIndex([]byte(it)); !slices.Contains(ci, i) {
						t.Fatalf("round %d: item %x gained weight for user %x but was not re-solved", round, it, u)
					}
				}
			}
			for it := range prev[u] {
				if _, ok := ps[it]; !ok {
					if i, _ := o.ItemIndex([]byte(it)); !slices.Contains(ci, i) {
						t.Fatalf("round %d: item %x lost user %x but was not re-solved", round, it, u)
					}
				}
			}
		}
		for _, u := range cu {
			idx, w := o.UserItems(u)
			assertClose(t, "user", o.UserVector(u), closedForm(t, cfg, yBefore, o.NumItems(), k, idx, w), 1e-4)
		}
		x := userFactorsOf(o)
		for _, i := range ci {
			idx, w := o.ItemUsers(i)
			assertClose(t, "item", o.ItemVector(i), closedForm(t, cfg, x, o.NumUsers(), k, idx, w), 1e-4)
		}
	}
	// Rebuild from the capped histories, user by user in dense order.
	kept, _ := cappedHistories(all, n)
	b, _ := NewOnline(opts)
	for u := int32(0); u < int32(o.NumUsers()); u++ {
		b.SetUser(o.UserKey(u), o.UserVector(u))
	}
	for i := int32(0); i < int32(o.NumItems()); i++ {
		b.SetItem(o.ItemKey(i), o.ItemVector(i))
	}
	for u := int32(0); u < int32(o.NumUsers()); u++ {
		b.AddHistory(kept[string(o.UserKey(u))])
	}
	if err := b.SetGrams(o.UserGram(), o.ItemGram()); err != nil {
		t.Fatal(err)
	}
	next := onlineBatch(rng, 60, users+8, items+3)
	for _, m := range []*Online{o, b} {
		if _, err := m.Apply(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(userFactorsOf(o), userFactorsOf(b)) || !slices.Equal(itemFactorsOf(o), itemFactorsOf(b)) {
		t.Fatal("the model rebuilt from the capped histories continues differently")
	}
	_, pairs = cappedHistories(append(all, next...), n)
	checkHistories(t, b, pairs)
}
