// Package kafka is riffle's Kafka sink and producer: it writes Arrow record
// batches to a topic as JSON messages, one flat object per row.
//
// # Encoding
//
// Every row becomes one JSON object, encoded by internal/arrowtext exactly
// as the file sink writes a JSONL row (its package doc states the format):
// members named after the columns in schema order; floats in their
// shortest exact form (integral ones with ".0"), NaN and infinities as
// null; timestamps as ISO 8601 text with the unit's fraction digits, a
// zoned one as its UTC instant with "Z" (riffle's timestamp[ms, UTC]:
// "2026-01-02T03:04:05.678Z"); binaries base64; decimals as numbers with
// their exact value; dictionaries as their values; lists as arrays and
// structs as objects.
//
// # Sink
//
// New checks the options and that the topic exists (`kafka: topic "x" does
// not exist (brokers ...)`). Sink is an arrowexec.Spec with no output;
// Schema checks the key and timestamp columns at plan time. Each subtask
// owns one kafka-go Writer (RequiredAcks all, batched per partition by
// BatchSize/BatchBytes/BatchTimeout). Process encodes the batch (borrowed,
// never retained) and writes it synchronously: when Process returns, every
// row of the batch is acknowledged by all in-sync replicas, so a completed
// checkpoint implies that everything before it was delivered (at least
// once; a restart after a failure may write rows again). kafka-go retries a
// failed batch up to MaxAttempts; the messages it still could not deliver
// (a broker restarting, a leader moving) are sent again with backoff, each
// retry logged at warn level, until Options.RetryTimeout (default 5m);
// then the delivery error fails the job, as `kafka: topic "x": n of m
// messages not delivered (dial failed 12 times over 5m0s, brokers ...):
// <cause>`. Authentication failures, a deleted topic and permanent Kafka
// errors fail at once.
//
// With KeyColumn, messages are keyed by that column (strings and binaries
// as their bytes, numbers as decimal text; a null, also a null dictionary
// value, is a Kafka null key, unlike an empty string) and partitioned
// with murmur2 like the Java client, so equal keys land in one partition
// in order as long as one subtask writes each key: feed a parallel sink
// through Node.HashBy(key) (or run it with parallelism 1). Without a key
// column messages are spread round robin. TimestampColumn stamps each
// message with an event-time column (the producer's clock otherwise).
//
// # Exactly once (Options.Delivery ExactlyOnce)
//
// In a job with checkpoints, an exactly-once sink writes with franz-go's
// transactional producer (kafka-go has no transactions; it keeps serving
// the at-least-once path). Each subtask owns a small pool of producers
// (TransactionPool, default 4) with transactional ids
// "<TransactionalIDPrefix>-<node>-<subtask>-<slot>". The rows received
// between two barriers are written in one transaction, synchronously as in
// at-least-once mode; at barrier n the transaction is left open
// (pre-committed) and the snapshot records its id, producer id and epoch;
// the next rows go to a transaction of another slot. When checkpoint n
// completes (NotifyCheckpointComplete) the transactions pre-committed at
// barriers up to n are committed, oldest first: a checkpoint covers the
// rows of earlier checkpoints that failed. Rows therefore become visible to
// read_committed consumers only when the checkpoint after them completes:
// end-to-end latency is bounded below by the checkpoint interval.
//
// A restore first commits the transactions its checkpoint lists, with an
// EndTxn request at their recorded producer id and epoch (what their own
// producer would send; they belong to a completed checkpoint), for every
// previous subtask s with s % Parallelism == Subtask, then starts its own
// producers. Starting a producer (InitProducerID) bumps the epoch of its
// id: the broker aborts the transaction the previous owner left open and
// fences it (its next write fails with ErrFenced, naming the id). The ids
// of previous subtasks that no longer exist (a restore at a lower
// parallelism) are fenced the same way, and so are ids of this sink that
// ListTransactions reports open and the checkpoint does not know (a run
// that crashed before its first checkpoint): a crashed run's lingering
// transactions never block read_committed consumers of the restarted job
// for longer than its start.
//
// What is guaranteed: every row is committed once, provided the job is
// restarted within TransactionTimeout of the crash. If the broker aborted
// a pre-committed transaction first (its timeout passed), its rows are
// lost; the restore logs that the transaction was already ended (the
// broker cannot tell that apart from a transaction committed before the
// crash, which is the usual case). CheckCheckpointInterval (called at plan
// time) requires TransactionTimeout >= 2x the checkpoint interval, and the
// broker refuses a timeout above its transaction.max.timeout.ms (15m by
// default, the default here). When the input ends (a bounded job, not a
// stop-with-savepoint), Finish commits everything still open: a crash
// between that and the job's end replays the rows after the last
// checkpoint. Two jobs writing at once with the same prefix fence each
// other: give them different TransactionalIDPrefix values.
//
// # Produce
//
// Produce replays batches from an iterator into a topic at a target rate
// (the `riffle produce` command feeds it Parquet rows). Pacing is a token
// bucket anchored at the start: message k is never sent before
// start + k/Rate, and tokens left by a slow write are used by the next, so
// the rate is accurate over seconds regardless of write latency. It
// returns ProduceStats (messages, bytes, elapsed) and stops at the first
// delivery error (after the same retries as the sink), iterator error, or
// when the context ends.
package kafka
