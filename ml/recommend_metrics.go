package ml

import (
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
)

// The streaming recommend step's Prometheus series: RecommendStats read
// at scrape time through arrowexec.MetricsReporter (one moment's Stats,
// so the series agree with each other and with GET /status). Labelled job
// and node only: the operator runs as one subtask.

// MetricDescs are the descriptors of the series a streaming recommend
// step reports (internal/metrics lists them).
var MetricDescs = []*arrowexec.MetricDesc{recUpdatesDesc, recFullDesc, recAppliedDesc, recPendingDesc, recPairsDesc, recUsersDesc,
	recItemsDesc, recNewUsersDesc, recNewItemsDesc, recFailedDesc, recUpdateDurDesc, recLastUpdateDesc, recExportVersionDesc,
	recExportTimeDesc, recExportAgeDesc, recPreqHRDesc, recPreqNDCGDesc, recPreqEventsDesc, recPreqWarmDesc, recPreqKDesc,
	recServeQueriesDesc, recServeLatencyDesc, recServeSyncsDesc}

func recDesc(name, help string, kind arrowexec.MetricKind, labels ...string) *arrowexec.MetricDesc {
	return &arrowexec.MetricDesc{Name: name, Help: help, Kind: kind, Labels: labels}
}

var (
	recUpdatesDesc       = recDesc("riffle_recommend_updates_total", "Model updates of the streaming recommend step (incremental applies and full trainings) since its operator opened.", arrowexec.Counter)
	recFullDesc          = recDesc("riffle_recommend_full_trainings_total", "Updates of the streaming recommend step that trained the model in full.", arrowexec.Counter)
	recAppliedDesc       = recDesc("riffle_recommend_interactions_applied_total", "Interactions the streaming recommend step's updates applied to the model.", arrowexec.Counter)
	recPendingDesc       = recDesc("riffle_recommend_pending_interactions", "Interactions accepted and not applied yet (the next update's).", arrowexec.Gauge)
	recPairsDesc         = recDesc("riffle_recommend_pairs", "Distinct (user, item) pairs in the model.", arrowexec.Gauge)
	recUsersDesc         = recDesc("riffle_recommend_users", "Users (rows of user factors) in the model.", arrowexec.Gauge)
	recItemsDesc         = recDesc("riffle_recommend_items", "Items (rows of item factors) in the model.", arrowexec.Gauge)
	recNewUsersDesc      = recDesc("riffle_recommend_new_users_total", "Users folded into the model on first sight.", arrowexec.Counter)
	recNewItemsDesc      = recDesc("riffle_recommend_new_items_total", "Items folded into the model on first sight.", arrowexec.Counter)
	recFailedDesc        = recDesc("riffle_recommend_failed_rows_total", "User and item rows whose update failed numerically and was rolled back.", arrowexec.Counter)
	recUpdateDurDesc     = recDesc("riffle_recommend_update_duration_seconds", "Duration of the streaming recommend step's model updates.", arrowexec.HistogramKind)
	recLastUpdateDesc    = recDesc("riffle_recommend_last_update_timestamp_seconds", "When the last model update ended (Unix seconds; absent before the first).", arrowexec.Gauge)
	recExportVersionDesc = recDesc("riffle_recommend_export_version", "The newest export version published (absent before the first since the operator opened).", arrowexec.Gauge)
	recExportTimeDesc    = recDesc("riffle_recommend_export_timestamp_seconds", "When the newest export version was published (Unix seconds).", arrowexec.Gauge)
	recExportAgeDesc     = recDesc("riffle_recommend_export_age_seconds", "Time since the newest export version was published.", arrowexec.Gauge)
	recPreqHRDesc        = recDesc("riffle_recommend_prequential_hit_ratio", "Live prequential HR@K of the model (over: stream, every warm event; window, the last window ones), or of popularity (model: popularity, over the stream).", arrowexec.Gauge, "model", "over")
	recPreqNDCGDesc      = recDesc("riffle_recommend_prequential_ndcg", "Live prequential NDCG@K, as riffle_recommend_prequential_hit_ratio.", arrowexec.Gauge, "model", "over")
	recPreqEventsDesc    = recDesc("riffle_recommend_prequential_events_total", "Events the live prequential meter classified, by class (below, cold_item, repeat, duplicate, cold_user, warm).", arrowexec.Counter, "class")
	recPreqWarmDesc      = recDesc("riffle_recommend_prequential_scored_events", "Warm events the figures of riffle_recommend_prequential_hit_ratio are over (over: stream or window).", arrowexec.Gauge, "over")
	recPreqKDesc         = recDesc("riffle_recommend_prequential_k", "The cut-off K of the live prequential metrics.", arrowexec.Gauge)
	recServeQueriesDesc  = recDesc("riffle_recommend_serving_queries_total", "Recommend and Similar queries answered from the live model (errors included).", arrowexec.Counter)
	recServeLatencyDesc  = recDesc("riffle_recommend_serving_latency_seconds", "Time of the model work of a serving query (lookup, scoring, top-K; not HTTP).", arrowexec.HistogramKind)
	recServeSyncsDesc    = recDesc("riffle_recommend_serving_syncs_total", "Updates published to the serving copy of the model.", arrowexec.Counter)
)

// updateDurationBounds are the bucket bounds of the update duration
// histogram, in seconds.
var updateDurationBounds = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// ReportMetrics implements arrowexec.MetricsReporter: the series of the
// streaming operator's Stats (nothing for a batch step, or before the
// operator opened).
func (s *RecommendSpec) ReportMetrics(emit func(arrowexec.Metric)) {
	st, ok := s.Stats()
	if !ok {
		return
	}
	v := func(d *arrowexec.MetricDesc, x float64, labels ...string) {
		emit(arrowexec.Metric{Desc: d, Value: x, LabelValues: labels})
	}
	v(recUpdatesDesc, float64(st.Updates))
	v(recFullDesc, float64(st.FullTrainings))
	v(recAppliedDesc, float64(st.Applied))
	v(recPendingDesc, float64(st.Pending))
	v(recPairsDesc, float64(st.Interactions))
	v(recUsersDesc, float64(st.Users))
	v(recItemsDesc, float64(st.Items))
	v(recNewUsersDesc, float64(st.NewUsers))
	v(recNewItemsDesc, float64(st.NewItems))
	v(recFailedDesc, float64(st.FailedRows))
	h := st.UpdateDurations
	emit(arrowexec.Metric{Desc: recUpdateDurDesc, Histogram: &h})
	if !st.LastUpdate.IsZero() {
		v(recLastUpdateDesc, unixSeconds(st.LastUpdate))
	}
	if st.LastExport > 0 {
		v(recExportVersionDesc, float64(st.LastExport))
		v(recExportTimeDesc, unixSeconds(st.LastExportTime))
		v(recExportAgeDesc, time.Since(st.LastExportTime).Seconds())
	}
	if p := st.Prequential; p != nil {
		v(recPreqKDesc, float64(p.K))
		v(recPreqHRDesc, p.HR, "model", "stream")
		v(recPreqNDCGDesc, p.NDCG, "model", "stream")
		v(recPreqHRDesc, p.Popularity.HR(), "popularity", "stream")
		v(recPreqNDCGDesc, p.Popularity.NDCG(), "popularity", "stream")
		v(recPreqWarmDesc, float64(p.Model.Events), "stream")
		if p.Window > 0 {
			v(recPreqHRDesc, p.RecentHR, "model", "window")
			v(recPreqNDCGDesc, p.RecentNDCG, "model", "window")
			v(recPreqWarmDesc, float64(p.Recent.Events), "window")
		}
		c := p.Counts
		for _, x := range []struct {
			class string
			n     int64
		}{{"below", c.Below}, {"cold_item", c.ColdItems}, {"repeat", c.Repeats}, {"duplicate", c.Duplicates}, {"cold_user", c.ColdUsers}, {"warm", c.Warm}} {
			v(recPreqEventsDesc, float64(x.n), x.class)
		}
	}
	if l := st.Serving; l != nil {
		v(recServeQueriesDesc, float64(l.Queries))
		v(recServeSyncsDesc, float64(l.Syncs))
		lh := l.LatencyHistogram()
		emit(arrowexec.Metric{Desc: recServeLatencyDesc, Histogram: &lh})
	}
}

// LatencyHistogram returns the query latencies as a histogram in seconds
// (bounds LiveLatencyBuckets; its count is the sum of the buckets).
func (l LiveStats) LatencyHistogram() arrowexec.HistogramSnapshot {
	h := arrowexec.HistogramSnapshot{Bounds: make([]float64, len(LiveLatencyBuckets)), Cumulative: make([]uint64, len(LiveLatencyBuckets)),
		Sum: l.LatencySum.Seconds()}
	for j, b := range LiveLatencyBuckets {
		h.Bounds[j] = b.Seconds()
	}
	var c uint64
	for j, n := range l.Latency {
		c += n
		if j < len(h.Cumulative) {
			h.Cumulative[j] = c
		}
	}
	h.Count = c
	return h
}
