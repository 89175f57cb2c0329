package windows

import (
	"errors"
	"fmt"
	"time"

	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/state"
)

// Kind is the kind of window.
type Kind string

// Window kinds.
const (
	Tumbling Kind = "tumbling"
	Sliding  Kind = "sliding"
	Session  Kind = "session"
)

// Func names an aggregate function of the aggregate library (package agg,
// shared with the aggregate step).
type Func = agg.Func

// Aggregate functions.
const (
	Count          = agg.Count
	Sum            = agg.Sum
	Min            = agg.Min
	Max            = agg.Max
	Avg            = agg.Avg
	CountDistinct  = agg.CountDistinct
	ApproxDistinct = agg.ApproxDistinct
	VarSamp        = agg.VarSamp
	VarPop         = agg.VarPop
	StddevSamp     = agg.StddevSamp
	StddevPop      = agg.StddevPop
	BoolAnd        = agg.BoolAnd
	BoolOr         = agg.BoolOr
)

// Agg is one aggregate per window: Func over Column, named As (agg.Agg).
type Agg = agg.Agg

// ParseAgg parses "func(column) [AS name]", e.g. "approx_distinct(user_id)
// AS users" (agg.ParseAgg; agg.ParseCall for expressions).
func ParseAgg(s string) (Agg, error) {
	a, err := agg.ParseAgg(s)
	if err != nil {
		return Agg{}, fmt.Errorf("windows: %w", err)
	}
	return a, nil
}

// TopN ranks the rows of each window by an aggregate and keeps the first N.
type TopN struct {
	N int
	// By names the aggregate output column to rank by.
	By string
	// Ascending ranks the smallest first; default largest first.
	Ascending bool
	// WithTies also emits the rows that tie with the N-th (SQL's
	// RANK() <= N), each ranked 1 + the number of rows ranked strictly
	// before it; by default exactly N rows, ties broken by the keys.
	WithTies bool
}

// Options configures a window operator. Kind, Size (or Gap), Time and Aggs
// are required; the zero value of every other field works.
type Options struct {
	Kind Kind
	// Size is the window length (tumbling, sliding).
	Size time.Duration
	// Slide is the distance between window starts (sliding).
	Slide time.Duration
	// Gap closes a session after this much inactivity (session).
	Gap time.Duration
	// Keys are the key columns (empty: one global key).
	Keys []string
	// Time is the event-time column: a timestamp or int64 milliseconds.
	Time string
	Aggs []Agg
	// AllowedLateness keeps a window's state after it fired, so records up
	// to this late update it (re-emitted with is_update = true).
	AllowedLateness time.Duration
	// Backend keeps the window state; default state.NewMemoryBackend.
	Backend state.Backend
	// BatchSize bounds output batches; default 65536.
	BatchSize int
	// CacheWindows bounds the write-back cache of windows (for session
	// windows, the open sessions of the cached keys): when it holds more
	// after a batch, the dirty ones are written to the store and the cache
	// is emptied. Default
	// DefaultCacheWindows with a persistent backend (Pebble), unbounded
	// with the memory backend (whose store is memory as well, and costlier
	// per window than the cache); negative: write every batch's windows
	// through (the cache only lives during one batch).
	CacheWindows int
}

// DefaultCacheWindows is the default bound of the window cache.
const DefaultCacheWindows = 1 << 20

// DefaultBatchSize is the default maximum rows per output batch.
const DefaultBatchSize = 65536

// Validate checks the options without a schema.
func (o *Options) Validate() error {
	switch o.Kind {
	case Tumbling:
		if o.Size <= 0 {
			return errors.New("windows: tumbling window needs a positive size")
		}
	case Sliding:
		if o.Size <= 0 || o.Slide <= 0 {
			return errors.New("windows: sliding window needs a positive size and slide")
		}
		if o.Slide > o.Size {
			return fmt.Errorf("windows: slide %s larger than size %s would drop rows", o.Slide, o.Size)
		}
	case Session:
		if o.Gap <= 0 {
			return errors.New("windows: session window needs a positive gap")
		}
	default:
		return fmt.Errorf("windows: unknown window type %q (want tumbling, sliding or session)", o.Kind)
	}
	for _, d := range []time.Duration{o.Size, o.Slide, o.Gap} {
		if d%time.Millisecond != 0 {
			return fmt.Errorf("windows: duration %s is not a whole number of milliseconds", d)
		}
	}
	if o.AllowedLateness < 0 || o.AllowedLateness%time.Millisecond != 0 {
		return fmt.Errorf("windows: allowed lateness %s must be a non-negative number of milliseconds", o.AllowedLateness)
	}
	if o.Time == "" {
		return errors.New("windows: no event-time column")
	}
	if len(o.Aggs) == 0 {
		return errors.New("windows: no aggregates")
	}
	if o.BatchSize < 0 {
		return errors.New("windows: negative batch size")
	}
	seen := map[string]bool{"window_start": true, "window_end": true, "is_update": true}
	for _, k := range o.Keys {
		if seen[k] {
			return fmt.Errorf("windows: duplicate output column %q", k)
		}
		seen[k] = true
	}
	for _, a := range o.Aggs {
		if err := a.Check(); err != nil {
			return fmt.Errorf("windows: %w", err)
		}
		if seen[a.Name()] {
			return fmt.Errorf("windows: duplicate output column %q", a.Name())
		}
		seen[a.Name()] = true
	}
	return nil
}
