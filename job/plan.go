package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/arrowexec/ops"
	"github.com/riffle-dev/riffle/internal/fsx"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/sinks"
	"github.com/riffle-dev/riffle/sources/hybrid"
	"github.com/riffle-dev/riffle/sources/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
	"github.com/riffle-dev/riffle/sources/text"
	"github.com/riffle-dev/riffle/windows"
)

// Plan is a job laid out as a graph, ready to compile and run.
type Plan struct {
	Spec    *Spec
	Graph   *arrowexec.Graph
	Parquet *parquet.Source // the source, when it reads Parquet
	Kafka   *kafka.Source   // the source, when it reads Kafka
	Text    *text.Source    // the source, when it reads CSV or JSONL
	Hybrid  *hybrid.Source  // the source, when it is hybrid
	// Bounded says the source ends by itself (Parquet, bounded Kafka).
	Bounded bool
	Sink    *sinks.FileSpec // the sink, when it writes files
	// Recommend is the recommend step's operator, when the job has one
	// (RecommendSpec.Live serves from a streaming one).
	Recommend *ml.RecommendSpec
	// SourceNode and SinkNode name the graph's ends (for metrics).
	SourceNode, SinkNode string
	// OutputDir is where Commit moves the sink's files; the sink writes
	// them to a hidden staging directory inside it first.
	OutputDir string
	staging   string
	fs        fsx.FS // of staging and Commit (commit.go); nil: the OS's
	// partitionLines: the partition_by line of sink nodes that have one.
	partitionLines map[string]int
	// steps are the spec's steps as planned: the source may have taken
	// over parts of them (pushdown).
	steps []Step
	// output is the edge into the (main) sink.
	output arrowexec.Input
}

// Options adjust planning.
type Options struct {
	// Parallelism overrides the job file's (0: keep).
	Parallelism int
	// OutputDir overrides the file sink's path ("" keeps it).
	OutputDir string
	// NoSync disables fsync in file sinks (tests only).
	NoSync bool
	// Brokers overrides the Kafka brokers of sources and sinks (e.g. an
	// embedded broker); "" keeps the job file's.
	Brokers string
	// KafkaRetryTimeout overrides retry_timeout of Kafka sources and sinks
	// (0 keeps the job file's).
	KafkaRetryTimeout time.Duration
	// Checkpointed says the job runs with checkpoints (checkpoint.Run):
	// file sinks then publish their parts only when the checkpoint covering
	// them is complete (exactly-once), or at the end of bounded input,
	// instead of when they roll (unbounded) or all at once through
	// Plan.Commit (bounded).
	Checkpointed bool
	// CheckpointInterval is the interval of those checkpoints; an
	// exactly-once Kafka sink's transaction timeout is checked against it.
	CheckpointInterval time.Duration
	// ExplainOnly plans without touching the output: a crashed earlier
	// run's staging directory is left for the run that follows (riffle
	// explain).
	ExplainOnly bool
	// Sink, when set, replaces the main sink (a DAG's first; a
	// benchmark's counting sink); the job file's sink is then not built.
	Sink arrowexec.Spec
	// Logger receives planning warnings (e.g. a window step over a
	// source without a watermark) and the sinks' log lines (file sinks:
	// one per published part); nil: slog.Default().
	Logger *slog.Logger
}

func (o *Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// Plan builds the graph of s: source, steps, sink.
func (s *Spec) Plan(o Options) (*Plan, error) { return s.PlanContext(context.Background(), o) }

// PlanContext is Plan with a context for the look-ups a Kafka source or
// sink makes (topics, partitions, offsets) before the job starts.
func (s *Spec) PlanContext(ctx context.Context, o Options) (*Plan, error) {
	p := o.Parallelism
	if p == 0 {
		p = s.Parallelism
	}
	g := arrowexec.NewGraph()
	plan := &Plan{Spec: s, Graph: g}
	steps := map[string]int{}     // node name -> step index
	sinkLines := map[string]int{} // sink node name -> its YAML line
	errAt := func(line int, err error) error {
		return &Error{File: s.File, Line: line, Msg: err.Error(), Err: err}
	}
	sinkErr := func(line int, err error) error {
		var je *Error
		if errors.As(err, &je) {
			return err // it names its line
		}
		return errAt(line, err)
	}

	if s.IsDAG() {
		return plan.planDAG(ctx, s, o, p)
	}
	for i, st := range s.Steps {
		if st.Kind == StepJoin && st.Join.Lookup == nil {
			return nil, errAt(st.Line, fmt.Errorf("step %d: a %s join reads two inputs: it needs a job with named sources (sources:)", i+1, st.Join.Options.Type))
		}
		if st.Kind == StepUnion || len(st.Inputs) > 0 {
			return nil, errAt(max(st.InputsLine, st.Line), fmt.Errorf("step %d: inputs and union need a job with named sources (sources:) or several sinks (sinks:)", i+1))
		}
		if eventTimeStep(st.Kind) {
			if err := checkWindowWatermark(s, &s.Source, i, st, o.logger()); err != nil {
				return nil, err
			}
		}
		if err := checkBoundedStep(s, &s.Source, i, st); err != nil {
			return nil, err
		}
	}
	if err := checkSingleFile(plan, s, o); err != nil {
		return nil, err
	}
	plan.steps = s.Steps
	src, err := plan.buildSource(ctx, s.Source, s.Steps, o)
	if err != nil {
		return nil, errAt(s.Source.Line, err)
	}
	cur := g.AddSource("source", src, p)
	plan.SourceNode = cur.Name()
	par := cur.Parallelism()
	in := cur.Forward()

	for i, st := range plan.steps {
		name := fmt.Sprintf("%s-%d", st.Kind, i+1)
		st = holdToEnd(st, slices.ContainsFunc(plan.steps[:i], func(u Step) bool { return emitsAtEnd(u.Kind) }))
		cur, _, err = plan.addStep(ctx, s, o, i, name, st, []arrowexec.Input{in}, par, sinkLines)
		if err != nil {
			return nil, err
		}
		par = cur.Parallelism()
		in = cur.Forward()
		steps[cur.Name()] = i
		steps[cur.Name()+"-partial"] = i
		steps[cur.Name()+"-pre"] = i
	}

	sink, err := plan.buildSink(ctx, s, o, s.Sink, true)
	if err != nil {
		return nil, sinkErr(s.Sink.Line, err)
	}
	plan.output = in
	in, par = sinkInput(s.Sink, in, par)
	sn := g.Add("sink", sink, par, in)
	plan.SinkNode = sn.Name()
	sinkLines[sn.Name()] = s.Sink.Line
	plan.notePartitionLine(sn.Name(), s.Sink)
	if err := g.Build(); err != nil {
		// Point at the step whose expressions or columns were rejected.
		var ne *arrowexec.NodeError
		if errors.As(err, &ne) {
			if i, ok := steps[ne.Node]; ok {
				st := s.Steps[i]
				return nil, errAt(st.Line, fmt.Errorf("step %d (%s): %w", i+1, st.Kind, ne.Err))
			}
			if line, ok := sinkLines[ne.Node]; ok {
				return nil, plan.sinkError(s.File, ne.Node, line, ne.Err)
			}
		}
		return nil, errAt(0, err)
	}
	return plan, nil
}

// reroute returns in (an edge from a node's output, main or side) with
// another partitioning.
func reroute(in arrowexec.Input, kind arrowexec.PartitionKind, keys ...string) arrowexec.Input {
	in.Kind, in.Keys = kind, keys
	return in
}

// addStep adds the nodes of step i (numbered i+1 in messages), named name,
// reading ins (one edge, union: several) at parallelism par (that of the
// first input). It returns the step's last node and, for a window step,
// the window node (whose side output carries the late rows), and adds the
// node of a window's late_output sink.
func (plan *Plan) addStep(ctx context.Context, s *Spec, o Options, i int, name string, st Step, ins []arrowexec.Input, par int, sinkLines map[string]int) (cur, win *arrowexec.Node, err error) {
	g := plan.Graph
	errAt := func(err error) (*arrowexec.Node, *arrowexec.Node, error) {
		return nil, nil, &Error{File: s.File, Line: st.Line, Msg: err.Error(), Err: err}
	}
	if st.Kind != StepUnion && st.Kind != StepJoin && len(ins) != 1 {
		return errAt(fmt.Errorf("step %d (%s): reads one input, inputs names %d", i+1, st.Kind, len(ins)))
	}
	in := ins[0]
	switch st.Kind {
	case StepFilter:
		cur = g.Add(name, ops.NewFilter(st.Filter), par, in)
	case StepProject:
		cols := make([]ops.Column, len(st.Project))
		for j, c := range st.Project {
			cols[j] = ops.Column{Name: c.Name, Expr: c.Expr}
		}
		cur = g.Add(name, ops.NewProject(cols), par, in)
	case StepUnion:
		if len(ins) < 2 {
			return nil, nil, &Error{File: s.File, Line: max(st.InputsLine, st.Line), Msg: fmt.Sprintf("step %d (union): inputs: name at least two sources or steps", i+1)}
		}
		cur = g.Add(name, ops.NewUnion(), par, ins...)
	case StepJoin:
		if cur, err = planJoin(g, name, ins, par, st.Join); err != nil {
			line := st.Line
			if len(ins) != 2 && st.InputsLine > 0 {
				line = st.InputsLine
			}
			return nil, nil, &Error{File: s.File, Line: line, Msg: fmt.Sprintf("step %d (%s): %v", i+1, st.Kind, err), Err: err}
		}
		win = cur
	case StepAggregate:
		a := st.Aggregate
		if len(a.Pre) > 0 {
			in = g.Add(name+"-pre", ops.NewProject(a.Pre), par, in).Forward()
		}
		exchange := func(from arrowexec.Input) (arrowexec.Input, int) {
			if len(a.GroupBy) == 0 {
				return reroute(from, arrowexec.Rebalance), 1
			}
			return reroute(from, arrowexec.Hash, a.GroupBy...), par
		}
		if agg.Decomposable(a.Aggs) {
			partial, err := agg.New(agg.Options{GroupBy: a.GroupBy, Aggs: a.Aggs, Mode: agg.Partial})
			if err != nil {
				return errAt(err)
			}
			pn := g.Add(name+"-partial", partial, par, in)
			final, err := agg.New(agg.Options{GroupBy: a.GroupBy, Aggs: a.Aggs, Mode: agg.Final})
			if err != nil {
				return errAt(err)
			}
			xin, xpar := exchange(pn.Forward())
			cur = g.Add(name, final, xpar, xin)
		} else {
			single, err := agg.New(agg.Options{GroupBy: a.GroupBy, Aggs: a.Aggs, Mode: agg.Single})
			if err != nil {
				return errAt(err)
			}
			// Exchange from the previous node's output.
			xin, xpar := exchange(in)
			cur = g.Add(name, single, xpar, xin)
		}
	case StepWindow:
		if pre := st.Window.Pre; len(pre) > 0 {
			in = g.Add(name+"-pre", ops.NewProject(pre), par, in).Forward()
		}
		cur, win, err = planWindow(g, name, in, par, st.Window)
		if err != nil {
			return errAt(err)
		}
		if l := st.Window.Late; l != nil {
			sink, err := plan.buildSink(ctx, s, o, *l, false)
			if err != nil {
				var je *Error
				if errors.As(err, &je) {
					return nil, nil, err
				}
				return nil, nil, &Error{File: s.File, Line: l.Line, Msg: err.Error(), Err: err}
			}
			lin, lpar := sinkInput(*l, win.Side(windows.LateOutput).Forward(), win.Parallelism())
			ln := g.Add(name+"-late", sink, lpar, lin)
			sinkLines[ln.Name()] = l.Line
			plan.notePartitionLine(ln.Name(), *l)
		}
	case StepRecommend:
		n, spec, err := planRecommend(g, name, in, par, st.Recommend, plan.sourcesBounded(s), o.Checkpointed)
		if err != nil {
			return errAt(err)
		}
		cur = n
		plan.Recommend = spec
	case StepSort, StepLimit, StepDistinct, StepUnnest:
		if cur, err = plan.addExtraStep(s, i, name, st, in, par); err != nil {
			return errAt(err)
		}
	case StepWindowMax:
		if cur, err = planWindowMax(g, name, in, par, *st.WindowMax); err != nil {
			return errAt(err)
		}
	case StepLastN:
		if cur, err = planLastN(g, name, in, par, *st.LastN); err != nil {
			return errAt(err)
		}
	default:
		return errAt(fmt.Errorf("step %d: unknown kind %q", i+1, st.Kind))
	}
	return cur, win, nil
}

// sourcesBounded says whether every source of s ends by itself.
func (plan *Plan) sourcesBounded(s *Spec) bool {
	if !s.IsDAG() {
		return s.Source.bounded()
	}
	for _, src := range s.Sources {
		if !src.bounded() {
			return false
		}
	}
	return true
}

// eventTimeStep says whether steps of kind k wait for the watermark.
func eventTimeStep(k StepKind) bool {
	return k == StepWindow || k == StepWindowMax || k == StepLastN
}

// checkWindowWatermark refuses a window step over an unbounded source
// without a watermark (its windows would never fire) and warns about one
// over a bounded source (they all fire at the end of input, at once).
func checkWindowWatermark(s *Spec, src *SourceSpec, i int, st Step, log *slog.Logger) error {
	if src.hasWatermark() {
		return nil
	}
	hint := "source.watermark: {column: <event-time column>, max_out_of_orderness: 5s}"
	switch {
	case st.Window != nil && st.Window.Options.Time != "":
		hint = fmt.Sprintf("source.watermark: {column: %s, max_out_of_orderness: 5s}", st.Window.Options.Time)
	case st.WindowMax != nil:
		hint = fmt.Sprintf("source.watermark: {column: %s, max_out_of_orderness: 5s}", st.WindowMax.Time)
	case st.LastN != nil:
		hint = fmt.Sprintf("source.watermark: {column: %s, max_out_of_orderness: 5s}", st.LastN.Order[0])
	}
	if !src.bounded() {
		return &Error{File: s.File, Line: st.Line, Msg: fmt.Sprintf(
			"step %d: %s: the source is unbounded and has no watermark, so its windows would never fire; add %s", i+1, st.Kind, hint)}
	}
	log.Warn("job: "+string(st.Kind)+" step over a source without a watermark: its windows fire only at the end of input, all at once; add "+hint,
		"at", fmt.Sprintf("%s:%d", s.File, st.Line), "step", i+1)
	return nil
}

// bounded says whether the source ends by itself (Plan.Bounded, known
// before the source is built).
func (w *SourceSpec) bounded() bool {
	switch {
	case w.Parquet != nil, w.CSV != nil, w.JSONL != nil:
		return true
	case w.Kafka != nil:
		return w.Kafka.Bounded
	case w.Nexmark != nil:
		return w.Nexmark.Events > 0
	case w.Hybrid != nil && w.Hybrid.Kafka != nil:
		return w.Hybrid.Kafka.Bounded
	}
	return false
}

// pushdown returns the source columns the steps read (nil: all) and the
// comparisons with constants of the filters that run on source rows.
func pushdown(steps []Step) ([]string, []parquet.Predicate) {
	var cols []string
	var preds []parquet.Predicate
	add := func(names ...string) {
		for _, n := range names {
			if !slices.Contains(cols, n) {
				cols = append(cols, n)
			}
		}
	}
	for _, st := range steps {
		switch st.Kind {
		case StepFilter:
			add(expr.Columns(st.Filter)...)
			for _, p := range expr.PushdownPredicates(st.Filter) {
				preds = append(preds, parquet.Predicate{Column: p.Column, Op: p.Op, Value: p.Value})
			}
		case StepProject:
			for _, c := range st.Project {
				add(expr.Columns(c.Expr)...)
			}
			return cols, preds
		case StepWindow:
			w := st.Window.Options
			add(w.Time)
			if len(st.Window.Pre) > 0 {
				add(agg.Columns(st.Window.Keys, st.Window.Calls)...)
				return cols, preds
			}
			add(w.Keys...)
			for _, a := range w.Aggs {
				if a.Column != "" && a.Column != "*" {
					add(a.Column)
				}
			}
			return cols, preds
		case StepRecommend:
			r := st.Recommend.Options
			add(r.User, r.Item)
			if r.Weight != nil {
				add(expr.Columns(r.Weight)...)
			}
			return cols, preds
		case StepJoin:
			// A lookup join passes every column on; later steps read
			// table columns too.
			return nil, preds
		case StepAggregate:
			if a := st.Aggregate; len(a.Pre) > 0 {
				add(agg.Columns(a.Keys, a.Calls)...)
			} else {
				add(a.GroupBy...)
				for _, a := range a.Aggs {
					if a.Column != "" && a.Column != "*" {
						add(a.Column)
					}
				}
			}
			if len(cols) == 0 {
				// count(*) alone still needs rows: read the narrowest thing
				// the source has, which it picks when given no column.
				return nil, preds
			}
			return cols, preds
		default:
			// sort, limit, distinct, unnest: no filter moves past them
			// (not past a limit), and every column is read.
			return nil, preds
		}
	}
	return nil, preds // every column reaches the sink
}

var sizeRE = regexp.MustCompile(`(?i)^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$`)

// ParseSize parses sizes like "128MiB", "64MB" or "1048576" ("" is 0).
func ParseSize(s string) (int64, error) {
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("cannot parse size %q (want e.g. 128MiB)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot parse size %q: %v", s, err)
	}
	mult := map[string]int64{"": 1, "b": 1, "kb": 1e3, "kib": 1 << 10, "mb": 1e6, "mib": 1 << 20, "gb": 1e9, "gib": 1 << 30}[strings.ToLower(m[2])]
	return n * mult, nil
}

// OutputSchema returns the schema the sink receives.
func (p *Plan) OutputSchema() *arrow.Schema { return p.output.Schema() }
