package eval

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"gonum.org/v1/gonum/mat"

	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/ml"
)

// plantedDataset generates rows from gen's planted model into a Dataset.
func plantedDataset(t testing.TB, o gen.Options) (*Dataset, *gen.Planted) {
	t.Helper()
	g, err := gen.New(o)
	if err != nil {
		t.Fatal(err)
	}
	var users, items, times []int64
	var weights []float32
	for c := range g.NumChunks() {
		rec := g.Chunk(c)
		users = append(users, rec.Column(0).(*array.Int64).Int64Values()...)
		items = append(items, rec.Column(1).(*array.Int64).Int64Values()...)
		for _, w := range rec.Column(3).(*array.Float64).Float64Values() {
			weights = append(weights, float32(w))
		}
		for _, ts := range rec.Column(4).(*array.Timestamp).TimestampValues() {
			times = append(times, int64(ts))
		}
		rec.Release()
	}
	d, err := NewDataset(users, items, weights, times)
	if err != nil {
		t.Fatal(err)
	}
	return d, g.Planted()
}

// orthonormal returns an orthonormal basis of the column space of a
// (rows × cols, full column rank), from its thin SVD.
func orthonormal(t *testing.T, a *mat.Dense) *mat.Dense {
	t.Helper()
	var svd mat.SVD
	if !svd.Factorize(a, mat.SVDThin) {
		t.Fatal("SVD failed")
	}
	var u mat.Dense
	svd.UTo(&u)
	return &u
}

// principalCosines returns the cosines of the principal angles between
// the column spaces of a and b (one per column of a, descending): the
// singular values of Qaᵀ·Qb.
func principalCosines(t *testing.T, a, b *mat.Dense) []float64 {
	t.Helper()
	qa, qb := orthonormal(t, a), orthonormal(t, b)
	var m mat.Dense
	m.Mul(qa.T(), qb)
	var svd mat.SVD
	if !svd.Factorize(&m, mat.SVDNone) {
		t.Fatal("SVD failed")
	}
	return svd.Values(nil)
}

// TestPlanted: on data drawn from gen's planted rank-8 model, with a
// user-time held-out split, iALS's NDCG@10 is far above popularity's and
// random's, and its item factors span the planted item subspace.
func TestPlanted(t *testing.T) {
	if testing.Short() {
		t.Skip("trains iALS on 400k interactions")
	}
	const n = 8
	// ZipfS 0.3: flat heads within topics, so few (user, item) pairs are
	// near-certain and the preference matrix stays close to linear in
	// P(i|u) (with the default 1.1, saturated heads bend the learned
	// subspace: largest angle about 40°).
	o := gen.Options{Rows: 400_000, Users: 20_000, Items: 1_500, Seed: 21, ZipfS: 0.3,
		LatentFactors: n, RowGroupRows: 100_000, Parallelism: 2}
	d, planted := plantedDataset(t, o)
	s, err := NewSplit(d, UserTime, DefaultTestPercent)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ks := []int{10}
	// N+2 factors: the planted expected-count matrix has rank N+2.
	cfg := ml.Config{Factors: n + 2, Regularization: 0.1, Alpha: 2, Iterations: 12, Seed: 1, Threads: 2}
	ials, err := IALS{Config: cfg}.Fit(ctx, s.Train)
	if err != nil {
		t.Fatal(err)
	}
	// The planted model itself, ranking by P(i|u) (up to the constant
	// noise term), as factors: the best any model can expect on average.
	nn := planted.Factors
	truth := &ml.Model{Factors: nn + 1, NumUsers: s.Train.NumUsers, NumItems: s.Train.NumItems,
		UserFactors: make([]float32, s.Train.NumUsers*(nn+1)), ItemFactors: make([]float32, s.Train.NumItems*(nn+1))}
	mix := float32(1 - planted.PopularityShare - planted.NoiseShare)
	for u, du := range s.UserOf {
		uid := d.UserIDs.Ints[du]
		for k := range nn {
			truth.UserFactors[u*(nn+1)+k] = mix * planted.UserVectors[int(uid)*nn+k]
		}
		truth.UserFactors[u*(nn+1)+nn] = float32(planted.PopularityShare)
	}
	for c, di := range s.ItemOf {
		id := d.ItemIDs.Ints[di]
		copy(truth.ItemFactors[c*(nn+1):], planted.ItemVectors[int(id)*nn:int(id+1)*nn])
		truth.ItemFactors[c*(nn+1)+nn] = float32(planted.Popularity[id])
	}
	ndcg := map[string]float64{}
	for name, tr := range map[string]Trainer{"popularity": Popularity{}, "random": Random{Seed: 1}} {
		m, err := tr.Fit(ctx, s.Train)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Evaluate(ctx, s, m, name, ks, 2)
		if err != nil {
			t.Fatal(err)
		}
		ndcg[name] = r.AtK[0].NDCG
	}
	for name, m := range map[string]Model{"ials": ials, "planted": truth} {
		r, err := Evaluate(ctx, s, m, name, ks, 2)
		if err != nil {
			t.Fatal(err)
		}
		ndcg[name] = r.AtK[0].NDCG
	}
	ratio := ndcg["ials"] / ndcg["popularity"]
	t.Logf("NDCG@10 over %d users: planted model %.4f, ials %.4f, popularity %.4f, random %.4f; ials/popularity %.2f",
		s.Stats.EvalUsers, ndcg["planted"], ndcg["ials"], ndcg["popularity"], ndcg["random"], ratio)
	// 75% of the events follow the users' own topics: a model that learns
	// them beats one global ranking by far (measured: 3.1×).
	if ratio < 2 {
		t.Errorf("iALS NDCG@10 %.4f is only %.2f× popularity's %.4f, want >= 2×", ndcg["ials"], ratio, ndcg["popularity"])
	}
	if !(ndcg["random"] < ndcg["popularity"]) || !(ndcg["ials"] <= ndcg["planted"]*1.05) {
		t.Errorf("want random < popularity and ials not above the planted model (+5%%): %v", ndcg)
	}

	// Subspace recovery. The expected count of (u, i) is n_u·P(i|u), a
	// combination, as a function of i, of the N topic columns φ_k, of the
	// popularity z and of the constant. The topics carry 75% of the events:
	// the planted item subspace is span(φ_1..φ_N). (The constant carries
	// ε·n_u/items < 0.001 per pair and is not learned; z, nearly flat at
	// ZipfS 0.3, only partly.) iALS has N+2 item factor columns, room for
	// the topics and popularity; every one of the N principal angles
	// between span(φ) and their span must be below 32° (cosine >= 0.85;
	// measured: about 0.93 and above). A random (N+2)-dimensional subspace
	// of R^1500 has expected squared cosine (N+2)/1500 < 0.01 with any
	// direction, so this cannot happen by chance; the control below
	// measures one.
	cat := len(s.ItemOf)
	planes := mat.NewDense(cat, n, nil)
	for c, di := range s.ItemOf {
		id := d.ItemIDs.Ints[di]
		for k := range n {
			planes.Set(c, k, float64(planted.ItemVectors[int(id)*n+k]))
		}
	}
	m := ials.(*ml.Model)
	y := mat.NewDense(cat, m.Factors, nil)
	for c := range cat {
		for f, v := range m.ItemVector(c) {
			y.Set(c, f, float64(v))
		}
	}
	cos := principalCosines(t, planes, y)
	deg := make([]string, len(cos))
	for j, c := range cos {
		deg[j] = fmt.Sprintf("%.1f°", math.Acos(min(c, 1))*180/math.Pi)
	}
	t.Logf("principal angles, planted vs learned item subspace: %v", deg)
	if minCos := cos[len(cos)-1]; minCos < 0.85 {
		t.Errorf("largest principal angle %s (cos %.3f): iALS did not recover the planted subspace", deg[len(deg)-1], minCos)
	}
	// Control: the subspace of n+2 random columns.
	rng := rand.New(rand.NewPCG(9, 9))
	rnd := mat.NewDense(cat, n+2, nil)
	for c := range cat {
		for f := range n + 2 {
			rnd.Set(c, f, rng.NormFloat64())
		}
	}
	rc := principalCosines(t, planes, rnd)
	t.Logf("control, a random subspace: smallest angle %.1f°", math.Acos(rc[0])*180/math.Pi)
	if rc[0] > 0.5 {
		t.Errorf("a random subspace comes within %.1f° of the planted one: the criterion cannot tell", math.Acos(rc[0])*180/math.Pi)
	}
}
