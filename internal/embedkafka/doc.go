// Package embedkafka runs an in-process, in-memory Kafka-compatible broker
// (github.com/twmb/franz-go/pkg/kfake) for riffle's quickstart, when no
// brokers are given: Start seeds the topics and returns a bootstrap address
// that segmentio/kafka-go (and so riffle's Kafka source and sink) talks to
// like a real broker.
//
// The package test checks, against the embedded broker, the kafka-go calls
// riffle relies on: Writer produce (acks all, explicit partitions and
// timestamps), Conn fetch (DialLeader, Seek, ReadBatchWith, ReadOffsets,
// ReadOffset by time), Client Metadata, ListOffsets (first, last, by
// timestamp), CreateTopics and DeleteTopics, consumer-group offset
// commit/fetch through Client (generation -1, no member) and through a
// Reader with GroupID (join, sync, heartbeat, commit), and the riffle
// source and sink end to end, including a broker that goes away. All of them work. One difference from
// a real broker was found: ListOffsets by timestamp returns the right
// offset but echoes the requested timestamp instead of the found record's
// (kafka-go's PartitionOffsets.Offsets then maps the offset to the request
// time); riffle only uses the offset, so it is not affected.
//
// StartCluster returns the kfake cluster itself, and FailRequests makes it
// close the connection of every request of one kind (fetch, produce) until
// healed: fault injection for the source's and sink's retry tests. An empty
// long-poll fetch is answered after the fetch's MaxWait, as a real broker
// does, so an idle job costs as little against it (docs/BENCHMARKS.md).
//
// kfake is a test broker: nothing is persisted, there is no replication,
// and its performance is not representative. Use it for demos and tests,
// never for data that matters.
package embedkafka
