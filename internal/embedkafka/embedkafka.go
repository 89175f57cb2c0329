package embedkafka

import (
	"context"
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

// FailRequests makes c close the connection of every request of the given
// kind (kmsg.Fetch, kmsg.Produce, ...) before handling it, as a failing
// broker would, until heal is called; other requests keep working. failed
// counts the requests failed so far. For tests of retries.
func FailRequests(c *kfake.Cluster, key kmsg.Key) (failed func() int64, heal func()) {
	var healed atomic.Bool
	var n atomic.Int64
	c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
		if healed.Load() {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		n.Add(1)
		return nil, fmt.Errorf("embedkafka: injected %s failure", key.Name()), true
	})
	return n.Load, func() { healed.Store(true) }
}

// FailFetches is FailRequests of fetch requests.
func FailFetches(c *kfake.Cluster) (heal func()) {
	_, heal = FailRequests(c, kmsg.Fetch)
	return heal
}
