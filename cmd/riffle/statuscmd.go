package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/riffle-dev/riffle/ml"
)

func init() {
	register(command{name: "status", short: "print what a running job is doing (its admin API) in the terminal", run: runStatusCmd})
}

func runStatusCmd(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "status", "--addr HOST:PORT [--json]", `
Prints what a job started with 'riffle run --admin-addr HOST:PORT' is
doing, read from its JSON API (docs/API.md): the job, its graph with every
node's state (busy, backpressured, idle), rows and rates, the watermark of
every source split, for every window step why its earliest pending window
has not fired yet, the checkpoint history and the recommender (with its
live prequential HR and NDCG and their curve over time). With --json
it prints the API's answers as one JSON object instead.`)
	addr := f.addAdminAddr()
	asJSON := f.Bool("json", false, "print the API's JSON answers")
	timeout := f.Duration("timeout", 10*time.Second, "give up after this long")
	if err := f.parseNoArgs(e, args, addr); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var v statusView
	views := []struct {
		path string
		dst  any
	}{{"/api/job", &v.Job}, {"/api/graph", &v.Graph}, {"/api/watermarks", &v.Watermarks}, {"/api/checkpoints", &v.Checkpoints}, {"/api/recommender", &v.Recommender}}
	for _, x := range views {
		if err := apiGet(ctx, *addr, x.path, x.dst); err != nil {
			var ns notStartedError
			if errors.As(err, &ns) {
				continue // graph and watermarks before the job started
			}
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return writeStatus(e.stdout, &v)
}

// statusView is every view of the API at one moment ('riffle status').
type statusView struct {
	Job         apiJob         `json:"job"`
	Graph       apiGraph       `json:"graph"`
	Watermarks  apiWatermarks  `json:"watermarks"`
	Checkpoints apiCheckpoints `json:"checkpoints"`
	Recommender apiRecommender `json:"recommender"`
}

// addAdminAddr adds --addr, a running job's admin address (riffle
// savepoint, riffle status).
func (f *flags) addAdminAddr() *string {
	return f.String("addr", "", "the job's admin address (its --admin-addr)")
}

// parseNoArgs parses args of a command that takes flags only, one of them
// the required --addr.
func (f *flags) parseNoArgs(e *env, args []string, addr *string) error {
	if err := f.parse(e, args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		f.Usage()
		return usageError{fmt.Errorf("unexpected arguments %q", f.Args())}
	}
	if *addr == "" {
		return usageError{errors.New("--addr is required")}
	}
	return nil
}

type notStartedError struct{ msg string }

func (e notStartedError) Error() string { return e.msg }

// apiGet reads one API view into dst.
func apiGet(ctx context.Context, addr, path string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return usageError{fmt.Errorf("--addr %q: %w", addr, err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return adminDialError("status", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("status: %s: reading the answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		_ = json.Unmarshal(body, &ae) // a non-JSON answer keeps its status line
		if resp.StatusCode == http.StatusServiceUnavailable {
			return notStartedError{ae.Error}
		}
		return fmt.Errorf("status: %s: %s: %s", path, resp.Status, ae.Error)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("status: %s: %w", path, err)
	}
	return nil
}

// writeStatus prints v for a terminal.
func writeStatus(w io.Writer, v *statusView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	j := v.Job
	state := "starting"
	switch {
	case j.Ended && j.Error != "":
		state = "ended with an error: " + j.Error
	case j.Ended:
		state = "ended"
	case j.Running:
		state = "running"
	}
	fmt.Fprintf(tw, "job %s: %s, up %s", j.Job, state, (time.Duration(j.UptimeSeconds * float64(time.Second))).Round(time.Second))
	if j.Checkpointed {
		fmt.Fprint(tw, ", checkpointed")
	}
	fmt.Fprintln(tw)
	if j.LastError != "" {
		fmt.Fprintf(tw, "last error: %s\n", j.LastError)
	}
	if len(v.Graph.Nodes) > 0 {
		fmt.Fprintln(tw, "\nNODE\tKIND\tSUBTASKS\tSTATE\tBUSY\tBACKPRESSURED\tIDLE\tROWS IN\tROWS OUT\tIN/S\tOUT/S\tWATERMARK")
		for _, n := range v.Graph.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.0f%%\t%.0f%%\t%.0f%%\t%d\t%d\t%.0f\t%.0f\t%s\n", n.Name, n.Kind, n.Parallelism, n.State,
				100*n.BusyRatio, 100*n.BackpressureRatio, 100*n.IdleRatio, n.RowsIn, n.RowsOut, n.RowsInRate, n.RowsOutRate, n.Watermark.Text)
		}
		fmt.Fprintln(tw, "\nEDGE\tEXCHANGE")
		for _, e := range v.Graph.Edges {
			ex := e.Exchange
			if len(e.Keys) > 0 {
				ex += "(" + strings.Join(e.Keys, ",") + ")"
			}
			fmt.Fprintf(tw, "%s -> %s\t%s\n", e.From, e.To, ex)
		}
	}
	if len(v.Watermarks.Sources) > 0 {
		fmt.Fprintln(tw, "\nSPLIT\tSUBTASK\tWATERMARK\tIDLE\tQUIET\tLAG")
		for _, s := range v.Watermarks.Sources {
			quiet, lag := "", ""
			if s.QuietSeconds != nil {
				quiet = fmt.Sprintf("%.1fs", *s.QuietSeconds)
			}
			if s.Lag != nil {
				lag = fmt.Sprint(*s.Lag)
			}
			fmt.Fprintf(tw, "%s\t%s/%d\t%s\t%v\t%s\t%s\n", s.Split, s.Node, s.Subtask, s.Watermark.Text, s.Idle, quiet, lag)
		}
	}
	for _, win := range v.Watermarks.Windows {
		fmt.Fprintf(tw, "\nwhy has %s not fired? %s\n", win.Node, win.Answer)
	}
	c := v.Checkpoints
	if c.Checkpointed {
		fmt.Fprintf(tw, "\ncheckpoints: %d completed, %d failed, %d abandoned, every %s into %s\n", c.Completed, c.Failed, c.Abandoned, c.Interval, c.Dir)
		if len(c.History) > 0 {
			fmt.Fprintln(tw, "ID\tSTATUS\tDURATION\tALIGNMENT\tBYTES\tERROR")
			for _, h := range c.History[max(0, len(c.History)-10):] {
				id := fmt.Sprint(h.ID)
				if h.Savepoint {
					id += " (savepoint)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%.0fms\t%.0fms\t%d\t%s\n", id, h.Status, h.DurationMS, h.AlignmentMS, h.Bytes, h.Error)
			}
		}
	}
	if r := v.Recommender; r.Serving {
		fmt.Fprintf(tw, "\nrecommender: model version %d, %d updates (%.1f/s), %d users, %d items, %d interactions; GET %s\n",
			r.ModelVersion, r.Updates, r.UpdatesPerSecond, r.Users, r.Items, r.Interactions, r.Lookup)
	}
	if r := v.Recommender; r.Stats != nil && r.Stats.Prequential != nil {
		writePrequential(tw, r.Stats.Prequential, r.PrequentialCurve)
	}
	return tw.Flush()
}

// statusCurveRows is how many points of the prequential curve 'riffle
// status' prints.
const statusCurveRows = 10

// writePrequential prints the live prequential figures and up to
// statusCurveRows points of their curve, evenly spread, the newest last.
func writePrequential(w io.Writer, p *ml.PrequentialStats, curve []preqPoint) {
	fmt.Fprintf(w, "\nlive prequential @%d: HR %.4f, NDCG %.4f over %d scored events (popularity HR %.4f)", p.K, p.HR, p.NDCG,
		p.Model.Events, p.Popularity.HR())
	if p.Window > 0 {
		fmt.Fprintf(w, "; the last %d: HR %.4f, NDCG %.4f", p.Recent.Events, p.RecentHR, p.RecentNDCG)
	}
	fmt.Fprintln(w)
	if len(curve) == 0 {
		return
	}
	fmt.Fprintln(w, "TIME\tEVENTS\tSCORED\tHR\tNDCG\tRECENT HR\tRECENT NDCG")
	n := min(len(curve), statusCurveRows)
	for r := range n {
		// Row r shows point r·(len−1)/(n−1): the first and the newest.
		i := len(curve) - 1
		if n > 1 {
			i = r * (len(curve) - 1) / (n - 1)
		}
		c := curve[i]
		fmt.Fprintf(w, "%s\t%d\t%d\t%.4f\t%.4f\t%.4f\t%.4f\n", c.At.Format("15:04:05"), c.Events, c.Warm, c.HR, c.NDCG, c.RecentHR, c.RecentNDCG)
	}
}
