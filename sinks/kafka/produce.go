package kafka

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/internal/arrowtext"
)

// ProduceOptions configures Produce.
type ProduceOptions struct {
	Brokers []string
	Topic   string
	// Rate is the target in messages per second; 0 means as fast as the
	// broker takes them. The pacing is a token bucket whose schedule is
	// anchored at the start (message k is not sent before start + k/Rate),
	// so the achieved rate stays accurate over seconds.
	Rate float64
	// Burst bounds the messages sent in one write (default: Rate/10, at
	// least 1 and at most BatchSize); a write sends the tokens accrued
	// since the last one, up to Burst.
	Burst int
	// KeyColumn and TimestampColumn as in Options.
	KeyColumn       string
	TimestampColumn string
	// BatchSize, BatchBytes, BatchTimeout, MaxAttempts, WriteTimeout,
	// RetryTimeout and Log as in Options.
	BatchSize    int
	BatchBytes   int64
	BatchTimeout time.Duration
	MaxAttempts  int
	WriteTimeout time.Duration
	RetryTimeout time.Duration
	Log          *slog.Logger
	// Progress, if set, receives the running totals about once a second
	// (from Produce's goroutine; keep it quick).
	Progress func(ProduceStats)
}

// ProduceStats is what Produce did.
type ProduceStats struct {
	Messages int64
	Bytes    int64 // value bytes
	Elapsed  time.Duration
}

// Rate returns the achieved messages per second.
func (s ProduceStats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Messages) / s.Elapsed.Seconds()
}

// Produce writes every row of batches to a topic as JSON messages (one
// object per row, as the sink writes them), paced at o.Rate. batches yields
// borrowed batches: Produce does not keep them past the yield. It returns
// at the first iterator or delivery error, or when ctx ends.
func Produce(ctx context.Context, o ProduceOptions, batches iter.Seq2[arrow.RecordBatch, error]) (st ProduceStats, err error) {
	so := Options{Brokers: o.Brokers, Topic: o.Topic, KeyColumn: o.KeyColumn, TimestampColumn: o.TimestampColumn,
		BatchSize: o.BatchSize, BatchBytes: o.BatchBytes, BatchTimeout: o.BatchTimeout, MaxAttempts: o.MaxAttempts, WriteTimeout: o.WriteTimeout,
		RetryTimeout: o.RetryTimeout, Log: o.Log}
	if err := so.Validate(); err != nil {
		return st, err
	}
	if o.Rate < 0 {
		return st, fmt.Errorf("kafka: negative produce rate %g", o.Rate)
	}
	so = so.EnsureDefaults()
	if err := checkTopic(ctx, so.Brokers, so.Topic, so.WriteTimeout); err != nil {
		return st, err
	}
	burst := o.Burst
	if burst <= 0 {
		burst = int(o.Rate / 10)
	}
	burst = max(1, min(burst, so.BatchSize))
	if o.Rate == 0 {
		burst = so.BatchSize
	}
	w := so.writer()
	defer func() {
		if w != nil {
			w.Close()
		}
	}()

	var (
		enc          *arrowtext.Encoder
		schema       *arrow.Schema
		key, ts      int
		buf, keys    []byte
		msgs         []kafkago.Message
		tsBuf        []int64
		start        = time.Now()
		lastProgress = start
		timer        *time.Timer
		pendingErr   error
	)
	defer func() { st.Elapsed = time.Since(start) }()
	for b, ierr := range batches {
		if ierr != nil {
			return st, ierr
		}
		if !b.Schema().Equal(schema) {
			schema = b.Schema()
			if key, ts, pendingErr = so.checkColumns(schema); pendingErr != nil {
				return st, pendingErr
			}
			enc = arrowtext.NewEncoder(arrowtext.JSON, schema)
		}
		msgs, err = encodeBatch(enc, b, key, ts, &buf, &keys, msgs[:0], &tsBuf)
		if err != nil {
			return st, err
		}
		for len(msgs) > 0 {
			n := min(burst, len(msgs))
			if o.Rate > 0 {
				// Tokens: messages due by now (the schedule sends message k
				// at start + k/Rate) minus those sent. A slow write leaves
				// tokens behind that the next write uses, so the rate holds
				// over seconds whatever the write latency.
				p := pace{rate: o.Rate}
				if tokens := p.tokens(time.Since(start), st.Messages); tokens <= 0 {
					next := start.Add(p.at(st.Messages))
					wait := max(time.Until(next), 50*time.Microsecond)
					if timer == nil {
						timer = time.NewTimer(wait)
					} else {
						timer.Reset(wait)
					}
					select {
					case <-timer.C:
					case <-ctx.Done():
						return st, ctx.Err()
					}
					continue
				} else {
					n = int(min(int64(n), tokens))
				}
			}
			if err := write(ctx, w, so, msgs[:n]); err != nil {
				return st, err
			}
			for _, m := range msgs[:n] {
				st.Bytes += int64(len(m.Value))
			}
			st.Messages += int64(n)
			msgs = msgs[n:]
			if o.Progress != nil && time.Since(lastProgress) >= time.Second {
				lastProgress = time.Now()
				p := st
				p.Elapsed = time.Since(start)
				o.Progress(p)
			}
		}
	}
	err = w.Close()
	w = nil
	if err != nil {
		return st, fmt.Errorf("kafka: topic %q: closing writer: %w", so.Topic, err)
	}
	return st, nil
}

// pace is Produce's schedule at rate messages per second, anchored at the
// start: message k (from 0) is due at k/rate.
type pace struct{ rate float64 }

// tokens returns how many messages may be sent elapsed after the start
// when sent were: those due by then, minus those sent.
func (p pace) tokens(elapsed time.Duration, sent int64) int64 {
	return int64(elapsed.Seconds()*p.rate) + 1 - sent
}

// at returns when message k is due.
func (p pace) at(k int64) time.Duration {
	return time.Duration(float64(k) / p.rate * float64(time.Second))
}
