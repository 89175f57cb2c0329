package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/deadletter"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/sinks"
	"github.com/riffle-dev/riffle/sources/kafka"
	"github.com/riffle-dev/riffle/windows"
)

var (
	subtaskLabels = []string{"job", "node", "subtask"}
	inputLabels   = []string{"job", "node", "subtask", "input"}
	splitLabels   = []string{"job", "node", "subtask", "split"}
	jobLabels     = []string{"job"}

	rowsIn       = prometheus.NewDesc("riffle_rows_in_total", "Rows received by a subtask (sources: rows read).", subtaskLabels, nil)
	rowsOut      = prometheus.NewDesc("riffle_rows_out_total", "Rows emitted by a subtask.", subtaskLabels, nil)
	batchesIn    = prometheus.NewDesc("riffle_batches_in_total", "Batches received by a subtask (sources: batches read).", subtaskLabels, nil)
	batchesOut   = prometheus.NewDesc("riffle_batches_out_total", "Batches emitted by a subtask.", subtaskLabels, nil)
	bytesIn      = prometheus.NewDesc("riffle_bytes_in_total", "Bytes of the Arrow buffers of the batches a subtask received (sources: read).", subtaskLabels, nil)
	bytesOut     = prometheus.NewDesc("riffle_bytes_out_total", "Bytes of the Arrow buffers of the batches a subtask emitted.", subtaskLabels, nil)
	sourceBytes  = prometheus.NewDesc("riffle_source_bytes_total", "Input bytes consumed by a source subtask (file bytes, Kafka keys and values).", subtaskLabels, nil)
	busy         = prometheus.NewDesc("riffle_busy_seconds_total", "Time a subtask spent working (processing, reading data, snapshots).", subtaskLabels, nil)
	backpressure = prometheus.NewDesc("riffle_backpressure_seconds_total", "Time a subtask spent blocked on a full downstream queue.", subtaskLabels, nil)
	idleTime     = prometheus.NewDesc("riffle_idle_seconds_total", "Time a subtask spent waiting for input (sources: reads that returned no data).", subtaskLabels, nil)
	watermark    = prometheus.NewDesc("riffle_watermark_seconds", "Last watermark forwarded by a subtask (Unix seconds; absent before the first).", subtaskLabels, nil)
	idle         = prometheus.NewDesc("riffle_idle", "1 when a subtask told its downstream it is idle (its watermark holds nothing back), else 0.", subtaskLabels, nil)
	alignTotal   = prometheus.NewDesc("riffle_checkpoint_alignment_seconds_total", "Time from a checkpoint barrier's first arrival at a subtask to its arrival on every input, summed.", subtaskLabels, nil)
	alignments   = prometheus.NewDesc("riffle_checkpoint_alignments_total", "Checkpoint barriers a subtask aligned.", subtaskLabels, nil)
	alignLast    = prometheus.NewDesc("riffle_checkpoint_last_alignment_seconds", "The newest barrier alignment's duration at a subtask.", subtaskLabels, nil)

	queued      = prometheus.NewDesc("riffle_input_queue_messages", "Messages waiting in the queues of one input edge of a subtask (input: the upstream node).", inputLabels, nil)
	queueCap    = prometheus.NewDesc("riffle_input_queue_capacity_messages", "Capacity of the queues of one input edge of a subtask.", inputLabels, nil)
	inputWM     = prometheus.NewDesc("riffle_input_watermark_seconds", "Watermark of one input edge of a subtask: the minimum over its channels that are not idle (Unix seconds; absent before the first).", inputLabels, nil)
	inputIdle   = prometheus.NewDesc("riffle_input_idle", "1 when every channel of an input edge of a subtask is idle, else 0.", inputLabels, nil)
	splitWM     = prometheus.NewDesc("riffle_source_split_watermark_seconds", "Watermark of one split of a source subtask (a Kafka partition; Unix seconds; absent before its first row).", splitLabels, nil)
	splitIdle   = prometheus.NewDesc("riffle_source_split_idle", "1 when a split of a source subtask delivered nothing for the idle timeout, else 0.", splitLabels, nil)
	splitFinish = prometheus.NewDesc("riffle_source_split_finished", "1 when a split of a source subtask ended, else 0.", splitLabels, nil)

	ckCompleted = prometheus.NewDesc("riffle_checkpoints_completed_total", "Checkpoints (and savepoints) completed.", jobLabels, nil)
	ckFailed    = prometheus.NewDesc("riffle_checkpoints_failed_total", "Checkpoints whose files could not be written.", jobLabels, nil)
	ckAbandoned = prometheus.NewDesc("riffle_checkpoints_abandoned_total", "Checkpoints abandoned (timed out).", jobLabels, nil)
	ckSkipped   = prometheus.NewDesc("riffle_checkpoints_skipped_total", "Checkpoint triggers skipped because one was in flight.", jobLabels, nil)
	ckDuration  = prometheus.NewDesc("riffle_checkpoint_duration_seconds", "Duration of completed checkpoints, trigger to complete.", jobLabels, nil)
	ckSize      = prometheus.NewDesc("riffle_checkpoint_last_size_bytes", "Size of the last completed checkpoint.", jobLabels, nil)
	ckLastID    = prometheus.NewDesc("riffle_checkpoint_last_id", "Id of the last completed checkpoint.", jobLabels, nil)
	ckLastTime  = prometheus.NewDesc("riffle_checkpoint_last_completed_timestamp_seconds", "When the last checkpoint completed (Unix seconds).", jobLabels, nil)
	ckLastAge   = prometheus.NewDesc("riffle_checkpoint_last_age_seconds", "Time since the last checkpoint completed.", jobLabels, nil)

	fixed = []*prometheus.Desc{rowsIn, rowsOut, batchesIn, batchesOut, bytesIn, bytesOut, sourceBytes, busy, backpressure, idleTime,
		watermark, idle, alignTotal, alignments, alignLast, queued, queueCap, inputWM, inputIdle, splitWM, splitIdle, splitFinish,
		ckCompleted, ckFailed, ckAbandoned, ckSkipped, ckDuration, ckSize, ckLastID, ckLastTime, ckLastAge}
)

// Reported lists the descriptors of the series riffle's components
// contribute through arrowexec.MetricsReporter. The collector describes
// them up front (dashboards are checked against them); a component adds
// its package's list here. A reported series not listed is exported all
// the same.
var Reported = concat(windows.MetricDescs, agg.MetricDescs, kafka.MetricDescs, sinks.MetricDescs, deadletter.MetricDescs, ml.MetricDescs)

func concat(lists ...[]*arrowexec.MetricDesc) []*arrowexec.MetricDesc {
	var out []*arrowexec.MetricDesc
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Collector reports the metrics of the job set on it (and of its
// checkpoint coordinator), read at scrape time: arrowexec's TaskMetrics
// and input queues, the coordinator's Stats, and every MetricsReporter of
// the job.
type Collector struct {
	mu    sync.Mutex
	name  string
	job   *arrowexec.Job
	coord *checkpoint.Coordinator

	descMu sync.Mutex
	descs  map[*arrowexec.MetricDesc]*prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// SetJob makes c report j under the job label name (nil stops reporting).
func (c *Collector) SetJob(name string, j *arrowexec.Job) {
	c.mu.Lock()
	c.name, c.job = name, j
	c.mu.Unlock()
}

// SetCoordinator makes c report co's checkpoints (nil stops).
func (c *Collector) SetCoordinator(co *checkpoint.Coordinator) {
	c.mu.Lock()
	c.coord = co
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range fixed {
		ch <- d
	}
	for _, md := range Reported {
		ch <- c.desc(md)
	}
}

// desc returns the Prometheus descriptor of a reported series.
func (c *Collector) desc(md *arrowexec.MetricDesc) *prometheus.Desc {
	c.descMu.Lock()
	defer c.descMu.Unlock()
	if d, ok := c.descs[md]; ok {
		return d
	}
	labels := []string{"job", "node"}
	if md.PerSubtask {
		labels = append(labels, "subtask")
	}
	d := prometheus.NewDesc(md.Name, md.Help, append(labels, md.Labels...), nil)
	if c.descs == nil {
		c.descs = map[*arrowexec.MetricDesc]*prometheus.Desc{}
	}
	c.descs[md] = d
	return d
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func seconds(nanos int64) float64 { return float64(nanos) / 1e9 }

// wmSeconds reports whether wm is a real watermark, and it in Unix seconds.
func wmSeconds(wm int64) (float64, bool) {
	return float64(wm) / 1000, wm != arrowexec.MinWatermark && wm != arrowexec.MaxWatermark
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	name, j, co := c.name, c.job, c.coord
	c.mu.Unlock()
	if co != nil {
		collectCheckpoints(ch, name, co.Stats())
	}
	if j == nil {
		return
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, n := range j.Graph().Nodes() {
		inputs := j.Inputs(n.Name())
		for i, m := range j.Metrics(n.Name()) {
			sub := strconv.Itoa(i)
			labels := []string{name, n.Name(), sub}
			counter(rowsIn, float64(m.RowsIn.Load()), labels...)
			counter(rowsOut, float64(m.RowsOut.Load()), labels...)
			counter(batchesIn, float64(m.BatchesIn.Load()), labels...)
			counter(batchesOut, float64(m.BatchesOut.Load()), labels...)
			counter(bytesIn, float64(m.ArrowBytesIn.Load()), labels...)
			counter(bytesOut, float64(m.ArrowBytesOut.Load()), labels...)
			if n.IsSource() {
				counter(sourceBytes, float64(m.BytesIn.Load()), labels...)
			}
			counter(busy, seconds(m.BusyNanos.Load()), labels...)
			counter(backpressure, seconds(m.BackpressureNanos.Load()), labels...)
			counter(idleTime, seconds(m.IdleNanos.Load()), labels...)
			if wm, ok := wmSeconds(m.Watermark.Load()); ok {
				gauge(watermark, wm, labels...)
			}
			gauge(idle, boolValue(m.Idle.Load()), labels...)
			if !n.IsSource() {
				counter(alignTotal, seconds(m.AlignmentNanos.Load()), labels...)
				counter(alignments, float64(m.Alignments.Load()), labels...)
				gauge(alignLast, seconds(m.LastAlignmentNanos.Load()), labels...)
			}
			for _, sp := range m.Splits() {
				sl := []string{name, n.Name(), sub, sp.Split}
				if wm, ok := wmSeconds(sp.Watermark.Load()); ok {
					gauge(splitWM, wm, sl...)
				}
				gauge(splitIdle, boolValue(sp.Idle.Load()), sl...)
				gauge(splitFinish, boolValue(sp.Finished.Load()), sl...)
			}
			if i < len(inputs) {
				for _, in := range inputs[i] {
					il := []string{name, n.Name(), sub, inputLabel(inputs[i], in)}
					gauge(queued, float64(in.Queued), il...)
					gauge(queueCap, float64(in.Capacity), il...)
					if wm, ok := wmSeconds(in.Watermark); ok {
						gauge(inputWM, wm, il...)
					}
					gauge(inputIdle, boolValue(in.Idle), il...)
				}
			}
		}
	}
	j.ReportMetrics(func(node string, subtask int, m arrowexec.Metric) {
		ch <- c.reported(name, node, subtask, m)
	})
}

// inputLabel is the input label of an input edge: the upstream node, with
// "#edge" when two edges come from the same node.
func inputLabel(all []arrowexec.InputStatus, in arrowexec.InputStatus) string {
	for _, o := range all {
		if o.Edge != in.Edge && o.From == in.From {
			return in.From + "#" + strconv.Itoa(in.Edge)
		}
	}
	return in.From
}

// reported converts a series a component reported.
func (c *Collector) reported(job, node string, subtask int, m arrowexec.Metric) prometheus.Metric {
	if m.Desc == nil {
		return prometheus.NewInvalidMetric(prometheus.NewInvalidDesc(errors.New("metrics: reported series without a descriptor")), fmt.Errorf("node %s", node))
	}
	d := c.desc(m.Desc)
	labels := []string{job, node}
	if m.Desc.PerSubtask != (subtask >= 0) {
		return prometheus.NewInvalidMetric(d, fmt.Errorf("metrics: %s: PerSubtask is %v, reported by node %s subtask %d", m.Desc.Name, m.Desc.PerSubtask, node, subtask))
	}
	if subtask >= 0 {
		labels = append(labels, strconv.Itoa(subtask))
	}
	labels = append(labels, m.LabelValues...)
	var (
		pm  prometheus.Metric
		err error
	)
	switch m.Desc.Kind {
	case arrowexec.Counter:
		pm, err = prometheus.NewConstMetric(d, prometheus.CounterValue, m.Value, labels...)
	case arrowexec.Gauge:
		pm, err = prometheus.NewConstMetric(d, prometheus.GaugeValue, m.Value, labels...)
	case arrowexec.HistogramKind:
		if m.Histogram == nil {
			err = fmt.Errorf("metrics: %s: histogram without a value", m.Desc.Name)
			break
		}
		pm, err = constHistogram(d, *m.Histogram, labels...)
	default:
		err = fmt.Errorf("metrics: %s: unknown kind %d", m.Desc.Name, m.Desc.Kind)
	}
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return pm
}

func constHistogram(d *prometheus.Desc, h arrowexec.HistogramSnapshot, labels ...string) (prometheus.Metric, error) {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Cumulative[i]
	}
	return prometheus.NewConstHistogram(d, h.Count, h.Sum, buckets, labels...)
}

func collectCheckpoints(ch chan<- prometheus.Metric, name string, s checkpoint.Stats) {
	ch <- prometheus.MustNewConstMetric(ckCompleted, prometheus.CounterValue, float64(s.Completed), name)
	ch <- prometheus.MustNewConstMetric(ckFailed, prometheus.CounterValue, float64(s.Failed), name)
	ch <- prometheus.MustNewConstMetric(ckAbandoned, prometheus.CounterValue, float64(s.Abandoned), name)
	ch <- prometheus.MustNewConstMetric(ckSkipped, prometheus.CounterValue, float64(s.Skipped), name)
	if h, err := constHistogram(ckDuration, s.Durations, name); err == nil {
		ch <- h
	} else {
		ch <- prometheus.NewInvalidMetric(ckDuration, err)
	}
	if s.Completed > 0 {
		ch <- prometheus.MustNewConstMetric(ckSize, prometheus.GaugeValue, float64(s.LastBytes), name)
		ch <- prometheus.MustNewConstMetric(ckLastID, prometheus.GaugeValue, float64(s.LastID), name)
		ch <- prometheus.MustNewConstMetric(ckLastTime, prometheus.GaugeValue, float64(s.LastCompleted.UnixNano())/1e9, name)
		ch <- prometheus.MustNewConstMetric(ckLastAge, prometheus.GaugeValue, time.Since(s.LastCompleted).Seconds(), name)
	}
}

// served returns the collectors /metrics serves: c and the Go runtime's
// and process's.
func served(c *Collector) []prometheus.Collector {
	return []prometheus.Collector{c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
}

// Registry returns a registry with the collectors /metrics serves.
func Registry(c *Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(served(c)...)
	return reg
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// DescribedNames returns the names of every series the collectors of
// /metrics describe (the registry's descriptors): what a dashboard may
// query.
func DescribedNames(c *Collector) []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, col := range served(c) {
			col.Describe(ch)
		}
		close(ch)
	}()
	var names []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// Handler serves c's registry (Registry) in the Prometheus text format:
// mount it at /metrics (the admin endpoint does).
func Handler(c *Collector) http.Handler {
	return promhttp.HandlerFor(Registry(c), promhttp.HandlerOpts{})
}

// ListenAddr returns addr with an empty host made loopback: ":9464"
// listens on 127.0.0.1:9464; other interfaces must be named
// ("0.0.0.0:9464").
func ListenAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// Serve serves /metrics (riffle's metrics plus the Go runtime's) on addr
// (ListenAddr: loopback when addr names no host) until ctx ends. It
// returns the address it listens on (useful with port 0).
func Serve(ctx context.Context, addr string, c *Collector, log *slog.Logger) (string, error) {
	addr = ListenAddr(addr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", Handler(c))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	return ln.Addr().String(), nil
}
