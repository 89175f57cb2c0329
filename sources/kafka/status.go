package kafka

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
)

// PartitionStatus is a point-in-time view of one partition's consumption.
type PartitionStatus struct {
	Topic         string
	Partition     int
	Offset        int64     // next offset to read; -1 before the first fetch
	HighWatermark int64     // the broker's end offset at the last fetch; -1 unknown
	Lag           int64     // HighWatermark - Offset, -1 unknown
	LastMessage   time.Time // zero if none yet
	// MaxEventTime is the largest event time (ms) of the rows read, with a
	// watermark column (arrowexec.MinWatermark before any): the partition
	// holds its reader's watermark at most at MaxEventTime minus the
	// out-of-orderness bound minus 1 ms while it is not idle.
	MaxEventTime int64
	Idle         bool   // no message within the watermark idle timeout
	Retrying     string // non-empty while retrying a failure: the last error
	// Quiet is how long the partition has been without a message: since
	// its last one, or since its fetcher started when none came (0 before
	// it started).
	Quiet time.Duration
}

// partStatus is what a partition's fetcher and reader report, read by
// Source.Status. The fetcher updates it once per fetch, the reader once per
// run of messages it consumes, never per message.
type partStatus struct {
	offset atomic.Int64 // next offset to emit (the reader's position)
	maxTS  atomic.Int64 // largest event time emitted (watermark column)

	mu       sync.Mutex
	hwm      int64
	last     time.Time
	started  time.Time // when a fetcher began reading
	empty    int64     // consecutive empty fetches (long polls that found nothing)
	retrying string
}

func newPartStatus() *partStatus {
	st := &partStatus{hwm: -1}
	st.offset.Store(-1)
	st.maxTS.Store(arrowexec.MinWatermark)
	return st
}

// start records the position a fetcher starts from.
func (st *partStatus) start(off int64) {
	st.offset.Store(off)
	st.mu.Lock()
	st.started = time.Now()
	st.mu.Unlock()
}

// fetched records a fetch that succeeded: the broker's high watermark and
// whether it returned messages.
func (st *partStatus) fetched(hwm int64, got bool) {
	st.mu.Lock()
	if hwm >= 0 {
		st.hwm = hwm
	}
	if got {
		st.last = time.Now()
		st.empty = 0
	} else {
		st.empty++
	}
	st.mu.Unlock()
}

// quiet returns the consecutive empty fetches and how long the partition
// has been without a message (since the fetcher started if none came).
func (st *partStatus) quiet(now time.Time) (empty int64, d time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	since := st.started
	if st.last.After(since) {
		since = st.last
	}
	if since.IsZero() {
		return st.empty, 0
	}
	return st.empty, now.Sub(since)
}

func (st *partStatus) setRetrying(msg string) {
	st.mu.Lock()
	st.retrying = msg
	st.mu.Unlock()
}

// Status returns the state of every partition the source reads, in the
// order of Partitions. Offset is the reader's position, the next offset to
// emit in a batch (messages fetched but waiting in the reader's buffer
// count as lag); a partition no reader owns, or whose reader has not
// started yet, shows -1. Idle uses the watermark's
// IdleTimeout, counted from the last message or the fetcher's start (never
// idle without one). Safe for concurrent use while the
// job runs.
func (s *Source) Status() []PartitionStatus {
	now := time.Now()
	idle := s.o.Watermark.IdleTimeout
	out := make([]PartitionStatus, len(s.parts))
	for i, p := range s.parts {
		st := s.status[i]
		st.mu.Lock()
		ps := PartitionStatus{Topic: p.Topic, Partition: p.ID, Offset: st.offset.Load(), HighWatermark: st.hwm,
			LastMessage: st.last, Retrying: st.retrying, Lag: -1, MaxEventTime: st.maxTS.Load()}
		st.mu.Unlock()
		if ps.Offset >= 0 && ps.HighWatermark >= 0 {
			ps.Lag = max(ps.HighWatermark-ps.Offset, 0)
		}
		_, d := st.quiet(now)
		ps.Quiet = d
		if idle > 0 {
			ps.Idle = d >= idle
		}
		out[i] = ps
	}
	return out
}

// MetricDescs are the series a Kafka source reports
// (arrowexec.MetricsReporter), besides its dead-letter file's.
var MetricDescs = []*arrowexec.MetricDesc{lagDesc, messagesDesc}

var (
	lagDesc = &arrowexec.MetricDesc{Name: "riffle_kafka_consumer_lag_messages",
		Help: "Messages of a partition not read yet: the broker's end offset at the last fetch minus the reader's position (absent until known).",
		Kind: arrowexec.Gauge, Labels: []string{"topic", "partition"}}
	messagesDesc = &arrowexec.MetricDesc{Name: "riffle_kafka_messages_total",
		Help: "Kafka messages a source consumed, good or bad.", Kind: arrowexec.Counter}
)

// ReportMetrics implements arrowexec.MetricsReporter: the lag of every
// partition (Status), the messages consumed and the dead letters by
// reason class.
func (s *Source) ReportMetrics(emit func(arrowexec.Metric)) {
	for _, ps := range s.Status() {
		if ps.Lag >= 0 {
			emit(arrowexec.Metric{Desc: lagDesc, LabelValues: []string{ps.Topic, strconv.Itoa(ps.Partition)}, Value: float64(ps.Lag)})
		}
	}
	emit(arrowexec.Metric{Desc: messagesDesc, Value: float64(s.stats.messages.Load())})
	s.dl.ReportMetrics(emit)
}
