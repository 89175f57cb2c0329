package kafka

import (
	"context"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/internal/kafkatest"
)

// TestCreateDeleteTopic: CreateTopic returns with every partition led and
// the configs set (the broker reports them), a second create is an error,
// and DeleteTopic removes the topic and accepts an unknown one.
func TestCreateDeleteTopic(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := kafkatest.UniqueName("create-topic")
	bl := []string{brokers}
	if err := CreateTopic(ctx, bl, topic, 3, map[string]string{"retention.ms": "-1"}); err != nil {
		t.Fatal(err)
	}
	cl := &kafkago.Client{Addr: kafkago.TCP(brokers)}
	md, err := cl.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 3 {
		t.Fatalf("metadata after CreateTopic: %v %+v", err, md)
	}
	for _, p := range md.Topics[0].Partitions {
		if p.Leader.Host == "" {
			t.Fatalf("partition %d without a leader", p.ID)
		}
	}
	dc, err := cl.DescribeConfigs(ctx, &kafkago.DescribeConfigsRequest{Resources: []kafkago.DescribeConfigRequestResource{{
		ResourceType: kafkago.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"}}}})
	if err != nil || len(dc.Resources) != 1 || len(dc.Resources[0].ConfigEntries) != 1 || dc.Resources[0].ConfigEntries[0].ConfigValue != "-1" {
		t.Fatalf("retention.ms of the topic: %v %+v", err, dc)
	}
	if err := CreateTopic(ctx, bl, topic, 3, nil); err == nil {
		t.Fatal("creating an existing topic succeeded")
	}
	if err := DeleteTopic(ctx, bl, topic); err != nil {
		t.Fatal(err)
	}
	if err := DeleteTopic(ctx, bl, kafkatest.UniqueName("never-created")); err != nil {
		t.Fatalf("deleting an unknown topic: %v", err)
	}
}
