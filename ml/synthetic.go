package ml

import "math/rand/v2"

// SkewedInteractions draws nnz (user, item, weight) triples for load tests
// and benchmarks: users uniform, items with density ∝ 1/√rank under a
// seeded shuffle of item ids (a few hits and a long tail, as in real logs),
// weights uniform in 1..5, duplicates summed by NewInteractions. It has no
// latent structure: it measures speed, not what a model learns (the
// planted low-rank generator is for that).
func SkewedInteractions(users, items, nnz int, seed uint64) (*Interactions, error) {
	rng := rand.New(rand.NewPCG(seed, 1))
	perm := rng.Perm(items)
	us, is, ws := make([]int32, nnz), make([]int32, nnz), make([]float32, nnz)
	for j := range us {
		r := rng.Float64()
		us[j] = int32(rng.IntN(users))
		is[j] = int32(perm[int(float64(items)*r*r)])
		ws[j] = float32(1 + rng.IntN(5))
	}
	return NewInteractions(users, items, us, is, ws)
}
