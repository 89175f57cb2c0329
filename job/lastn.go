package job

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/lastn"
)

// Step kinds of this file.
const (
	// StepLastN computes, for every row, aggregates over the last n rows
	// of its key, itself included, in event-time order (SQL: agg(x) OVER
	// (PARTITION BY key ORDER BY order_by ROWS BETWEEN n-1 PRECEDING AND
	// CURRENT ROW); package lastn; Nexmark q6). Rows are held until the
	// watermark passes their time (the first order_by column), at the
	// latest until the end of input; the output is the input's columns
	// and one per aggregate.
	//
	//	steps:
	//	  - last_n: {key: [user_id], order_by: [event_time], n: 10, aggs: ["avg(weight) AS avg_weight"]}
	StepLastN StepKind = "last_n"
)

type rawLastN struct {
	// Key are the key columns: each key's rows are aggregated apart.
	Key []string `yaml:"key"`
	// OrderBy orders a key's rows: the event-time column (a timestamp or
	// int64 milliseconds), then int64 or timestamp tie breakers.
	OrderBy []string `yaml:"order_by"`
	// N is how many rows, the current one included, the aggregates see.
	N int `yaml:"n"`
	// Aggs are count(*), count(col), sum(col), avg(col), min(col) and
	// max(col) over int64 or float64 columns, each "func(col) AS name".
	Aggs []string `yaml:"aggs"`
}

func parseLastNStep(file string, num int, val *yaml.Node) (*lastn.Options, error) {
	fail := func(line int, format string, args ...any) (*lastn.Options, error) {
		return nil, &Error{File: file, Line: line, Msg: fmt.Sprintf("step %d: last_n: ", num) + fmt.Sprintf(format, args...)}
	}
	if val.Kind != yaml.MappingNode {
		return fail(val.Line, `want a mapping (e.g. {key: [seller], order_by: [expires], n: 10, aggs: ["avg(price) AS avg_price"]})`)
	}
	var raw rawLastN
	if err := decodeStrict(file, val, &raw); err != nil {
		return nil, err
	}
	line := func(key string) int { return max(keyLine(val, key), val.Line) }
	o := lastn.Options{Keys: raw.Key, Order: raw.OrderBy, N: raw.N}
	for _, s := range raw.Aggs {
		c, err := agg.ParseCall(s)
		if err != nil {
			return fail(line("aggs"), "%v", err)
		}
		a := lastn.Agg{Func: lastn.Func(c.Func), As: c.Name()}
		switch arg := c.Arg.(type) {
		case nil:
		case *expr.ColumnRef:
			a.Col = arg.Name
		default:
			return fail(line("aggs"), "%s: the argument must be a column (compute it in a project step before)", s)
		}
		if c.Filter != nil {
			return fail(line("aggs"), "%s: FILTER is not supported here (filter the rows before)", s)
		}
		o.Aggs = append(o.Aggs, a)
	}
	if err := o.Validate(); err != nil {
		return fail(val.Line, "%v", err)
	}
	return &o, nil
}

// emitsAtEnd says whether steps of kind k emit their rows at the end of
// input, while the watermark passes through them: downstream, the
// watermark says nothing about their rows.
func emitsAtEnd(k StepKind) bool {
	switch k {
	case StepAggregate, StepDistinct, StepSort, StepLimit:
		return true
	}
	return false
}

// holdToEnd returns st with a last_n step holding its rows to the end of
// input when behind (a step that emits at the end of input is upstream):
// those rows all arrive behind the watermark.
func holdToEnd(st Step, behind bool) Step {
	if st.Kind == StepLastN && behind {
		l := *st.LastN
		l.AtEnd = true
		st.LastN = &l
	}
	return st
}

// planLastN adds the operator behind a hash exchange on the keys.
func planLastN(g *arrowexec.Graph, name string, in arrowexec.Input, par int, o lastn.Options) (*arrowexec.Node, error) {
	spec, err := lastn.New(o)
	if err != nil {
		return nil, err
	}
	return g.Add(name, spec, par, reroute(in, arrowexec.Hash, o.Keys...)), nil
}
