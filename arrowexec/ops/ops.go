package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/expr"
)

// Filter keeps the rows for which a boolean expression is TRUE (NULL and
// FALSE rows are dropped, as in SQL's WHERE).
type Filter struct {
	Predicate expr.Expr
	bound     *expr.Bound
}

var _ arrowexec.Spec = (*Filter)(nil)

// NewFilter returns a filter on predicate.
func NewFilter(predicate expr.Expr) *Filter { return &Filter{Predicate: predicate} }

// Schema binds the predicate; the output schema is the input's.
func (f *Filter) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("ops: filter takes one input, have %d", len(in))
	}
	b, err := expr.Bind(f.Predicate, in[0])
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", f.Predicate.String(), err)
	}
	if b.Type().ID() != arrow.BOOL {
		return nil, fmt.Errorf("filter %q: predicate has type %s, want bool", f.Predicate.String(), b.Type())
	}
	f.bound = b
	return in[0], nil
}

// New returns the filter of one subtask.
func (f *Filter) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	if f.bound == nil {
		return nil, errors.New("ops: filter used before Schema")
	}
	return &filterOp{f: f, t: t}, nil
}

type filterOp struct {
	f   *Filter
	t   *arrowexec.Task
	sel []int32
}

func (o *filterOp) Open(context.Context) error { return nil }

func (o *filterOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	sel, err := o.f.bound.Select(b, o.sel[:0])
	o.sel = sel
	if err != nil {
		return err
	}
	switch len(sel) {
	case 0:
		return nil
	case int(b.NumRows()):
		b.Retain()
		return out.Emit(ctx, b)
	}
	r, err := arrowexec.TakeRecord(o.t.Mem, b, sel)
	if err != nil {
		return err
	}
	return out.Emit(ctx, r)
}

func (o *filterOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *filterOp) Close() error                                    { return nil }

// Column is one output column of a projection.
type Column struct {
	Name string
	Expr expr.Expr
}

// Project computes a new set of columns from each batch.
type Project struct {
	Columns []Column
	bound   []*expr.Bound
	refs    []int // input column index for plain references, else -1
	schema  *arrow.Schema
}

var _ arrowexec.Spec = (*Project)(nil)

// NewProject returns a projection to cols.
func NewProject(cols []Column) *Project { return &Project{Columns: cols} }

// Schema binds every column's expression against the input schema.
func (p *Project) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("ops: project takes one input, have %d", len(in))
	}
	if len(p.Columns) == 0 {
		return nil, errors.New("ops: project has no columns")
	}
	seen := map[string]bool{}
	fields := make([]arrow.Field, len(p.Columns))
	p.bound = make([]*expr.Bound, len(p.Columns))
	p.refs = make([]int, len(p.Columns))
	for i, c := range p.Columns {
		if c.Name == "" {
			return nil, fmt.Errorf("ops: project column %d has no name", i+1)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("ops: project: duplicate column %q", c.Name)
		}
		seen[c.Name] = true
		b, err := expr.Bind(c.Expr, in[0])
		if err != nil {
			return nil, fmt.Errorf("project %q: %w", c.Name, err)
		}
		p.bound[i] = b
		p.refs[i] = -1
		nullable := true
		if ref, ok := c.Expr.(*expr.ColumnRef); ok {
			// A column the expression reads as another type (a dictionary
			// decoded, date64 as date32) is evaluated, not passed on.
			idx := in[0].FieldIndices(ref.Name)
			if len(idx) == 1 && arrow.TypeEqual(in[0].Field(idx[0]).Type, b.Type()) {
				p.refs[i] = idx[0]
				nullable = in[0].Field(idx[0]).Nullable
			}
		}
		fields[i] = arrow.Field{Name: c.Name, Type: b.Type(), Nullable: nullable}
	}
	p.schema = arrow.NewSchema(fields, nil)
	return p.schema, nil
}

// New returns the projection of one subtask.
func (p *Project) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	if p.schema == nil {
		return nil, errors.New("ops: project used before Schema")
	}
	return &projectOp{p: p, t: t, cols: make([]arrow.Array, len(p.Columns))}, nil
}

type projectOp struct {
	p    *Project
	t    *arrowexec.Task
	cols []arrow.Array
}

func (o *projectOp) Open(context.Context) error { return nil }

func (o *projectOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	release := func(n int) {
		for _, c := range o.cols[:n] {
			c.Release()
		}
	}
	for i, bound := range o.p.bound {
		if ref := o.p.refs[i]; ref >= 0 {
			c := b.Column(ref)
			c.Retain()
			o.cols[i] = c
			continue
		}
		c, err := bound.Eval(o.t.Mem, b)
		if err != nil {
			release(i)
			return fmt.Errorf("project %s: %w", o.p.Columns[i].Name, err)
		}
		o.cols[i] = c
	}
	r := array.NewRecordBatch(o.p.schema, o.cols, b.NumRows())
	release(len(o.cols))
	return out.Emit(ctx, r)
}

func (o *projectOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *projectOp) Close() error                                    { return nil }
