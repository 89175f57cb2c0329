package ml

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// Benchmarks. The training ones use the bench/recommender shape (100k users
// × 20k items × 5M interactions, skewed item popularity):
//
//	go test -run '^$' -bench 'Iteration|Solve|Gram|TopK' -benchtime 3x -cpu 2 ./ml
//	go test -run '^$' -bench Kernel -cpu 1 ./ml

var (
	benchOnce sync.Once
	benchUI   *Interactions
)

func benchData() *Interactions {
	benchOnce.Do(func() {
		var err error
		if benchUI, err = SkewedInteractions(100_000, 20_000, 5_000_000, 1); err != nil {
			panic(err)
		}
	})
	return benchUI
}

// BenchmarkIteration times one full sweep (Gram + users + Gram + items).
func BenchmarkIteration(b *testing.B) {
	ui := benchData()
	iu := ui.Transpose()
	for _, k := range []int{64, 128} {
		for _, s := range []Solver{SolverCG, SolverCholesky} {
			b.Run(fmt.Sprintf("K=%d/%v", k, s), func(b *testing.B) {
				cfg := Config{Factors: k, Regularization: 0.05, Alpha: 1, Solver: s, CGSteps: 3, Seed: 1}.EnsureDefaults()
				m := NewModel(cfg, ui.NumUsers, ui.NumItems)
				g := make([]float64, k*k)
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				c0 := cpuTime()
				for range b.N {
					gramThreads(m.ItemFactors, k, g, cfg.Threads)
					if err := SolveRows(ctx, cfg, ui, m.ItemFactors, g, m.UserFactors, nil); err != nil {
						b.Fatal(err)
					}
					gramThreads(m.UserFactors, k, g, cfg.Threads)
					if err := SolveRows(ctx, cfg, iu, m.UserFactors, g, m.ItemFactors, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuTime()-c0)/1e9/float64(b.N), "cpu-s/op")
				b.ReportMetric(float64(ui.NNZ())*float64(b.N)/b.Elapsed().Seconds(), "interactions/s")
			})
		}
	}
}

func BenchmarkGram(b *testing.B) {
	for _, k := range []int{64, 128} {
		b.Run(fmt.Sprintf("100k×K=%d", k), func(b *testing.B) {
			f := randFactors(rand.New(rand.NewPCG(1, 1)), 100_000*k, 0.1)
			g := make([]float64, k*k)
			b.ReportAllocs()
			for range b.N {
				Gram(f, k, g)
			}
		})
	}
}

// BenchmarkTopK scores every user of a 100k × 20k model (the issue's
// target shape) for k = 10, excluding the bench interactions.
func BenchmarkTopK(b *testing.B) {
	ui := benchData()
	for _, k := range []int{64, 128} {
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(2, 2))
			m := &Model{Factors: k, NumUsers: ui.NumUsers, NumItems: ui.NumItems,
				UserFactors: randFactors(rng, ui.NumUsers*k, 0.3), ItemFactors: randFactors(rng, ui.NumItems*k, 0.3)}
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuTime()
			for range b.N {
				if err := m.TopK(context.Background(), nil, 10, ui, 0, func(int32, []int32, []float32) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			flops := 2 * float64(m.NumUsers) * float64(m.NumItems) * float64(k) * float64(b.N)
			cpu := float64(cpuTime()-c0) / 1e9
			b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(flops/cpu/1e9, "GFLOP/cpu-s")
		})
	}
}

// BenchmarkIncrementalBatch times what the streaming path (issue 11) does
// per micro-batch of 10k new interactions on the 100k × 20k model: re-solve
// the touched users' full histories against the item factors, replace their
// contributions to the user Gram matrix (GramUpdate), then re-solve the
// touched items against the user factors. Reports batch interactions per
// CPU-second.
func BenchmarkIncrementalBatch(b *testing.B) {
	ui := benchData()
	iu := ui.Transpose()
	const k, batch = 64, 10_000
	cfg := Config{Factors: k, Regularization: 0.05, Alpha: 1, CGSteps: 3, Seed: 1}.EnsureDefaults()
	m := NewModel(cfg, ui.NumUsers, ui.NumItems)
	rng := rand.New(rand.NewPCG(5, 5))
	// Touched rows: batch draws of a user and an item (skewed like the data).
	perm := rng.Perm(ui.NumItems)
	seenU, seenI := map[int32]bool{}, map[int32]bool{}
	var users, items []int32
	for range batch {
		u := int32(rng.IntN(ui.NumUsers))
		r := rng.Float64()
		i := int32(perm[int(float64(ui.NumItems)*r*r)])
		if !seenU[u] {
			seenU[u], users = true, append(users, u)
		}
		if !seenI[i] {
			seenI[i], items = true, append(items, i)
		}
	}
	gi, gu := make([]float64, k*k), make([]float64, k*k)
	Gram(m.ItemFactors, k, gi)
	Gram(m.UserFactors, k, gu)
	old, fresh := make([]float32, len(users)*k), make([]float32, len(users)*k)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for range b.N {
		for j, u := range users {
			copy(old[j*k:], m.UserVector(int(u)))
		}
		if err := SolveRows(ctx, cfg, ui, m.ItemFactors, gi, m.UserFactors, users); err != nil {
			b.Fatal(err)
		}
		for j, u := range users {
			copy(fresh[j*k:], m.UserVector(int(u)))
		}
		GramUpdate(gu, k, old, fresh)
		if err := SolveRows(ctx, cfg, iu, m.UserFactors, gu, m.ItemFactors, items); err != nil {
			b.Fatal(err)
		}
	}
	cpu := float64(cpuTime()-c0) / 1e9
	b.ReportMetric(float64(batch*b.N)/cpu, "interactions/cpu-s")
	b.ReportMetric(float64(len(users)), "users/batch")
	b.ReportMetric(float64(len(items)), "items/batch")
}

// BenchmarkScorerOneUser is the serving path: one user's top-10 against
// 20k items with a prepared Scorer.
func BenchmarkScorerOneUser(b *testing.B) {
	ui := benchData()
	for _, k := range []int{64, 128} {
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 3))
			m := &Model{Factors: k, NumUsers: ui.NumUsers, NumItems: ui.NumItems,
				UserFactors: randFactors(rng, ui.NumUsers*k, 0.3), ItemFactors: randFactors(rng, ui.NumItems*k, 0.3)}
			sc, err := m.NewScorer()
			if err != nil {
				b.Fatal(err)
			}
			fn := func(int32, []int32, []float32) error { return nil }
			for _, one := range []bool{true, false} {
				name := "matvec"
				if !one {
					name = "padded4" // the block kernel on four copies of the user
				}
				i := 0
				kb(b, name, func() {
					was := oneRowKernel
					oneRowKernel = one
					defer func() { oneRowKernel = was }()
					if err := sc.TopK(context.Background(), []int32{int32(i % ui.NumUsers)}, 10, ui, 1, fn); err != nil {
						b.Fatal(err)
					}
					i++
				})
			}
		})
	}
}

// onlineBench is an Online model over benchData (100k users × 20k items ×
// 5M interactions, K = 64) with random factors: the state a long-running
// stream job updates.
func onlineBench(b *testing.B, cfg Config) *Online {
	ui := benchData()
	o, err := NewOnline(OnlineOptions{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]Interaction, 0, ui.NNZ())
	for u := 0; u < ui.NumUsers; u++ {
		idx, w := ui.Row(u)
		for j, i := range idx {
			batch = append(batch, Interaction{User: int64Key(int64(u)), Item: int64Key(int64(i)), Weight: w[j]})
		}
	}
	o.AddHistory(batch)
	rng := rand.New(rand.NewPCG(8, 8))
	k := cfg.Factors
	v := make([]float32, k)
	for u := 0; u < o.NumUsers(); u++ {
		copy(v, randFactors(rng, k, 0.3))
		o.SetUser(o.UserKey(int32(u)), v)
	}
	for i := 0; i < o.NumItems(); i++ {
		copy(v, randFactors(rng, k, 0.3))
		o.SetItem(o.ItemKey(int32(i)), v)
	}
	o.RefreshGrams()
	return o
}

// BenchmarkOnlineApply times Online.Apply, the streaming update path, on
// the 100k × 20k model at K = 64: micro-batches of new interactions (users
// uniform, items skewed like the data, 1% of users new), each re-solving
// the touched users' and items' whole histories with 3 CG steps for users
// and new items, and 3 or 1 (OnlineOptions.ItemCGSteps) for items that had
// a factor, every touched item re-solved (defer=0) or popular ones
// deferred (OnlineOptions.ItemDefer). Reports interactions per CPU-second
// and the items re-solved and deferred per batch.
//
//	go test -run '^$' -bench OnlineApply -benchtime 10x -cpu 2 ./ml
func BenchmarkOnlineApply(b *testing.B) {
	cfg := Config{Factors: 64, Regularization: 0.05, Alpha: 1, Seed: 1}
	o := onlineBench(b, cfg)
	ctx := context.Background()
	for _, size := range []int{1_000, 10_000, 50_000} {
		for _, v := range []struct{ steps, deferShift int }{{3, 0}, {1, 0}, {3, 4}, {3, 5}, {1, 5}} {
			steps := v.steps
			b.Run(fmt.Sprintf("batch=%d/item-steps=%d/defer=%d", size, steps, v.deferShift), func(b *testing.B) {
				o.itemSteps, o.itemDefer = steps, v.deferShift
				rng := rand.New(rand.NewPCG(5, uint64(size)))
				perm := rng.Perm(20_000)
				batches := make([][]Interaction, 8)
				for j := range batches {
					batches[j] = make([]Interaction, size)
					for n := range batches[j] {
						u := int64(rng.IntN(100_000))
						if rng.IntN(100) == 0 {
							u = 1_000_000 + int64(rng.IntN(1_000_000))
						}
						r := rng.Float64()
						batches[j][n] = Interaction{User: int64Key(u), Item: int64Key(int64(perm[int(20_000*r*r)])), Weight: 1}
					}
				}
				var users, items, deferred int
				runtime.GC() // the set-up's garbage is not the update's cost
				b.ReportAllocs()
				b.ResetTimer()
				c0 := cpuTime()
				for n := range b.N {
					st, err := o.Apply(ctx, batches[n%len(batches)])
					if err != nil {
						b.Fatal(err)
					}
					users += st.Users
					items += st.Items
					deferred += st.DeferredItems
				}
				cpu := float64(cpuTime()-c0) / 1e9
				b.ReportMetric(float64(size*b.N)/cpu, "interactions/cpu-s")
				b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "interactions/s")
				b.ReportMetric(float64(users)/float64(b.N), "users/batch")
				b.ReportMetric(float64(items)/float64(b.N), "items/batch")
				b.ReportMetric(float64(deferred)/float64(b.N), "deferred/batch")
			})
		}
	}
}
