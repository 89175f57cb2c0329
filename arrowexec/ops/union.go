package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/riffle-dev/riffle/arrowexec"
)

// Union is the Spec of a multi-input operator that forwards every batch of
// every input unchanged (UNION ALL). Its inputs must have the same schema:
// the same column names and types in the same order (nullability may
// differ; the output's column is nullable when any input's is).
type Union struct{}

// NewUnion returns the union Spec.
func NewUnion() *Union { return &Union{} }

var _ arrowexec.Spec = (*Union)(nil)

// Schema checks that every input has the first one's columns.
func (*Union) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if len(in) < 2 {
		return nil, fmt.Errorf("union: want at least 2 inputs, got %d", len(in))
	}
	fields := append([]arrow.Field(nil), in[0].Fields()...)
	for i, s := range in[1:] {
		if err := sameColumns(in[0], s); err != nil {
			return nil, fmt.Errorf("union: input %d does not match input 1: %w", i+2, err)
		}
		for j, f := range s.Fields() {
			fields[j].Nullable = fields[j].Nullable || f.Nullable
		}
	}
	return arrow.NewSchema(fields, nil), nil
}

func sameColumns(a, b *arrow.Schema) error {
	if a.NumFields() != b.NumFields() {
		return fmt.Errorf("%d columns %s, want %d %s", b.NumFields(), columnList(b), a.NumFields(), columnList(a))
	}
	for i, f := range a.Fields() {
		g := b.Field(i)
		if g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) {
			return fmt.Errorf("column %d is %s %s, want %s %s", i+1, g.Name, g.Type, f.Name, f.Type)
		}
	}
	return nil
}

func columnList(s *arrow.Schema) string {
	var out []byte
	for i, f := range s.Fields() {
		if i > 0 {
			out = append(out, ", "...)
		}
		out = fmt.Appendf(out, "%s %s", f.Name, f.Type)
	}
	return "(" + string(out) + ")"
}

// New returns the operator of one subtask.
func (*Union) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	if t.Output == nil {
		return nil, errors.New("union: no output schema")
	}
	return &unionOp{out: t.Output}, nil
}

type unionOp struct{ out *arrow.Schema }

func (*unionOp) Open(context.Context) error { return nil }

// Process forwards b; a batch whose nullability differs from the output's
// is relabelled with the output schema, sharing its columns.
func (o *unionOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if b.Schema().Equal(o.out) {
		b.Retain()
		return out.Emit(ctx, b)
	}
	return out.Emit(ctx, relabel(o.out, b))
}

func (*unionOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (*unionOp) Close() error                                    { return nil }

// relabel returns b's columns under schema s (same types), a new batch
// sharing b's arrays.
func relabel(s *arrow.Schema, b arrow.RecordBatch) arrow.RecordBatch {
	return array.NewRecordBatch(s, b.Columns(), b.NumRows())
}
