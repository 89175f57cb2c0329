package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// CreateTopic creates topic with the given partitions (replication factor
// 1) and topic configs (e.g. "retention.ms": "-1"), then waits, polling the
// metadata, until every partition has a leader, so that producing right
// after does not race the controller. A topic that exists already is an
// error.
func CreateTopic(ctx context.Context, brokers []string, topic string, partitions int, configs map[string]string) error {
	cl := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
	tc := kafkago.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}
	for k, v := range configs {
		tc.ConfigEntries = append(tc.ConfigEntries, kafkago.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	res, err := cl.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{tc}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("kafka: create topic %q (brokers %s): %w", topic, strings.Join(brokers, ","), err)
	}
	var last error
	for {
		md, err := cl.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
		switch {
		case err != nil:
			last = err
		case len(md.Topics) != 1 || md.Topics[0].Error != nil:
			last = fmt.Errorf("not in the metadata yet")
		case len(md.Topics[0].Partitions) != partitions:
			last = fmt.Errorf("%d of %d partitions visible", len(md.Topics[0].Partitions), partitions)
		default:
			last = nil
			for _, p := range md.Topics[0].Partitions {
				if p.Error != nil || p.Leader.Host == "" {
					last = fmt.Errorf("partition %d has no leader", p.ID)
				}
			}
			if last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: created topic %q: %w (last: %v)", topic, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DeleteTopic deletes topic; one that does not exist is not an error.
func DeleteTopic(ctx context.Context, brokers []string, topic string) error {
	cl := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
	res, err := cl.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil && !errors.Is(err, kafkago.UnknownTopicOrPartition) {
		return fmt.Errorf("kafka: delete topic %q (brokers %s): %w", topic, strings.Join(brokers, ","), err)
	}
	return nil
}
