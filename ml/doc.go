// Package ml is riffle's collaborative-filtering recommender: its
// numerical core (implicit-feedback matrix factorisation, iALS, and top-K
// scoring), the stateful recommend operator (keyed state, checkpoints)
// and model exports; the incremental model of a stream (Online) and the
// streaming recommend operator build on them. Evaluation (the global-time, user-time and
// leave-last-out protocols, Recall/NDCG/HR/MAP@K and coverage, defined
// there precisely enough to reproduce every number) lives in ml/eval: see
// its package doc.
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
// shared factor matrices (CG then solves them four at a time in lockstep,
// each row's arithmetic unchanged by the grouping); each row's solve reads
// only shared, read-only inputs (the other side's factors, the Gram matrix,
// its interactions) and writes only its own factor. Gram sums fixed chunks
// of rows and adds the partial sums in chunk order. So training is bitwise
// deterministic for a seed at any thread count (TestTrainDeterministic).
//
// # Numerical trouble
//
// A NaN or infinite factor, a CG step whose curvature pᵀAp is not
// positive, a CG residual that grows by more than 10¹² and a Cholesky
// pivot that is not clearly positive (≤ 10⁻¹² of its diagonal) all fail
// the solve with a *RowError naming the row (Train adds "user" or
// "item"); errors.Is(err, ErrNumerical) classifies them. When several rows
// fail the lowest is named, whatever the thread count, and RowError.Failed
// lists them all; each failed row is rolled back to its factor before the
// solve, so a caller updating a live model (issue 11) can count, log and
// carry on without exporting a broken row.
//
// # Incremental updates
//
// Online is the model of a stream: it learns from micro-batches instead
// of retraining. Apply appends a batch to the histories (each user's and
// each item's distinct partners, weights of repeated pairs summed), then
// re-solves every touched user against the current item factors and the
// item Gram matrix, then every touched item against the updated user
// factors and the user Gram matrix (popular items possibly deferred:
// ItemDefer below): the same solver as training, reading just the
// touched rows' histories where they are, so an update costs time in
// proportion to those histories. With SolverCholesky each touched row is
// the exact least-squares solution of its whole history against the
// other side's current factors (TestOnlineUpdateIsLeastSquares); CG
// warm-starts from the row's factor (a new row from zero). Both Gram
// matrices are kept current by GramUpdate (the changed rows' old
// contributions out, new ones in: O(K²) per changed row) and recomputed
// exactly once a side has seen as many row updates as it has rows
// (OnlineOptions.GramRefresh), which bounds rounding drift at an
// amortised O(K²) per update.
//
// Cold start: a user seen for the first time is solved from zero against
// the item factors, so its first factor already reflects its items; a new
// item starts from a small factor drawn from a generator seeded by the
// model's seed and the item's key (the same whenever it is first seen, so
// a restore re-creates it) and is then solved against its users in the
// same update. No row is ever served or exported as a zero factor that
// ties every score. A row whose solve fails numerically keeps its previous
// factor (a new one stays not ready, UserReady/ItemReady, and is neither
// served nor exported) and is counted in UpdateStats.
//
// Retrain runs full sweeps over every history (the first training of a
// model filled from a backfill, and periodic retrains). Incremental
// updates track a full retrain closely: on a planted stream trained on
// its first half and updated on the rest in 16 batches, the users' score
// vectors correlate with a full retrain's at 0.92 and their top-10 lists
// overlap by 0.80, against 0.94 and 0.82 between two full retrains from
// different seeds (TestOnlineTracksRetrain).
//
// Popular items (OnlineOptions.ItemDefer; the streaming operator's
// default DefaultItemDefer = 5): an item's history is usually long and a
// micro-batch adds a few events to it, yet re-solving it gathers its
// whole history, so without a bound an event on a popular item costs in
// proportion to that item's popularity. With ItemDefer s, an item with n
// ≥ 2^(s+1) events that already has a factor is re-solved only when an
// update carries its event count across a multiple of 2^(⌊log₂ n⌋−s):
// about once per n/2^s new events (3–6% of its history at s = 5), so an
// event costs at most ~2^s CG passes over rows of its item's history,
// whatever the item's popularity. A deferred item keeps its factor,
// solved on all but under 1/2^s of its events (TestOnlineItemDefer checks
// the rule against event counts kept by the test, and that every item
// that is re-solved is the exact least-squares solution); users are
// never deferred. The rule reads only the stored histories, so a restored
// model defers exactly as the one that never stopped. Its cost in
// accuracy: TestOnlineTracksRetrain's agreement with a full retrain is
// unchanged at s = 5 (0.918 / 0.800) and 0.906 / 0.791 at s = 3; on
// MovieLens prequentially (package doc of ml/eval; docs/BENCHMARKS.md)
// NDCG@10 is 0.0142 with and without deferral at batch 100 and 0.0197
// against 0.0198 at batch 20.
//
// History cap (OnlineOptions.MaxHistory; update: max_history): a stream
// that runs for months would otherwise keep every interaction. With a
// cap of n, a user's (n+1)-th newest event drops its oldest one from the
// user's and the item's history: the pair's weight becomes the sum of its
// remaining events, added in arrival order exactly as adding them afresh
// would sum them (a pair with none left goes), and the item that lost it
// is re-solved in the same update. The histories are then bitwise those
// of a model fed only each user's newest n events, so a model rebuilt
// from capped state continues bitwise like the original
// (TestOnlineMaxHistory, against a brute-force oracle; with the exact
// solver every re-solved row is the least-squares solution of its capped
// history). The model keeps each capped user's events in order (8 bytes
// an event) to know which is oldest.
//
// Recency decay (update: half_life H, in interactions; the streaming
// operator): the t-th accepted interaction counts, once T were applied,
// with weight w·2^(−(T−t)/H). Nothing is rewritten as interactions age:
// the operator stores each weight (state lists and model) inflated as
// w·2^((t−base)/H) and solves with α·2^(−(T−base)/H)
// (Online.SetAlphaScale), which gives every confidence 1 + α·w·2^(−(T−t)/H)
// (and the frequency-scaled λ its decayed mass): an old interaction's
// confidence tends to 1, that of a pair never seen, while it stays a
// positive preference (max_history is what removes it). Every DecayRebase = 32
// half-lives every stored weight is multiplied by 2^−32 (exact in float32
// but for weights that old, which underflow) and base moves on: O(state)
// once per 32 half-lives. base is in the operator state, so a restored
// run continues bitwise (TestStreamHalfLife: the stored lists equal the
// brute-force inflated weights after a rebase, a model retrained from
// scratch on the decayed weights equals the operator's within 10⁻⁶, and
// restores before and after the rebase continue bitwise). The half-life
// counts interactions, not event time: the recommend step has no time
// column. Turning half_life on for a job restored from state written
// without it counts every earlier interaction as the stream's first
// (sequence 0); the batch operator reading such state sees the inflated
// weights.
//
// Throughput (BenchmarkOnlineApply: 100k users × 20k items × 5M
// interactions, K = 64, 1% of a batch's users new, `go test -run '^$'
// -bench OnlineApply -benchtime 10x -cpu 2 ./ml`, 2026-12-05, 2 shared
// cores, load average ~12; rerun at load 1.7: 191k and 202k for the
// default at 1k and 10k, so the 200k target is at its margin there, met
// with ItemDefer 4 or one item CG step): interactions per CPU-second
//
//	batch   every touched item re-solved        ItemDefer 5 (default)    ItemDefer 4
//	        3 CG steps   1 (ItemCGSteps)        3 CG steps               3 CG steps
//	1k      80k          100k                   220k                     268k
//	10k     116k         146k                   244k                     271k
//	50k     189k         217k                   275k                     310k
//
// A batch of 10k touches ~9.5k users (0.47M history entries) and ~7k
// items (1.8M entries: popular items have long histories); without
// deferral items are most of the work, ~60% of the CPU the CG
// interaction loop gathering user factors from a 25 MiB matrix. With
// ItemDefer 5, 5.1k of the 7k items wait and 1.9k are re-solved.
//
// Kept per-item normal equations (A_i = Σ_u c_ui x_u x_uᵀ, b_i, updated
// by rank-1 changes for the users whose factors changed, then an exact
// K×K solve) were weighed and not built: every changed user changes the
// statistics of every item in its history, 2K² = 8192 flops per (changed
// user, item) pair, and a 10k batch changes 0.47M such pairs: 3.9·10⁹
// flops against 0.7·10⁹ for three CG passes over the touched items'
// whole histories, and 20k × K² float64 = 655 MiB of statistics, each
// update a cache miss, against the 5 MiB item factor matrix. They pay
// off only when under ~steps/K (5%) of an item's users changed since its
// last solve, which is not the case for the popular items that cost.
//
// # Prequential metering
//
// PrequentialMeter scores a stream the way it will be served: before a
// batch is applied (Observe, then Online.Apply), each positive event's
// true item is ranked for its user among the items known so far that the
// user has not seen, by the model and by popularity; HR@K and NDCG@K
// accumulate over the stream, and with PrequentialOptions.Window also over
// each model's last Window warm events (Recent). The streaming recommend
// operator meters itself this way when UpdateOptions.Prequential is set
// (the update: mapping's prequential: {k, window, every, min_weight}):
// each incremental update's batch is observed against the model just
// before Apply (the first training's batch is not: there is no model
// yet), and the figures are in RecommendSpec.Stats, hence riffle run's
// GET /status (TestStreamPrequentialLive: bit for bit a meter run offline
// over the same batches). The meter's state (counts, sums, the Recent
// windows) is in the operator's checkpoints: a restored job's figures go
// on from the checkpoint's, bit for bit those of a run that never stopped
// (TestStreamPrequentialRestore). PrequentialOptions.Every samples events, since
// each scored event costs O(items·K). ml/eval's prequential protocol
// drives the same meter over a replayed log with several models side by
// side (ObserveModels), and ml/eval/doc.go defines event classes,
// candidates, ties and metrics exactly.
//
// # Top-K scoring
//
// Model.TopK scores blocks of 64 users against tiles of 512 items (a
// blocked matrix product; a tile of item factors stays in L2 while the
// block's users sweep it) and keeps a bounded heap of k candidates per
// user, skipping the user's own items. Once a user's heap is full, scores
// that cannot enter it are skipped eight at a time (firstAbove). Results
// are handed to the caller in the order asked, ties broken by lower item
// index. A Scorer packs the item factors for the kernels once (a snapshot)
// and answers many queries, concurrently: one user's top-10 among 20k
// items takes 58 µs at K = 64 and 104 µs at K = 128 of CPU on one core
// (BenchmarkScorerOneUser), the serving path of issue 11 (a block of one
// user runs the matrix-vector kernel: "Live serving").
//
// # Live serving
//
// A Live is the serving copy of a model that learns on the stream: the
// recommend operator owns the model and, after each update, calls
// Live.Sync. Live holds two copies of what queries read (factors, seen
// lists, popularity, readiness, the item Scorers); readers take the
// published one through an atomic pointer and count themselves in while
// they read it, and never wait for anything. Sync writes the other copy,
// which is two updates behind: the rows the previous Sync changed, the
// rows this update changed (Online.Changed) or touched without solving
// (Online.Failed: a rolled-back user's new seen items and an item's
// popularity are served at once, its factor stays the previous one), and
// the new rows; then it publishes that copy with one pointer store. Before
// writing a copy Sync waits for the readers still in it (queries that
// started before the previous publish: one query's time, tens of µs); a
// reader that finds the pointer moved between loading and counting itself
// in retries on the new copy. So an update costs O(changed·K) plus the
// changed users' seen lists, twice (once per copy), on the owner's
// goroutine (BenchmarkLiveSync: 7.1 ms of CPU when 5,000 users and 3,000
// items of a 100k × 20k model changed at K = 64, half of it keeping the
// binary16 panels below), and a Retrain (every row changed) copies the
// whole model twice without blocking a reader. Every answer is computed on one copy,
// the model as it was between two Syncs (TestLiveConcurrentReaders,
// TestLiveReaderHoldsCopy), and reports the number of Syncs it was read
// at (Version; Updated is closed at the next publish). Seen lists are
// shared by the two copies, never written once made.
//
// Recommend ranks by x_u·y_i, leaving out the user's items and items whose
// first solve failed (not ready); an unknown or not-ready user is
// ErrUnknownUser, or with the popularity fallback gets the items with the
// most distinct users. Similar ranks by the cosine of the item factors
// (dot products of unit vectors, kept in a second Scorer), leaving out the
// item itself. RecommendTo and SimilarTo write into a result the caller
// keeps and allocate nothing. Each query scores every item: the single-
// user path of Top-K scoring above runs a matrix-vector kernel over the
// item panels (score1x32AVX512 / score1x16AVX2: four panels of items per
// pass, one broadcast of x_t for 128 items) instead of the four-user
// kernel on four copies of the user. At K = 64 the 5 MiB of item panels
// come from L3 at ~100 GB/s, which bounds such a query at ~50 µs of CPU
// whatever the arithmetic (the matrix-vector kernel saves only 4% at K =
// 64, 12% at K = 128: BenchmarkScorerOneUser, matvec vs padded4). So on
// AVX-512 a Scorer made by NewItemScorer (Live's) also keeps its panels in
// binary16 and answers in two passes (topk_half.go): half-precision scores
// of every item (half the bytes; score1x32F16AVX512 widens each value
// exactly before its FMA) select the items whose score can be among the
// best k, given the rounding bound ‖x‖₁·(max|y − ŷ| + 2f·2⁻²⁴·(max|y| +
// max|y − ŷ|)) per score; those are rescored by the float32 kernel, so the
// answer is bitwise the float32 one (TestScorerHalfExact), at ~35 µs
// (BenchmarkLiveRecommend). A factor beyond binary16's range (65504)
// turns the half pass off for that Scorer.
// Live counts its queries and their model-work latency in buckets
// (LiveStats, for /status and metrics). Package ml/serve answers the
// queries over HTTP; its latency under load while the model ingests is in
// docs/BENCHMARKS.md ("Live serving").
//
// # Kernels: hand-written vs gonum
//
// The hot loops run assembly (kernels_amd64.s): AVX-512 when the CPU has
// AVX-512F for the scoring micro-kernel (any K), the four-row CG
// interaction kernel (K a multiple of 32) and the Gram-vector products (K
// a multiple of 16); AVX2+FMA otherwise (scoring at any K, the other
// vector kernels for K a multiple of 8, the four-row CG kernel 16, the
// float64 Gram kernel, which the Cholesky solver also uses, 4); elsewhere,
// and under -tags purego, portable Go (the *Go functions,
// which the tests use as the reference; on AVX-512 machines TestAVX2Path
// reruns the tests on the AVX2 kernels). Factors from different kernel
// sets differ in the last bits (summation order), so bitwise determinism
// holds per build and instruction set, at any thread count. gonum's
// pure-Go BLAS (blas32, blas64: level-1 loops in SSE assembly without FMA,
// level 2/3 in Go) was measured doing the same work and lost every time,
// by 1.8–13×, so it is used only in the tests (mat, as the closed-form
// oracle). CPU nanoseconds per call on one core (`go test -run '^$' -bench
// 'Kernel|Peak' -cpu 1 ./ml`, 2026-12-05, AMD EPYC (Zen 5) VM, load
// average ~9 on 2 cores, hence CPU rather than wall time):
//
//	kernel, K = 64 / 128                 portable Go   gonum               riffle AVX2   riffle AVX-512
//	dot                                  18 / 34       10 / 14             5.8 / 7.7     -
//	axpy                                 21 / 38       11 / 16             5.7 / 7.8     -
//	Gram·vector (K×K)                    1097 / 4237   419 / 1394 Gemv     107 / 532     52 / 481
//	                                                   1302 / 4922 Symv
//	CG interaction loop, 50 items        1843 / 3562   1391 / 1753         161 / 306     130 / 218
//	  (dot + axpy per item; gonum: blas32.Dot + blas32.Axpy)
//	scoring 64 users × 512 items, GFLOP/s  25 / 36     19 / 18 Gemm        120 / 118     241 / 235
//	Gram of 2048 rows, float64, µs       -             1059 / 3724 Syrk    245 / 877     -
//
// BenchmarkPeak (12 independent FMAs in a loop) puts one core's float32
// ceiling at 128 GFLOP/s with AVX2 and 256 GFLOP/s with AVX-512; the
// scoring micro-kernels (4 users × 16 or 32 items in registers, over item
// factors packed into transposed panels) reach 94% of each.
//
// # Where the time goes
//
// Training, 100k users × 20k items × 5M interactions, CG with 3 steps, 2
// threads (`go test -run '^$' -bench 'Iteration/K=(64|128)/cg' -benchtime
// 3x -cpu 2 -cpuprofile cpu.out ./ml`, `go tool pprof -top ml.test
// cpu.out`): 0.25 CPU-seconds per iteration at K = 64, 0.57 at K = 128
// (SolverCholesky: 4.4 at K = 64); on a nearly idle machine 0.13 s and
// 0.29 s of wall time. Of the training time, the CG interaction loop
// (gathering each item's factor, its dot product with the search direction
// and the rank-1 update: gatherDotAxpy4AVX512, which prefetches the next
// four rows) is ~55%, the Gram-vector products ~12% (rows are solved in
// groups of four in lockstep so that one pass over the Gram matrix serves
// four vectors: symv4AVX512; at K = 128 this cut an iteration by a fifth,
// the 64 KiB matrix no longer fitting L1), the CG bookkeeping in Go ~11%,
// the Gram matrices ~7%. The interaction loop runs at ~20% of the FMA
// ceiling: it is bound by gathering factor rows scattered over a 5 MiB
// (items) or 25 MiB (users) matrix, not by arithmetic. What would help
// next: ordering rows so that consecutive rows share items in cache.
//
// Top-K of all 100k users against 20k items at K = 64 (BenchmarkTopK, k =
// 10, the users' interactions excluded): 1.6–1.7 CPU-seconds, 0.84–0.90 s
// of wall time on the nearly idle machine (target ≤ 10 s): 2.56·10¹¹
// flops at an effective ~150 GFLOP/s per core, ~60% of the AVX-512
// ceiling. Profile: the scoring kernel ~65%, skipping scores below the
// heap's threshold (firstAbove) ~13%, heap pushes ~10%, the loop around
// them the rest.
//
// # The recommend operator
//
// NewRecommend returns the arrowexec.Spec of the job's recommend step. It
// runs at the job's parallelism behind a hash exchange on the user column.
// Process evaluates the weight expression (CASE, COALESCE and the rest of
// arrowexec/expr, cast to float64), checks every row (a NULL id, a NULL,
// negative, NaN or infinite weight is an error naming the batch and row,
// or with OnErrorDeadLetter a JSONL line with the reason in
// DeadLetterPath) and appends each accepted row to its user's list in
// keyed state: one AppendMany per batch, no read. Ids are encoded by one
// typed pass per column and batch (keyColumn). One subtask ingests 6.4M
// rows/s with the memory backend (`go test -run '^$' -bench
// RecommendProcess -benchtime 200x ./ml`: batches of 8192 rows with the
// CASE weight, 2026-12-05, 2 shared cores).
//
// State layout (package state; key groups are those of the id's hash,
// arrowexec.HashColumns of the id column, so they line up with the
// exchange):
//
//	recommend/interactions        user -> list of (weight float32 | item key)
//	recommend/user                user -> trained count | dense index | factors
//	recommend/item                item -> dense index | factors
//	recommend/item-interactions   item -> list of (weight | user key)
//
// Users live in their user key's key group, items in their item key's, so
// both sides are split by the key-group rule and move with their key
// groups when the parallelism changes; the operator state (model version,
// id types) is global and the same in every subtask. Keys are the ids'
// encodings: int64 ids 8 bytes big endian with the sign bit flipped (they
// sort like numbers), strings their bytes; integer columns of any width
// are kept as int64.
//
// Training is global, so the subtasks meet at the end of input (a
// rendezvous shared through the Spec; they run in one process): each
// hands in its users' interactions, the last to arrive trains, and each
// then writes back the factors of its own users and items (and the items'
// interaction lists) and emits its users' top-K rows. The dense indices
// are the ids in key order and duplicate (user, item) weights are summed
// in sorted order, so the model is bitwise the same at any parallelism,
// batch split or arrival order, and after a restore at another
// parallelism (TestRecommendCheckpointRestore). A user's trained count
// (its list length when the model was trained) tells whether anything is
// new: a job restored after training finishes again without training or
// emitting twice. A suspended end of input (a backfill held for a
// savepoint) trains nothing: the interactions are in the savepoint.
//
// The streaming operator (below) keeps the same layout, so a savepoint
// moves between the two.
//
// Snapshots are asynchronous (arrowexec.AsyncCheckpointer): at the
// barrier the store's point-in-time view is taken (state.Store.
// BeginSnapshot) and the operator goes on; the view is then written as
// files into the subtask's checkpoint directory when the store is Pebble
// and the job has one (restored from RestoreState.Dirs, so state larger
// than memory never passes through it), else as one blob per key group.
//
// # The streaming recommend operator
//
// With RecommendOptions.Update (the step's update: mapping in a job; a
// recommend step over an unbounded source gets DefaultUpdate), New
// returns the streaming operator instead (recommend_stream.go). It holds
// one Online model and runs as one subtask, behind the hash exchange on
// the user column at parallelism 1, while the steps before it keep the
// job's parallelism: every update reads all item factors and both Gram
// matrices, so the model is one object, and its solves use Config.Threads
// goroutines. The steps after it (the sink) run at parallelism 1 too.
//
// Process checks and decodes rows with the batch operator's code (the
// weight expression, the checks, the dead-letter policy, keyColumn; a
// weight of 0, which the batch operator keeps, is a bad row here: Online
// learns from positive weights only), appends each accepted row to its user's list (recommend/interactions)
// and to its item's list (recommend/item-interactions, weight | user key,
// at the item's key group), both in arrival order, and to the pending
// batch. An update runs when Every interactions are pending, when the
// oldest pending one has waited Interval (processing time, looked at when
// a batch arrives: there is no timer, so on an idle stream what is pending
// waits for the next batch or barrier), and at every checkpoint barrier
// before the snapshot, so a snapshot always holds the model of every
// interaction before its barrier and nothing is pending in it. The first
// update of a model that never had a full training fills the histories
// (Online.AddHistory) and trains in full (Online.Retrain, from the seeded
// start); later ones apply incrementally (Online.Apply), followed by a
// warm full retrain when the number of distinct (user, item) pairs has
// grown RetrainGrowth times since the last full one. After each update
// the changed rows' factors are written to recommend/user (list length |
// dense index | factors) and recommend/item (dense index | factors), the
// batch operator's encodings, and the serving copy (UpdateOptions.Serve:
// a Live, RecommendSpec.Live) is brought up to date (Live.Sync; at Open
// too, after a restore).
// With MaxHistory (update: max_history) each update also removes, for
// every user of its batch whose list outgrew the cap, the oldest entries
// from the user's list and each one's entry from its item's list (the
// item's oldest entry of that user: both lists are in arrival order),
// the events the model dropped; a restore with a cap trims state written
// without one the same way (TestStreamMaxHistory: the stored lists equal
// a brute-force oracle's and a restored run continues bitwise). The trim
// reads and rewrites each affected item's whole list, once per update.
// Rows an update rolled back (numerical trouble) are counted and logged
// with their ids at warn level; their state keeps the previous factor,
// and rows never solved are neither written nor exported.
//
// RecommendSpec.Stats returns the running operator's RecommendStats,
// published after every update and export: updates and full trainings,
// interactions applied, model size, rows folded in and rolled back, the
// last update's time and duration, the last export published, the live
// prequential figures and the serving copy's LiveStats (queries, latency
// buckets, Sync costs). Counts start at Open (the prequential figures
// are checkpointed and continue); riffle run's GET /status
// shows them as "recommend", and the spec reports them as Prometheus
// series (RecommendSpec.ReportMetrics, MetricDescs: riffle_recommend_*,
// read from one moment's Stats).
//
// Restore (any checkpoint or savepoint, of either operator, at any
// parallelism: the one subtask takes every key group) rebuilds the model:
// factors in the order of their stored dense indices, so the restored
// model has the same indices, then every user's list in store order
// (AddHistory; repeated pairs are summed in arrival order as before), then
// the Gram matrices. These are kept in the operator state bit for bit
// (2·K²·8 bytes, 64 KiB at K = 64) rather than recomputed: an
// incrementally updated Gram matrix differs from an exact sum in float64
// rounding, and restoring it exactly makes the restored model's next
// updates bitwise those of a run that never stopped; so are the counters
// that schedule their exact recomputation (Online.GramUpdates), so a
// restored model recomputes them at the same update as that run
// (TestStreamRestoreBitwise, through the batch operator at parallelism
// 3: factors and Gram matrices bitwise). One limit: a row never solved
// is not in the state, so after a restore it gets a new dense index. State from the batch operator has no Gram matrices (they
// are computed exactly) and summed item lists (or none, before training),
// which are rewritten as the raw interactions. A user's list length in
// recommend/user equals its list, so the batch operator restored from the
// streaming one's state sees nothing new to train. After any number of
// restores every user's and item's stored list is exactly the input's
// (TestStreamHistoriesExactlyOnce, memory and Pebble, with bad rows
// dead-lettered; TestStreamBadRowsUntouched: bad rows leave the model
// bitwise untouched).
//
// Exports on the stream are the versions of "Exports" below, on a
// schedule: every ExportCheckpoints-th checkpoint or the first checkpoint
// ExportInterval after the last version. Two-phase, as the file sinks
// commit: at the barrier (after the update) the model is copied in key
// order (freeze: O(model), on the operator's goroutine); the snapshot's
// asynchronous part scores it and writes the version into its temporary
// directory (.tmp-vNNNNNN, every file synced, the manifest last), and the
// checkpoint completes only after that; NotifyCheckpointComplete then
// publishes it (rename, LATEST; versions in order, LATEST never moves
// back). The snapshot records the versions staged and not yet published
// and the next version number; a restore publishes those of its
// checkpoint that are not published yet (their files are complete: the
// checkpoint completed after they were written), removes every other
// temporary directory (versions of checkpoints that never completed) and
// numbers new versions above every version on disk. So a crash never
// publishes a version twice nor one whose model the restored job does not
// have (TestStreamExportTwoPhase). A new version is not staged while the
// previous one is still being written. With ExportChangedOnly a version
// holds the recommendations and factors of the users changed since the
// previous version only (all item factors; _MODEL.json says changed_only
// and since), and every FullEvery-th version every user. Without
// checkpoints (no checkpoint directory) nothing could cover a staged
// version: versions are written and published at once, at an update, the
// schedule counting updates instead of checkpoints.
//
// At the end of bounded input (Finish, not suspended) the operator
// applies what is pending, exports a full version at once (as the file
// sinks publish at the end) and emits every user's top-K rows with the
// batch operator's schema; restored after that with nothing new, it emits
// nothing. A backfill held for a savepoint (riffle backfill --savepoint)
// gets the stop barrier: the update before its snapshot trains, so the
// savepoint holds the trained factors, and a job resumed from it on a
// stream continues from that model bit for bit. With an export, a job
// stopped with a savepoint publishes that model as a version at Finish
// (written then; nothing was applied after the stop barrier) when the
// export schedule did not stage one at the stop barrier, and only when
// the savepoint completed, so the version is always a model a restored
// job has
// (TestRecsBackfillThenStream in cmd/riffle; examples/recs-backfill.yaml
// and recs-live.yaml). On a stream the operator emits no rows: its
// outputs are the exports and the live model.
//
// Freshness, an interaction produced to Kafka until a changed
// recommendation is served (bench/serving --kafka, 100k users × 20k items
// × K = 64, 10k interactions/s, 2 shared cores at load average ~3): p50
// 86 ms, p99 147 ms with update: {every: 1000}; 591 ms and 1.1 s with
// every: 10000; the trigger's wait dominates (docs/BENCHMARKS.md, "Streaming
// recommender").
//
// Ingest end to end (BenchmarkStreamProcess: batches of 8192 rows with
// the CASE weight, an update every 10000 interactions, K = 64, one
// thread, memory state, a model first trained on 200k events of 100k
// users × 20k items; `go test -run '^$' -bench StreamProcess -benchtime
// 40x ./ml`, 2026-12-05, 2 shared cores at load average ~6.7): 164k
// interactions/s. Its profile (setup included): Online.Apply 28%, writing
// the changed rows' factors to the state 24%, appending to the user and
// item lists 17%. Measured again in CPU time at load average 13–14
// (interactions per CPU-second): 146k with every touched item re-solved,
// 143k with ItemDefer 5 (its items have ~10 events each, too few to be
// deferred), 92k with MaxHistory 2 (almost every user trimmed at every
// update, the cap's worst case); docs/BENCHMARKS.md.
//
// # Exports
//
// With ExportOptions, each trained model is written as a version
// directory under the export root:
//
//	out/recs/LATEST                     "v000002": the newest complete version
//	out/recs/v000002/_MODEL.json        Manifest: hyperparameters, counts, loss, time, input fingerprint, files
//	out/recs/v000002/recommendations/part-00000.parquet   the sink's rows, by user id (or .csv, .jsonl)
//	out/recs/v000002/user_factors/part-00000.parquet      id, factors fixed_size_list<float32>[K], seen list<item id>
//	out/recs/v000002/item_factors/part-00000.parquet      id, factors
//
// A version is written into .tmp-v000002 (every file synced), renamed,
// the root synced, then LATEST is replaced by a synced temporary file
// renamed over it and the root synced again; versions older than the
// newest Retain (default 5) are removed after that, and leftovers of a
// crashed export are removed by the next one. A reader that follows LATEST
// therefore only ever sees complete versions; a SIGKILL at any stage
// leaves LATEST at the previous version or the new one (TestExportCrash).
// Files are sorted by id with min/max statistics per row group (64Ki rows
// for the lists, 16Ki for the factors), so a reader looking up a few ids
// (OpenLatest, Export.Lists, Export.ReadFactors; riffle recommend) reads
// only the row groups that may hold them: one user's top-10 from an
// export of 1M users × 20k items × 64 factors (open LATEST, read all item
// factors and the user's row group, score) takes 50 ms and allocates 134
// MB (`go test -run '^$' -bench ExportLookup -benchtime 20x ./ml`,
// 2026-12-05, 2 cores). arrow-go v18.8.0 writes wrong
// values for a fixed_size_list column when a row group starts inside a
// record, so factor files are written one record per row group.
//
// With Format csv or jsonl the lists are written by internal/arrowtext, the
// file sink's own CSV and JSON Lines encoding, for tools that read text;
// the factor files stay Parquet (a fixed_size_list has no CSV form). Such
// lists have no row-group statistics to prune by, so Export.Lists refuses
// them; riffle recommend answers from such an export only when it has
// embeddings, scoring the factors.
package ml
