// Package metrics exposes a running job to Prometheus, reading at scrape
// time what the job keeps anyway (no work on the data path beyond
// arrowexec's per-batch counters):
//
//   - per node and subtask (labels job, node, subtask): rows, batches and
//     Arrow bytes in and out, input bytes of sources, busy, backpressure
//     and idle seconds, the watermark and idle status, barrier alignment
//     time (arrowexec.TaskMetrics);
//   - per operator input edge (label input, the upstream node): queued
//     messages and queue capacity, the input's watermark and idle status
//     (arrowexec.Job.Inputs);
//   - per source split (label split, a Kafka topic/partition): watermark,
//     idle and finished status (arrowexec.Watermarks.ReportTo);
//   - per job: checkpoints completed, failed, abandoned and skipped, their
//     duration histogram, the last one's size, id, completion time and age
//     (checkpoint.Coordinator.Stats);
//   - whatever a component reports through arrowexec.MetricsReporter:
//     Kafka consumer lag per partition (also of a hybrid source), dead
//     letters by reason class, window late rows and firings, a window
//     subtask's cached windows and state bytes on disk, a hash
//     aggregate subtask's groups and their bytes, file sink parts
//     published, a streaming recommend step's RecommendStats (updates,
//     interactions applied and pending, model size, rows folded in and
//     rolled back, update duration histogram, last update and export,
//     live prequential HR and NDCG at K over the stream and the recent
//     window, serving queries, latency histogram and syncs). Their
//     descriptors are listed in Reported.
//
// Names follow Prometheus conventions: riffle_ prefix, units in the name
// (_seconds, _bytes, _messages), _total for counters. The Go runtime's and
// the process's collectors are served too. Serve listens on the address
// given, on loopback when it names no host; Handler is mounted at /metrics
// on the admin endpoint as well. deploy/grafana/riffle.json is a dashboard
// over these series; its test checks every expression against the
// registry's descriptors.
//
// # Adding series
//
// A Spec, Source, Operator or SourceReader implements
// arrowexec.MetricsReporter; its ReportMetrics is called at scrape time
// from the scraper's goroutine and emits values for descriptors
// (arrowexec.MetricDesc) declared once as package variables. Add the
// package's descriptor list to Reported so they are described up front
// and a dashboard can use them.
package metrics
