package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/riffle-dev/riffle/internal/kafkaretry"
)

// Steps of reaching a partition, named in errors and retry logs (with
// kafkaretry.Dial and kafkaretry.Auth).
const (
	stepMetadata   = "metadata request"
	stepLookup     = "leader lookup"
	stepLeaderDial = "dial leader"
	stepFetch      = "fetch"
)

// FetchError is the error of a reader that gave up on a partition: the step
// that failed (dial, leader lookup, dial leader, fetch, authentication), how
// often and for how long it was tried, and the last error.
type FetchError struct {
	Topic     string
	Partition int
	Offset    int64
	Step      string
	Attempts  int
	For       time.Duration
	Brokers   string
	Err       error
}

func (e *FetchError) Error() string {
	if e.Attempts <= 1 {
		return fmt.Sprintf("kafka: topic %q partition %d offset %d: %s failed (brokers %s): %v",
			e.Topic, e.Partition, e.Offset, e.Step, e.Brokers, e.Err)
	}
	return fmt.Sprintf("kafka: topic %q partition %d offset %d: %s failed %d times over %v (brokers %s): %v",
		e.Topic, e.Partition, e.Offset, e.Step, e.Attempts, e.For.Round(time.Millisecond), e.Brokers, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// retry runs fn until it succeeds, fails with a non-retryable error, or
// o.Retries attempts failed, backing off exponentially between attempts.
// The error names the step (what), what failed and the brokers.
func (s *Source) retry(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	backoff := s.o.RetryBackoff
	var err error
	attempt := 1
	for ; ; attempt++ {
		err = fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kafka: %s (brokers %s): %w", what, s.brokers(), context.Cause(ctx))
		}
		if !kafkaretry.IsRetryable(err) || attempt >= s.o.Retries {
			break
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("kafka: %s (brokers %s): %w", what, s.brokers(), context.Cause(ctx))
		}
		backoff = min(2*backoff, kafkaretry.MaxBackoff)
	}
	kind := kafkaretry.Kind(what, err)
	if kind != what {
		what += ": " + kind
	}
	if attempt > 1 {
		return fmt.Errorf("kafka: %s failed after %d attempts (brokers %s): %w", what, attempt, s.brokers(), err)
	}
	return fmt.Errorf("kafka: %s failed (brokers %s): %w", what, s.brokers(), err)
}
