package embedkafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Start starts an in-process Kafka-compatible broker (one kfake node on a
// random loopback port) with the given topics and partition counts, and
// returns its bootstrap address for kafka-go ("127.0.0.1:PORT"). The broker
// keeps everything in memory. stop shuts it down; it is safe to call more
// than once, and it also runs when ctx ends.
func Start(ctx context.Context, topics map[string]int) (brokers string, stop func(), err error) {
	c, stop, err := StartCluster(ctx, topics)
	if err != nil {
		return "", nil, err
	}
	return strings.Join(c.ListenAddrs(), ","), stop, nil
}

// StartCluster is Start returning the kfake cluster itself, for tests that
// inject failures (Cluster.ControlKey).
func StartCluster(ctx context.Context, topics map[string]int) (c *kfake.Cluster, stop func(), err error) {
	byCount := map[int][]string{}
	for t, n := range topics {
		if t == "" || n < 1 {
			return nil, nil, fmt.Errorf("embedkafka: topic %q with %d partitions", t, n)
		}
		byCount[n] = append(byCount[n], t)
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(0), kfake.ClusterID("riffle-embedded")}
	counts := make([]int, 0, len(byCount))
	for n := range byCount {
		counts = append(counts, n)
	}
	sort.Ints(counts)
	for _, n := range counts {
		ts := byCount[n]
		sort.Strings(ts)
		opts = append(opts, kfake.SeedTopics(int32(n), ts...))
	}
	c, err = kfake.NewCluster(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("embedkafka: starting broker: %w", err)
	}
	var once sync.Once
	done := make(chan struct{})
	stop = func() {
		once.Do(func() {
			close(done)
			c.Close()
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	return c, stop, nil
}

// FailFetches makes c close the connection of every fetch request, as a
// broker failing under a consumer would, until heal is called; produce and
// metadata requests keep working. For tests of a reader's retries.
func FailFetches(c *kfake.Cluster) (heal func()) {
	var healed atomic.Bool
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		if healed.Load() {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		return nil, errors.New("embedkafka: injected fetch failure"), true
	})
	return func() { healed.Store(true) }
}
