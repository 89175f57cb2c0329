package joins

import (
	"errors"
	"fmt"
	"time"

	"github.com/riffle-dev/riffle/state"
)

// Type is the kind of join.
type Type string

// Join types.
const (
	// Interval joins a left row with every right row of the same key
	// whose time lies in [left.t + Lower, left.t + Upper].
	Interval Type = "interval"
	// Window joins rows of the same key in the same event-time window
	// (tumbling or sliding), emitted when the window fires.
	Window Type = "window"
	// Regular is an inner equi-join without a time bound; rows are kept
	// for TTL (forever without one).
	Regular Type = "regular"
)

// Options configures a join. Type and the key columns are required; the
// zero value of every other field works or is checked by Validate.
type Options struct {
	Type Type
	// LeftKeys[i] equals RightKeys[i] for a match; the types of each pair
	// must be equal.
	LeftKeys, RightKeys []string
	// LeftTime and RightTime are the event-time columns (interval,
	// window): timestamps or int64 milliseconds.
	LeftTime, RightTime string
	// Lower and Upper bound an interval join: right.t - left.t in
	// [Lower, Upper] (whole milliseconds, Lower <= Upper).
	Lower, Upper time.Duration
	// Size and Slide are the window of a window join (Slide 0: tumbling).
	Size, Slide time.Duration
	// TTL expires a regular join's rows TTL after they arrived
	// (processing time, state.Options.Clock of the backend); 0 keeps them
	// forever.
	TTL time.Duration
	// Backend keeps the join state; default state.NewMemoryBackend.
	Backend state.Backend
	// BatchSize bounds output batches; default 65536.
	BatchSize int
}

// DefaultBatchSize is the default maximum rows per output batch.
const DefaultBatchSize = 65536

// Validate checks the options without the schemas.
func (o *Options) Validate() error {
	if len(o.LeftKeys) == 0 || len(o.LeftKeys) != len(o.RightKeys) {
		return fmt.Errorf("joins: want the same positive number of left and right key columns, have %d and %d", len(o.LeftKeys), len(o.RightKeys))
	}
	for _, d := range []time.Duration{o.Lower, o.Upper, o.Size, o.Slide, o.TTL} {
		if d%time.Millisecond != 0 {
			return fmt.Errorf("joins: duration %s is not a whole number of milliseconds", d)
		}
	}
	timed := func() error {
		if o.LeftTime == "" || o.RightTime == "" {
			return fmt.Errorf("joins: a %s join needs left_time and right_time", o.Type)
		}
		return nil
	}
	switch o.Type {
	case Interval:
		if err := timed(); err != nil {
			return err
		}
		if o.Lower > o.Upper {
			return fmt.Errorf("joins: interval lower bound %s is above the upper bound %s", o.Lower, o.Upper)
		}
	case Window:
		if err := timed(); err != nil {
			return err
		}
		if o.Size <= 0 {
			return errors.New("joins: a window join needs a positive size")
		}
		if o.Slide < 0 || o.Slide > o.Size {
			return fmt.Errorf("joins: slide %s must be in (0, size %s] (0: tumbling)", o.Slide, o.Size)
		}
	case Regular:
		if o.TTL < 0 {
			return errors.New("joins: negative ttl")
		}
		if o.LeftTime != "" || o.RightTime != "" {
			return errors.New("joins: a regular join takes no time columns (use an interval or window join for a time bound)")
		}
	default:
		return fmt.Errorf("joins: unknown join type %q (want interval, window or regular)", o.Type)
	}
	if o.TTL != 0 && o.Type != Regular {
		return fmt.Errorf("joins: ttl is for regular joins; a %s join's state is cleaned by the watermark", o.Type)
	}
	if o.BatchSize < 0 {
		return errors.New("joins: negative batch size")
	}
	return nil
}

// Timed says whether the join is bounded by event time (its state is
// cleaned by the watermark).
func (o *Options) Timed() bool { return o.Type == Interval || o.Type == Window }
