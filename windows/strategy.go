package windows

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

// strategy is what tumbling and sliding windows (fixedStrategy, fixed.go)
// and session windows (sessionStrategy, session.go) do differently. The
// operator (operator.go) owns everything they share: state, the batch's
// event times, hashes and encoded keys, accumulation, firing, emission and
// the late side output; it holds one strategy and calls it once per
// batch, watermark or restore step, never per row.
type strategy interface {
	// process assigns the rows of b to windows and accumulates them. The
	// operator has filled o.ts, o.hashes and o.rk for the batch.
	process(b arrow.RecordBatch, tcol arrow.Array) error
	// onWatermark fires the windows wm made due and purges those past
	// their lateness; the operator emits what is still pending after it.
	onWatermark(ctx context.Context, wm int64, out arrowexec.Emitter) error
	// eachDirty calls fn for every window of the write-back cache the
	// store does not hold in its current version, with its record's cache
	// key, until fn returns false (checkpoint.go).
	eachDirty(fn func(hash uint64, ck, blob []byte) bool)
	// restoreCached enters one cached window record of a snapshot.
	restoreCached(ck, blob []byte) error
	// rebuildTimers derives every timer from the windows in state, once
	// the cached records are restored.
	rebuildTimers() error
	// inCache reports whether the window stored under e is in the cache
	// too (openWindows counts it once).
	inCache(e state.Entry, blob []byte) bool
}

// newStrategy returns the strategy of the operator's window kind.
func newStrategy(o *operator) strategy {
	if o.s.opts.Kind == Session {
		return sessionStrategy{o}
	}
	return fixedStrategy{o}
}

var (
	_ strategy = fixedStrategy{}
	_ strategy = sessionStrategy{}
)
