package gen_test

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/riffle-dev/riffle/internal/gen"
)

// TestLatentVectors checks the planted vectors against the moments of the
// symmetric Dirichlet(c) of dimension N: each component has mean 1/N and
// variance (1/N)(1−1/N)/(N·c+1).
func TestLatentVectors(t *testing.T) {
	for _, tc := range []struct {
		n int
		c float64
	}{{8, 0.1}, {4, 1}, {16, 0.5}} {
		t.Run(fmt.Sprintf("N%d_c%g", tc.n, tc.c), func(t *testing.T) {
			g, err := gen.New(gen.Options{Rows: 1000, Users: 60_000, Items: 20_000, Seed: 3, LatentFactors: tc.n, LatentConcentration: tc.c})
			if err != nil {
				t.Fatal(err)
			}
			p := g.Planted()
			n := float64(tc.n)
			wantMean := 1 / n
			wantVar := (1 / n) * (1 - 1/n) / (n*tc.c + 1)
			for name, v := range map[string][]float32{"user": p.UserVectors, "item": p.ItemMemberships} {
				rows := len(v) / tc.n
				var sum, sq float64
				for r := range rows {
					var rs float64
					for k := range tc.n {
						x := float64(v[r*tc.n+k])
						if !(x >= 0) {
							t.Fatalf("%s %d: component %d is %v", name, r, k, x)
						}
						rs += x
						sum += x
						sq += (x - wantMean) * (x - wantMean)
					}
					if math.Abs(rs-1) > 1e-5 {
						t.Fatalf("%s %d: components sum to %v", name, r, rs)
					}
				}
				m := float64(rows) * n
				mean, variance := sum/m, sq/m
				// The mean is 1/N exactly (rows sum to 1). The variance
				// estimate over >= 80k rows is within 3% of the truth:
				// its relative standard error is below 0.6% here
				// (sqrt((kurtosis-1)/rows) with the Beta marginal's
				// kurtosis under 30).
				if math.Abs(mean-wantMean) > 1e-6 {
					t.Errorf("%s: mean %v, want %v", name, mean, wantMean)
				}
				if math.Abs(variance/wantVar-1) > 0.03 {
					t.Errorf("%s: variance %v, want %v (ratio %.4f)", name, variance, wantVar, variance/wantVar)
				}
			}
		})
	}
}

// latentCounts generates rows and counts events per user and per (user,
// item).
func latentCounts(t *testing.T, g *gen.Generator) (perUser []float64, cell map[[2]int64]float64) {
	t.Helper()
	o := g.Options()
	perUser = make([]float64, o.Users)
	cell = map[[2]int64]float64{}
	for c := range g.NumChunks() {
		rec := g.Chunk(c)
		us := rec.Column(0).(*array.Int64).Int64Values()
		is := rec.Column(1).(*array.Int64).Int64Values()
		for r := range us {
			perUser[us[r]]++
			cell[[2]int64{us[r], is[r]}]++
		}
		rec.Release()
	}
	return perUser, cell
}

// chiSquare pools a chi-square statistic over the users with at least
// minEvents events: per user, the cells with expected count >= 5 and one
// cell lumping the rest. expect(u) returns user u's item probabilities.
func chiSquare(perUser []float64, cell map[[2]int64]float64, items int64, minEvents float64, expect func(u int64) []float64) (stat float64, df int) {
	for u, n := range perUser {
		if n < minEvents {
			continue
		}
		p := expect(int64(u))
		var restE, restO float64
		cells := 0
		for i := range items {
			e := n * p[i]
			o := cell[[2]int64{int64(u), i}]
			if e < 5 {
				restE += e
				restO += o
				continue
			}
			stat += (o - e) * (o - e) / e
			cells++
		}
		if restE > 0 {
			stat += (restO - restE) * (restO - restE) / restE
			cells++
		}
		df += cells - 1
	}
	return stat, df
}

// TestLatentConditional checks the events against the closed form
// P(i|u) = (1−π−ε)·Σ_k θ_uk·φ_k(i) + π·z_i + ε/Items, computed here from
// the planted vectors, with a chi-square over (user, item) cells given
// each user's event count. The same statistic against the users' pooled
// item frequencies (what a model ignoring the user would predict) must be
// far larger: the test sees the user-specific structure.
func TestLatentConditional(t *testing.T) {
	// 6 topics: the sampler scans; 24: it searches.
	for _, n := range []int{6, 24} {
		t.Run(fmt.Sprintf("N%d", n), func(t *testing.T) { testLatentConditional(t, n) })
	}
}

func testLatentConditional(t *testing.T, factors int) {
	o := gen.Options{Rows: 400_000, Users: 150, Items: 400, Seed: 11, LatentFactors: factors, RowGroupRows: 50_000}
	g, err := gen.New(o)
	if err != nil {
		t.Fatal(err)
	}
	p := g.Planted()
	n := p.Factors
	// φ_k(i): each column a distribution whose ratios to the memberships
	// v_ik are Zipf weights r^-s over a permutation of the items.
	phi := make([][]float64, n)
	for k := range n {
		phi[k] = make([]float64, o.Items)
		var sum float64
		var ratios []float64
		for i := range o.Items {
			phi[k][i] = float64(p.ItemVectors[int(i)*n+k])
			sum += phi[k][i]
			if v := float64(p.ItemMemberships[int(i)*n+k]); v > 1e-30 {
				ratios = append(ratios, phi[k][i]/v)
			}
		}
		if math.Abs(sum-1) > 1e-4 {
			t.Errorf("topic %d: φ sums to %v", k, sum)
		}
		// Sorted descending, the ratios must be c·r^-s at strictly
		// increasing integer ranks r from 1 (items whose membership is too
		// small to divide by leave gaps).
		sort.Sort(sort.Reverse(sort.Float64Slice(ratios)))
		prev := 0.0
		for j, q := range ratios {
			r := math.Pow(ratios[0]/q, 1/gen.DefaultZipfS)
			if math.Abs(r-math.Round(r)) > 0.01 || math.Round(r) <= prev || (j == 0 && r != 1) {
				t.Fatalf("topic %d: the %d-th largest φ/v is at rank %.4f, after rank %v: not Zipf over a permutation", k, j+1, r, prev)
			}
			prev = math.Round(r)
		}
		if len(ratios) < int(o.Items)*9/10 {
			t.Fatalf("topic %d: only %d of %d memberships usable", k, len(ratios), o.Items)
		}
	}
	closed := func(u int64) []float64 {
		out := make([]float64, o.Items)
		mix := 1 - p.PopularityShare - p.NoiseShare
		for i := range o.Items {
			var s float64
			for k := range n {
				s += float64(p.UserVectors[int(u)*n+k]) * phi[k][i]
			}
			out[i] = mix*s + p.PopularityShare*p.Popularity[i] + p.NoiseShare/float64(o.Items)
		}
		return out
	}
	perUser, cell := latentCounts(t, g)
	stat, df := chiSquare(perUser, cell, o.Items, 500, closed)
	// Under the model the statistic is about chi-square(df): mean df,
	// standard deviation sqrt(2 df). Allow 5 standard deviations.
	limit := float64(df) + 5*math.Sqrt(2*float64(df))
	t.Logf("closed form: chi2 %.0f, df %d, limit %.0f", stat, df, limit)
	if df < 1000 {
		t.Fatalf("only %d degrees of freedom: too few events per user", df)
	}
	if stat > limit {
		t.Errorf("chi2 %.0f > %.0f (df %d): events do not follow the planted model", stat, limit, df)
	}
	// Ignoring the user: every user draws from the pooled item frequencies.
	pooled := make([]float64, o.Items)
	var total float64
	for key, c := range cell {
		pooled[key[1]] += c
		total += c
	}
	for i := range pooled {
		pooled[i] /= total
	}
	stat0, df0 := chiSquare(perUser, cell, o.Items, 500, func(int64) []float64 { return pooled })
	t.Logf("pooled frequencies: chi2 %.0f, df %d", stat0, df0)
	if stat0 < 10*limit {
		t.Errorf("chi2 against pooled frequencies %.0f is not far above %.0f: no user-specific structure", stat0, limit)
	}
}

// TestLatentDeterminism: with a planted model too, the same seed gives the
// same file whatever the parallelism, and another seed another file.
func TestLatentDeterminism(t *testing.T) {
	dir := t.TempDir()
	base := gen.Options{Rows: 60_000, Users: 9_000, Items: 5_000, Seed: 5, RowGroupRows: 10_000, LatentFactors: 8}
	var hashes []string
	for _, par := range []int{1, 3} {
		o := base
		o.Parallelism = par
		path := filepath.Join(dir, fmt.Sprintf("p%d.parquet", par))
		write(t, path, o)
		hashes = append(hashes, fileHash(t, path))
	}
	if hashes[0] != hashes[1] {
		t.Errorf("parallelism changed the output: %v", hashes)
	}
	o := base
	o.Seed = 6
	path := filepath.Join(dir, "s6.parquet")
	write(t, path, o)
	if fileHash(t, path) == hashes[0] {
		t.Error("another seed gave the same file")
	}
	plain := base
	plain.LatentFactors = 0
	path = filepath.Join(dir, "plain.parquet")
	write(t, path, plain)
	if fileHash(t, path) == hashes[0] {
		t.Error("the planted model changed nothing")
	}
}

func TestLatentOptions(t *testing.T) {
	for _, o := range []gen.Options{
		{LatentFactors: -1},
		{LatentFactors: 4, LatentNoise: 0.5, LatentPopularity: 0.6},
		{LatentFactors: 4, LatentConcentration: -1},
		{LatentFactors: 1 << 10, Users: 1 << 20},
	} {
		if _, err := gen.New(o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
