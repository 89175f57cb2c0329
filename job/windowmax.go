package job

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/windowmax"
)

const (
	// StepWindowMax keeps, of each tumbling event-time window, the rows whose
	// by column holds the window's largest value (every row tied for it),
	// emitted when the watermark closes the window (package windowmax;
	// Nexmark q7). A partial filter runs at the step's parallelism and a
	// final one at parallelism 1, so the steps after it run at parallelism 1.
	//
	//	steps:
	//	  - window_max: {size: 1h, time: event_time, by: price}
	StepWindowMax StepKind = "window_max"
)

type rawWindowMax struct {
	// Size is the tumbling window's length.
	Size string `yaml:"size"`
	// Time is the event-time column (a timestamp or int64 milliseconds),
	// usually the source's watermark column.
	Time string `yaml:"time"`
	// By is the column ranked on (an integer, timestamp or float64): the
	// rows at its per-window maximum are kept, ties included.
	By string `yaml:"by"`
}

func parseWindowMaxStep(file string, num int, val *yaml.Node) (*windowmax.Options, error) {
	fail := func(line int, format string, args ...any) (*windowmax.Options, error) {
		return nil, &Error{File: file, Line: line, Msg: fmt.Sprintf("step %d: window_max: ", num) + fmt.Sprintf(format, args...)}
	}
	if val.Kind != yaml.MappingNode {
		return fail(val.Line, "want a mapping (e.g. {size: 10s, time: date_time, by: price})")
	}
	var raw rawWindowMax
	if err := decodeStrict(file, val, &raw); err != nil {
		return nil, err
	}
	if raw.Size == "" {
		return fail(val.Line, "size: want the tumbling window's length (e.g. size: 10s)")
	}
	size, err := parseDuration("size", raw.Size)
	if err != nil {
		return fail(max(keyLine(val, "size"), val.Line), "%v", err)
	}
	o := windowmax.Options{Time: raw.Time, By: raw.By, Size: size}
	if err := o.Validate(); err != nil {
		return fail(val.Line, "%v", err)
	}
	return &o, nil
}

// planWindowMax adds the partial filter at par and the final one at
// parallelism 1.
func planWindowMax(g *arrowexec.Graph, name string, in arrowexec.Input, par int, o windowmax.Options) (*arrowexec.Node, error) {
	o.Final = false
	partial, err := windowmax.New(o)
	if err != nil {
		return nil, err
	}
	o.Final = true
	final, err := windowmax.New(o)
	if err != nil {
		return nil, err
	}
	pn := g.Add(name+"-partial", partial, par, in)
	return g.Add(name, final, 1, pn.Rebalance()), nil
}
