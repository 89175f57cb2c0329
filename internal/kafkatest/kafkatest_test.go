package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// These tests run against the broker in RIFFLE_KAFKA_BROKERS (see doc.go):
// they are the evidence, in CI, that kafka-go v0.4.51 works with the Kafka
// version scripts/kafka/fetch.sh installs.

// legacyConnVersions are the protocol versions kafka-go v0.4.51 hard-codes
// in its Conn-based code (Reader with GroupID, Conn.ReadOffset...). The
// Client/Writer code negotiates versions instead. Kafka 4.0 removed old
// versions (KIP-896), so each one must still be inside the broker's range.
var legacyConnVersions = []struct {
	key     int
	name    string
	version int
	usedBy  string
}{
	{1, "Fetch", 10, "Reader (negotiates v2/v5/v10, takes the highest)"},
	{2, "ListOffsets", 1, "Conn.ReadOffset/ReadFirstOffset/ReadLastOffset"},
	{8, "OffsetCommit", 2, "Reader.CommitMessages with GroupID"},
	{9, "OffsetFetch", 1, "Reader with GroupID (start offsets)"},
	{10, "FindCoordinator", 0, "Reader with GroupID"},
	{11, "JoinGroup", 2, "Reader with GroupID (negotiates v1/v2)"},
	{12, "Heartbeat", 0, "Reader with GroupID"},
	{13, "LeaveGroup", 0, "Reader.Close with GroupID"},
	{14, "SyncGroup", 0, "Reader with GroupID"},
	{19, "CreateTopics", 2, "Conn.CreateTopics (negotiates v0/v1/v2)"},
	{20, "DeleteTopics", 1, "Conn.DeleteTopics (negotiates v0/v1)"},
}

func TestBrokerAPIVersions(t *testing.T) {
	brokers := Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	res, err := Client(brokers).ApiVersions(ctx, &kafka.ApiVersionsRequest{})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	byKey := map[int]kafka.ApiVersionsResponseApiKey{}
	for _, k := range res.ApiKeys {
		byKey[k.ApiKey] = k
	}
	for _, want := range legacyConnVersions {
		got, ok := byKey[want.key]
		if !ok {
			t.Errorf("%s (key %d) not offered by the broker; kafka-go %s needs v%d", want.name, want.key, want.usedBy, want.version)
			continue
		}
		t.Logf("%-16s broker v%d-v%d, kafka-go legacy Conn uses v%d (%s)", want.name, got.MinVersion, got.MaxVersion, want.version, want.usedBy)
		if want.version < got.MinVersion || want.version > got.MaxVersion {
			t.Errorf("%s: kafka-go uses v%d, broker supports v%d-v%d", want.name, want.version, got.MinVersion, got.MaxVersion)
		}
	}
}

// TestKafkaGoCompat exercises what riffle's Kafka source/sink use: topic
// admin, produce with explicit timestamps, consumer-group fetch + commit,
// resume from committed offsets, and offsets by timestamp.
func TestKafkaGoCompat(t *testing.T) {
	brokers := Brokers(t)
	const parts, perPart = 2, 5
	topic := CreateTopic(t, brokers, "compat", parts)

	// Timestamps one second apart per partition, in the past (brokers reject
	// timestamps too far in the future), whole milliseconds.
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	var msgs []kafka.Message
	for p := 0; p < parts; p++ {
		for i := 0; i < perPart; i++ {
			msgs = append(msgs, kafka.Message{
				Partition: p,
				Key:       []byte(fmt.Sprintf("k%d", i)),
				Value:     []byte(fmt.Sprintf("p%d-m%d", p, i)),
				Time:      base.Add(time.Duration(i) * time.Second),
				Headers:   []kafka.Header{{Key: "h", Value: []byte(strconv.Itoa(i))}},
			})
		}
	}
	Produce(t, brokers, topic, msgs)

	group := UniqueName("compat-group")

	t.Run("ConsumeGroupAndCommit", func(t *testing.T) {
		got := consumeGroup(t, brokers, topic, group, parts*perPart)
		for p := 0; p < parts; p++ {
			vals := got[p]
			if len(vals) != perPart {
				t.Fatalf("partition %d: got %d messages %v, want %d", p, len(vals), vals, perPart)
			}
			for i, m := range vals {
				want := fmt.Sprintf("p%d-m%d", p, i)
				if string(m.Value) != want || m.Offset != int64(i) || string(m.Key) != fmt.Sprintf("k%d", i) {
					t.Errorf("partition %d #%d: got offset %d key %q value %q, want offset %d value %q", p, i, m.Offset, m.Key, m.Value, i, want)
				}
				if !m.Time.Equal(base.Add(time.Duration(i) * time.Second)) {
					t.Errorf("partition %d #%d: timestamp %v, want %v", p, i, m.Time, base.Add(time.Duration(i)*time.Second))
				}
				if len(m.Headers) != 1 || m.Headers[0].Key != "h" || string(m.Headers[0].Value) != strconv.Itoa(i) {
					t.Errorf("partition %d #%d: headers %v", p, i, m.Headers)
				}
			}
		}
	})

	t.Run("CommittedOffsets", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		res, err := Client(brokers).OffsetFetch(ctx, &kafka.OffsetFetchRequest{
			GroupID: group, Topics: map[string][]int{topic: {0, 1}},
		})
		if err == nil {
			err = res.Error
		}
		if err != nil {
			t.Fatalf("OffsetFetch: %v", err)
		}
		ps := res.Topics[topic]
		if len(ps) != parts {
			t.Fatalf("OffsetFetch returned %d partitions: %+v", len(ps), ps)
		}
		for _, p := range ps {
			if p.Error != nil || p.CommittedOffset != perPart {
				t.Errorf("partition %d: committed %d (err %v), want %d", p.Partition, p.CommittedOffset, p.Error, perPart)
			}
		}
	})

	t.Run("ResumeFromCommitted", func(t *testing.T) {
		Produce(t, brokers, topic, []kafka.Message{{Partition: 1, Value: []byte("late")}})
		got := consumeGroup(t, brokers, topic, group, 1)
		if len(got[1]) != 1 || string(got[1][0].Value) != "late" || got[1][0].Offset != perPart {
			t.Fatalf("after restart the group read %v, want only p1 offset %d \"late\"", got, perPart)
		}
	})

	t.Run("ListOffsetsByTime", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		res, err := Client(brokers).ListOffsets(ctx, &kafka.ListOffsetsRequest{
			Topics: map[string][]kafka.OffsetRequest{topic: {
				kafka.TimeOffsetOf(0, base.Add(2*time.Second)),
				kafka.TimeOffsetOf(1, base.Add(2500*time.Millisecond)),
			}},
		})
		if err != nil {
			t.Fatalf("ListOffsets: %v", err)
		}
		want := map[int]int64{0: 2, 1: 3} // first offset with timestamp >= the given time
		ps := res.Topics[topic]
		if len(ps) != parts {
			t.Fatalf("ListOffsets returned %+v", res.Topics)
		}
		for _, p := range ps {
			if p.Error != nil {
				t.Errorf("partition %d: %v", p.Partition, p.Error)
				continue
			}
			var offs []int64
			for o := range p.Offsets {
				offs = append(offs, o)
			}
			if len(offs) != 1 || offs[0] != want[p.Partition] {
				t.Errorf("partition %d: offsets by time %v, want [%d]", p.Partition, p.Offsets, want[p.Partition])
			}
		}

		// Earliest / latest through the same API.
		res, err = Client(brokers).ListOffsets(ctx, &kafka.ListOffsetsRequest{
			Topics: map[string][]kafka.OffsetRequest{topic: {kafka.FirstOffsetOf(1), kafka.LastOffsetOf(1)}},
		})
		if err != nil {
			t.Fatalf("ListOffsets first/last: %v", err)
		}
		if ps := res.Topics[topic]; len(ps) != 1 || ps[0].FirstOffset != 0 || ps[0].LastOffset != perPart+1 {
			t.Errorf("first/last offsets of p1: %+v, want 0/%d", res.Topics[topic], perPart+1)
		}
	})

	t.Run("ConnReadOffset", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		conn, err := kafka.DialLeader(ctx, "tcp", splitBrokers(brokers)[0], topic, 0)
		if err != nil {
			t.Fatalf("DialLeader: %v", err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(opTimeout))
		off, err := conn.ReadOffset(base.Add(3 * time.Second))
		if err != nil || off != 3 {
			t.Errorf("Conn.ReadOffset(base+3s) = %d, %v; want 3", off, err)
		}
		first, last, err := conn.ReadOffsets()
		if err != nil || first != 0 || last != perPart {
			t.Errorf("Conn.ReadOffsets = %d, %d, %v; want 0, %d", first, last, err, perPart)
		}
		// Reading a batch directly from the partition leader.
		if _, err := conn.Seek(1, kafka.SeekAbsolute); err != nil {
			t.Fatalf("Seek: %v", err)
		}
		m, err := conn.ReadMessage(1 << 20)
		if err != nil || string(m.Value) != "p0-m1" {
			t.Errorf("Conn.ReadMessage after Seek(1) = %q, %v", m.Value, err)
		}
	})
}

// consumeGroup reads n messages with a consumer-group Reader, commits them
// synchronously, closes the Reader (leaving the group) and returns them by
// partition in offset order.
func consumeGroup(t *testing.T, brokers, topic, group string, n int) map[int][]kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           splitBrokers(brokers),
		GroupID:           group,
		Topic:             topic,
		StartOffset:       kafka.FirstOffset,
		MinBytes:          1,
		MaxBytes:          1 << 20,
		MaxWait:           200 * time.Millisecond,
		CommitInterval:    0, // synchronous commits
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  200 * time.Millisecond,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    200 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...interface{}) {
			t.Logf("kafka-go reader error: "+f, a...)
		}),
	})
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("Reader.Close: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := map[int][]kafka.Message{}
	for i := 0; i < n; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("FetchMessage %d/%d: %v (stats %+v)", i+1, n, err, r.Stats())
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("CommitMessages: %v", err)
		}
		out[m.Partition] = append(out[m.Partition], m)
	}
	for p := range out {
		sort.Slice(out[p], func(i, j int) bool { return out[p][i].Offset < out[p][j].Offset })
	}
	return out
}

// TestConnCreateDeleteTopics covers the older Conn admin path: CreateTopics
// and DeleteTopics sent to the controller returned by Metadata.
func TestConnCreateDeleteTopics(t *testing.T) {
	brokers := Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", splitBrokers(brokers)[0])
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatalf("Controller: %v", err)
	}
	cc, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		t.Fatalf("Dial controller %v: %v", ctrl, err)
	}
	defer cc.Close()
	_ = cc.SetDeadline(time.Now().Add(opTimeout))

	topic := UniqueName("conn-admin")
	if err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatalf("Conn.CreateTopics: %v", err)
	}
	if err := waitForLeaders(ctx, Client(brokers), topic, 3); err != nil {
		t.Fatalf("topic from Conn.CreateTopics: %v", err)
	}
	parts, err := conn.ReadPartitions(topic)
	if err != nil || len(parts) != 3 {
		t.Errorf("Conn.ReadPartitions = %d partitions, %v; want 3", len(parts), err)
	}
	if err := cc.DeleteTopics(topic); err != nil {
		t.Fatalf("Conn.DeleteTopics: %v", err)
	}
}

// TestAutoCreateDisabled checks the broker config start.sh writes: producing
// to a missing topic must fail instead of creating it.
func TestAutoCreateDisabled(t *testing.T) {
	brokers := Brokers(t)
	w := &kafka.Writer{Addr: kafka.TCP(splitBrokers(brokers)...), Topic: UniqueName("missing"), MaxAttempts: 1, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := w.WriteMessages(ctx, kafka.Message{Value: []byte("x")})
	if err == nil {
		t.Fatal("producing to a missing topic succeeded; auto.create.topics.enable should be false")
	}
	if !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Logf("producing to a missing topic failed as expected: %v", err)
	}
}

// fakeTB records Skipf/Fatalf instead of stopping the goroutine.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skipf(format string, a ...any)     { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any)    { f.failed = fmt.Sprintf(format, a...) }
func (f *fakeTB) Logf(format string, args ...any)   {}
func (f *fakeTB) Errorf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func TestBrokersEnv(t *testing.T) {
	// No t.Parallel: it changes the environment (t.Setenv).

	t.Setenv(EnvBrokers, " 127.0.0.1:1234 ")
	f := &fakeTB{}
	if got := Brokers(f); got != "127.0.0.1:1234" || f.skipped != "" || f.failed != "" {
		t.Errorf("with %s set: got %q skipped=%q failed=%q", EnvBrokers, got, f.skipped, f.failed)
	}

	t.Setenv(EnvBrokers, "")
	t.Setenv(EnvRequire, "")
	f = &fakeTB{}
	Brokers(f)
	if f.skipped == "" || f.failed != "" {
		t.Errorf("unset, not required: skipped=%q failed=%q; want a skip", f.skipped, f.failed)
	}

	t.Setenv(EnvRequire, "1")
	f = &fakeTB{}
	Brokers(f)
	if f.failed == "" || f.skipped != "" {
		t.Errorf("unset, required: skipped=%q failed=%q; want a failure", f.skipped, f.failed)
	}
}

func TestUniqueName(t *testing.T) {
	a, b := UniqueName("x/y z"), UniqueName("x/y z")
	if a == b {
		t.Errorf("UniqueName not unique: %q", a)
	}
	if want := "x_y_z-"; a[:len(want)] != want {
		t.Errorf("UniqueName(%q) = %q", "x/y z", a)
	}
}
