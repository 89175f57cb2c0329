// Package kafka is riffle's Kafka source: it reads one or more topics as
// Arrow record batches, for continuous (unbounded) jobs and, with
// Options.Bounded, as a batch input.
//
// # Partitions and subtasks
//
// New validates the options, checks that every topic exists (`kafka: topic
// "x" does not exist (brokers 127.0.0.1:9092)`) and lists the partitions,
// sorted by (topic, partition). Partition i is read by subtask
// i % parallelism: assignment is static and deterministic. riffle never
// joins a consumer group and never rebalances; positions are riffle's own
// and live in checkpoints (as in Flink). Before the job runs, unreachable
// brokers are retried with exponential backoff (Options.Retries,
// RetryBackoff) before New fails with an error naming the step and what
// failed in it: `kafka: metadata request: dial failed after 8 attempts
// (brokers 127.0.0.1:1): ...`.
//
// # Where reading starts
//
// A restored subtask (Task.Restore) starts every partition it owns at the
// position in the checkpoint. Task.Restore.Operator holds the blobs of every
// subtask of the previous run, so a job can resume with a different
// parallelism: each new subtask takes the partitions it owns now from the
// union. Partitions the checkpoint does not know start at the earliest
// offset. Without restored state, Options.Start decides: earliest, latest
// (the end when New ran), timestamp (the first offset at or after
// StartTime) or committed (the offsets committed by Options.GroupID;
// earliest where there are none, or where the committed offset was deleted
// by retention).
//
// # Fetching and batching
//
// Each reader runs one fetch goroutine per partition (by default a
// franz-go consumer at read_committed, see Transactions; with isolation
// none a kafka-go Conn to the partition leader, Fetch with MinBytes 1,
// FetchMaxBytes, FetchMaxWait), feeding a bounded channel. A fetch that
// finds nothing within FetchMaxWait is a quiet partition, not a failure:
// the connection is kept and the watermark's idle timeout takes over. Failures (dial, leader lookup, fetch: a broker restarting, a
// leader moving) reconnect with backoff, each retry logged at warn level
// (topic, partition, offset, attempt, step, error), for as long as
// Options.RetryTimeout (default 5m); then the reader fails with a
// *FetchError naming the topic, partition, offset, the step that failed,
// the attempts and the brokers. Authentication failures, a deleted topic
// and an offset deleted by retention fail at once. If the error comes in
// the middle of a batch, the rows decoded before it are returned first and
// the error with the next call, so positions and output agree. Next
// decodes the fetched
// messages on the subtask's goroutine into Arrow builders allocated from
// Task.Mem and returns a batch as soon as MaxBatchRows rows are decoded or
// MaxBatchDelay passed since the call (with at least one row). If nothing
// arrived within MaxBatchDelay it returns (nil, nil), so the runtime can
// inject barriers and watermarks. A batch may hold rows of several
// partitions; rows of one partition are in offset order.
//
// In bounded mode New records every partition's end offset (its high
// watermark at that time); a reader returns io.EOF once all its partitions
// reached their end. Messages produced later are not read.
//
// # Formats
//
// FormatJSON decodes each value as one flat JSON object with a
// hand-written scanner (internal/jsonscan; coercions in internal/coerce,
// both shared with the JSONL file source) that validates the full JSON grammar (as
// encoding/json does; nested values of undeclared members are validated and
// skipped), unescapes strings without allocating and writes straight into
// typed builders. Keys match declared field names exactly; the last of
// duplicate keys wins; invalid UTF-8 in strings becomes U+FFFD. Coercions:
//
//	int64, int32  integers; numbers with an integral value (12.0, 1e3);
//	              strings holding a decimal integer ("12", " -3 ")
//	float64       numbers (out of range: ±Inf); strings holding a number
//	string        strings; numbers as their literal text; true/false
//	bool          true/false; the strings "true"/"false"
//	timestamp     numbers as epoch milliseconds (fractions floored); strings
//	              holding epoch milliseconds or RFC 3339 (any offset)
//	binary        strings (their UTF-8 bytes)
//
// null and missing members are null; for Required fields they make the
// message bad. FormatCSV decodes each value as one CSV record (RFC 4180
// quoting, ',' separator, optional trailing newline) whose columns are the
// declared fields in order; values are coerced as JSON strings are, and an
// empty unquoted value is null. FormatRaw keeps the value in a binary
// column "value". Metadata columns (Options.Metadata) follow: _key
// (binary), _timestamp (timestamp[ms, UTC]), _partition (int32), _offset
// (int64), _topic (string).
//
// # Bad messages
//
// A message that is not valid JSON or CSV, has a value of the wrong type or
// misses a required field is handled per Options.OnError: fail (the default)
// fails the job with a *MessageError, `kafka: topic "t" partition 3 offset
// 17: <reason>`; skip drops it and counts Stats.Skipped; dead-letter appends
// a JSON line {topic, partition, offset, reason, class, payload}
// (class: malformed, missing_field or bad_value; payload_base64
// instead of payload when the value is not valid UTF-8) to
// Options.DeadLetterPath and counts Stats.DeadLettered (internal/deadletter,
// shared with the CSV and JSONL sources). The file is shared
// by the source's readers, buffered, and flushed and fsynced at every
// checkpoint (before the snapshot is taken) and at close. Its lines are
// at least once: after a restore, the messages between the checkpoint and
// the failure are read again, so a line may repeat (same topic, partition
// and offset). A bad message is never half-decoded: a message adds one row
// to every column or none.
//
// # Checkpoints and offsets
//
// Reader implements arrowexec.Checkpointer: SnapshotState returns
// {topic: {partition: next offset}} as JSON for the partitions it owns,
// counting exactly the messages consumed by the batches it returned (a
// fetched message not yet returned is read again after a restore). So a
// restore resumes with no gap and no duplicate. Reader implements
// arrowexec.CheckpointListener: when Options.GroupID is set, a completed
// checkpoint commits its positions to the group (for monitoring and
// StartCommitted); a failed commit is logged and counted
// (Stats.CommitErrors), not fatal, since the checkpoint is the truth.
//
// # Transactions (Options.Isolation)
//
// By default (read_committed) each partition is fetched by a franz-go
// consumer (txnfetch.go): transaction markers only advance the position,
// the records of aborted transactions are dropped, reads go up to the last
// stable offset, and a bounded source ends at the last stable offset New
// saw (ListOffsets at that isolation level), so an exactly-once sink's
// output (sinks/kafka) reads as it is. read_uncommitted (YAML isolation:
// read_uncommitted) also reads open and aborted transactions. Isolation
// none fetches over kafka-go connections instead, which know nothing of
// transactions (a marker comes back as a message): for topics no
// transactional producer writes. Positions, checkpoints and batches are
// the same either way. franz-go retries failures with its own backoff;
// hooks on its connections and fetches (txnfetch.go) give the same status,
// warn logs and RetryTimeout as the kafka-go path, and the same
// *FetchError when the retries give up.
//
// # Event time
//
// With Options.Watermark, the reader tracks a watermark per partition
// (split = partition's index in Source.Partitions) through
// arrowexec.Watermarks and implements arrowexec.WatermarkSource: the
// subtask's watermark is the minimum over its partitions; a partition that
// delivered nothing for IdleTimeout is idle and left out, and a reader
// whose partitions are all idle (or that owns none, when unbounded) reports
// itself idle.
//
// # Status
//
// Source.Status returns, per partition and safe to call while the job
// runs: the reader's position, the broker's high watermark at the last
// fetch, the lag between them, the time of the last message, whether the
// partition is idle (watermark IdleTimeout) and, while a failure is being
// retried, the last error.
//
// # Memory and ownership
//
// Next returns a batch the caller owns, allocated from Task.Mem; fetched
// messages live on the Go heap, never in a batch. Close stops the fetchers
// and releases the builders; it is safe to call twice.
//
// # Errors
//
// Every error starts with "kafka: " and names the topic, partition and
// offset when it concerns one.
package kafka
