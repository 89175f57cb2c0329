package arrowexec

import "sync/atomic"

// TaskMetrics counts what one subtask saw and produced. Fields are updated
// atomically by the runtime and may be read at any time (progress bars,
// Prometheus).
type TaskMetrics struct {
	RowsIn     atomic.Int64
	RowsOut    atomic.Int64
	BatchesIn  atomic.Int64
	BatchesOut atomic.Int64
	// Bytes is set by sources that know how much input they consumed.
	BytesIn atomic.Int64
	// Watermark is the last watermark this subtask forwarded.
	Watermark atomic.Int64
	// Idle says the subtask last told its downstream it is idle (a source
	// without data, an operator whose every input is idle): its Watermark
	// then holds nothing back.
	Idle atomic.Bool
}
