package job

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"gopkg.in/yaml.v3"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/filelist"
	"github.com/riffle-dev/riffle/joins"
	"github.com/riffle-dev/riffle/sources/parquet"
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
//
// A lookup join reads one input and a Parquet table that every subtask
// loads whole (a broadcast), and loads again when its files change (names,
// sizes or modification times, looked at every check_every, default 10s):
//
//   - name: enriched
//     join: {type: lookup, table: dims/items/, on: [[item_id, id]], check_every: 1m}
type JoinSpec struct {
	Options joins.Options
	// Lookup is set for a lookup join (Options is then unused): the
	// table's paths (files, globs, directories) and how often to check
	// them.
	Lookup *LookupJoin
}

// LookupJoin is a lookup join step's table and keys.
type LookupJoin struct {
	Keys, TableKeys []string
	Table           []string
	Check           time.Duration
}

type rawJoin struct {
	// Type is interval, window, regular or lookup.
	Type string `yaml:"type"`
	// On pairs the key columns: [[left_col, right_col], ...] (equal
	// types; NULL keys never match).
	On [][]string `yaml:"on"`
	// LeftTime is the left input's event-time column (interval and
	// window joins).
	LeftTime string `yaml:"left_time"`
	// RightTime is the right input's event-time column.
	RightTime string `yaml:"right_time"`
	// Lower bounds an interval join: right time ≥ left time + lower.
	Lower string `yaml:"lower"`
	// Upper bounds an interval join: right time ≤ left time + upper.
	Upper string `yaml:"upper"`
	// Size is a window join's window length.
	Size string `yaml:"size"`
	// Slide is a sliding window join's step (default: size, tumbling).
	Slide string `yaml:"slide"`
	// TTL drops a regular join's rows this long after their arrival
	// (required over an unbounded input).
	TTL string `yaml:"ttl"`
	// State picks the keyed-state backend of the rows kept.
	State *rawState `yaml:"state"`
	// Table is a lookup join's Parquet table: a path or a list of paths.
	Table stringList `yaml:"table"`
	// CheckEvery is how often a lookup join looks for changed table files
	// (default 10s).
	CheckEvery string `yaml:"check_every"`
}

// stringList is one string or a list of them.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = []string{n.Value}
		return nil
	}
	var v []string
	if err := n.Decode(&v); err != nil {
		return err
	}
	*l = v
	return nil
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
	if o.Type == "lookup" {
		return parseLookupJoin(raw, o, fail, line, val.Line)
	}
	if len(raw.Table) > 0 || raw.CheckEvery != "" {
		return fail(line("table"), "table and check_every are for lookup joins (type: lookup)")
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

func parseLookupJoin(raw rawJoin, o joins.Options, fail func(int, string, ...any) (*JoinSpec, error), line func(string) int, at int) (*JoinSpec, error) {
	if raw.LeftTime != "" || raw.RightTime != "" || raw.Lower != "" || raw.Upper != "" || raw.Size != "" || raw.Slide != "" || raw.TTL != "" || raw.State != nil {
		return fail(at, "a lookup join takes table, on and check_every (no time bound, no state)")
	}
	if len(raw.Table) == 0 {
		return fail(at, "a lookup join needs table: the Parquet files (a file, glob or directory) it looks up")
	}
	check, err := parseDuration("check_every", raw.CheckEvery)
	if err != nil {
		return fail(line("check_every"), "%v", err)
	}
	if check < 0 {
		return fail(line("check_every"), "check_every: negative duration")
	}
	return &JoinSpec{Lookup: &LookupJoin{Keys: o.LeftKeys, TableKeys: o.RightKeys, Table: raw.Table, Check: check}}, nil
}

// checkJoinStep refuses a join over unbounded input whose state would
// grow forever (a regular join without ttl) or that would never clean it
// (an interval or window join over a source without a watermark), and
// warns about a timed join over a bounded source without a watermark (its
// state is kept until the end of input).
func checkJoinStep(s *Spec, i int, st Step, srcs []int, log *slog.Logger) error {
	if st.Join.Lookup != nil {
		return nil
	}
	o := st.Join.Options
	for _, si := range srcs {
		src := &s.Sources[si].SourceSpec
		switch {
		case !o.Timed() && o.TTL == 0 && !src.bounded():
			return &Error{File: s.File, Line: st.Line, Msg: fmt.Sprintf(
				"step %d: join: a regular join without ttl over the unbounded source %q keeps every row forever; add ttl: (e.g. ttl: 1h) or use an interval or window join", i+1, s.Sources[si].Name)}
		case o.Timed() && !src.hasWatermark() && !src.bounded():
			return &Error{File: s.File, Line: st.Line, Msg: fmt.Sprintf(
				"step %d: join: the source %q is unbounded and has no watermark, so the %s join's state would never be cleaned; add watermark: {column: <event-time column>, max_out_of_orderness: 5s}", i+1, s.Sources[si].Name, o.Type)}
		case o.Timed() && !src.hasWatermark():
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
	if l := j.Lookup; l != nil {
		if len(ins) != 1 {
			return nil, fmt.Errorf("join: a lookup join reads one input (it names %d)", len(ins))
		}
		tbl, err := newParquetTable(l.Table)
		if err != nil {
			return nil, fmt.Errorf("join: table: %w", err)
		}
		spec, err := joins.NewLookup(joins.LookupOptions{Keys: l.Keys, TableKeys: l.TableKeys, Table: tbl, Check: l.Check})
		if err != nil {
			return nil, err
		}
		return g.Add(name, spec, par, ins[0]), nil
	}
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

// parquetTable is a lookup join's table: Parquet files, their version
// the names, sizes and modification times of the files the paths resolve
// to.
type parquetTable struct {
	paths  []string
	schema *arrow.Schema
}

func newParquetTable(paths []string) (*parquetTable, error) {
	src, err := parquet.New(parquet.Options{Paths: paths})
	if err != nil {
		return nil, err
	}
	return &parquetTable{paths: paths, schema: src.Schema()}, nil
}

func (p *parquetTable) Schema() *arrow.Schema { return p.schema }

func (p *parquetTable) Version(context.Context) (string, error) {
	files, err := filelist.Resolve(p.paths, filelist.Options{Prefix: "parquet", Extensions: []string{".parquet"}})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s %d %d\n", f, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

func (p *parquetTable) Load(ctx context.Context, mem memory.Allocator) (out []arrow.RecordBatch, err error) {
	defer func() {
		if err != nil {
			for _, b := range out {
				b.Release()
			}
			out = nil
		}
	}()
	src, err := parquet.New(parquet.Options{Paths: p.paths})
	if err != nil {
		return nil, err
	}
	if !src.Schema().Equal(p.schema) {
		return nil, fmt.Errorf("the table's schema changed to %s (planned with %s)", src.Schema(), p.schema)
	}
	for b, err := range src.Batches(ctx, mem, 0) {
		if err != nil {
			return out, err
		}
		b.Retain()
		out = append(out, b)
	}
	return out, nil
}
