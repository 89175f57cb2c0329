package job

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/windows"
)

// A DAG job (Spec.IsDAG) names its sources, its steps read what their
// inputs name, and each of its sinks reads what its from names:
//
//	sources:
//	  clicks: {parquet: {path: clicks/}}
//	  views: {kafka: {topic: views, fields: [...]}, watermark: {...}}
//	steps:
//	  - name: all
//	    union: {}
//	    inputs: [clicks, views]
//	  - name: per-minute
//	    window: {type: tumbling, size: 1m, time: event_time, aggs: [...]}
//	sinks:
//	  - {from: per-minute, file: {path: out/counts}}
//	  - {from: per-minute.late, kafka: {topic: late-events}}
//
// A step without inputs reads the step before it (the first step: the only
// source); a sink without from reads the last step. "step.late" is a window
// step's side output of late rows. Planning checks, naming the YAML line:
// every name is unique and known, the steps form no cycle, every source is
// read, a union's inputs have the same columns.

// dagRef is what an input or a sink's from names: a source or a step, and
// optionally a side output of it.
type dagRef struct {
	source, step int // index of the source or step, -1 if not that kind
	side         string
}

// dagNode is a planned source or step: its last node, and for a window
// step the window node (whose side output carries the late rows).
type dagNode struct {
	node, win *arrowexec.Node
}

func (plan *Plan) planDAG(ctx context.Context, s *Spec, o Options, p int) (*Plan, error) {
	g := plan.Graph
	plan.steps = s.Steps
	errAt := func(line int, format string, args ...any) error {
		return &Error{File: s.File, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if len(s.Sources) == 0 {
		return nil, errAt(0, "a job with sinks: needs a source (source: or sources:)")
	}
	if len(s.Sinks) == 0 {
		return nil, errAt(0, "a job with sources: needs a sink (sink: or sinks:)")
	}
	if err := checkSingleFile(plan, s, o); err != nil {
		return nil, err
	}
	// Names: sources, then steps (default <kind>-<number>).
	names := map[string]dagRef{}
	var known []string
	for i, src := range s.Sources {
		if _, dup := names[src.Name]; dup {
			return nil, errAt(src.Line, "sources: %q is named twice", src.Name)
		}
		names[src.Name] = dagRef{source: i, step: -1}
		known = append(known, src.Name)
	}
	stepNames := make([]string, len(s.Steps))
	for i, st := range s.Steps {
		n := st.Name
		if n == "" {
			n = fmt.Sprintf("%s-%d", st.Kind, i+1)
		}
		if _, dup := names[n]; dup {
			return nil, errAt(st.Line, "step %d: name %q is taken (by a source or an earlier step)", i+1, n)
		}
		names[n] = dagRef{source: -1, step: i}
		stepNames[i] = n
		known = append(known, n)
	}
	resolve := func(line int, what, name string) (dagRef, error) {
		base, side, _ := strings.Cut(name, ".")
		r, ok := names[base]
		if !ok {
			return r, errAt(line, "%s: unknown input %q (have %s)", what, base, strings.Join(known, ", "))
		}
		if side != "" {
			lateOK := r.step >= 0 && (s.Steps[r.step].Kind == StepWindow && side == windows.LateOutput || s.Steps[r.step].Kind == StepJoin && joinSide(side))
			if !lateOK {
				return r, errAt(line, "%s: %q has no side output %q (a window step's late rows are %s.%s; a join step's are <step>.late_left and .late_right)", what, base, side, base, windows.LateOutput)
			}
			r.side = side
		}
		return r, nil
	}
	// Inputs of every step.
	inputs := make([][]dagRef, len(s.Steps))
	read := make([]bool, len(s.Sources))
	for i, st := range s.Steps {
		what := fmt.Sprintf("step %d (%s): inputs", i+1, stepNames[i])
		switch {
		case len(st.Inputs) > 0:
			for _, name := range st.Inputs {
				r, err := resolve(st.InputsLine, what, name)
				if err != nil {
					return nil, err
				}
				inputs[i] = append(inputs[i], r)
			}
		case i > 0:
			inputs[i] = []dagRef{{source: -1, step: i - 1}}
		case len(s.Sources) == 1:
			inputs[i] = []dagRef{{source: 0, step: -1}}
		default:
			return nil, errAt(st.Line, "step 1: the job has %d sources: name the ones this step reads (inputs: [...])", len(s.Sources))
		}
		for _, r := range inputs[i] {
			if r.source >= 0 {
				read[r.source] = true
			}
		}
	}
	froms := make([]dagRef, len(s.Sinks))
	for i, sk := range s.Sinks {
		switch {
		case sk.From != "":
			r, err := resolve(sk.Line, fmt.Sprintf("sinks: %d: from", i+1), sk.From)
			if err != nil {
				return nil, err
			}
			froms[i] = r
		case len(s.Steps) > 0:
			froms[i] = dagRef{source: -1, step: len(s.Steps) - 1}
		case len(s.Sources) == 1:
			froms[i] = dagRef{source: 0, step: -1}
		default:
			return nil, errAt(sk.Line, "sinks: %d: from: name the source it reads", i+1)
		}
		if froms[i].source >= 0 {
			read[froms[i].source] = true
		}
	}
	for i, ok := range read {
		if !ok {
			return nil, errAt(s.Sources[i].Line, "sources: %q is read by no step or sink", s.Sources[i].Name)
		}
	}
	order, err := topoOrder(s, inputs, stepNames)
	if err != nil {
		return nil, err
	}
	// Windows need watermarks from every source upstream.
	for _, i := range order {
		st := s.Steps[i]
		for _, si := range upstreamSources(inputs, i) {
			if err := checkBoundedStep(s, &s.Sources[si].SourceSpec, i, st); err != nil {
				return nil, err
			}
		}
		if st.Kind == StepJoin {
			if err := checkJoinStep(s, i, st, upstreamSources(inputs, i), o.logger()); err != nil {
				return nil, err
			}
		}
		if !eventTimeStep(st.Kind) {
			continue
		}
		for _, si := range upstreamSources(inputs, i) {
			if err := checkWindowWatermark(s, &s.Sources[si].SourceSpec, i, st, o.logger()); err != nil {
				return nil, err
			}
		}
	}

	srcNodes := make([]dagNode, len(s.Sources))
	plan.Bounded = true
	for i, ns := range s.Sources {
		src, err := plan.buildSource(ctx, ns.SourceSpec, nil, o)
		if err != nil {
			return nil, &Error{File: s.File, Line: ns.Line, Msg: err.Error(), Err: err}
		}
		n := g.AddSource("source-"+ns.Name, src, p)
		srcNodes[i] = dagNode{node: n}
		if i == 0 {
			plan.SourceNode = n.Name()
		}
	}
	plan.Bounded = plan.sourcesBounded(s)
	edge := func(r dagRef, planned []dagNode) arrowexec.Input {
		if r.source >= 0 {
			return srcNodes[r.source].node.Forward()
		}
		if r.side != "" {
			return planned[r.step].win.Side(r.side).Forward()
		}
		return planned[r.step].node.Forward()
	}
	par := func(in arrowexec.Input) int { return in.From.Parallelism() }
	stepOf := map[string]int{}    // node name -> step index
	sinkLines := map[string]int{} // sink node name -> its YAML line
	planned := make([]dagNode, len(s.Steps))
	for _, i := range order {
		st := s.Steps[i]
		var ins []arrowexec.Input
		for _, r := range inputs[i] {
			ins = append(ins, edge(r, planned))
		}
		// A step runs at its first input's parallelism; a union's other
		// inputs are rebalanced onto it when theirs differs.
		pp := par(ins[0])
		for j := range ins[1:] {
			if par(ins[j+1]) != pp {
				ins[j+1] = reroute(ins[j+1], arrowexec.Rebalance)
			}
		}
		st = holdToEnd(st, slices.ContainsFunc(upstreamSteps(inputs, i), func(u int) bool { return emitsAtEnd(s.Steps[u].Kind) }))
		cur, win, err := plan.addStep(ctx, s, o, i, stepNames[i], st, ins, pp, sinkLines)
		if err != nil {
			return nil, err
		}
		planned[i] = dagNode{node: cur, win: win}
		stepOf[stepNames[i]] = i
		stepOf[stepNames[i]+"-partial"] = i
		stepOf[stepNames[i]+"-pre"] = i
	}
	for i, sk := range s.Sinks {
		main := i == 0
		sink, err := plan.buildSink(ctx, s, o, sk, main)
		if err != nil {
			var je *Error
			if errors.As(err, &je) {
				return nil, err
			}
			return nil, &Error{File: s.File, Line: sk.Line, Msg: err.Error(), Err: err}
		}
		in := edge(froms[i], planned)
		name := fmt.Sprintf("sink-%d", i+1)
		if main {
			name = "sink"
			plan.output = in
		}
		in, sp := sinkInput(sk, in, par(in))
		n := g.Add(name, sink, sp, in)
		if main {
			plan.SinkNode = n.Name()
		}
		sinkLines[n.Name()] = sk.Line
		plan.notePartitionLine(n.Name(), sk)
	}
	if err := g.Build(); err != nil {
		var ne *arrowexec.NodeError
		if errors.As(err, &ne) {
			if i, ok := stepOf[ne.Node]; ok {
				st := s.Steps[i]
				return nil, &Error{File: s.File, Line: st.Line, Msg: fmt.Sprintf("step %d (%s): %v", i+1, st.Kind, ne.Err), Err: ne.Err}
			}
			if line, ok := sinkLines[ne.Node]; ok {
				return nil, plan.sinkError(s.File, ne.Node, line, ne.Err)
			}
		}
		return nil, &Error{File: s.File, Msg: err.Error(), Err: err}
	}
	return plan, nil
}

// topoOrder orders the steps so that every step comes after the steps it
// reads, or names the cycle that prevents it (at the inputs line of the
// step that closes it).
func topoOrder(s *Spec, inputs [][]dagRef, names []string) ([]int, error) {
	const (
		unseen = iota
		active
		done
	)
	state := make([]int, len(s.Steps))
	var order, path []int
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case done:
			return nil
		case active:
			k := slices.Index(path, i)
			var cyc []string
			for _, j := range path[k:] {
				cyc = append(cyc, names[j])
			}
			cyc = append(cyc, names[i])
			last := path[len(path)-1]
			return &Error{File: s.File, Line: max(s.Steps[last].InputsLine, s.Steps[last].Line),
				Msg: fmt.Sprintf("step %d (%s): inputs: cycle %s", last+1, names[last], strings.Join(cyc, " -> "))}
		}
		state[i] = active
		path = append(path, i)
		for _, r := range inputs[i] {
			if r.step >= 0 {
				if err := visit(r.step); err != nil {
					return err
				}
			}
		}
		path = path[:len(path)-1]
		state[i] = done
		order = append(order, i)
		return nil
	}
	for i := range s.Steps {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// upstreamSources returns the sources step i reads, directly or through
// other steps.
// upstreamSteps returns the steps step i reads from, directly or not.
func upstreamSteps(inputs [][]dagRef, i int) []int {
	var out []int
	var walk func(i int)
	walk = func(i int) {
		for _, r := range inputs[i] {
			if r.step >= 0 && !slices.Contains(out, r.step) {
				out = append(out, r.step)
				walk(r.step)
			}
		}
	}
	walk(i)
	return out
}

func upstreamSources(inputs [][]dagRef, i int) []int {
	seen := map[int]bool{}
	var out []int
	var walk func(i int)
	walk = func(i int) {
		if seen[i] {
			return
		}
		seen[i] = true
		for _, r := range inputs[i] {
			if r.source >= 0 && !slices.Contains(out, r.source) {
				out = append(out, r.source)
			}
			if r.step >= 0 {
				walk(r.step)
			}
		}
	}
	walk(i)
	return out
}
