// Package ml will hold riffle's collaborative-filtering recommender: a
// stateful arrowexec operator that trains user and item embeddings (matrix
// factorization with gonum) on a Parquet backfill, keeps updating them
// incrementally from the stream, keeps its factors in keyed state (package
// state) so checkpoints snapshot them like any other operator state, and
// exports top-K recommendations per user to files.
//
// It is just another operator: batches in, batches out, state through the
// state API, no special case in the runtime.
package ml
