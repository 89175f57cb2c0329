// Package kafkatest gives riffle's tests a real Apache Kafka broker.
//
// The broker is not started from Go: scripts/kafka/start.sh fetches Kafka
// from Maven Central (scripts/kafka/fetch.sh), starts a single-node KRaft
// broker on 127.0.0.1 and prints the address for the shell:
//
//	eval "$(scripts/kafka/start.sh)"   # exports RIFFLE_KAFKA_BROKERS
//	go test ./...
//	scripts/kafka/stop.sh
//
// Tests call Brokers(t) to get the address. Without RIFFLE_KAFKA_BROKERS the
// test is skipped (so `go test ./...` works on a laptop without Java), unless
// RIFFLE_REQUIRE_KAFKA=1, which turns the skip into a failure: CI sets it so
// that a broker that failed to start cannot silently skip the Kafka tests.
//
// A test that stops or restarts the broker starts one of its own with
// StartBroker (own state directory, same scripts, jars from
// KAFKA_CACHE_DIR; skipped without java or jars unless RIFFLE_REQUIRE_KAFKA=1)
// and uses Broker.Stop and Broker.Start, which keep its ports and data:
// never the shared broker, which other packages' tests use meanwhile.
//
// CreateTopic makes a uniquely named topic (deleted when the test ends) and
// waits until its partitions have leaders; Produce writes messages to exact
// partitions. Everything goes through github.com/segmentio/kafka-go, and this
// package's own test checks the parts of kafka-go riffle relies on (topic
// admin, produce, consumer-group fetch and commit, offsets by timestamp)
// against the real broker; see scripts/kafka/README.md for the version choice.
package kafkatest
