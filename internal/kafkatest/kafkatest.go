package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/riffle-dev/riffle/internal/kafkaaddr"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

const (
	// EnvBrokers holds the bootstrap address (host:port[,host:port...]) of the
	// broker to test against; scripts/kafka/start.sh prints an export of it.
	EnvBrokers = "RIFFLE_KAFKA_BROKERS"
	// EnvRequire, when "1", makes Brokers fail instead of skip if EnvBrokers
	// is unset.
	EnvRequire = "RIFFLE_REQUIRE_KAFKA"

	// opTimeout bounds every helper's round trips to the broker.
	opTimeout = 30 * time.Second
)

// Brokers returns the broker address from RIFFLE_KAFKA_BROKERS. When it is
// unset the test is skipped, or fails if RIFFLE_REQUIRE_KAFKA=1.
func Brokers(t testing.TB) string {
	t.Helper()
	if b := strings.TrimSpace(os.Getenv(EnvBrokers)); b != "" {
		return b
	}
	const how = `start one with: eval "$(scripts/kafka/start.sh)" (stop: scripts/kafka/stop.sh)`
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("kafkatest: %s=1 but %s is not set; the Kafka broker did not start? %s", EnvRequire, EnvBrokers, how)
		return ""
	}
	t.Skipf("kafkatest: %s not set, skipping test that needs a real Kafka broker; %s", EnvBrokers, how)
	return ""
}

// Client returns a kafka-go Client for the brokers.
func Client(brokers string) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(splitBrokers(brokers)...), Timeout: opTimeout}
}

func splitBrokers(brokers string) []string { return kafkaaddr.Split(brokers) }

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// UniqueName returns prefix plus a random suffix, made safe as a Kafka topic
// or group name. Use it for group ids so reruns never see old offsets.
func UniqueName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	p := unsafeChars.ReplaceAllString(prefix, "_")
	if len(p) > 180 {
		p = p[:180]
	}
	return p + "-" + hex.EncodeToString(b[:])
}

// CreateTopic creates a topic named after name with a random suffix (so
// tests and reruns never collide) and the given partition count
// (replication factor 1), waits until every partition has a leader, and
// registers a cleanup that deletes it. It returns the topic's actual name.
func CreateTopic(t testing.TB, brokers, name string, partitions int) string {
	t.Helper()
	if partitions < 1 {
		t.Fatalf("kafkatest.CreateTopic: partitions = %d, want >= 1", partitions)
	}
	topic := UniqueName(name)
	c := Client(brokers)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()

	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		// Test data carries old event-time timestamps (e.g. 2025): with
		// the default time-based retention the broker would delete it
		// under a running test.
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "-1"}}}},
	})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatalf("kafkatest.CreateTopic %q on %s: %v", topic, brokers, err)
	}
	t.Cleanup(func() { deleteTopic(t, brokers, topic) })

	if err := waitForLeaders(ctx, c, topic, partitions); err != nil {
		t.Fatalf("kafkatest.CreateTopic %q: %v", topic, err)
	}
	return topic
}

// waitForLeaders polls metadata until the topic has n partitions, each with
// a leader, so that producing right after creation does not race the
// controller.
func waitForLeaders(ctx context.Context, c *kafka.Client, topic string, n int) error {
	var last error
	for {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		switch {
		case err != nil:
			last = err
		case len(md.Topics) != 1:
			last = fmt.Errorf("metadata returned %d topics", len(md.Topics))
		case md.Topics[0].Error != nil:
			last = md.Topics[0].Error
		case len(md.Topics[0].Partitions) != n:
			last = fmt.Errorf("%d of %d partitions visible", len(md.Topics[0].Partitions), n)
		default:
			last = nil
			for _, p := range md.Topics[0].Partitions {
				if p.Error != nil {
					last = fmt.Errorf("partition %d: %w", p.ID, p.Error)
				} else if p.Leader.ID < 0 || p.Leader.Host == "" {
					last = fmt.Errorf("partition %d has no leader", p.ID)
				}
			}
			if last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("partitions not ready: %v (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func deleteTopic(t testing.TB, brokers, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	res, err := Client(brokers).DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Errorf("kafkatest: deleting topic %q: %v", topic, err)
	}
}

// DeleteTopic deletes topic and waits until the broker's metadata no longer
// lists it. DeleteTopics returns once the controller has recorded the
// deletion; the broker applies it a moment later and until then still takes
// writes for the topic, so a test that needs the topic gone must wait.
func DeleteTopic(t testing.TB, brokers, topic string) {
	t.Helper()
	deleteTopic(t, brokers, topic)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	c := Client(brokers)
	for {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && (len(md.Topics) == 0 || errors.Is(md.Topics[0].Error, kafka.UnknownTopicOrPartition)) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kafkatest: topic %q still listed after deletion: %v", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// explicitPartition sends every message to its Message.Partition.
type explicitPartition struct{}

func (explicitPartition) Balance(msg kafka.Message, partitions ...int) int { return msg.Partition }

// Produce writes msgs to topic synchronously with acks=all, each to the
// partition in its Partition field (the zero value means partition 0), in
// order. Message.Time, if set, becomes the record's timestamp; Topic must be
// empty or equal to topic. It fails the test on any error.
func Produce(t testing.TB, brokers, topic string, msgs []kafka.Message) {
	t.Helper()
	if len(msgs) == 0 {
		return
	}
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		if m.Topic != "" && m.Topic != topic {
			t.Fatalf("kafkatest.Produce: message %d has Topic %q, want %q or empty", i, m.Topic, topic)
		}
		m.Topic = ""
		out[i] = m
	}
	w := &kafka.Writer{
		Addr:                   kafka.TCP(splitBrokers(brokers)...),
		Topic:                  topic,
		Balancer:               explicitPartition{},
		RequiredAcks:           kafka.RequireAll,
		BatchSize:              len(out),
		BatchTimeout:           10 * time.Millisecond,
		MaxAttempts:            5,
		AllowAutoTopicCreation: false,
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := w.WriteMessages(ctx, out...); err != nil {
		t.Fatalf("kafkatest.Produce %d messages to %q: %v", len(out), topic, err)
	}
}
