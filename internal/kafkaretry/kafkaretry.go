package kafkaretry

import (
	"context"
	"errors"
	"net"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
)

// DefaultTimeout is how long a running job retries by default: enough for
// a broker restart.
const DefaultTimeout = 5 * time.Minute

// MaxBackoff caps the pause between two attempts.
const MaxBackoff = 5 * time.Second

// Names of what failed, as errors and retry logs say them.
const (
	Dial = "dial"
	Auth = "authentication"
)

// IsAuth reports SASL and authorization failures: retrying does not help.
func IsAuth(err error) bool {
	var ke kafkago.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke {
	case kafkago.SASLAuthenticationFailed, kafkago.UnsupportedSASLMechanism, kafkago.IllegalSASLState,
		kafkago.TopicAuthorizationFailed, kafkago.GroupAuthorizationFailed, kafkago.ClusterAuthorizationFailed,
		kafkago.DelegationTokenAuthorizationFailed, kafkago.TransactionalIDAuthorizationFailed:
		return true
	}
	return false
}

// IsRetryable reports whether a running job retries err: every network
// error (refused, reset, EOF, timeout: a broker going away) and every Kafka
// error the protocol marks as retriable (a leader moving:
// NotLeaderForPartition, LeaderNotAvailable), plus BrokerNotAvailable and
// ReplicaNotAvailable; not authentication failures, a deleted topic
// (UnknownTopicOrPartition) nor the other Kafka errors (message too large,
// invalid request, ...). It classifies the errors of both Kafka clients
// riffle uses: kafka-go's (kafkago.Error) and franz-go's (*kerr.Error,
// by its retriable flag).
func IsRetryable(err error) bool {
	if IsAuth(err) || errors.Is(err, context.Canceled) {
		return false
	}
	var fe *kerr.Error
	if errors.As(err, &fe) {
		return fe.Retriable && fe != kerr.UnknownTopicOrPartition
	}
	var ke kafkago.Error
	if errors.As(err, &ke) {
		if ke == kafkago.UnknownTopicOrPartition {
			return false // the topic was deleted: waiting will not bring it back
		}
		return ke.Temporary() || ke == kafkago.BrokerNotAvailable || ke == kafkago.ReplicaNotAvailable
	}
	return true
}

// Kind names what failed in step: a TCP connection that could not be
// opened is Dial whichever step opened it, a rejected login or an
// authorization error Auth; otherwise the step itself.
func Kind(step string, err error) string {
	if IsAuth(err) {
		return Auth
	}
	var oe *net.OpError
	if step != "" && errors.As(err, &oe) && oe.Op == "dial" {
		return Dial
	}
	return step
}

// Streak is a run of consecutive failures of one operation. The zero value
// is an empty streak; Backoff and Timeout must be set before use.
type Streak struct {
	// Backoff is the first pause (doubled per attempt up to MaxBackoff),
	// Timeout how long the streak may last before Failed gives up.
	Backoff, Timeout time.Duration

	attempts int
	since    time.Time
	wait     time.Duration
}

// Failed records a failure and reports whether to retry: false once the
// streak has lasted Timeout (or err is not IsRetryable).
func (s *Streak) Failed(err error) bool {
	now := time.Now()
	if s.attempts == 0 {
		s.since, s.wait = now, s.Backoff
	}
	s.attempts++
	return IsRetryable(err) && now.Sub(s.since) < s.Timeout
}

// Wait pauses before the next attempt; false when ctx ended first.
func (s *Streak) Wait(ctx context.Context) bool {
	t := time.NewTimer(s.wait)
	defer t.Stop()
	s.wait = min(2*s.wait, MaxBackoff)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Attempts is the number of failures in the streak, Lasted how long ago
// the first one was.
func (s *Streak) Attempts() int { return s.attempts }

func (s *Streak) Lasted() time.Duration {
	if s.attempts == 0 {
		return 0
	}
	return time.Since(s.since)
}

// Reset ends the streak after a success.
func (s *Streak) Reset() { s.attempts = 0 }
