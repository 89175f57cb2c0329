package eval

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/ml"
)

// randomLog draws a small log with equal times, repeated pairs, weights
// below 1 and late newcomers.
func randomLog(t *testing.T, seed uint64, rows int) *Dataset {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 3))
	us, is, ts := make([]int64, rows), make([]int64, rows), make([]int64, rows)
	ws := make([]float32, rows)
	for j := range rows {
		nu, ni := 5+j/20, 8+j/10 // the population grows with time
		us[j], is[j] = int64(r.IntN(nu))*3-7, int64(math.Floor(float64(ni)*math.Pow(r.Float64(), 2)))
		ws[j], ts[j] = float32(r.IntN(4))+0.5, int64(j/3)+int64(r.IntN(3))
	}
	d, err := NewDataset(us, is, ws, ts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPrequentialPopularityOracle replays random logs through the protocol
// and recomputes, the plainest way from the definitions in doc.go (time
// order, cut, batches, event classes, popularity ranks with ties by id,
// buckets), every count and popularity's figures overall and per bucket.
func TestPrequentialPopularityOracle(t *testing.T) {
	for seed := range uint64(6) {
		d := randomLog(t, seed, 400+int(seed)*50)
		o := PrequentialOptions{TrainFraction: 0.3 + 0.1*float64(seed%3), Batch: 1 + int(seed)*7, K: 3 + int(seed), MinWeight: 1, Buckets: 7,
			Config: ml.Config{Factors: 4, Iterations: 2, Regularization: 0.1, Alpha: 1, Seed: 1, Threads: 1}}
		res, err := Prequential(context.Background(), d, o)
		if err != nil {
			t.Fatal(err)
		}
		// The oracle: sort by (time, row), cut, replay.
		n := d.Len()
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		for a := 1; a < n; a++ { // insertion sort, the plainest stable sort
			for b := a; b > 0; b-- {
				x, y := order[b-1], order[b]
				if d.Times[x] > d.Times[y] || (d.Times[x] == d.Times[y] && x > y) {
					order[b-1], order[b] = y, x
				} else {
					break
				}
			}
		}
		cut := int(float64(n) * o.TrainFraction)
		seen := map[[2]int32]bool{}
		users, items := map[int32]bool{}, map[int32]bool{}
		add := func(r int) {
			seen[[2]int32{d.Users[r], d.Items[r]}] = true
			users[d.Users[r]], items[d.Items[r]] = true, true
		}
		for _, r := range order[:cut] {
			add(r)
		}
		replay := order[cut:]
		var want ml.PrequentialCounts
		var pop, cold ml.PrequentialFigures
		bucketEvents := make([]int64, o.Buckets)
		bucketHR := make([]float64, o.Buckets)
		for lo := 0; lo < len(replay); lo += o.Batch {
			batch := replay[lo:min(lo+o.Batch, len(replay))]
			earlier := map[[2]int32]bool{}
			for q, r := range batch {
				want.Events++
				u, i := d.Users[r], d.Items[r]
				p := [2]int32{u, i}
				switch {
				case d.Weights[r] < o.MinWeight:
					want.Below++
					continue
				case !items[i]:
					want.ColdItems++
					continue
				case seen[p]:
					want.Repeats++
					continue
				case earlier[p]:
					want.Duplicates++
					continue
				}
				earlier[p] = true
				count := func(it int32) int {
					c := 0
					for s := range seen {
						if s[1] == it {
							c++
						}
					}
					return c
				}
				rank := 1
				for c := range items {
					if c == i || seen[[2]int32{u, c}] {
						continue
					}
					if count(c) > count(i) || (count(c) == count(i) && c < i) {
						rank++
					}
				}
				if !users[u] {
					want.ColdUsers++
					cold.Add(rank, o.K)
					continue
				}
				want.Warm++
				pop.Add(rank, o.K)
				b := (lo + q) * o.Buckets / len(replay)
				bucketEvents[b]++
				if rank <= o.K {
					bucketHR[b]++
				}
			}
			for _, r := range batch {
				add(r)
			}
		}
		if res.Counts != want {
			t.Errorf("seed %d: counts %+v, want %+v", seed, res.Counts, want)
		}
		got := res.Models[len(res.Models)-1]
		if got.Model != "popularity" || got.Events != pop.Events || math.Abs(got.HR-pop.HR()) > 1e-12 || math.Abs(got.NDCG-pop.NDCG()) > 1e-12 {
			t.Errorf("seed %d: %+v, want %+v", seed, got, pop)
		}
		if c := res.ColdUsers; c.Events != cold.Events || math.Abs(c.NDCG-cold.NDCG()) > 1e-12 {
			t.Errorf("seed %d: cold users %+v, want %+v", seed, c, cold)
		}
		for b, cp := range res.Curve {
			if cp.Events != bucketEvents[b] {
				t.Errorf("seed %d bucket %d: %d events, want %d", seed, b, cp.Events, bucketEvents[b])
			} else if cp.Events > 0 && math.Abs(cp.HR[len(cp.HR)-1]-bucketHR[b]/float64(cp.Events)) > 1e-12 {
				t.Errorf("seed %d bucket %d: popularity HR %v, want %v", seed, b, cp.HR[len(cp.HR)-1], bucketHR[b]/float64(cp.Events))
			}
		}
		if want.Warm == 0 || want.ColdUsers == 0 || want.Repeats == 0 || want.Duplicates == 0 {
			t.Logf("seed %d: counts %+v (some class is empty)", seed, want)
		}
		// The frozen model never falls back for users known at the cut,
		// and does for every warm event of a user first seen later.
		if fr := res.Models[len(res.Models)-2]; fr.Model != "frozen" || fr.Events != want.Warm {
			t.Errorf("seed %d: frozen %+v", seed, fr)
		}
	}
}

// TestPrequentialPlanted: on a log drawn from gen's planted model, the
// incremental model (ml.Online, the job's update path) ranks far above
// popularity and the frozen start, and stays within 5% of the full
// retrain every 2,000 rows in NDCG@10.
func TestPrequentialPlanted(t *testing.T) {
	if testing.Short() {
		t.Skip("replays 30k interactions through four models")
	}
	d, _ := plantedDataset(t, gen.Options{Rows: 60_000, Users: 3_000, Items: 600, Seed: 5, ZipfS: 0.3,
		LatentFactors: 8, RowGroupRows: 30_000, Parallelism: 1})
	cfg := ml.Config{Factors: 10, Regularization: 0.1, Alpha: 2, Iterations: 12, CGSteps: 3, Seed: 1, Threads: 2}
	res, err := Prequential(context.Background(), d, PrequentialOptions{Batch: 200, RetrainEvery: 2_000, Config: cfg, Online: &ml.OnlineOptions{}})
	if err != nil {
		t.Fatal(err)
	}
	fig := map[string]PrequentialModelResult{}
	for _, m := range res.Models {
		fig[m.Model] = m
		t.Logf("%-11s NDCG@10 %.4f HR@10 %.4f (%d events, %d fallback)", m.Model, m.NDCG, m.HR, m.Events, m.Fallback)
	}
	t.Logf("counts %+v; cold users by popularity: NDCG@10 %.4f", res.Counts, res.ColdUsers.NDCG)
	inc, re, fr, pop := fig["incremental"], fig["retrain"], fig["frozen"], fig["popularity"]
	if inc.Events == 0 || inc.Events != pop.Events {
		t.Fatalf("incremental scored %d events, popularity %d", inc.Events, pop.Events)
	}
	if inc.NDCG < 1.5*pop.NDCG || inc.NDCG <= fr.NDCG {
		t.Errorf("incremental NDCG@10 %.4f: want ≥ 1.5× popularity's %.4f and above the frozen model's %.4f", inc.NDCG, pop.NDCG, fr.NDCG)
	}
	if gap := (re.NDCG - inc.NDCG) / re.NDCG; gap > 0.05 {
		t.Errorf("incremental NDCG@10 %.4f is %.1f%% below the full retrain's %.4f (bound 5%%)", inc.NDCG, 100*gap, re.NDCG)
	}
}

// TestPrequentialObserveOnline: the live path (Observe with the Online as
// its own history and model) classifies and ranks exactly as the protocol
// driver's separate history does for the same Online.
func TestPrequentialObserveOnline(t *testing.T) {
	d := randomLog(t, 9, 3000)
	cfg := ml.Config{Factors: 8, Regularization: 0.1, Alpha: 1, Iterations: 5, CGSteps: 3, Seed: 1, Threads: 1}
	on, err := ml.NewOnline(ml.OnlineOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	order, cut := PrequentialSplit(d, 0.5)
	on.AddHistory(d.Interactions(order[:cut]))
	if err := on.Retrain(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	live, err := ml.NewPrequentialMeter(ml.PrequentialOptions{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ml.NewPrequentialMeter(ml.PrequentialOptions{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := newHistory(d)
	h.add(order[:cut])
	for lo := cut; lo < len(order); lo += 50 {
		rows := order[lo:min(lo+50, len(order))]
		batch := d.Interactions(rows)
		if err := live.Observe(on, batch); err != nil {
			t.Fatal(err)
		}
		if err := ref.ObserveModels(h, []ml.PrequentialModel{on}, batch, nil); err != nil {
			t.Fatal(err)
		}
		h.add(rows)
		if _, err := on.Apply(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	if live.Counts() != ref.Counts() || live.Model(0) != ref.Model(0) || live.Popularity() != ref.Popularity() || live.ColdUsers() != ref.ColdUsers() {
		t.Errorf("live %+v %+v %+v, driver %+v %+v %+v", live.Counts(), live.Model(0), live.Popularity(), ref.Counts(), ref.Model(0), ref.Popularity())
	}
	if live.Counts().Warm == 0 || live.Model(0).Events == 0 {
		t.Errorf("nothing scored: %+v", live.Counts())
	}
}
