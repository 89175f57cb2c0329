package job

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/joins"
)

// JoinSpec is a join step (DAG jobs; package joins): an inner equi-join
// of the two inputs its inputs: names, left then right.
//
//	steps:
//	  - name: matched
//	    inputs: [bids, auctions]      # left, right
//	    join:
//	      type: interval              # interval | window | regular
//	      on: [[auction, id]]         # [left column, right column] pairs
//	      left_time: date_time        # interval, window: event-time columns
//	      right_time: date_time
//	      lower: -5s                  # interval: right.t - left.t in [lower, upper]
//	      upper: 5s
//	      # size: 10s, slide: 5s      # window (no slide: tumbling)
//	      # ttl: 1h                   # regular: keep rows 1h (processing time)
//	      state: {backend: pebble, dir: /var/tmp/riffle}  # optional, default memory
//
// The output is the left columns, then the right ones (a name already
// taken gets the prefix right_), then window_start and window_end for a
// window join. The late rows of an interval or window join are the side
// outputs "<step>.late_left" and "<step>.late_right" (a sink's from:).
// Planning fails, naming the line: a join whose inputs: does not name two
// inputs, key columns of different types, a regular join without a ttl
// over an unbounded source, an interval or window join over an unbounded
// source without a watermark.
type JoinSpec struct {
	Options joins.Options
}

type rawJoin struct {
	Type      string     `yaml:"type"`
	On        [][]string `yaml:"on"`
	LeftTime  string     `yaml:"left_time"`
	RightTime string     `yaml:"right_time"`
	Lower     string     `yaml:"lower"`
	Upper     string     `yaml:"upper"`
	Size      string     `yaml:"size"`
	Slide     string     `yaml:"slide"`
	TTL       string     `yaml:"ttl"`
	State     *rawState  `yaml:"state"`
}

func parseJoinStep(file string, num int, val *yaml.Node) (*JoinSpec, error) {
	fail := func(line int, format string, args ...any) (*JoinSpec, error) {
		return nil, &Error{File: file, Line: line, Msg: fmt.Sprintf("step %d: join: ", num) + fmt.Sprintf(format, args...)}
	}
	if val.Kind != yaml.MappingNode {
		return fail(val.Line, "want a mapping (e.g. {type: interval, on: [[auction, id]], left_time: t, right_time: t, lower: -5s, upper: 5s})")
	}
	var raw rawJoin
	if err := decodeStrict(file, val, &raw); err != nil {
		return nil, err
	}
	line := func(key string) int { return max(keyLine(val, key), val.Line) }
	o := joins.Options{Type: joins.Type(strings.ToLower(raw.Type)), LeftTime: raw.LeftTime, RightTime: raw.RightTime}
	if len(raw.On) == 0 {
		return fail(line("on"), "on: name the key columns as [left, right] pairs (e.g. on: [[auction, id]])")
	}
	for _, p := range raw.On {
		if len(p) != 2 || p[0] == "" || p[1] == "" {
			return fail(line("on"), "on: want [left column, right column] pairs, got %q", p)
		}
		o.LeftKeys = append(o.LeftKeys, p[0])
		o.RightKeys = append(o.RightKeys, p[1])
	}
	for _, d := range []struct {
		dst  *time.Duration
		name string
		s    string
	}{{&o.Lower, "lower", raw.Lower}, {&o.Upper, "upper", raw.Upper}, {&o.Size, "size", raw.Size}, {&o.Slide, "slide", raw.Slide}, {&o.TTL, "ttl", raw.TTL}} {
		var err error
		if *d.dst, err = parseDuration(d.name, d.s); err != nil {
			return fail(line(d.name), "%v", err)
		}
	}
	switch o.Type {
	case joins.Interval:
		if raw.Lower == "" || raw.Upper == "" {
			return fail(val.Line, "an interval join needs lower and upper (right.t - left.t in [lower, upper])")
		}
		if raw.Size != "" || raw.Slide != "" {
			return fail(line("size"), "an interval join takes lower and upper, not size or slide")
		}
	case joins.Window:
		if raw.Lower != "" || raw.Upper != "" {
			return fail(line("lower"), "a window join takes size (and slide), not lower or upper")
		}
	case joins.Regular:
		if raw.Lower != "" || raw.Upper != "" || raw.Size != "" || raw.Slide != "" {
			return fail(val.Line, "a regular join has no time bound: use type: interval or window for lower/upper or size/slide")
		}
	}
	if err := o.Validate(); err != nil {
		return fail(val.Line, "%v", err)
	}
	if raw.State != nil {
		be, err := raw.State.backend()
		if err != nil {
			return fail(line("state"), "%v", err)
		}
		o.Backend = be
	}
	return &JoinSpec{Options: o}, nil
}

// checkJoinStep refuses a join over unbounded input whose state would
// grow forever (a regular join without ttl) or that would never clean it
// (an interval or window join over a source without a watermark), and
// warns about a timed join over a bounded source without a watermark (its
// state is kept until the end of input).
func checkJoinStep(s *Spec, i int, st Step, srcs []int, log *slog.Logger) error {
	o := st.Join.Options
	for _, si := range srcs {
		src := &s.Sources[si].SourceSpec
		switch {
		case !o.Timed() && o.TTL == 0 && !src.bounded():
			return &Error{File: s.File, Line: st.Line, Msg: fmt.Sprintf(
				"step %d: join: a regular join without ttl over the unbounded source %q keeps every row forever; add ttl: (e.g. ttl: 1h) or use an interval or window join", i+1, s.Sources[si].Name)}
		case o.Timed() && src.watermark().Column == "" && !src.bounded():
			return &Error{File: s.File, Line: st.Line, Msg: fmt.Sprintf(
				"step %d: join: the source %q is unbounded and has no watermark, so the %s join's state would never be cleaned; add watermark: {column: <event-time column>, max_out_of_orderness: 5s}", i+1, s.Sources[si].Name, o.Type)}
		case o.Timed() && src.watermark().Column == "":
			log.Warn("job: join step over a source without a watermark: its rows are kept until the end of input",
				"at", fmt.Sprintf("%s:%d", s.File, st.Line), "step", i+1, "source", s.Sources[si].Name)
		}
	}
	return nil
}

// joinSide says whether side is a join step's side output.
func joinSide(side string) bool {
	return slices.Contains([]string{joins.LateLeft, joins.LateRight}, side)
}

// planJoin adds a join node reading ins (left, right), each hashed on its
// keys.
func planJoin(g *arrowexec.Graph, name string, ins []arrowexec.Input, par int, j *JoinSpec) (*arrowexec.Node, error) {
	if len(ins) != 2 {
		return nil, fmt.Errorf("join: inputs: name two inputs, left then right (it names %d)", len(ins))
	}
	spec, err := joins.New(j.Options)
	if err != nil {
		return nil, err
	}
	left := reroute(ins[0], arrowexec.Hash, j.Options.LeftKeys...)
	right := reroute(ins[1], arrowexec.Hash, j.Options.RightKeys...)
	return g.Add(name, spec, par, left, right), nil
}
