// Package metrics exposes a running job's counters to Prometheus: rows and
// batches in and out, the watermark and idleness of every subtask of every
// node, read from arrowexec's TaskMetrics at scrape time (no work on the
// data path).
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/riffle-dev/riffle/arrowexec"
)

var (
	rowsIn     = prometheus.NewDesc("riffle_rows_in_total", "Rows received by a subtask (sources: rows read).", []string{"job", "node", "subtask"}, nil)
	rowsOut    = prometheus.NewDesc("riffle_rows_out_total", "Rows emitted by a subtask.", []string{"job", "node", "subtask"}, nil)
	batchesIn  = prometheus.NewDesc("riffle_batches_in_total", "Batches received by a subtask.", []string{"job", "node", "subtask"}, nil)
	batchesOut = prometheus.NewDesc("riffle_batches_out_total", "Batches emitted by a subtask.", []string{"job", "node", "subtask"}, nil)
	bytesIn    = prometheus.NewDesc("riffle_source_bytes_total", "Input bytes consumed by a source subtask.", []string{"job", "node", "subtask"}, nil)
	watermark  = prometheus.NewDesc("riffle_watermark_seconds", "Last watermark forwarded by a subtask (Unix seconds; absent before the first).", []string{"job", "node", "subtask"}, nil)
	idle       = prometheus.NewDesc("riffle_idle", "1 when a subtask told its downstream it is idle (its watermark holds nothing back), else 0.", []string{"job", "node", "subtask"}, nil)
)

// Collector reports the metrics of the jobs set on it.
type Collector struct {
	mu   sync.Mutex
	name string
	job  *arrowexec.Job
}

var _ prometheus.Collector = (*Collector)(nil)

// SetJob makes c report j under the job label name (nil stops reporting).
func (c *Collector) SetJob(name string, j *arrowexec.Job) {
	c.mu.Lock()
	c.name, c.job = name, j
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{rowsIn, rowsOut, batchesIn, batchesOut, bytesIn, watermark, idle} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	name, j := c.name, c.job
	c.mu.Unlock()
	if j == nil {
		return
	}
	for _, n := range j.Graph().Nodes() {
		for i, m := range j.Metrics(n.Name()) {
			labels := []string{name, n.Name(), strconv.Itoa(i)}
			ch <- prometheus.MustNewConstMetric(rowsIn, prometheus.CounterValue, float64(m.RowsIn.Load()), labels...)
			ch <- prometheus.MustNewConstMetric(rowsOut, prometheus.CounterValue, float64(m.RowsOut.Load()), labels...)
			ch <- prometheus.MustNewConstMetric(batchesIn, prometheus.CounterValue, float64(m.BatchesIn.Load()), labels...)
			ch <- prometheus.MustNewConstMetric(batchesOut, prometheus.CounterValue, float64(m.BatchesOut.Load()), labels...)
			if b := m.BytesIn.Load(); b > 0 {
				ch <- prometheus.MustNewConstMetric(bytesIn, prometheus.CounterValue, float64(b), labels...)
			}
			if wm := m.Watermark.Load(); wm != arrowexec.MinWatermark && wm != arrowexec.MaxWatermark {
				ch <- prometheus.MustNewConstMetric(watermark, prometheus.GaugeValue, float64(wm)/1000, labels...)
			}
			isIdle := 0.0
			if m.Idle.Load() {
				isIdle = 1
			}
			ch <- prometheus.MustNewConstMetric(idle, prometheus.GaugeValue, isIdle, labels...)
		}
	}
}

// Serve serves /metrics (riffle's metrics plus the Go runtime's) on addr
// until ctx ends. It returns the address it listens on (useful with port 0).
func Serve(ctx context.Context, addr string, c *Collector, log *slog.Logger) (string, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
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
