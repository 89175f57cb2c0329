package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/metrics"
	"github.com/riffle-dev/riffle/job"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/ml/serve"
)

func init() {
	register(command{name: "savepoint", short: "take a savepoint of a running job (optionally stopping it)", run: runSavepoint})
}

func runSavepoint(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "savepoint", "--addr HOST:PORT [--dir D] [--stop]", `
Asks a job started with 'riffle run --checkpoint-dir ... --admin-addr
HOST:PORT' for a savepoint: a complete checkpoint written to --dir (which
must not exist yet), never removed by retention. Prints the savepoint's
path once it is complete. With --stop the job stops right behind the
savepoint (it processes nothing the savepoint does not cover) and exits;
without --dir, --stop takes a final regular checkpoint in the job's
checkpoint directory instead. Resume with 'riffle run --checkpoint-dir D
--from SAVEPOINT JOB.yaml'.`)
	addr := f.addAdminAddr()
	dir := f.String("dir", "", "the savepoint directory (resolved here, so relative paths are relative to this shell)")
	stop := f.Bool("stop", false, "stop the job after the savepoint")
	token := f.String("token", "", "the job's --admin-token, when it was started with one")
	timeout := f.Duration("timeout", 10*time.Minute, "give up waiting after this long (the savepoint may still complete)")
	if err := f.parseNoArgs(e, args, addr); err != nil {
		return err
	}
	if *dir == "" && !*stop {
		return usageError{errors.New("--dir is required (or --stop for a final checkpoint in the job's checkpoint directory)")}
	}
	if *dir != "" {
		abs, err := filepath.Abs(*dir)
		if err != nil {
			return usageError{fmt.Errorf("--dir: %w", err)}
		}
		*dir = abs
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	path, err := requestSavepoint(ctx, *addr, *dir, *stop, *token)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, path)
	return nil
}

// savepointResponse is the JSON answer of POST /savepoint.
type savepointResponse struct {
	Path  string `json:"path,omitempty"`
	Stop  bool   `json:"stop,omitempty"`
	Error string `json:"error,omitempty"`
}

// requestSavepoint calls POST /savepoint on a job's admin endpoint.
func requestSavepoint(ctx context.Context, addr, dir string, stop bool, token string) (string, error) {
	q := url.Values{}
	if dir != "" {
		q.Set("dir", dir)
	}
	q.Set("stop", strconv.FormatBool(stop))
	u := "http://" + addr + "/savepoint?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return "", usageError{fmt.Errorf("--addr %q: %w", addr, err)}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", adminDialError("savepoint", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("savepoint: reading the answer: %w", err)
	}
	var r savepointResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("savepoint: %s: unexpected answer %q", resp.Status, body)
	}
	if resp.StatusCode != http.StatusOK || r.Error != "" {
		return "", fmt.Errorf("savepoint: %s: %s", resp.Status, r.Error)
	}
	return r.Path, nil
}

// adminDialError is the error of a failed request to a job's admin
// endpoint at addr: a clear one when nothing listens there.
func adminDialError(what, addr string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("no job is running with --admin-addr %s: nothing answers there (%v)", addr, op)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// adminServer is run's admin endpoint:
//
//	POST /savepoint?dir=D&stop=true|false  savepoint into D (absolute, must
//	     not exist); with stop, the job stops behind it; stop without dir
//	     takes a final checkpoint in the checkpoint directory. Answers
//	     {"path": ...} once it is complete, or {"error": ...}.
//	GET  /status                           what the job is doing (adminStatus)
//	GET  /metrics                          Prometheus metrics (internal/metrics)
//	GET  /recommend, GET /similar          a serving job's live model (package ml/serve)
//	GET  /                                 the web view (web.go, cmd/riffle/web/)
//	     /api/...                          its JSON API (api.go, docs/API.md)
type adminServer struct {
	srv  *http.Server
	log  *slog.Logger
	addr string
	// token, when set, guards the POST actions (--admin-token).
	token string
	// refuseStop, when set, is why POST /api/stop is refused (backfills;
	// mu held).
	refuseStop string
	rates      rates
	views      viewCache     // the large views, encoded (api.go)
	curve      preqCurve     // the live prequential figures over time (api.go)
	stop       chan struct{} // ends the sampler

	mu    sync.Mutex
	coord *checkpoint.Coordinator
	// st follows the job for /status; checkpointed says it runs with
	// --checkpoint-dir (without, savepoints are refused).
	st           *jobStatus
	checkpointed bool
	// rec is the running plan's recommend step: /recommend and /similar
	// answer from its live model.
	rec *ml.RecommendSpec
	// metrics serves /metrics (nil: 404 until set).
	metrics http.Handler
}

func startAdmin(addr, token string, log *slog.Logger) (*adminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	a := &adminServer{log: log, addr: ln.Addr().String(), token: token, stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /savepoint", a.savepoint)
	mux.HandleFunc("GET /status", a.status)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		h := a.metrics
		a.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
	serve.Register(mux, a.live)
	a.registerAPI(mux)
	go a.sampleLoop(a.stop)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("admin endpoint stopped", "err", err)
		}
	}()
	log.Info("serving the admin endpoint and the web view", "url", "http://"+a.addr, "api", "http://"+a.addr+"/api/job",
		"savepoint", "POST /savepoint?dir=D&stop=false", "token_required", token != "")
	return a, nil
}

// follow makes /status report st; checkpointed says whether the job takes
// checkpoints (and so savepoints).
func (a *adminServer) follow(st *jobStatus, checkpointed bool) {
	a.mu.Lock()
	a.st, a.checkpointed = st, checkpointed
	a.mu.Unlock()
}

// serveFrom makes /recommend and /similar answer from rec's live model
// (the running plan's recommend step, replanned at each restore; nil:
// none).
func (a *adminServer) serveFrom(rec *ml.RecommendSpec) {
	a.mu.Lock()
	a.rec = rec
	a.mu.Unlock()
	if rec != nil {
		a.log.Info("serving recommendations from the live model", "recommend", "http://"+a.addr+"/recommend?user=ID&k=10",
			"similar", "http://"+a.addr+"/similar?item=ID&k=10")
	}
}

// serveMetrics makes GET /metrics serve c.
func (a *adminServer) serveMetrics(c *metrics.Collector) {
	a.mu.Lock()
	a.metrics = metrics.Handler(c)
	a.mu.Unlock()
}

// live is the model /recommend serves (nil: none yet).
func (a *adminServer) live() *ml.Live {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rec == nil {
		return nil
	}
	return a.rec.Live()
}

// servedRecommend is the recommend step a running plan serves from (nil
// when the job does not serve).
func servedRecommend(spec *job.Spec, plan *job.Plan) *ml.RecommendSpec {
	if !spec.Serves() {
		return nil
	}
	return plan.Recommend
}

// adminFor starts the admin endpoint of a run: on addr (--admin-addr; a
// port without a host listens on loopback, metrics.ListenAddr), or, when
// the job serves recommendations and addr is empty, on 127.0.0.1:0 (never
// beyond loopback unless configured); nil when neither. token guards the
// POST actions (--admin-token).
func adminFor(spec *job.Spec, addr, token string, log *slog.Logger) (*adminServer, error) {
	if addr == "" {
		if !spec.Serves() {
			return nil, nil
		}
		addr = "127.0.0.1:0"
	}
	a, err := startAdmin(metrics.ListenAddr(addr), token, log)
	if err != nil {
		return nil, usageError{fmt.Errorf("--admin-addr %s: %w", addr, err)}
	}
	return a, nil
}

func (a *adminServer) setCoordinator(c *checkpoint.Coordinator) {
	a.mu.Lock()
	a.coord = c
	a.mu.Unlock()
}

func (a *adminServer) coordinator() *checkpoint.Coordinator {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.coord
}

// Close stops accepting requests and waits (up to a minute) for those in
// flight, so the answer to a stop-with-savepoint reaches its caller before
// the process exits; with now, it closes every connection at once.
func (a *adminServer) Close(now bool) {
	close(a.stop)
	if now {
		a.srv.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		a.srv.Close()
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (a *adminServer) savepoint(w http.ResponseWriter, r *http.Request) {
	if !a.tokenOK(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="riffle"`)
		writeJSON(w, http.StatusUnauthorized, savepointResponse{Error: "this job's admin actions need its --admin-token (riffle savepoint --token)"})
		return
	}
	q := r.URL.Query()
	dir := q.Get("dir")
	stop := false
	if s := q.Get("stop"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, savepointResponse{Error: fmt.Sprintf("stop=%q: want true or false", s)})
			return
		}
		stop = b
	}
	if dir == "" && !stop {
		writeJSON(w, http.StatusBadRequest, savepointResponse{Error: "dir is required (or stop=true for a final checkpoint)"})
		return
	}
	if dir != "" && !filepath.IsAbs(dir) {
		writeJSON(w, http.StatusBadRequest, savepointResponse{Error: fmt.Sprintf("dir %q: want an absolute path", dir)})
		return
	}
	a.takeSavepoint(w, r, dir, stop)
}

// takeSavepoint takes a savepoint into dir (with stop, the job stops
// behind it; stop without dir takes a final checkpoint) and answers
// {"path": ...} once it is complete, or {"error": ...}.
func (a *adminServer) takeSavepoint(w http.ResponseWriter, r *http.Request, dir string, stop bool) {
	a.mu.Lock()
	c, st, checkpointed := a.coord, a.st, a.checkpointed
	a.mu.Unlock()
	if st != nil && !checkpointed {
		writeJSON(w, http.StatusConflict, savepointResponse{Error: "the job runs without --checkpoint-dir: savepoints are checkpoints, restart it with --checkpoint-dir to take them"})
		return
	}
	if c == nil {
		writeJSON(w, http.StatusServiceUnavailable, savepointResponse{Error: "the job has not started yet"})
		return
	}
	a.log.Info("savepoint requested", "dir", dir, "stop", stop, "from", r.RemoteAddr)
	var (
		path string
		err  error
	)
	if stop {
		path, err = c.StopWithSavepoint(r.Context(), dir)
	} else {
		path, err = c.TriggerSavepoint(r.Context(), dir)
	}
	switch {
	case err == nil:
		if st != nil && dir != "" {
			st.savepointTaken()
		}
		a.log.Info("savepoint complete", "path", path, "stop", stop)
		writeJSON(w, http.StatusOK, savepointResponse{Path: path, Stop: stop})
	case errors.Is(err, checkpoint.ErrNotRunning), errors.Is(err, checkpoint.ErrJobFinished):
		writeJSON(w, http.StatusConflict, savepointResponse{Error: err.Error()})
	default:
		a.log.Warn("savepoint failed", "dir", dir, "err", err)
		writeJSON(w, http.StatusInternalServerError, savepointResponse{Error: err.Error()})
	}
}

// adminStatus is the JSON answer of GET /status: what the job is doing
// (with or without checkpoints) and, with --checkpoint-dir, its
// checkpoints.
type adminStatus struct {
	Running       bool    `json:"running"`
	Job           string  `json:"job,omitempty"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	// RowsIn: rows the source emitted; RowsOut: rows the sink received.
	RowsIn  int64 `json:"rows_in"`
	RowsOut int64 `json:"rows_out"`
	// Watermark is the event time the job reached, as a time, or "none".
	Watermark      string `json:"watermark"`
	WatermarkMS    *int64 `json:"watermark_ms,omitempty"`
	WindowsFired   int64  `json:"windows_fired"`
	PartsPublished int64  `json:"parts_published"`
	DeadLetters    int64  `json:"dead_letters"`
	Skipped        int64  `json:"skipped,omitempty"`
	// LastError is the newest warning or error the job logged.
	LastError     string        `json:"last_error,omitempty"`
	LastErrorTime *time.Time    `json:"last_error_time,omitempty"`
	Sources       []splitStatus `json:"sources,omitempty"`

	Checkpointed       bool   `json:"checkpointed"`
	Savepoints         int64  `json:"savepoints_taken"`
	Completed          int64  `json:"checkpoints_completed"`
	Failed             int64  `json:"checkpoints_failed"`
	Abandoned          int64  `json:"checkpoints_abandoned"`
	CheckpointsSkipped int64  `json:"checkpoints_skipped"`
	LastID             uint64 `json:"last_checkpoint_id,omitempty"`
	LastPath           string `json:"last_checkpoint_path,omitempty"`
	LastDurationMS     int64  `json:"last_checkpoint_duration_ms,omitempty"`
	LastBytes          int64  `json:"last_checkpoint_bytes,omitempty"`
	CheckpointDir      string `json:"checkpoint_dir,omitempty"`
	CheckpointInterval string `json:"checkpoint_interval,omitempty"`

	// Recommend is the streaming recommend step's model (ml.RecommendStats):
	// updates, exports, live prequential figures, serving.
	Recommend *ml.RecommendStats `json:"recommend,omitempty"`
}

func (a *adminServer) status(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	c, st, checkpointed, rec := a.coord, a.st, a.checkpointed, a.rec
	a.mu.Unlock()
	out := adminStatus{Watermark: checkpoint.FormatWatermark(arrowexec.MinWatermark), Checkpointed: checkpointed}
	if rec != nil {
		if rs, ok := rec.Stats(); ok {
			out.Recommend = &rs
		}
	}
	if st != nil {
		out.Job = st.name
		out.UptimeSeconds = time.Since(st.began).Seconds()
		st.mu.Lock()
		out.Savepoints, out.LastError = st.savepoints, st.lastErr
		if st.lastErr != "" {
			at := st.lastErrAt.UTC()
			out.LastErrorTime = &at
		}
		st.mu.Unlock()
		if snap, ok := st.snapshot(); ok {
			out.Running = true
			out.RowsIn, out.RowsOut = snap.RowsIn, snap.RowsOut
			out.Watermark = checkpoint.FormatWatermark(snap.Watermark)
			if snap.Watermark != arrowexec.MinWatermark && snap.Watermark != arrowexec.MaxWatermark {
				wm := snap.Watermark
				out.WatermarkMS = &wm
			}
			out.WindowsFired, out.PartsPublished = snap.WindowsFired, snap.PartsPublished
			out.DeadLetters, out.Skipped = snap.DeadLetters, snap.Skipped
			out.Sources = snap.Splits
		}
	}
	if c != nil {
		s, o := c.Stats(), c.Options()
		out.Running = true
		out.Completed, out.Failed, out.Abandoned, out.CheckpointsSkipped = s.Completed, s.Failed, s.Abandoned, s.Skipped
		out.LastID, out.LastPath, out.LastDurationMS, out.LastBytes = s.LastID, s.LastPath, s.LastDuration.Milliseconds(), s.LastBytes
		out.CheckpointDir, out.CheckpointInterval = o.Dir, o.Interval.String()
	}
	writeJSON(w, http.StatusOK, out)
}
