// Package eval evaluates recommenders offline on an interaction log: it
// splits the log into train and test by time, ranks items for every test
// user with a model trained on the train part, and reports ranking metrics
// beside two baselines. `riffle eval` is its command line.
//
// Everything below is defined precisely enough that another implementation
// gives the same numbers (ml/eval's oracle test is one, in Python).
//
// # Input
//
// A Dataset is a sequence of rows (user, item, weight, time) in input order:
// Parquet files in the Parquet source's file order and row order, a CSV file
// in line order. The row number (0-based position in that order) breaks
// every tie in time. User and item ids are integers or strings; each is
// given a dense index, its rank among the distinct ids of the whole file in
// ascending order (numeric for integers, bytewise for strings). Weights are
// finite and non-negative (or 1 when no weight is given); NULL ids or times
// are errors naming the row. A row of weight 0 is no interaction (as in
// package ml) and is dropped on input, before anything else: row numbers
// and N below count the rows kept. Times are compared as integers in the
// column's own unit.
//
// # Protocols
//
// Let the time order of a set of rows be ascending (time, row number), and
// P the test percentage (default 20; integer, 1..99).
//
//   - global-time: sort all rows in time order; the last floor(N·P/100)
//     rows (N rows) are test, the others train. Rows with equal times may
//     fall on both sides of the cut, by row number.
//   - user-time: for each user with n rows, the last floor(n·P/100) of its
//     rows in time order are test. Users with fewer than 100/P rows have
//     no test rows.
//   - leave-last-out: for each user with at least 2 rows, its last row in
//     time order is test; users with one row keep it in train.
//
// The validation split (used by Tune) applies the same protocol, with the
// same P, to the train rows alone: it is cut from the end of train by time
// and never sees a test row.
//
// # Train and test matrices
//
// Train users are the users with at least one train row; the catalogue is
// the set of items with at least one train row. Models see only these, with
// dense indices of their own in ascending id order. The train matrix holds
// one entry per distinct (user, item) pair of the train rows, its weight the
// sum of the pair's weights.
//
// Each test row (u, i) is classified, in this order: u is not a train user
// (cold user: dropped); i is not in the catalogue (cold item: dropped); u
// has i in train (repeat: dropped, since train items are never
// recommended); otherwise (u, i) is relevant. A user's relevant set R_u is
// the set of distinct relevant items (duplicates count once; test weights
// do not matter). The evaluated users U are the train users with a
// non-empty R_u; every mean below is over U (0 when U is empty). Counts of
// each class are reported (SplitStats).
//
// # Ranking
//
// For user u the candidates C_u are the catalogue minus u's train items.
// A model returns its top list L_u: the min(K, |C_u|) best candidates, best
// first. When K exceeds |C_u| the list is simply shorter; no padding, no
// change of denominators below. Every model orders by score descending,
// ties by catalogue index ascending (that is, ascending id): popularity and
// random as defined below, iALS through ml.Model.TopK (scores are dot
// products of float32 factors), which breaks ties the same way.
//
// # Metrics at K
//
// With rel_r = 1 if the item at rank r (1-based) of L_u is in R_u, else 0,
// h = Σ_{r≤|L_u|} rel_r, and D = min(K, |R_u|):
//
//	Recall@K   = h / D
//	HR@K       = 1 if h > 0, else 0
//	NDCG@K     = DCG / IDCG, DCG = Σ_{r≤|L_u|} rel_r / log2(r+1),
//	             IDCG = Σ_{r=1..D} 1 / log2(r+1)
//	AP@K       = (1/D) Σ_{r≤|L_u|} rel_r · (Σ_{q≤r} rel_q) / r
//	MAP@K      = mean of AP@K over U
//	Coverage@K = |∪_{u∈U} L_u| / |catalogue|
//
// Recall is normalized by min(K, |R_u|) so that a perfect ranking scores 1
// at every K. Per-user values are computed in float64 and summed in
// ascending user order.
//
// # Baselines
//
//   - popularity: score(i) = number of distinct train users who have i;
//     the same for every user.
//   - random: user u ranks the catalogue (n items, dense catalogue indices
//     0..n-1 in ascending id order) by an affine permutation: position j
//     (0-based) holds item (a·j + b) mod n, and the list is the first K
//     of them not among u's train items. With u the model's dense user
//     index (ascending-id rank among train users), s the seed, arithmetic
//     modulo 2^64 and mix(x) the SplitMix64 output function
//     (z = x + 0x9e3779b97f4a7c15; z = (z ^ z>>30)·0xbf58476d1ce4e5b9;
//     z = (z ^ z>>27)·0x94d049bb133111eb; z ^ z>>31): h1 = mix(s + u),
//     h2 = mix(h1), a = 1 + h1 mod (n−1) (1 when n = 1), then a += 1
//     until gcd(a, n) = 1, and b = h2 mod n. The score reported at
//     position j is (n−j)/n. Every item is equally likely at every
//     position over the users, it costs O(K + |train_u|) per user, and the
//     seed (riffle eval's --seed, default 1) fixes the ranking on any
//     machine and at any parallelism.
//
// # Prequential
//
// The prequential (test-then-train) protocol measures a model that keeps
// learning: `riffle eval --protocol prequential`, Prequential. Sort all
// rows in time order; the first floor(N·f) rows (f the train fraction,
// default 0.5) train the starting models, the rest are replayed in that
// order in micro-batches of B rows (default 100). Before a batch is
// applied to any model, each of its rows is an event, classified against
// the history (the train rows and every earlier batch), in this order:
//
//   - below: its weight is under the minimum weight (--min-weight, default
//     0: none is), not scored; every row is still applied;
//   - cold item: the item is not in the history: no model can rank it,
//     not scored;
//   - repeat: the user has the item in the history, not scored;
//   - duplicate: the same (user, item) pair is an earlier event of this
//     batch that was not below, cold item or repeat, not scored;
//   - cold user: the user is not in the history: ranked by popularity (the
//     cold-start policy), reported apart, the same for every model;
//   - warm: scored by every model.
//
// Candidates of an event of user u are the items in the history that u
// has not seen (other items of the same batch among them; its new items
// not). The rank of the true item t is 1 + the number of candidates c ≠ t
// with score(c) > score(t), or score(c) = score(t) and id(c) < id(t); so a
// tie never favours t over a smaller id, as in the top lists above. HR@K
// of an event is 1 when rank ≤ K, NDCG@K is 1/log2(rank+1) when rank ≤ K,
// else both 0 (one relevant item); the figures are means over the warm
// events (cold users: over theirs), in float64. Factor models score by
// the float32 dot product; an item a model does not have (or has not
// ready) scores −∞; a warm event whose user the model does not have (or
// has not ready) is ranked by popularity for that model and counted as a
// fallback. Popularity's score of an item is the number of distinct users
// who have it in the history.
//
// Models compared, all starting from one model, ml.Train's on the train
// rows:
//
//   - incremental: an ml.Online holding the train rows' histories and that
//     model's factors (AddHistory, SetUser, SetItem, RefreshGrams: the
//     path of a job that continues a backfill's savepoint), then
//     Online.Apply with each batch after it was scored: the running
//     recommend job's update path (riffle eval's --incremental-solver and
//     --incremental-cg-steps set its solver for the updates alone);
//   - retrain (--retrain-every R): retrained from scratch with ml.Train (as
//     Online.Retrain(false) does) on every row so far, once at least R rows
//     were replayed since its last training, at a batch boundary; stale
//     in between (new users fall back, new items score −∞). With R = B it is
//     the full retrain the incremental model must track;
//   - frozen: never updated;
//   - popularity, updated with the history.
//
// The curve splits the replay into buckets (default 20) by position: the
// event at replay position q (0-based, of M) is in bucket floor(q·20/M);
// each bucket reports its warm events and every model's HR@K and NDCG@K
// over them. Models get ids as keys (Key: the dense index, 4 bytes big
// endian, whose byte order is id order).
//
// # Tuning
//
// Tune tries every setting of a Grid (factors, regularization, alpha,
// iterations; or a seeded random sample of it): each is trained on the
// validation split's train part and scored by NDCG at the smallest K on the
// validation split's test part; the highest score wins (the first in grid
// order on a tie). The winner is then trained on the whole train split and
// evaluated on the test split, which the search never saw.
//
// # Performance
//
// Models rank users in parallel blocks of 256 with per-goroutine scratch
// (no allocation per user); popularity walks one global order, skipping a
// user's train items through a stamped marker array, so it costs
// O(K + |train_u|) per user, as does random. Metrics are computed inside the
// ranking callback into a per-user slot, so no list is kept beyond the K
// item indices needed for coverage.
package eval
