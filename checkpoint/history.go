package checkpoint

import "time"

// HistoryLen is how many checkpoints Coordinator.History remembers.
const HistoryLen = 64

// Record is one checkpoint or savepoint the coordinator started, as
// Coordinator.History reports it.
type Record struct {
	ID        uint64
	Savepoint bool
	Path      string // where it was (or would have been) written
	Started   time.Time
	// Duration runs from the trigger to completion, failure or abandon.
	Duration time.Duration
	// Aligned is how long it took until every subtask had snapshotted:
	// barriers travelling through the graph and waiting for alignment at
	// operators with several inputs (0 when not every subtask reported).
	Aligned time.Duration
	Bytes   int64
	// Status is "completed", "failed" (writing it failed) or "abandoned"
	// (not complete within the timeout, or the trigger failed).
	Status string
	Error  string `json:",omitempty"`
}

// History returns the last HistoryLen checkpoints that completed, failed
// or were abandoned, oldest first. Safe to call while the job runs.
func (c *Coordinator) History() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Record(nil), c.history...)
}

// record appends the outcome of p to the history. c.mu is held.
func (c *Coordinator) record(p *pending, status string, bytes int64, err error) {
	r := Record{ID: p.id, Savepoint: p.barrier.Savepoint, Path: p.final, Started: p.started,
		Duration: time.Since(p.started), Bytes: bytes, Status: status}
	if !p.allReported.IsZero() {
		r.Aligned = p.allReported.Sub(p.started)
	}
	if err != nil {
		r.Error = err.Error()
	}
	if len(c.history) == HistoryLen {
		copy(c.history, c.history[1:])
		c.history = c.history[:HistoryLen-1]
	}
	c.history = append(c.history, r)
}
