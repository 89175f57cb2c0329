package main

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/job"
)

// jobStatus follows one job run for the progress line of unbounded jobs
// and the admin endpoint's GET /status. Everything it reports is read from
// counters the job keeps anyway (arrowexec.TaskMetrics, the sources' and
// sinks' stats, the checkpoint coordinator), at the time it is asked.
type jobStatus struct {
	name  string
	began time.Time
	// progressEvery is the period of the progress line (0: none).
	progressEvery time.Duration

	mu         sync.Mutex
	plan       *job.Plan
	job        *arrowexec.Job
	coord      *checkpoint.Coordinator
	savepoints int64
	lastErr    string
	lastErrAt  time.Time
	// ended: the job finished (endErr: how it failed); see jobEnded.
	ended  bool
	endErr string
}

func newJobStatus(name string) *jobStatus { return &jobStatus{name: name, began: time.Now()} }

// attach sets the compiled job (and its coordinator, nil without
// checkpoints) once it is about to run.
func (s *jobStatus) attach(p *job.Plan, j *arrowexec.Job, c *checkpoint.Coordinator) {
	s.mu.Lock()
	s.plan, s.job, s.coord = p, j, c
	s.mu.Unlock()
}

// bounded says whether the job's input ends by itself.
func (s *jobStatus) bounded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plan != nil && s.plan.Bounded
}

// savepointTaken counts a completed savepoint.
func (s *jobStatus) savepointTaken() {
	s.mu.Lock()
	s.savepoints++
	s.mu.Unlock()
}

// setError records the job's newest warning or error.
func (s *jobStatus) setError(msg string, at time.Time) {
	s.mu.Lock()
	s.lastErr, s.lastErrAt = msg, at
	s.mu.Unlock()
}

// logger returns l with every error, and every warning that carries an
// err attribute (a failed checkpoint, a retry), also kept as the status's
// last error (message and err).
func (s *jobStatus) logger(l *slog.Logger) *slog.Logger {
	return slog.New(&lastErrorHandler{Handler: l.Handler(), st: s})
}

// lastErrorHandler passes records on and keeps the newest warning or error.
type lastErrorHandler struct {
	slog.Handler
	st *jobStatus
}

func (h *lastErrorHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		msg, hasErr := r.Message, false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" || a.Key == "error" {
				msg += ": " + a.Value.String()
				hasErr = true
				return false
			}
			return true
		})
		if hasErr || r.Level >= slog.LevelError {
			h.st.setError(msg, r.Time)
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h *lastErrorHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lastErrorHandler{Handler: h.Handler.WithAttrs(as), st: h.st}
}

func (h *lastErrorHandler) WithGroup(name string) slog.Handler {
	return &lastErrorHandler{Handler: h.Handler.WithGroup(name), st: h.st}
}

// statusSnapshot is the job's state at one moment.
type statusSnapshot struct {
	At time.Time
	// RowsIn counts rows the source emitted (after any filter pushed into
	// the scan); RowsOut rows the sink received.
	RowsIn, RowsOut int64
	// Watermark is the event time the whole job reached: the minimum over
	// the sink's subtasks that are not idle (arrowexec.MinWatermark before
	// any).
	Watermark int64
	// WindowsFired counts the results window steps emitted (one per key
	// and window, plus late updates).
	WindowsFired int64
	// PartsPublished counts the file sink's published parts.
	PartsPublished int64
	// DeadLetters counts bad Kafka messages written to the dead-letter
	// file; Skipped those dropped under on_error: skip.
	DeadLetters, Skipped int64
	// RowsScanned counts the Parquet rows the source consumed before
	// filters pushed into the scan (the rows of the row groups not pruned),
	// once it read them all (-1 before, and for other sources).
	RowsScanned     int64
	RowGroupsPruned int
	// Messages counts the Kafka messages consumed, good or bad.
	Messages int64
	Splits   []splitStatus
}

// splitStatus is one source subtask: the input it reads and how far it got.
type splitStatus struct {
	Subtask    int      `json:"subtask"`
	Rows       int64    `json:"rows"`
	Bytes      int64    `json:"bytes,omitempty"`
	Watermark  string   `json:"watermark"`
	Idle       bool     `json:"idle"`
	Partitions []string `json:"partitions,omitempty"` // Kafka: topic/partition
	// Lag is how many messages the subtask's partitions are behind their
	// end, when the source can tell (see sourceLag).
	Lag *int64 `json:"lag,omitempty"`
}

var windowNode = regexp.MustCompile(`^window-[0-9]+$`)

// snapshot reads the job's counters; ok is false before the job started.
func (s *jobStatus) snapshot() (snap statusSnapshot, ok bool) {
	s.mu.Lock()
	p, j := s.plan, s.job
	s.mu.Unlock()
	if p == nil || j == nil {
		return statusSnapshot{At: time.Now()}, false
	}
	return readStatus(p, j), true
}

// readStatus reads the counters of job j, compiled from plan p.
func readStatus(p *job.Plan, j *arrowexec.Job) (snap statusSnapshot) {
	snap.At = time.Now()
	src := j.Metrics(p.SourceNode)
	snap.RowsIn = sum(src, func(m *arrowexec.TaskMetrics) int64 { return m.RowsIn.Load() })
	snap.Watermark = jobWatermark(j.Metrics(p.SinkNode))
	for _, n := range j.Graph().Nodes() {
		if windowNode.MatchString(n.Name()) {
			snap.WindowsFired += sum(j.Metrics(n.Name()), func(m *arrowexec.TaskMetrics) int64 { return m.RowsOut.Load() })
		}
	}
	snap.RowsOut = sum(j.Metrics(p.SinkNode), func(m *arrowexec.TaskMetrics) int64 { return m.RowsIn.Load() })
	if p.Sink != nil {
		snap.PartsPublished = int64(len(p.Sink.Published()))
	}
	if p.Kafka != nil {
		st := p.Kafka.Stats()
		snap.DeadLetters, snap.Skipped = st.DeadLettered, st.Skipped
	}
	if p.Text != nil {
		st := p.Text.Stats()
		snap.DeadLetters, snap.Skipped = st.DeadLettered, st.Skipped
	}
	var parts map[int][]string
	if p.Kafka != nil {
		parts = map[int][]string{}
		for i, kp := range p.Kafka.Partitions() {
			sub := i % len(src)
			parts[sub] = append(parts[sub], kp.Topic+"/"+strconv.Itoa(kp.ID))
		}
	}
	lag := sourceLag(p, len(src))
	for i, m := range src {
		sp := splitStatus{Subtask: i, Rows: m.RowsIn.Load(), Bytes: m.BytesIn.Load(), Idle: m.Idle.Load(),
			Watermark: checkpoint.FormatWatermark(m.Watermark.Load()), Partitions: parts[i]}
		if l, ok := lag[i]; ok {
			sp.Lag = &l
		}
		snap.Splits = append(snap.Splits, sp)
	}
	snap.RowsScanned = -1
	var bytes int64
	for _, sp := range snap.Splits {
		bytes += sp.Bytes
	}
	switch {
	case p.Parquet != nil:
		_, _, pruned, rows, total := p.Parquet.Stats()
		snap.RowGroupsPruned = pruned
		if bytes == total {
			snap.RowsScanned = rows
		}
	case p.Kafka != nil:
		snap.Messages = p.Kafka.Stats().Messages
	}
	return snap
}

// summaryAttrs are the log attributes of a job's summary: Parquet rows
// scanned (before any filter pushed into the scan, when the whole input
// was read) or Kafka messages consumed, rows in (what the source emitted)
// and out, and what the job produced.
func summaryAttrs(s statusSnapshot) []any {
	var attrs []any
	if s.Messages > 0 {
		attrs = append(attrs, "messages", s.Messages)
	}
	if s.RowsScanned >= 0 {
		attrs = append(attrs, "rows_scanned", s.RowsScanned)
	}
	if s.RowGroupsPruned > 0 {
		attrs = append(attrs, "row_groups_pruned", s.RowGroupsPruned)
	}
	attrs = append(attrs, "rows_in", s.RowsIn, "rows_out", s.RowsOut, "watermark", checkpoint.FormatWatermark(s.Watermark))
	if s.WindowsFired > 0 {
		attrs = append(attrs, "windows_fired", s.WindowsFired)
	}
	attrs = append(attrs, "parts_published", s.PartsPublished, "dead_letters", s.DeadLetters)
	if s.Skipped > 0 {
		attrs = append(attrs, "skipped", s.Skipped)
	}
	return attrs
}

// sourceLag returns, per source subtask, how many messages its Kafka
// partitions are behind the end of the topic. The Kafka source does not
// report the topic's end while it runs yet: until it does (a
// kafka.Source.Status() with each partition's end and position), there is
// no lag to report and the map is empty. This is the one place to wire it.
func sourceLag(p *job.Plan, subtasks int) map[int]int64 {
	if p.Kafka == nil || subtasks == 0 {
		return nil
	}
	lag := map[int]int64{}
	for i, ps := range p.Kafka.Status() {
		if ps.Lag < 0 {
			continue // not fetched yet: unknown, not zero
		}
		lag[i%subtasks] += ps.Lag
	}
	return lag
}

// jobWatermark is the minimum watermark over the non-idle subtasks of a
// node (MinWatermark when none has one).
func jobWatermark(ms []*arrowexec.TaskMetrics) int64 {
	wm, any := arrowexec.MaxWatermark, false
	for _, m := range ms {
		if m.Idle.Load() {
			continue
		}
		wm, any = min(wm, m.Watermark.Load()), true
	}
	if !any {
		return arrowexec.MinWatermark
	}
	return wm
}
