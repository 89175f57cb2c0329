package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/riffle-dev/riffle/arrowexec"
)

// Unnest turns a list column into one row per element: the other columns
// repeat, the list column becomes its element type (same name). A NULL or
// empty list gives no row, as DuckDB's UNNEST.
type Unnest struct {
	Column string
	col    int
	schema *arrow.Schema
}

var _ arrowexec.Spec = (*Unnest)(nil)

// NewUnnest returns an unnest of column.
func NewUnnest(column string) *Unnest { return &Unnest{Column: column} }

// Schema replaces the list column by its element type.
func (u *Unnest) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("ops: unnest takes one input, have %d", len(in))
	}
	idx := in[0].FieldIndices(u.Column)
	if len(idx) != 1 {
		return nil, fmt.Errorf("unnest %s: unknown or ambiguous column (available: %s)", u.Column, columnNames(in[0]))
	}
	f := in[0].Field(idx[0])
	lt, ok := f.Type.(arrow.ListLikeType)
	if !ok || f.Type.ID() == arrow.MAP {
		return nil, fmt.Errorf("unnest %s: type %s is not a list", u.Column, f.Type)
	}
	fields := in[0].Fields()
	fields[idx[0]] = arrow.Field{Name: f.Name, Type: lt.Elem(), Nullable: true}
	md := in[0].Metadata()
	u.col, u.schema = idx[0], arrow.NewSchema(fields, &md)
	return u.schema, nil
}

// New returns the unnest of one subtask.
func (u *Unnest) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	if u.schema == nil {
		return nil, errors.New("ops: unnest used before Schema")
	}
	return &unnestOp{u: u, t: t}, nil
}

type unnestOp struct {
	u         *Unnest
	t         *arrowexec.Task
	rows, els []int32
}

func (o *unnestOp) Open(context.Context) error { return nil }

func (o *unnestOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	list := b.Column(o.u.col).(array.ListLike)
	o.rows, o.els = o.rows[:0], o.els[:0]
	for i := range list.Len() {
		if list.IsNull(i) {
			continue
		}
		lo, hi := list.ValueOffsets(i)
		for e := lo; e < hi; e++ {
			o.rows = append(o.rows, int32(i))
			o.els = append(o.els, int32(e))
		}
	}
	if len(o.rows) == 0 {
		return nil
	}
	cols := make([]arrow.Array, b.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for j := range cols {
		src, idx := b.Column(j), o.rows
		if j == o.u.col {
			src, idx = list.ListValues(), o.els
		}
		c, err := arrowexec.TakeArray(o.t.Mem, src, idx)
		if err != nil {
			return fmt.Errorf("unnest %s: column %s: %w", o.u.Column, b.ColumnName(j), err)
		}
		cols[j] = c
	}
	return out.Emit(ctx, array.NewRecordBatch(o.u.schema, cols, int64(len(o.rows))))
}

func (o *unnestOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *unnestOp) Close() error                                    { return nil }
