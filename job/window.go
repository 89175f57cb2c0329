package job

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/arrowexec/ops"
	"github.com/riffle-dev/riffle/sinks"
	"github.com/riffle-dev/riffle/state"
	"github.com/riffle-dev/riffle/windows"
)

// WindowSpec is a window step:
//
//	steps:
//	  - window:
//	      type: tumbling            # tumbling | sliding | session
//	      size: 10m                 # tumbling, sliding
//	      slide: 1m                 # sliding
//	      gap: 30s                  # session
//	      key: [item_id]            # optional
//	      time: event_time          # timestamp or int64 ms column
//	      aggs: ["count(*) AS views", "approx_distinct(user_id) AS users"]
//	      allowed_lateness: 1m      # optional
//	      late_output: {path: out/late, format: jsonl}   # optional, jsonl, parquet or csv
//	      # or any sink block: late_output: {kafka: {topic: late-events}}
//	      top: {n: 10, by: views}   # optional: keep the n best rows per window
//	      state: {backend: pebble, dir: /var/tmp/riffle}  # optional, default memory
//
// Durations are Go durations (ms, s, m, h).
//
// late_output wires the window's side output of late rows
// (windows.LateOutput) to a sink of its own: {path, format, part_size} is
// a file sink writing late-<subtask>-<seq> files, committed with
// checkpoints (exactly once) or when the job finishes; a sink block
// ({file: ...} or {kafka: ...}, as the job's sink) is any sink.
//
// Keys and aggregate arguments are expressions, as in the aggregate step
// (AggregateSpec): Options.Keys and Options.Aggs are the columns the
// window reads after Pre, the projection computing them (nil when they
// are plain columns and nothing is filtered).
type WindowSpec struct {
	Options windows.Options
	Top     *windows.TopN
	Pre     []ops.Column
	// Keys and Calls are the step as written.
	Keys  []agg.Key
	Calls []agg.Call
	// Late is the sink of the late rows, or nil (they are only counted).
	Late *SinkSpec
}

// lateFile is late_output's short form: a file sink directory.
type lateFile struct {
	Path     string `yaml:"path"`
	Format   string `yaml:"format"`
	PartSize string `yaml:"part_size"`
}

// parseLateOutput parses late_output: a sink block, or the short form of a
// file sink.
func parseLateOutput(file string, num int, n *yaml.Node) (*SinkSpec, error) {
	what := fmt.Sprintf("step %d: window: late_output", num)
	if n.Kind == yaml.MappingNode && len(n.Content) >= 2 && (n.Content[0].Value == "file" || n.Content[0].Value == "kafka") {
		s, err := parseSink(file, what, n)
		if err != nil {
			return nil, err
		}
		return &s, nil
	}
	var lf lateFile
	if err := decodeStrict(file, n, &lf); err != nil {
		return nil, err
	}
	switch f := sinks.Format(strings.ToLower(lf.Format)); f {
	case "":
		lf.Format = string(sinks.JSONL)
	case sinks.JSONL, sinks.Parquet, sinks.CSV:
		lf.Format = string(f)
	default:
		return nil, &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("%s: format %q (want jsonl, parquet or csv)", what, lf.Format)}
	}
	if lf.Path == "" {
		return nil, &Error{File: file, Line: n.Line, Msg: what + ": needs a path (or a sink block: {file: ...} or {kafka: ...})"}
	}
	return &SinkSpec{File: &FileSinkSpec{Path: lf.Path, Format: lf.Format, Prefix: "late", PartSize: lf.PartSize}, Line: n.Line}, nil
}

// rawWindow is a window step's block (StepWindow).
type rawWindow struct {
	// Type is tumbling, sliding or session.
	Type string `yaml:"type"`
	// Size is a tumbling or sliding window's length.
	Size string `yaml:"size"`
	// Slide is a sliding window's step (windows start every slide).
	Slide string `yaml:"slide"`
	// Gap ends a session after this long without an event of its key.
	Gap string `yaml:"gap"`
	// Key are the window keys: columns or expressions with AS names
	// (empty: one window per time range, one subtask).
	Key []string `yaml:"key"`
	// Time is the event-time column (a timestamp of any unit or int64
	// milliseconds), usually the source's watermark column.
	Time string `yaml:"time"`
	// Aggs are the aggregate calls, as in the aggregate step.
	Aggs []string `yaml:"aggs"`
	// AllowedLateness keeps a fired window's state this long past its end:
	// a late event updates it and the window fires again with is_update
	// (default 0).
	AllowedLateness string `yaml:"allowed_lateness"`
	// LateOutput writes the rows later than that: a sink block ({file:
	// ...} or {kafka: ...}) or its short form {path, format, part_size}, a
	// file sink (default: late rows are only counted).
	LateOutput yaml.Node `yaml:"late_output" ref:"SinkSpec"`
	// Top keeps the n best rows of each window by an aggregate.
	Top *struct {
		// N is the rows kept per window.
		N int `yaml:"n"`
		// By is the output column (an aggregate's name) ranked on.
		By string `yaml:"by"`
		// Ascending keeps the n smallest instead (default false: largest).
		Ascending bool `yaml:"ascending"`
		// WithTies also keeps the rows tied with the n-th (SQL RANK() <= n).
		WithTies bool `yaml:"with_ties"`
	} `yaml:"top"`
	// State picks the keyed-state backend of open windows.
	State *rawState `yaml:"state"`
}

// rawState is a stateful step's state block: {backend: memory | pebble,
// dir: ...}.
type rawState struct {
	// Backend is memory (default: the Go heap, snapshotted at checkpoints)
	// or pebble (an on-disk LSM: state larger than memory).
	Backend string `yaml:"backend"`
	// Dir is the Pebble backend's working directory (required with
	// pebble).
	Dir string `yaml:"dir"`
}

// backend returns the state backend the block asks for (nil: memory).
func (r *rawState) backend() (state.Backend, error) {
	switch strings.ToLower(r.Backend) {
	case "", "memory":
		return nil, nil
	case "pebble":
		if r.Dir == "" {
			return nil, errors.New("state: the pebble backend needs a dir")
		}
		be, err := state.NewPebbleBackend(state.PebbleOptions{Dir: r.Dir})
		if err != nil {
			return nil, fmt.Errorf("state: %v", err)
		}
		return be, nil
	}
	return nil, fmt.Errorf("state: unknown backend %q (want memory or pebble)", r.Backend)
}

// parseDuration parses a Go duration; "" is 0.
func parseDuration(what, s string) (time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%s: cannot parse duration %q (want e.g. 10m, 30s, 500ms)", what, s)
	}
	return d, nil
}

func parseWindowStep(file string, num int, val *yaml.Node) (*WindowSpec, error) {
	fail := func(format string, args ...any) (*WindowSpec, error) {
		return nil, &Error{File: file, Line: val.Line, Msg: fmt.Sprintf("step %d: window: ", num) + fmt.Sprintf(format, args...)}
	}
	if val.Kind != yaml.MappingNode {
		return fail("want a mapping (e.g. {type: tumbling, size: 10m, time: event_time, aggs: [\"count(*) AS n\"]})")
	}
	var raw rawWindow
	if err := decodeStrict(file, val, &raw); err != nil {
		return nil, err
	}
	o := windows.Options{Kind: windows.Kind(strings.ToLower(raw.Type)), Time: raw.Time}
	var err error
	for _, d := range []struct {
		dst  *time.Duration
		name string
		s    string
	}{{&o.Size, "size", raw.Size}, {&o.Slide, "slide", raw.Slide}, {&o.Gap, "gap", raw.Gap}, {&o.AllowedLateness, "allowed_lateness", raw.AllowedLateness}} {
		if *d.dst, err = parseDuration(d.name, d.s); err != nil {
			return fail("%v", err)
		}
	}
	switch o.Kind {
	case windows.Tumbling:
		if raw.Slide != "" || raw.Gap != "" {
			return fail("a tumbling window takes size, not slide or gap")
		}
	case windows.Sliding:
		if raw.Gap != "" {
			return fail("a sliding window takes size and slide, not gap")
		}
	case windows.Session:
		if raw.Size != "" || raw.Slide != "" {
			return fail("a session window takes gap, not size or slide")
		}
	}
	var keys []agg.Key
	var calls []agg.Call
	for _, s := range raw.Key {
		k, err := agg.ParseKey(s)
		if err != nil {
			return fail("%v", err)
		}
		keys = append(keys, k)
	}
	for _, s := range raw.Aggs {
		c, err := agg.ParseCall(s)
		if err != nil {
			return fail("%v", err)
		}
		if c.NeedsOrder() {
			// first(x), last(x): by the window's time column (named
			// as written).
			if c.As == "" {
				c.As = c.Name()
			}
			c.Arg2 = expr.Col(raw.Time)
		}
		calls = append(calls, c)
	}
	l, err := agg.Lower(keys, calls, []string{raw.Time})
	if err != nil {
		return fail("%v", err)
	}
	o.Keys, o.Aggs = l.Keys, l.Aggs
	if raw.State != nil {
		be, err := raw.State.backend()
		if err != nil {
			return fail("%v", err)
		}
		if be != nil {
			o.Backend = be
		}
	}
	if err := o.Validate(); err != nil {
		return fail("%v", strings.TrimPrefix(err.Error(), "windows: "))
	}
	w := &WindowSpec{Options: o, Pre: l.Pre, Keys: keys, Calls: calls}
	if raw.LateOutput.Kind != 0 {
		if w.Late, err = parseLateOutput(file, num, &raw.LateOutput); err != nil {
			return nil, err
		}
	}
	if raw.Top != nil {
		if raw.Top.N <= 0 || raw.Top.By == "" {
			return fail("top: want {n: 10, by: <aggregate>}")
		}
		found := false
		for _, a := range o.Aggs {
			found = found || a.Name() == raw.Top.By
		}
		if !found {
			return fail("top: by %q is not one of the aggregates", raw.Top.By)
		}
		w.Top = &windows.TopN{N: raw.Top.N, By: raw.Top.By, Ascending: raw.Top.Ascending, WithTies: raw.Top.WithTies}
	}
	return w, nil
}

// planWindow adds the window operator, behind a hash exchange on its keys
// (or one subtask without keys), and a top-N operator with one subtask if
// asked for. It returns the last node and the window node (whose side
// output carries the late rows).
func planWindow(g *arrowexec.Graph, name string, in arrowexec.Input, par int, w *WindowSpec) (last, win *arrowexec.Node, err error) {
	if w == nil {
		return nil, nil, errors.New("window step without a spec")
	}
	spec, err := windows.New(w.Options)
	if err != nil {
		return nil, nil, err
	}
	xin, xpar := reroute(in, arrowexec.Rebalance), 1
	if len(w.Options.Keys) > 0 {
		xin, xpar = reroute(in, arrowexec.Hash, w.Options.Keys...), par
	}
	n := g.Add(name, spec, xpar, xin)
	if w.Top == nil {
		return n, n, nil
	}
	top, err := windows.NewTopN(windows.TopNOptions{TopN: *w.Top, Keys: w.Options.Keys, AllowedLateness: w.Options.AllowedLateness.Milliseconds()})
	if err != nil {
		return nil, nil, err
	}
	return g.Add(name+"-top", top, 1, n.Rebalance()), n, nil
}
