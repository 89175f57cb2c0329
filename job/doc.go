// Package job reads riffle job files (YAML) and plans them onto an
// arrowexec graph. A job is one source, a list of steps and one sink (or a
// DAG of named sources, steps and sinks, below); the
// same job runs over bounded input (Parquet files) and, with another source
// block, over unbounded input.
//
//	name: item-stats
//	parallelism: 2                    # subtasks per node; default GOMAXPROCS
//	source:
//	  parquet:
//	    path: data/events.parquet     # a file, glob or directory (or paths: [...])
//	steps:
//	  - filter: "event_type IN ('click', 'purchase') AND weight > 1"
//	  - project:                      # name: expression, in output order
//	      item_id: item_id
//	      user_id: user_id
//	      w: weight * 2
//	  - aggregate:
//	      group_by: [item_id]
//	      aggs: ["count(*) AS events", "sum(w) AS total", "count_distinct(user_id) AS users"]
//	sink:
//	  file:
//	    path: out/item-stats
//	    format: parquet               # parquet (zstd), csv or jsonl
//
// Aggregate and window steps take aggregate calls and keys that are
// expressions (package agg: "sum(price * qty) AS revenue", "count(*)
// FILTER (WHERE ok)", group_by: ["date_trunc('day', ts) AS day"]); the
// planner computes them in a projection in front of the step (agg.Lower),
// which it leaves out when every key and argument is a plain column. The
// functions (package agg's table, its doc lists them): count, sum, avg,
// min, max, count_distinct, approx_distinct, var_samp, var_pop,
// stddev_samp, stddev_pop (variance, stddev), bool_and, bool_or, median,
// quantile(x, q), arg_max(x, y), arg_min(x, y), first(x, t), last(x, t)
// (in a window first(x) and last(x), by its time column) and list(x)
// (aggregate step only). median, quantile, arg_*, first, last and list
// make an aggregate step exchange rows by key (they are not decomposable).
//
// Planning binds every expression to the schema flowing into its step, so an
// unknown column, a type error or a bad aggregate fails before anything runs,
// with the job file's name and line. The planner pushes the columns the
// steps need and the filters' comparisons with constants down into the
// Parquet source (projection and row-group pruning), and splits decomposable
// aggregates into a partial aggregate before the hash exchange and a final
// one after it. A window step needs the source's watermark to fire: over an
// unbounded source without one, planning fails (its windows would never
// fire); over a bounded one, it logs a warning (they fire at the end of
// input, all at once).
//
// # DAG jobs
//
// A job file with named sources (sources:) or a list of sinks (sinks:) is
// a DAG (Spec.IsDAG, dag.go): steps name what they read in inputs: (by
// default the step before, or the only source), a union step (union: {})
// merges inputs with the same columns, and each sink names in from: the
// step, source or window's late rows ("step.late") it reads (by default
// the last step). The first sink is the main one (Plan.Sink, OutputDir,
// Commit); the others' file sinks publish with checkpoints or when the job
// finishes, like a window's late_output. Nothing is pushed down into the
// sources of a DAG job. A cycle, an unknown name, a source nothing reads
// or a union of different columns fail planning with the YAML line.
//
//	sources:
//	  clicks: {parquet: {path: clicks/}}
//	  more: {parquet: {path: more/}}
//	steps:
//	  - name: all
//	    union: {}
//	    inputs: [clicks, more]
//	  - name: buys
//	    filter: "event_type = 'purchase'"
//	sinks:
//	  - {from: buys, file: {path: out/buys}}
//
// A recommend step (RecommendStep; package ml) trains an implicit-feedback
// recommender on the rows reaching it and sends each user's top-K items to
// the sink (user_id, item_id, rank, score, model_version), optionally
// exporting the model as versioned files. It runs behind a hash exchange
// on the user column and trains at the end of bounded input. With an
// update: mapping, and always over an unbounded source (with update:'s
// defaults), it learns incrementally instead: one subtask (the steps
// after it too) holding one model, updated every N interactions, interval
// and checkpoint barrier, exporting versions on checkpoints; it then emits
// its lists only at the end of bounded input (Plan.Recommend; package ml,
// "The streaming recommend operator"). Its hyperparameters and update:
// keys are checked when the file is parsed, errors naming their line.
//
// Checkpoint compatibility: FingerprintsOf hashes a job file into the job
// and source fingerprints a checkpoint records (fingerprint.go); a
// checkpoint restores only into a job with the same job fingerprint, and a
// changed source fingerprint restores the state with a fresh source (a
// backfill's savepoint continued by a Kafka job).
package job
