package kafkaretry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cases := []struct {
		err       error
		retryable bool
		kind      string
	}{
		{refused, true, Dial},
		{fmt.Errorf("lookup: %w", refused), true, Dial},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true, "fetch"},
		{io.ErrUnexpectedEOF, true, "fetch"},
		{kafkago.NotLeaderForPartition, true, "fetch"},
		{kafkago.LeaderNotAvailable, true, "fetch"},
		{kafkago.BrokerNotAvailable, true, "fetch"},
		{kafkago.RequestTimedOut, true, "fetch"},
		{kafkago.SASLAuthenticationFailed, false, Auth},
		{fmt.Errorf("x: %w", kafkago.TopicAuthorizationFailed), false, Auth},
		{kafkago.UnknownTopicOrPartition, false, "fetch"},
		{kafkago.MessageSizeTooLarge, false, "fetch"},
		{context.Canceled, false, "fetch"},
		{fmt.Errorf("produce: %w", kerr.NotLeaderForPartition), true, "fetch"},
		{kerr.RequestTimedOut, true, "fetch"},
		{kerr.ProducerFenced, false, "fetch"},
		{kerr.UnknownTopicOrPartition, false, "fetch"},
	}
	for _, c := range cases {
		if got := IsRetryable(c.err); got != c.retryable {
			t.Errorf("IsRetryable(%v) = %v, want %v", c.err, got, c.retryable)
		}
		if got := Kind("fetch", c.err); got != c.kind {
			t.Errorf("Kind(fetch, %v) = %q, want %q", c.err, got, c.kind)
		}
	}
}

func TestStreak(t *testing.T) {
	s := Streak{Backoff: time.Millisecond, Timeout: time.Hour}
	transient := errors.New("connection reset")
	for i := 1; i <= 10; i++ {
		if !s.Failed(transient) {
			t.Fatalf("attempt %d: gave up within the timeout", i)
		}
		if s.Attempts() != i {
			t.Fatalf("attempts %d, want %d", s.Attempts(), i)
		}
	}
	if s.Failed(kafkago.SASLAuthenticationFailed) {
		t.Fatal("retrying an authentication failure")
	}
	s.Reset()
	if s.Attempts() != 0 || s.Lasted() != 0 {
		t.Fatalf("after Reset: %d attempts, lasted %v", s.Attempts(), s.Lasted())
	}
	// Backoff doubles up to MaxBackoff.
	s = Streak{Backoff: 2 * time.Second, Timeout: time.Hour}
	s.Failed(transient)
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, MaxBackoff, MaxBackoff} {
		if s.wait != want {
			t.Fatalf("pause %v, want %v", s.wait, want)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if s.Wait(ctx) {
			t.Fatal("Wait returned true on a cancelled context")
		}
	}
	// The deadline is measured from the first failure of the streak.
	s = Streak{Backoff: time.Millisecond, Timeout: 20 * time.Millisecond}
	for s.Failed(transient) {
		s.Wait(context.Background())
	}
	if s.Lasted() < 20*time.Millisecond || s.Attempts() < 2 {
		t.Fatalf("gave up after %d attempts over %v, want at least 20ms", s.Attempts(), s.Lasted())
	}
}
