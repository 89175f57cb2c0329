// Package hybrid is a source that reads a bounded Parquet backfill up to a
// boundary and then continues from Kafka at exactly the matching offsets:
// the columnar counterpart of Flink's HybridSource. A job that runs on it
// sees one stream with no gap and no overlap at the switch.
//
// # Boundaries
//
// Two kinds of boundary say where the files end and the topic begins:
//
//   - An offset map (topic -> partition -> next offset), recorded when the
//     backfill was exported from the topic: every record before those
//     offsets is in the files, every record from them on is read from
//     Kafka. Nothing is filtered.
//   - An event time T over an event-time column: rows with event time < T
//     are taken from the files (row groups that cannot hold any are pruned)
//     and rows with event time >= T from Kafka, starting in each partition
//     at the first offset whose message timestamp is >= T - TimestampSkew.
//     When message timestamps are the records' event times (as written by
//     `riffle produce` or sinks/kafka with a timestamp column), the earliest
//     such offset precedes every record with event time >= T, so the switch
//     is exact with TimestampSkew = 0; a positive skew covers producers
//     whose clocks differ from the event times by at most that much.
//
// # Schemas
//
// The Parquet projection and the Kafka declared fields (plus metadata
// columns, if any) must produce the same schema: same names, same types, in
// the same order. New checks it and names the first difference.
//
// # Subtasks and checkpoints
//
// Each subtask reads its share of the row groups, then switches to its
// share of the partitions: subtasks switch independently. A reader's
// snapshot holds both phases' positions (the Parquet work left, empty once
// switched, and the Kafka offsets once switched); on restore, partitions of
// subtasks that had not switched yet start at the boundary, so a restore at
// any point, with any parallelism, resumes with no gap and no duplicate.
// Watermarks: in the Parquet phase, the Parquet reader's (files whose row
// groups are in event-time order give progress, so windows fire during the
// backfill instead of piling up in state); then the Kafka phase's. They
// never go back: the runtime forwards only increases.
package hybrid
