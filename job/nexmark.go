package job

import (
	"fmt"
	"time"

	"github.com/riffle-dev/riffle/sources/nexmark"
)

// NexmarkSpec is a Nexmark generator source (sources/nexmark): one of the
// tables person, auction or bid of a deterministic, splittable event
// stream. Every subtask generates its own blocks of event numbers, so the
// source scales with the job's parallelism; three sources with the same
// events, seed and rate are the three tables of one stream.
type NexmarkSpec struct {
	Table string `yaml:"table"` // person, auction or bid
	// Events bounds the stream to event numbers [0, events) over all
	// three tables; 0 is unbounded.
	Events int64 `yaml:"events"`
	// Seed seeds the generator: same seed, same events (default 0).
	Seed int64 `yaml:"seed"`
	// Rate is events (of all tables) per second of event time; default
	// 10,000. Pace holds the source back to it in wall-clock time.
	Rate int64 `yaml:"rate"`
	// Pace paces the source at rate in wall-clock time (default false:
	// as fast as it can).
	Pace bool `yaml:"pace"`
	// WatermarkDelay is how far the watermark trails the generator's
	// exact bound on future event times; default 4s, "0s" none.
	WatermarkDelay *time.Duration `yaml:"watermark_delay"`
	// OutOfOrderGroupSize > 1 permutes the events within each group.
	OutOfOrderGroupSize int `yaml:"out_of_order_group_size"`
	// BatchEvents is the events generated per batch (default the
	// generator's).
	BatchEvents int `yaml:"batch_events"`
}

// options turns the spec into the generator's options, checked.
func (n *NexmarkSpec) options() (nexmark.Options, error) {
	t, err := nexmark.ParseTable(n.Table)
	if err != nil {
		return nexmark.Options{}, err
	}
	o := nexmark.Options{Table: t, Events: n.Events, Seed: n.Seed, Rate: n.Rate, Pace: n.Pace,
		OutOfOrderGroupSize: n.OutOfOrderGroupSize, BatchEvents: n.BatchEvents}
	if d := n.WatermarkDelay; d != nil {
		switch {
		case *d < 0:
			return o, fmt.Errorf("nexmark: watermark_delay %v: must not be negative", *d)
		case *d == 0:
			o.WatermarkDelay = nexmark.NoWatermarkDelay
		default:
			o.WatermarkDelay = *d
		}
	}
	if err := o.EnsureDefaults().Validate(); err != nil {
		return o, err // Validate says nexmark:
	}
	return o, nil
}

// nexmarkSource builds the generator source. Its watermark is the
// generator's own (a watermark block in the job file is an error: the
// generator knows its event times exactly).
func nexmarkSource(n *NexmarkSpec) (*nexmark.Source, error) {
	o, err := n.options()
	if err != nil {
		return nil, err
	}
	return nexmark.NewSource(o)
}
