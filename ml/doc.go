// Package ml is riffle's collaborative-filtering recommender. This file
// documents its numerical core: implicit-feedback matrix factorisation
// (iALS) and top-K scoring. The stateful `recommend` operator (keyed state,
// checkpoints, exports) and the incremental streaming updates build on the
// functions below; evaluation protocols live in ml/eval.
//
// # Model
//
// Interactions is a user×item CSR matrix of positive weights w. Following
// Hu, Koren and Volinsky (2008), every user×item pair (u, i) has a
// preference p_ui = 1 when w_ui > 0 is stored, else 0, and a confidence
// c_ui = 1 + α·w_ui (1 when not stored). Train minimises
//
//	Σ_u Σ_i c_ui (p_ui − x_u·y_i)² + Σ_u λ_u‖x_u‖² + Σ_i λ_i‖y_i‖²
//
// (Loss computes it) by alternating least squares: each sweep solves every
// user's factor x_u with the item factors Y fixed, then every item's with
// the user factors X fixed. λ_u is λ (plain) or, with
// Config.FrequencyScaled, λ·((N + α·Σ_i w_ui)/N)^ν, N the number of items
// (users, for an item row): Rendle et al. (2022)'s frequency-scaled
// regularisation, λ(|I_u| + α₀|I|)^ν, with the row's confidence mass in
// place of |I_u| + α₀|I| and normalised so an empty row gets λ.
//
// A user's normal equations are (YᵀC_uY + λ_u I) x_u = YᵀC_u p_u. With the
// Gram trick YᵀC_uY = YᵀY + Σ_{i∈I_u} (c_ui − 1) y_i y_iᵀ and YᵀC_u p_u =
// Σ_{i∈I_u} c_ui y_i, so once YᵀY is known (Gram, once per half-epoch) a
// row costs time proportional to its own interactions. Two solvers:
//
//   - SolverCG (default): Config.CGSteps conjugate-gradient steps started
//     from the current x_u (Takács, Pilászy and Tikk 2011). The matrix is
//     never formed: A·p = (YᵀY)p + λ_u p + Σ_{i∈I_u} (c_ui − 1)(y_i·p) y_i,
//     O(K² + n_u·K) per step. Each step cannot increase the row's part of
//     the loss, so warm starts make three steps per sweep enough.
//   - SolverCholesky: forms the K×K matrix in float64 and solves it
//     exactly, O(n_u·K² + K³) per row: the reference, and the better
//     choice for small K or when exactness matters more than time.
//
// # Precision
//
// Factors are float32: they are what the state, checkpoints, exports and
// the scoring loop move around, and float32 halves that memory and doubles
// the SIMD width, while the model's own error (regularisation, few CG
// steps) is orders of magnitude above float32 rounding. Three places
// accumulate in float64 because there float32 would cost accuracy: the
// Gram matrix (a sum over every row of the other side, up to millions of
// terms, which the streaming path also updates incrementally for months:
// GramUpdate), the Cholesky solver (the normal-equation matrix can be
// ill-conditioned when λ is small) and Loss. CG runs in float32: its
// vectors have K terms and each sweep restarts it from the current factor,
// so rounding does not accumulate across steps.
//
// # Parallelism and determinism
//
// SolveRows hands chunks of 64 rows to Config.Threads goroutines over the
// shared factor matrices; each row's solve reads only shared, read-only
// inputs (the other side's factors, the Gram matrix, its interactions) and
// writes only its own factor. Gram sums fixed chunks of rows and adds the
// partial sums in chunk order. So training is bitwise deterministic for a
// seed at any thread count (TestTrainDeterministic).
//
// # Numerical trouble
//
// A NaN or infinite factor, a CG step whose curvature pᵀAp is not
// positive, a CG residual that grows by more than 10¹² and a Cholesky
// pivot that is not clearly positive (≤ 10⁻¹² of its diagonal) all fail
// the solve with a *RowError naming the row (Train adds "user" or
// "item"); errors.Is(err, ErrNumerical) classifies them. When several rows
// fail the lowest is named, whatever the thread count.
//
// # Top-K scoring
//
// Model.TopK scores blocks of 64 users against tiles of 512 items (a
// blocked matrix product; a tile of item factors stays in L2 while the
// block's users sweep it) and keeps a bounded heap of k candidates per
// user, skipping the user's own items. Results are handed to the caller in
// the order asked, ties broken by lower item index.
package ml
