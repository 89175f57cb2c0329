package job

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"gopkg.in/yaml.v3"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/arrowexec/ops"
)

// The relational steps of bounded jobs:
//
//	steps:
//	  - sort: [price DESC, item_id]    # NULLS LAST unless "NULLS FIRST" (DuckDB's default)
//	  - limit: 10                      # right after a sort: a top-N heap
//	  - distinct: [user_id, item_id]   # those columns' distinct rows; distinct: {} for every column
//	  - unnest: tags                   # one row per element of a list column
//
// Sort and limit need bounded input: over an unbounded source planning
// fails at the step's line. A sort is one subtask reading every row
// (Rebalance to parallelism 1); a limit, or a sort followed directly by a
// limit in a linear job (a top-N), runs a partial limit or top-N on every
// subtask and a final one at parallelism 1, so the steps after it run at
// parallelism 1 (a sink then writes the rows in order). Distinct is a hash
// aggregate without aggregates (package agg): partial per subtask, then
// final behind a hash exchange on its columns (every column: at
// parallelism 1). Unnest runs at the step before's parallelism.
const (
	// StepSort orders the rows of bounded input by a list of keys, each a
	// column with optional DESC and NULLS FIRST/LAST (default ASC, NULLS
	// LAST as DuckDB); followed by a limit it keeps only the top rows.
	//
	//	steps:
	//	  - sort: [weight DESC, item_id]
	//	  - limit: 10
	StepSort StepKind = "sort"
	// StepLimit keeps the first N rows of bounded input.
	//
	//	steps:
	//	  - limit: 100
	StepLimit StepKind = "limit"
	// StepDistinct keeps one row per distinct value of the columns listed
	// (their columns only), or of every column with {}.
	//
	//	steps:
	//	  - distinct: [user_id, item_id]
	StepDistinct StepKind = "distinct"
	// StepUnnest turns each element of a list column into a row of its
	// own (the other columns repeated; an empty or NULL list gives none):
	// "unnest: tags" for a list column tags.
	StepUnnest StepKind = "unnest"
)

// isExtraStep says whether k is one of this file's step kinds.
func isExtraStep(k StepKind) bool {
	switch k {
	case StepSort, StepLimit, StepDistinct, StepUnnest:
		return true
	}
	return false
}

// parseExtraStep parses the value of a sort, limit, distinct or unnest
// step into st.
func parseExtraStep(file string, num int, st *Step, val *yaml.Node) error {
	fail := func(line int, format string, args ...any) error {
		return &Error{File: file, Line: line, Msg: fmt.Sprintf("step %d: ", num) + fmt.Sprintf(format, args...)}
	}
	isNull := val.Kind == yaml.ScalarNode && val.Tag == "!!null"
	switch st.Kind {
	case StepSort:
		var keys []*yaml.Node
		switch val.Kind {
		case yaml.ScalarNode:
			if !isNull {
				keys = []*yaml.Node{val}
			}
		case yaml.SequenceNode:
			keys = val.Content
		}
		const want = "sort: want column names with optional DESC / NULLS FIRST (e.g. sort: [price DESC, id])"
		if len(keys) == 0 {
			return fail(val.Line, want)
		}
		for _, k := range keys {
			if k.Kind != yaml.ScalarNode {
				return fail(k.Line, want)
			}
			sk, err := ops.ParseSortKey(k.Value)
			if err != nil {
				return fail(k.Line, "sort: %v", err)
			}
			st.Sort = append(st.Sort, sk)
		}
	case StepLimit:
		var n int64
		if val.Kind != yaml.ScalarNode || val.Decode(&n) != nil || n < 0 {
			return fail(val.Line, "limit: want a number of rows >= 0 (e.g. limit: 10), have %q", val.Value)
		}
		st.Limit = n
	case StepDistinct:
		d := &DistinctSpec{}
		switch {
		case isNull, val.Kind == yaml.MappingNode && len(val.Content) == 0:
		case val.Kind == yaml.SequenceNode && len(val.Content) > 0:
			seen := map[string]bool{}
			for _, c := range val.Content {
				if c.Kind != yaml.ScalarNode || c.Value == "" {
					return fail(c.Line, "distinct: want column names (e.g. distinct: [user_id, item_id])")
				}
				if seen[c.Value] {
					return fail(c.Line, "distinct: column %s named twice", c.Value)
				}
				seen[c.Value] = true
				d.Columns = append(d.Columns, c.Value)
			}
		default:
			return fail(val.Line, "distinct: want a list of columns (distinct: [a, b]) or {} for every column")
		}
		st.Distinct = d
	case StepUnnest:
		if val.Kind != yaml.ScalarNode || isNull || strings.TrimSpace(val.Value) == "" {
			return fail(val.Line, "unnest: want the name of a list column (e.g. unnest: tags)")
		}
		st.Unnest = val.Value
	}
	return nil
}

// DistinctSpec is a distinct step: the distinct rows of Columns (nil:
// every column), in that order.
type DistinctSpec struct {
	Columns []string
}

// checkBoundedStep refuses a sort or limit step over an unbounded source:
// it would wait for an end of input that never comes.
func checkBoundedStep(s *Spec, src *SourceSpec, i int, st Step) error {
	if (st.Kind != StepSort && st.Kind != StepLimit) || src.bounded() {
		return nil
	}
	return &Error{File: s.File, Line: st.Line, Msg: fmt.Sprintf(
		"step %d: %s needs bounded input, and the source is unbounded (it would wait for an end of input that never comes); use a bounded source (Parquet, CSV, JSONL, kafka with bounded: true) or a window step", i+1, st.Kind)}
}

// fusesTopN says whether step i is a sort that the limit right after it
// turns into a top-N: in a linear job only (in a DAG another step or sink
// may read the whole sorted output).
func fusesTopN(s *Spec, i int) bool {
	return !s.IsDAG() && s.Steps[i].Kind == StepSort && i+1 < len(s.Steps) && s.Steps[i+1].Kind == StepLimit
}

// addExtraStep adds the nodes of a sort, limit, distinct or unnest step.
func (plan *Plan) addExtraStep(s *Spec, i int, name string, st Step, in arrowexec.Input, par int) (*arrowexec.Node, error) {
	g := plan.Graph
	switch st.Kind {
	case StepSort:
		if fusesTopN(s, i) {
			n := s.Steps[i+1].Limit
			if par == 1 {
				return g.Add(name, ops.NewTopN(st.Sort, n), 1, in), nil
			}
			part := g.Add(name+"-partial", ops.NewTopN(st.Sort, n), par, in)
			return g.Add(name, ops.NewTopN(st.Sort, n), 1, part.Rebalance()), nil
		}
		return g.Add(name, ops.NewSort(st.Sort), 1, reroute(in, arrowexec.Rebalance)), nil
	case StepLimit:
		if par == 1 {
			return g.Add(name, ops.NewLimit(st.Limit), 1, in), nil
		}
		part := g.Add(name+"-partial", ops.NewLimit(st.Limit), par, in)
		return g.Add(name, ops.NewLimit(st.Limit), 1, part.Rebalance()), nil
	case StepDistinct:
		cols := st.Distinct.Columns
		part := g.Add(name+"-partial", &distinctSpec{cols: cols, mode: agg.Partial}, par, in)
		if len(cols) == 0 {
			return g.Add(name, &distinctSpec{mode: agg.Final}, 1, part.Rebalance()), nil
		}
		return g.Add(name, &distinctSpec{cols: cols, mode: agg.Final}, par, part.HashBy(cols...)), nil
	case StepUnnest:
		return g.Add(name, ops.NewUnnest(st.Unnest), par, in), nil
	}
	return nil, fmt.Errorf("step %d: unknown kind %q", i+1, st.Kind)
}

// distinctSpec is a hash aggregate grouping by the distinct step's columns
// (every input column when cols is nil) with no aggregates.
type distinctSpec struct {
	cols []string
	mode agg.Mode
	spec *agg.Spec
}

func (d *distinctSpec) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("distinct takes one input, have %d", len(in))
	}
	cols := d.cols
	if cols == nil {
		for _, f := range in[0].Fields() {
			cols = append(cols, f.Name)
		}
	}
	spec, err := agg.New(agg.Options{GroupBy: cols, Mode: d.mode})
	if err != nil {
		return nil, fmt.Errorf("distinct: %w", err)
	}
	out, err := spec.Schema(in)
	if err != nil {
		return nil, fmt.Errorf("distinct: %w", err)
	}
	d.spec = spec
	return out, nil
}

func (d *distinctSpec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	if d.spec == nil {
		return nil, fmt.Errorf("distinct used before Schema")
	}
	return d.spec.New(t)
}
