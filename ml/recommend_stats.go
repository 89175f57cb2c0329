package ml

import (
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
)

// RecommendStats describe the model of a running streaming recommend
// operator: what it learned, what it exported, how well it predicts the
// stream (prequential) and what it served. riffle run's GET /status
// reports them for the recommend step; RecommendSpec.ReportMetrics as
// Prometheus series (RecommendSpec.Stats). Counts are since the operator
// opened (a restore starts them again), except Interactions, Pairs, Users
// and Items, which describe the model, and Prequential, which a restore
// continues from the checkpoint's.
type RecommendStats struct {
	// Updates counts the model updates (incremental applies and full
	// trainings; FullTrainings of them full); Applied the interactions
	// they applied.
	Updates       int64 `json:"updates"`
	FullTrainings int64 `json:"full_trainings"`
	Applied       int64 `json:"interactions_applied"`
	// Pending counts the interactions accepted and not applied yet (the
	// next update's).
	Pending int64 `json:"pending"`
	// Interactions is the model's number of distinct (user, item) pairs;
	// Users and Items its rows.
	Interactions int64 `json:"distinct_pairs"`
	Users        int   `json:"users"`
	Items        int   `json:"items"`
	// NewUsers and NewItems count the rows folded in on first sight.
	NewUsers int64 `json:"new_users"`
	NewItems int64 `json:"new_items"`
	// FailedRows counts the rows whose update failed numerically and was
	// rolled back.
	FailedRows int64 `json:"failed_rows"`
	// LastUpdate is when the last update ended, LastUpdateDuration what it
	// took (the zero values before the first).
	LastUpdate         time.Time     `json:"last_update,omitzero"`
	LastUpdateDuration time.Duration `json:"last_update_duration_ns"`
	// UpdateTime is the total time of the updates, MaxUpdateDuration the
	// longest.
	UpdateTime        time.Duration `json:"update_time_ns"`
	MaxUpdateDuration time.Duration `json:"max_update_duration_ns"`
	// UpdateDurations is the histogram of the updates' durations in
	// seconds (riffle_recommend_update_duration_seconds).
	UpdateDurations arrowexec.HistogramSnapshot `json:"-"`
	// LastExport is the newest export version published and when
	// (0 and the zero time: none since the operator opened).
	LastExport     int64     `json:"last_export_version"`
	LastExportTime time.Time `json:"last_export_time,omitzero"`
	// Prequential is the live prequential metric (UpdateOptions.
	// Prequential), nil when off.
	Prequential *PrequentialStats `json:"prequential,omitempty"`
	// Serving is the serving copy's statistics (Live.Stats), nil when the
	// step does not serve.
	Serving *LiveStats `json:"serving,omitempty"`
}

// PrequentialStats are a live prequential meter's figures: every event of
// each incremental update is classified and the warm ones scored against
// the model just before the update applies them (PrequentialMeter). The
// events of the first training are not scored (there is no model yet).
type PrequentialStats struct {
	K      int               `json:"k"`
	Window int               `json:"window,omitempty"`
	Counts PrequentialCounts `json:"counts"`
	// Model is the model's figures over every warm event since the
	// operator opened, Recent over the last Window of them, Popularity
	// popularity's on the same events.
	Model      PrequentialFigures `json:"model"`
	Recent     PrequentialFigures `json:"recent"`
	Popularity PrequentialFigures `json:"popularity"`
	// HR and NDCG are Model's means, RecentHR and RecentNDCG Recent's.
	HR         float64 `json:"hr"`
	NDCG       float64 `json:"ndcg"`
	RecentHR   float64 `json:"recent_hr"`
	RecentNDCG float64 `json:"recent_ndcg"`
}

func prequentialStats(m *PrequentialMeter) *PrequentialStats {
	o := m.Options()
	p := &PrequentialStats{K: o.K, Window: o.Window, Counts: m.Counts(), Model: m.Model(0), Recent: m.Recent(0), Popularity: m.Popularity()}
	p.HR, p.NDCG = p.Model.HR(), p.Model.NDCG()
	p.RecentHR, p.RecentNDCG = p.Recent.HR(), p.Recent.NDCG()
	return p
}

// Stats returns the statistics of the running streaming operator of the
// step (the newest run's), false for a batch step or before the operator
// opened. Safe to call from any goroutine.
func (s *RecommendSpec) Stats() (RecommendStats, bool) {
	s.mu.Lock()
	st, ok, live := s.stats, s.streaming, s.live
	s.mu.Unlock()
	if !ok {
		return RecommendStats{}, false
	}
	if st.Prequential != nil {
		p := *st.Prequential
		st.Prequential = &p
	}
	if live != nil {
		ls := live.Stats()
		st.Serving = &ls
	}
	return st, true
}

// publishStats hands the operator's statistics to its spec (Stats).
func (o *streamOp) publishStats() {
	st := o.stats
	st.Interactions = o.online.NumInteractions()
	st.Users, st.Items = o.online.NumUsers(), o.online.NumItems()
	st.FailedRows = o.failed
	st.Pending = int64(len(o.pend))
	st.UpdateDurations = o.updHist.Snapshot()
	if o.meter != nil {
		st.Prequential = prequentialStats(o.meter)
	}
	o.s.mu.Lock()
	o.s.stats, o.s.streaming = st, true
	o.s.mu.Unlock()
}
