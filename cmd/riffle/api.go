package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/job"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/windows"
)

// The JSON API under /api/ on the admin address, behind the web view and
// 'riffle status'. docs/API.md documents every route and field; keep it
// true when changing one here.

// apiTime is an event time or watermark: milliseconds (null for none and
// for the end of input) and a readable form ("none", "end" or RFC 3339).
type apiTime struct {
	MS   *int64 `json:"ms"`
	Text string `json:"text"`
}

func eventTime(ms int64) apiTime {
	t := apiTime{Text: checkpoint.FormatWatermark(ms)}
	if ms != arrowexec.MinWatermark && ms != arrowexec.MaxWatermark {
		t.MS = &ms
		t.Text = time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return t
}

// apiJob is GET /api/job.
type apiJob struct {
	Job     string `json:"job"`
	Running bool   `json:"running"`
	// Ended says the job finished (its input ended, it was stopped, or it
	// failed: Error); the endpoint answers until the process exits.
	Ended         bool       `json:"ended"`
	Error         string     `json:"error,omitempty"`
	Bounded       bool       `json:"bounded"`
	Checkpointed  bool       `json:"checkpointed"`
	Serving       bool       `json:"serving"`
	TokenRequired bool       `json:"token_required"`
	UptimeSeconds float64    `json:"uptime_seconds"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorTime *time.Time `json:"last_error_time,omitempty"`
}

// apiGraph is GET /api/graph.
type apiGraph struct {
	At string `json:"at"`
	// RateWindowSeconds is the interval the rates are measured over.
	RateWindowSeconds float64   `json:"rate_window_seconds"`
	Nodes             []apiNode `json:"nodes"`
	Edges             []apiEdge `json:"edges"`
}

type apiNode struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"` // source, operator or sink
	Parallelism int    `json:"parallelism"`
	// Chain names the first node of the chain this node runs in (operator
	// chaining: one goroutine per subtask for the whole chain, whose busy
	// time the head's subtasks count); the node itself when it heads one
	// or is chained to nothing.
	Chain string `json:"chain"`
	// State is the node's: backpressured when a subtask is, else busy
	// when one is, else idle. The ratios are the means of its subtasks'.
	State             string       `json:"state"`
	BusyRatio         float64      `json:"busy_ratio"`
	BackpressureRatio float64      `json:"backpressure_ratio"`
	IdleRatio         float64      `json:"idle_ratio"`
	RowsIn            int64        `json:"rows_in"`
	RowsOut           int64        `json:"rows_out"`
	RowsInRate        float64      `json:"rows_in_per_s"`
	RowsOutRate       float64      `json:"rows_out_per_s"`
	Watermark         apiTime      `json:"watermark"`
	Subtasks          []apiSubtask `json:"subtasks"`
}

type apiSubtask struct {
	Subtask     int     `json:"subtask"`
	State       string  `json:"state"`
	RowsIn      int64   `json:"rows_in"`
	RowsOut     int64   `json:"rows_out"`
	BatchesIn   int64   `json:"batches_in"`
	BatchesOut  int64   `json:"batches_out"`
	BytesIn     int64   `json:"bytes_in,omitempty"`
	RowsInRate  float64 `json:"rows_in_per_s"`
	RowsOutRate float64 `json:"rows_out_per_s"`
	OutputFill  float64 `json:"output_queue_fill"`
	Watermark   apiTime `json:"watermark"`
	Idle        bool    `json:"idle"`
	// BusySeconds, BackpressureSeconds and IdleSeconds are the subtask's
	// wall time so far (arrowexec.TaskMetrics); the ratios their shares
	// over the rate window, which State is read from.
	BusySeconds         float64 `json:"busy_seconds"`
	BackpressureSeconds float64 `json:"backpressure_seconds"`
	IdleSeconds         float64 `json:"idle_seconds"`
	BusyRatio           float64 `json:"busy_ratio"`
	BackpressureRatio   float64 `json:"backpressure_ratio"`
	IdleRatio           float64 `json:"idle_ratio"`
}

type apiEdge struct {
	From     string   `json:"from"`
	To       string   `json:"to"`
	Input    int      `json:"input"`
	Exchange string   `json:"exchange"` // forward, rebalance, broadcast or hash
	Keys     []string `json:"keys,omitempty"`
}

// Subtask states, from the runtime's split of each subtask's wall time
// (arrowexec.TaskMetrics.Times: busy, blocked on a full downstream queue,
// waiting for input) over the last rate window (before two samples: since
// the subtask started): the largest share names the state, backpressure
// winning a tie over busy, busy over idle. Time of the window the
// counters do not hold yet (a send blocked on a full queue, or work, in
// progress) counts as backpressure when an output queue of the subtask is
// full at the second sample, else as busy.
const (
	stateBusy          = "busy"
	stateBackpressured = "backpressured"
	stateIdle          = "idle"
)

// subtaskTimes is one reading of a subtask's time counters (ns).
type subtaskTimes struct {
	busy, bp, idle int64
	blocked        bool // an output queue was full
}

func readTimes(m *arrowexec.TaskMetrics, now time.Time, blocked bool) subtaskTimes {
	b, p, i := m.Times(now)
	return subtaskTimes{busy: b, bp: p, idle: i, blocked: blocked}
}

// timeShares returns the busy, backpressured and idle shares of the
// wall time between two readings of a subtask (from nil: since it
// started, wall unknown).
func timeShares(from *subtaskTimes, to subtaskTimes, wall time.Duration) (busy, bp, idle float64) {
	d := [3]float64{float64(to.busy), float64(to.bp), float64(to.idle)}
	if from != nil {
		d[0] -= float64(from.busy)
		d[1] -= float64(from.bp)
		d[2] -= float64(from.idle)
	}
	var sum float64
	for k := range d {
		d[k] = max(d[k], 0)
		sum += d[k]
	}
	if from != nil {
		if rest := float64(wall) - sum; rest > 0 {
			if to.blocked {
				d[1] += rest
			} else {
				d[0] += rest
			}
			sum += rest
		}
	}
	if sum == 0 {
		return 0, 0, 0
	}
	return share(d[0], sum), share(d[1], sum), share(d[2], sum)
}

// share is part/whole rounded to 1e-4 (shorter to encode and to read).
func share(part, whole float64) float64 { return math.Round(part/whole*1e4) / 1e4 }

// toSeconds returns nanoseconds as seconds rounded to the millisecond.
func toSeconds(nanos int64) float64 { return float64(nanos/1e6) / 1e3 }

func subtaskState(busy, bp, idle float64) string {
	switch {
	case bp > 0 && bp >= busy && bp >= idle:
		return stateBackpressured
	case busy > 0 && busy >= idle:
		return stateBusy
	}
	return stateIdle
}

// apiWatermarks is GET /api/watermarks.
type apiWatermarks struct {
	Sources   []apiSourceSplit   `json:"sources"`
	Operators []apiOperatorInput `json:"operators"`
	Windows   []apiWindow        `json:"windows"`
}

// apiSourceSplit is one split of a source: a Kafka partition, or a
// source subtask (a Parquet or text source's split of the files).
type apiSourceSplit struct {
	Node    string `json:"node"`
	Subtask int    `json:"subtask"`
	// Split names it: topic/partition, or node/subtask.
	Split string `json:"split"`
	Kind  string `json:"kind"` // kafka-partition or source-subtask
	// MaxEventTime is the largest event time read (Kafka partitions).
	MaxEventTime *apiTime `json:"max_event_time,omitempty"`
	// Watermark is what the split allows: for a partition its largest
	// event time minus the out-of-orderness bound minus 1 ms.
	Watermark apiTime `json:"watermark"`
	Idle      bool    `json:"idle"`
	// QuietSeconds is how long the split has been without a message
	// (Kafka: since its last message or, without one, since its reading
	// began).
	QuietSeconds *float64 `json:"quiet_seconds,omitempty"`
	Offset       *int64   `json:"offset,omitempty"`
	Lag          *int64   `json:"lag,omitempty"`
}

// apiOperatorInput is one input (edge) of an operator subtask: the
// minimum watermark over its channels from the upstream subtasks that are
// neither idle nor ended, and the upstream subtask holding it.
type apiOperatorInput struct {
	Node    string `json:"node"`
	Subtask int    `json:"subtask"`
	Input   int    `json:"input"`
	From    string `json:"from"`
	// Channels counts the upstream subtasks sending on this input.
	Channels int `json:"channels"`
	// SlowestSubtask is the upstream subtask with the minimum watermark
	// (-1 when every channel is idle or ended).
	SlowestSubtask int     `json:"slowest_subtask"`
	Watermark      apiTime `json:"watermark"`
	// Idle: every channel not ended is idle; Ended: every channel ended.
	Idle  bool `json:"idle"`
	Ended bool `json:"ended"`
}

// apiWindow answers "why has this window not fired yet?" for one window
// node: its earliest pending window over the subtasks, the watermark of
// that subtask, and what holds that watermark back.
type apiWindow struct {
	Node    string `json:"node"`
	Pending bool   `json:"pending"`
	// Subtask is the subtask whose window ends first.
	Subtask            int     `json:"subtask"`
	EarliestPendingEnd apiTime `json:"earliest_pending_end"`
	Watermark          apiTime `json:"watermark"`
	// HeldBy is the chain from the window subtask's slowest input back to
	// the source split with the minimum watermark.
	HeldBy []apiHold `json:"held_by,omitempty"`
	// Split is the source split holding the watermark back, when known.
	Split *apiSourceSplit `json:"split,omitempty"`
	// Answer says it in a sentence.
	Answer string `json:"answer"`
}

type apiHold struct {
	Node      string  `json:"node"`
	Subtask   int     `json:"subtask"`
	Input     int     `json:"input"`
	Watermark apiTime `json:"watermark"`
}

// apiCheckpoints is GET /api/checkpoints.
type apiCheckpoints struct {
	Checkpointed bool            `json:"checkpointed"`
	Dir          string          `json:"dir,omitempty"`
	Interval     string          `json:"interval,omitempty"`
	Completed    int64           `json:"completed"`
	Failed       int64           `json:"failed"`
	Abandoned    int64           `json:"abandoned"`
	Skipped      int64           `json:"skipped"`
	Savepoints   int64           `json:"savepoints_taken"`
	History      []apiCheckpoint `json:"history"`
}

type apiCheckpoint struct {
	ID          uint64    `json:"id"`
	Savepoint   bool      `json:"savepoint"`
	Path        string    `json:"path"`
	Started     time.Time `json:"started"`
	DurationMS  float64   `json:"duration_ms"`
	AlignmentMS float64   `json:"alignment_ms"`
	Bytes       int64     `json:"bytes"`
	Status      string    `json:"status"`
	Error       string    `json:"error,omitempty"`
}

// apiRecommender is GET /api/recommender.
type apiRecommender struct {
	Serving      bool   `json:"serving"`
	ModelVersion int64  `json:"model_version"`
	Updates      uint64 `json:"updates"`
	// UpdatesPerSecond is over the last rate window.
	UpdatesPerSecond float64 `json:"updates_per_s"`
	Users            int     `json:"users"`
	Items            int     `json:"items"`
	Interactions     int64   `json:"interactions"`
	Lookup           string  `json:"lookup,omitempty"`
	// Stats are the streaming recommend step's figures (ml.RecommendStats:
	// updates, exports, the live prequential metric, serving latencies).
	Stats *ml.RecommendStats `json:"stats,omitempty"`
	// PrequentialCurve is the live prequential metric over time, oldest
	// first (preqCurve).
	PrequentialCurve []preqPoint `json:"prequential_curve,omitempty"`
}

// preqPoint is one sample of the live prequential figures.
type preqPoint struct {
	At time.Time `json:"at"`
	// Events counts the events the meter classified, Warm those it
	// scored (HR and NDCG are over them), Recent the ones of the window
	// (RecentHR and RecentNDCG).
	Events       int64   `json:"events"`
	Warm         int64   `json:"warm"`
	Recent       int64   `json:"recent"`
	HR           float64 `json:"hr"`
	NDCG         float64 `json:"ndcg"`
	RecentHR     float64 `json:"recent_hr"`
	RecentNDCG   float64 `json:"recent_ndcg"`
	PopularityHR float64 `json:"popularity_hr"`
	seq          int64   // its number among the points offered (preqCurve)
}

// preqCurve samples the live prequential figures for the web view and
// 'riffle status': the sampler offers a point when the meter saw new
// events (once it scored one). Every stride-th point is kept, and the
// newest; when more than curvePoints are kept the stride doubles, so the
// curve spans the whole run, evenly spaced, at a resolution that halves
// as it grows.
type preqCurve struct {
	mu     sync.Mutex
	pts    []preqPoint // the points whose sample number is a multiple of stride
	newest *preqPoint  // the newest point, when not in pts
	seq    int64       // points offered
	stride int64
}

const curvePoints = 512

func (c *preqCurve) add(at time.Time, p *ml.PrequentialStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.Model.Events == 0 || c.seq > 0 && c.lastEvents() == p.Counts.Events {
		return // nothing scored yet, or nothing new
	}
	if c.stride == 0 {
		c.stride = 1
	}
	pt := preqPoint{At: at.UTC(), Events: p.Counts.Events, Warm: p.Model.Events, Recent: p.Recent.Events,
		HR: p.HR, NDCG: p.NDCG, RecentHR: p.RecentHR, RecentNDCG: p.RecentNDCG, PopularityHR: p.Popularity.HR(), seq: c.seq}
	c.seq++
	if pt.seq%c.stride != 0 {
		c.newest = &pt
		return
	}
	c.pts, c.newest = append(c.pts, pt), nil
	if len(c.pts) > curvePoints {
		c.stride *= 2
		k := 0
		for _, q := range c.pts {
			if q.seq%c.stride == 0 {
				c.pts[k] = q
				k++
			}
		}
		if last := c.pts[len(c.pts)-1]; last.seq%c.stride != 0 {
			c.newest = &last
		}
		c.pts = c.pts[:k]
	}
}

func (c *preqCurve) lastEvents() int64 {
	if c.newest != nil {
		return c.newest.Events
	}
	return c.pts[len(c.pts)-1].Events
}

// points returns the curve, oldest first.
func (c *preqCurve) points() []preqPoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.pts)
	if c.newest != nil {
		out = append(out, *c.newest)
	}
	return out
}

// apiError is every error answer of the API.
type apiError struct {
	Error string `json:"error"`
}

// sample is one reading of every subtask's row and time counters.
type sample struct {
	at      time.Time
	in, out map[string][]int64        // by node, per subtask
	times   map[string][]subtaskTimes // by node, per subtask
	updates uint64
}

// rates keeps the two newest samples (taken every rateEvery) and derives
// rows per second from them.
type rates struct {
	mu         sync.Mutex
	prev, last *sample
}

const rateEvery = time.Second

func (r *rates) add(s *sample) {
	r.mu.Lock()
	r.prev, r.last = r.last, s
	r.mu.Unlock()
}

// get returns the two newest samples (nil before two were taken).
func (r *rates) get() (prev, last *sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.prev, r.last
}

func perSecond(prev, last *sample, pick func(*sample) []int64, i int) float64 {
	if prev == nil || last == nil {
		return 0
	}
	p, l := pick(prev), pick(last)
	dt := last.at.Sub(prev.at).Seconds()
	if i >= len(p) || i >= len(l) || dt <= 0 {
		return 0
	}
	return float64(l[i]-p[i]) / dt
}

// takeSample reads the counters of job j.
func takeSample(j *arrowexec.Job, rec func() uint64) *sample {
	s := &sample{at: time.Now(), in: map[string][]int64{}, out: map[string][]int64{}, times: map[string][]subtaskTimes{}}
	for _, n := range j.Graph().Nodes() {
		ms := j.Metrics(n.Name())
		blocked := j.OutputBlocked(n.Name())
		in, out, ts := make([]int64, len(ms)), make([]int64, len(ms)), make([]subtaskTimes, len(ms))
		for i, m := range ms {
			in[i], out[i], ts[i] = m.RowsIn.Load(), m.RowsOut.Load(), readTimes(m, s.at, blocked[i])
		}
		s.in[n.Name()], s.out[n.Name()], s.times[n.Name()] = in, out, ts
	}
	if rec != nil {
		s.updates = rec()
	}
	return s
}

// sampleLoop samples the running job every rateEvery until stop closes.
func (a *adminServer) sampleLoop(stop <-chan struct{}) {
	t := time.NewTicker(rateEvery)
	defer t.Stop()
	var cur *arrowexec.Job
	for {
		if j, _ := a.running(); j != nil {
			if j != cur {
				cur = j
				a.rates.add(nil) // a new run (a restore): forget the old counters
				a.rates.add(nil)
			}
			a.rates.add(takeSample(j, a.liveUpdates))
			a.samplePrequential()
			if a.views.watched() {
				a.refreshViews()
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// running returns the job running now and its plan (nil before it starts).
func (a *adminServer) running() (*arrowexec.Job, *job.Plan) {
	a.mu.Lock()
	st := a.st
	a.mu.Unlock()
	if st == nil {
		return nil, nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.job, st.plan
}

// samplePrequential adds the recommend step's live prequential figures
// to the curve.
func (a *adminServer) samplePrequential() {
	a.mu.Lock()
	rec := a.rec
	a.mu.Unlock()
	if rec == nil {
		return
	}
	if st, ok := rec.Stats(); ok && st.Prequential != nil {
		a.curve.add(time.Now(), st.Prequential)
	}
}

func (a *adminServer) liveUpdates() uint64 {
	if l := a.live(); l != nil {
		return l.Stats().Syncs
	}
	return 0
}

// registerAPI mounts the API and the web view on mux.
func (a *adminServer) registerAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/job", a.apiJob)
	mux.HandleFunc("GET /api/graph", a.apiGraph)
	mux.HandleFunc("GET /api/watermarks", a.apiWatermarks)
	mux.HandleFunc("GET /api/checkpoints", a.apiCheckpoints)
	mux.HandleFunc("GET /api/recommender", a.apiRecommender)
	mux.HandleFunc("POST /api/savepoint", a.authorized(a.apiSavepoint))
	mux.HandleFunc("POST /api/stop", a.authorized(a.apiStop))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/savepoint", "/api/stop":
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: r.Method + " " + r.URL.Path + ": use POST"})
			return
		case "/api/job", "/api/graph", "/api/watermarks", "/api/checkpoints", "/api/recommender":
			w.Header().Set("Allow", http.MethodGet)
			writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: r.Method + " " + r.URL.Path + ": use GET"})
			return
		}
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such API path: " + r.URL.Path + " (see docs/API.md)"})
	})
	registerWeb(mux)
}

// authorized wraps a POST action: with --admin-token the request must
// carry it (Authorization: Bearer TOKEN); every action takes a JSON body
// (Content-Type: application/json), which a cross-site form cannot send.
func (a *adminServer) authorized(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.tokenOK(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="riffle"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "this job's admin actions need its --admin-token (Authorization: Bearer TOKEN)"})
			return
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, apiError{Error: "want a JSON body (Content-Type: application/json)"})
			return
		}
		h(w, r)
	}
}

// tokenOK says whether r carries the admin token (always, without one).
func (a *adminServer) tokenOK(r *http.Request) bool {
	if a.token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) == 1
}

func (a *adminServer) apiJob(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	st, checkpointed := a.st, a.checkpointed
	a.mu.Unlock()
	out := apiJob{Checkpointed: checkpointed, TokenRequired: a.token != "", Serving: a.live() != nil}
	if st != nil {
		st.mu.Lock()
		out.Job, out.Running = st.name, st.job != nil && !st.ended
		out.Ended, out.Error = st.ended, st.endErr
		out.Bounded = st.plan != nil && st.plan.Bounded
		out.LastError = st.lastErr
		if st.lastErr != "" {
			at := st.lastErrAt.UTC()
			out.LastErrorTime = &at
		}
		out.UptimeSeconds = time.Since(st.began).Seconds()
		st.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, out)
}

// notStarted answers a view that needs the running job before it started.
func notStarted(w http.ResponseWriter) {
	writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "the job has not started yet"})
}

// viewCache holds the encoded answers of the two large views. While
// someone polls them (a request within viewersFor), the sampler computes
// them once per sample for every viewer, so a request only copies bytes
// at most about a sample old; otherwise a request computes its own.
type viewCache struct {
	mu                sync.Mutex
	job               *arrowexec.Job
	at                time.Time
	graph, watermarks []byte
	asked             time.Time
}

const viewersFor = 10 * time.Second

// watched says whether a view was asked for lately.
func (c *viewCache) watched() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Since(c.asked) < viewersFor
}

// get returns the cached answer of view (its field) for job j when it is
// at most two samples old, and notes the request.
func (c *viewCache) get(j *arrowexec.Job, view func(*viewCache) []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = time.Now()
	if c.job != j || time.Since(c.at) > 2*rateEvery {
		return nil
	}
	return view(c)
}

// refreshViews computes and caches the graph and watermark views.
func (a *adminServer) refreshViews() {
	j, p := a.running()
	if j == nil {
		return
	}
	at := time.Now()
	g, err1 := json.Marshal(readGraph(j, &a.rates))
	w, err2 := json.Marshal(readWatermarks(j, p))
	if err := errors.Join(err1, err2); err != nil {
		a.log.Warn("admin: encoding the status views", "err", err)
		return
	}
	a.views.mu.Lock()
	a.views.job, a.views.at, a.views.graph, a.views.watermarks = j, at, append(g, '\n'), append(w, '\n')
	a.views.mu.Unlock()
}

// serveView answers a large view from the cache, or computes it.
func (a *adminServer) serveView(w http.ResponseWriter, cached func(*viewCache) []byte, compute func(*arrowexec.Job, *job.Plan) any) {
	j, p := a.running()
	if j == nil {
		notStarted(w)
		return
	}
	if b := a.views.get(j, cached); b != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
		return
	}
	writeJSON(w, http.StatusOK, compute(j, p))
}

func (a *adminServer) apiGraph(w http.ResponseWriter, _ *http.Request) {
	a.serveView(w, func(c *viewCache) []byte { return c.graph },
		func(j *arrowexec.Job, _ *job.Plan) any { return readGraph(j, &a.rates) })
}

// readGraph is the graph of job j with its counters and the rates of rs.
func readGraph(j *arrowexec.Job, rs *rates) apiGraph {
	prev, last := rs.get()
	at := time.Now()
	out := apiGraph{At: at.UTC().Format(time.RFC3339Nano)}
	if prev != nil && last != nil {
		out.RateWindowSeconds = last.at.Sub(prev.at).Seconds()
	}
	chainOf := map[string]string{}
	for _, c := range j.Chains() {
		for _, name := range c {
			chainOf[name] = c[0]
		}
	}
	for _, n := range j.Graph().Nodes() {
		name := n.Name()
		an := apiNode{Name: name, Parallelism: n.Parallelism(), Kind: "operator", State: stateIdle, Chain: chainOf[name]}
		switch {
		case n.IsSource():
			an.Kind = "source"
		case n.Schema() == nil:
			an.Kind = "sink"
		}
		for k, in := range n.Inputs() {
			out.Edges = append(out.Edges, apiEdge{From: in.From.Name(), To: name, Input: k, Exchange: in.Kind.String(), Keys: in.Keys})
		}
		ms := j.Metrics(name)
		fill := j.OutputFill(name)
		wm, anyActive := arrowexec.MaxWatermark, false
		for i, m := range ms {
			s := apiSubtask{Subtask: i, RowsIn: m.RowsIn.Load(), RowsOut: m.RowsOut.Load(), BatchesIn: m.BatchesIn.Load(),
				BatchesOut: m.BatchesOut.Load(), BytesIn: m.BytesIn.Load(), Idle: m.Idle.Load(), OutputFill: fill[i],
				Watermark: eventTime(m.Watermark.Load())}
			s.RowsInRate = perSecond(prev, last, func(s *sample) []int64 { return s.in[name] }, i)
			s.RowsOutRate = perSecond(prev, last, func(s *sample) []int64 { return s.out[name] }, i)
			now := readTimes(m, at, false)
			s.BusySeconds, s.BackpressureSeconds, s.IdleSeconds = toSeconds(now.busy), toSeconds(now.bp), toSeconds(now.idle)
			var from *subtaskTimes
			var wall time.Duration
			if prev != nil && last != nil && i < len(prev.times[name]) && i < len(last.times[name]) {
				from, now, wall = &prev.times[name][i], last.times[name][i], last.at.Sub(prev.at)
			}
			s.BusyRatio, s.BackpressureRatio, s.IdleRatio = timeShares(from, now, wall)
			s.State = subtaskState(s.BusyRatio, s.BackpressureRatio, s.IdleRatio)
			an.BusyRatio += s.BusyRatio / float64(len(ms))
			an.BackpressureRatio += s.BackpressureRatio / float64(len(ms))
			an.IdleRatio += s.IdleRatio / float64(len(ms))
			switch {
			case s.State == stateBackpressured:
				an.State = stateBackpressured
			case s.State == stateBusy && an.State == stateIdle:
				an.State = stateBusy
			}
			an.RowsIn += s.RowsIn
			an.RowsOut += s.RowsOut
			an.RowsInRate += s.RowsInRate
			an.RowsOutRate += s.RowsOutRate
			if !s.Idle {
				wm, anyActive = min(wm, m.Watermark.Load()), true
			}
			an.Subtasks = append(an.Subtasks, s)
		}
		if !anyActive {
			wm = arrowexec.MinWatermark
		}
		an.Watermark = eventTime(wm)
		out.Nodes = append(out.Nodes, an)
	}
	return out
}

func (a *adminServer) apiWatermarks(w http.ResponseWriter, _ *http.Request) {
	a.serveView(w, func(c *viewCache) []byte { return c.watermarks },
		func(j *arrowexec.Job, p *job.Plan) any { return readWatermarks(j, p) })
}

// readWatermarks reads every source split's and operator input's
// watermark of job j (compiled from plan p) and answers, for every window
// node, why its earliest pending window has not fired.
func readWatermarks(j *arrowexec.Job, p *job.Plan) apiWatermarks {
	var out apiWatermarks
	splits := map[string][]apiSourceSplit{}          // by node/subtask
	inputs := map[string][][]arrowexec.InputStatus{} // by operator node
	key := func(node string, sub int) string { return node + "/" + strconv.Itoa(sub) }
	for _, n := range j.Graph().Nodes() {
		name := n.Name()
		if n.IsSource() {
			ms := j.Metrics(name)
			if p != nil && p.Kafka != nil && n.Source() == arrowexec.Source(p.Kafka) {
				var ooo int64
				if w := p.Spec.Source.Watermark; w != nil {
					ooo = w.MaxOutOfOrderness.Milliseconds()
				}
				for i, ps := range p.Kafka.Status() {
					sub := i % len(ms)
					sp := apiSourceSplit{Node: name, Subtask: sub, Split: ps.Topic + "/" + strconv.Itoa(ps.Partition), Kind: "kafka-partition", Idle: ps.Idle}
					mx := eventTime(ps.MaxEventTime)
					sp.MaxEventTime = &mx
					sp.Watermark = eventTime(arrowexec.MinWatermark)
					if ps.MaxEventTime != arrowexec.MinWatermark {
						sp.Watermark = eventTime(ps.MaxEventTime - ooo - 1)
					}
					if ps.Quiet > 0 {
						q := ps.Quiet.Seconds()
						sp.QuietSeconds = &q
					}
					if ps.Offset >= 0 {
						off := ps.Offset
						sp.Offset = &off
					}
					if ps.Lag >= 0 {
						lag := ps.Lag
						sp.Lag = &lag
					}
					splits[key(name, sub)] = append(splits[key(name, sub)], sp)
					out.Sources = append(out.Sources, sp)
				}
				continue
			}
			for i, m := range ms {
				sp := apiSourceSplit{Node: name, Subtask: i, Split: key(name, i), Kind: "source-subtask",
					Watermark: eventTime(m.Watermark.Load()), Idle: m.Idle.Load()}
				splits[key(name, i)] = []apiSourceSplit{sp}
				out.Sources = append(out.Sources, sp)
			}
			continue
		}
		inputs[name] = j.Inputs(name)
		for sub, ins := range inputs[name] {
			for _, in := range ins {
				out.Operators = append(out.Operators, apiOperatorInput{Node: name, Subtask: sub, Input: in.Edge, From: in.From,
					Channels: in.Channels, SlowestSubtask: in.SlowestSubtask, Watermark: eventTime(in.Watermark), Idle: in.Idle, Ended: in.Ended})
			}
		}
	}
	for _, n := range j.Graph().Nodes() {
		ws, ok := n.Spec().(*windows.Spec)
		if !ok {
			continue
		}
		out.Windows = append(out.Windows, whyNotFired(j, n, ws.Pending(), inputs, splits))
	}
	return out
}

// whyNotFired explains the earliest pending window of window node n.
// inputs holds every operator's input channels, splits every source
// subtask's splits, as read for the same answer.
func whyNotFired(j *arrowexec.Job, n *arrowexec.Node, pend []windows.Pending, inputs map[string][][]arrowexec.InputStatus,
	splits map[string][]apiSourceSplit) apiWindow {
	aw := apiWindow{Node: n.Name(), EarliestPendingEnd: eventTime(arrowexec.MaxWatermark), Watermark: eventTime(arrowexec.MinWatermark)}
	best := -1
	for i, p := range pend {
		if p.EarliestEnd == arrowexec.MaxWatermark {
			continue
		}
		if best < 0 || p.EarliestEnd < pend[best].EarliestEnd {
			best = i
		}
	}
	if best < 0 {
		aw.Answer = "no window is waiting to fire"
		return aw
	}
	p := pend[best]
	aw.Pending, aw.Subtask = true, p.Subtask
	aw.EarliestPendingEnd, aw.Watermark = eventTime(p.EarliestEnd), eventTime(p.Watermark)
	if p.Watermark >= p.EarliestEnd-1 {
		aw.Answer = "the watermark has reached it: it fires now"
		return aw
	}
	// Walk back from the window subtask along its slowest active input.
	node, sub := n.Name(), p.Subtask
	g := j.Graph()
	for hops := 0; hops < len(g.Nodes()); hops++ {
		ins := inputs[node]
		if ins == nil || sub >= len(ins) {
			break
		}
		slow := -1
		for k, in := range ins[sub] {
			if in.Idle || in.Ended {
				continue
			}
			if slow < 0 || in.Watermark < ins[sub][slow].Watermark {
				slow = k
			}
		}
		if slow < 0 {
			aw.Answer = fmt.Sprintf("window %s ending %s waits, and every input of %s/%d is idle or ended: the watermark (%s) advances when data arrives",
				n.Name(), aw.EarliestPendingEnd.Text, node, sub, aw.Watermark.Text)
			return aw
		}
		in := ins[sub][slow]
		aw.HeldBy = append(aw.HeldBy, apiHold{Node: node, Subtask: sub, Input: in.Edge, Watermark: eventTime(in.Watermark)})
		node, sub = in.From, in.SlowestSubtask
		if up := g.Node(node); up != nil && up.IsSource() {
			break
		}
	}
	cands := splits[node+"/"+strconv.Itoa(sub)]
	var holder *apiSourceSplit
	for i := range cands {
		c := &cands[i]
		if c.Idle {
			continue
		}
		if holder == nil || wmOf(c.Watermark) < wmOf(holder.Watermark) {
			holder = c
		}
	}
	if holder == nil {
		aw.Answer = fmt.Sprintf("window %s ending %s waits for the watermark (now %s); source %s/%d has no active split", n.Name(),
			aw.EarliestPendingEnd.Text, aw.Watermark.Text, node, sub)
		return aw
	}
	aw.Split = holder
	quiet := ""
	switch {
	case holder.QuietSeconds != nil && holder.MaxEventTime != nil && holder.MaxEventTime.MS == nil:
		quiet = fmt.Sprintf(", with no message in the %s since reading began", (time.Duration(*holder.QuietSeconds * float64(time.Second))).Round(100*time.Millisecond))
	case holder.QuietSeconds != nil:
		quiet = fmt.Sprintf(", without a message for %s", (time.Duration(*holder.QuietSeconds * float64(time.Second))).Round(100*time.Millisecond))
	case holder.Kind == "kafka-partition":
		quiet = ", which has delivered no message yet"
	}
	what := "split " + holder.Split
	if holder.Kind == "kafka-partition" {
		what = "Kafka partition " + holder.Split
	}
	aw.Answer = fmt.Sprintf("window %s ending %s waits for the watermark, now %s: %s holds it back at %s%s", n.Name(),
		aw.EarliestPendingEnd.Text, aw.Watermark.Text, what, holder.Watermark.Text, quiet)
	return aw
}

func wmOf(t apiTime) int64 {
	switch {
	case t.MS != nil:
		return *t.MS
	case t.Text == "end":
		return arrowexec.MaxWatermark
	}
	return arrowexec.MinWatermark
}

func (a *adminServer) apiCheckpoints(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	c, st, checkpointed := a.coord, a.st, a.checkpointed
	a.mu.Unlock()
	out := apiCheckpoints{Checkpointed: checkpointed, History: []apiCheckpoint{}}
	if st != nil {
		st.mu.Lock()
		out.Savepoints = st.savepoints
		st.mu.Unlock()
	}
	if c != nil {
		s, o := c.Stats(), c.Options()
		out.Dir, out.Interval = o.Dir, o.Interval.String()
		out.Completed, out.Failed, out.Abandoned, out.Skipped = s.Completed, s.Failed, s.Abandoned, s.Skipped
		for _, r := range c.History() {
			out.History = append(out.History, apiCheckpoint{ID: r.ID, Savepoint: r.Savepoint, Path: r.Path, Started: r.Started.UTC(),
				DurationMS: float64(r.Duration.Microseconds()) / 1000, AlignmentMS: float64(r.Aligned.Microseconds()) / 1000,
				Bytes: r.Bytes, Status: r.Status, Error: r.Error})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *adminServer) apiRecommender(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	rec := a.rec
	a.mu.Unlock()
	out := apiRecommender{}
	if rec != nil {
		if st, ok := rec.Stats(); ok {
			out.ModelVersion = st.LastExport
			out.Users, out.Items, out.Interactions = st.Users, st.Items, st.Interactions
			out.Stats = &st
			out.PrequentialCurve = a.curve.points()
		}
	}
	if l := a.live(); l != nil {
		out.Serving = true
		out.Updates = l.Stats().Syncs
		out.Lookup = "/recommend?user=ID&k=10"
		if prev, last := a.rates.get(); prev != nil && last != nil && last.updates >= prev.updates {
			if dt := last.at.Sub(prev.at).Seconds(); dt > 0 {
				out.UpdatesPerSecond = float64(last.updates-prev.updates) / dt
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// apiAction is the body of POST /api/savepoint and /api/stop.
type apiAction struct {
	// Dir is the savepoint directory (absolute; must not exist).
	Dir string `json:"dir"`
	// Stop (savepoint only) stops the job behind the savepoint.
	Stop bool `json:"stop"`
}

func readAction(r *http.Request) (apiAction, error) {
	var act apiAction
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return act, err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return act, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&act); err != nil {
		return act, fmt.Errorf("body: %w", err)
	}
	return act, nil
}

func (a *adminServer) apiSavepoint(w http.ResponseWriter, r *http.Request) {
	act, err := readAction(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	if act.Dir == "" || !filepath.IsAbs(act.Dir) {
		writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("dir %q: want an absolute path for the savepoint", act.Dir)})
		return
	}
	a.takeSavepoint(w, r, act.Dir, act.Stop)
}

// apiStop stops the job: with checkpoints by a final checkpoint (as
// 'riffle savepoint --stop'), without by a graceful drain (as SIGINT).
func (a *adminServer) apiStop(w http.ResponseWriter, r *http.Request) {
	if _, err := readAction(r); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	a.mu.Lock()
	checkpointed, refuse := a.checkpointed, a.refuseStop
	a.mu.Unlock()
	if refuse != "" {
		writeJSON(w, http.StatusConflict, apiError{Error: refuse})
		return
	}
	if checkpointed {
		a.takeSavepoint(w, r, "", true)
		return
	}
	j, _ := a.running()
	if j == nil {
		notStarted(w)
		return
	}
	a.log.Info("stop requested: draining sources, flushing sinks", "from", r.RemoteAddr)
	j.Stop(true)
	writeJSON(w, http.StatusAccepted, savepointResponse{Stop: true})
}

// jobEnded records that the job finished, with its error (nil: success),
// for /api/job and the web view.
func (s *jobStatus) jobEnded(err error) {
	s.mu.Lock()
	s.ended = true
	if err != nil {
		s.endErr = err.Error()
	}
	s.mu.Unlock()
}
