package joins

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/windows"
)

// Side outputs of late rows, one per input (the two inputs' columns
// differ).
const (
	LateLeft  = "late_left"
	LateRight = "late_right"
)

// RightPrefix renames a right column whose name a left column (or an
// earlier output column) already has.
const RightPrefix = "right_"

// Spec is the arrowexec.Spec of a join. Its node reads two inputs, left
// (edge 0) and right (edge 1), each behind a hash exchange on its key
// columns.
type Spec struct {
	opts Options
}

var (
	_ arrowexec.Spec          = (*Spec)(nil)
	_ arrowexec.SideOutputter = (*Spec)(nil)
)

// New validates opts and returns the Spec.
func New(opts Options) (*Spec, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	opts.LeftKeys = slices.Clone(opts.LeftKeys)
	opts.RightKeys = slices.Clone(opts.RightKeys)
	return &Spec{opts: opts}, nil
}

// Options returns the options with defaults filled in.
func (s *Spec) Options() Options { return s.opts }

// plan is the Spec bound to the input schemas.
type plan struct {
	keys  [2][]int // key column indices per side
	time  [2]int   // event-time column per side (-1: none)
	rows  [2]*arrow.Schema
	out   *arrow.Schema
	late  [2]*arrow.Schema
	lower int64 // ms
	upper int64
	size  int64
	slide int64
}

// Schema implements arrowexec.Spec.
func (s *Spec) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	p, err := s.bind(in)
	if err != nil {
		return nil, err
	}
	return p.out, nil
}

// SideOutputs implements arrowexec.SideOutputter: the late rows of each
// side, for timed joins.
func (s *Spec) SideOutputs(in []*arrow.Schema) ([]arrowexec.SideOutput, error) {
	if !s.opts.Timed() {
		return nil, nil
	}
	p, err := s.bind(in)
	if err != nil {
		return nil, err
	}
	return []arrowexec.SideOutput{{Name: LateLeft, Schema: p.late[0]}, {Name: LateRight, Schema: p.late[1]}}, nil
}

// OutputNames returns the output column names for the given input
// schemas: the left columns, then the right ones (RightPrefix added to a
// name already taken), then window_start and window_end for a window join.
// A name still taken after the prefix is an error.
func OutputNames(o Options, left, right *arrow.Schema) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for _, f := range left.Fields() {
		names = append(names, f.Name)
		seen[f.Name] = true
	}
	for _, f := range right.Fields() {
		n := f.Name
		if seen[n] {
			n = RightPrefix + n
			if seen[n] {
				return nil, fmt.Errorf("joins: right column %q clashes with a left column, and so does %q", f.Name, n)
			}
		}
		names = append(names, n)
		seen[n] = true
	}
	if o.Type == Window {
		for _, n := range []string{"window_start", "window_end"} {
			if seen[n] {
				return nil, fmt.Errorf("joins: column %q clashes with the window join's own %q column", n, n)
			}
			names = append(names, n)
		}
	}
	return names, nil
}

func (s *Spec) bind(in []*arrow.Schema) (*plan, error) {
	o := &s.opts
	if len(in) != 2 {
		return nil, fmt.Errorf("joins: a join reads two inputs (left, right), has %d", len(in))
	}
	p := &plan{lower: o.Lower.Milliseconds(), upper: o.Upper.Milliseconds(), size: o.Size.Milliseconds(), slide: o.Slide.Milliseconds()}
	if p.slide == 0 {
		p.slide = p.size
	}
	keys := [2][]string{o.LeftKeys, o.RightKeys}
	times := [2]string{o.LeftTime, o.RightTime}
	for side, sc := range in {
		p.rows[side] = sc
		if _, err := newRowCodec(sc); err != nil {
			return nil, fmt.Errorf("%s input: %w", sideName(side), err)
		}
		for _, k := range keys[side] {
			idx := sc.FieldIndices(k)
			if len(idx) != 1 {
				return nil, fmt.Errorf("joins: %s input has no key column %q (have %s)", sideName(side), k, fieldNames(sc))
			}
			p.keys[side] = append(p.keys[side], idx[0])
		}
		p.time[side] = -1
		if times[side] != "" {
			if err := (arrowexec.WatermarkStrategy{Column: times[side]}).Validate(sc); err != nil {
				return nil, fmt.Errorf("joins: %s input: %w", sideName(side), err)
			}
			p.time[side] = sc.FieldIndices(times[side])[0]
		}
		late, err := windows.LateSchema(sc)
		if err != nil {
			return nil, fmt.Errorf("joins: %s input: %w", sideName(side), err)
		}
		p.late[side] = late
	}
	for i := range p.keys[0] {
		lt := in[0].Field(p.keys[0][i]).Type
		rt := in[1].Field(p.keys[1][i]).Type
		if !arrow.TypeEqual(lt, rt) {
			return nil, fmt.Errorf("joins: key %s = %s: the columns have different types (%s and %s); cast one in a project step", o.LeftKeys[i], o.RightKeys[i], lt, rt)
		}
		// The types state.EncodeKeys encodes.
		switch lt.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
			arrow.FLOAT32, arrow.FLOAT64, arrow.BOOL, arrow.STRING, arrow.BINARY, arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64:
		default:
			return nil, fmt.Errorf("joins: key %s: type %s cannot be a join key", o.LeftKeys[i], lt)
		}
	}
	names, err := OutputNames(*o, in[0], in[1])
	if err != nil {
		return nil, err
	}
	var fields []arrow.Field
	for _, sc := range in {
		for _, f := range sc.Fields() {
			f.Name = names[len(fields)]
			fields = append(fields, f)
		}
	}
	if o.Type == Window {
		fields = append(fields,
			arrow.Field{Name: "window_start", Type: windows.WindowTime},
			arrow.Field{Name: "window_end", Type: windows.WindowTime})
	}
	p.out = arrow.NewSchema(fields, nil)
	return p, nil
}

// New implements arrowexec.Spec.
func (s *Spec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	p, err := s.bind(t.Inputs)
	if err != nil {
		return nil, err
	}
	return newOperator(s, p, t)
}

func sideName(side int) string {
	if side == 0 {
		return "left"
	}
	return "right"
}

func fieldNames(s *arrow.Schema) string {
	var out []string
	for _, f := range s.Fields() {
		out = append(out, f.Name)
	}
	return fmt.Sprint(out)
}
