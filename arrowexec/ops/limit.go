package ops

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec"
)

// Limit forwards the first N rows each subtask receives and drops the
// rest. Over several subtasks it is a partial limit; a final Limit at
// parallelism 1 behind it makes the total N.
type Limit struct {
	N int64
}

var _ arrowexec.Spec = (*Limit)(nil)

// NewLimit returns a limit to n rows.
func NewLimit(n int64) *Limit { return &Limit{N: n} }

// Schema returns the input schema.
func (l *Limit) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("ops: limit takes one input, have %d", len(in))
	}
	if l.N < 0 {
		return nil, fmt.Errorf("limit %d: must not be negative", l.N)
	}
	return in[0], nil
}

// New returns the limit of one subtask.
func (l *Limit) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	return &limitOp{n: l.N, t: t}, nil
}

type limitOp struct {
	n, sent int64
	t       *arrowexec.Task
}

var _ arrowexec.Checkpointer = (*limitOp)(nil)

// Open restores the rows sent: the sum over the previous subtasks it takes
// over (j mod parallelism), at most N. A partial limit that takes over
// several may then send fewer rows than each would have, never fewer than
// a final limit behind it still needs: their sum reached N only if N rows
// went downstream before the checkpoint.
func (o *limitOp) Open(context.Context) error {
	err := restoreEach(o.t, "limit", func(blob []byte) error {
		if len(blob) != 8 {
			return fmt.Errorf("%d bytes, want 8", len(blob))
		}
		o.sent += int64(binary.LittleEndian.Uint64(blob))
		return nil
	})
	o.sent = min(o.sent, o.n)
	return err
}

// restoreEach calls fn with the operator state of every subtask of the
// restored run that t takes over (subtask j goes to j mod parallelism),
// skipping empty ones; errors name the checkpoint and subtask.
func restoreEach(t *arrowexec.Task, what string, fn func(blob []byte) error) error {
	r := t.Restore
	if r == nil {
		return nil
	}
	for j, blob := range r.Operator {
		if j%t.Parallelism != t.Subtask || len(blob) == 0 {
			continue
		}
		if err := fn(blob); err != nil {
			return fmt.Errorf("%s: restore checkpoint %d, state of subtask %d: %w", what, r.CheckpointID, j, err)
		}
	}
	return nil
}

func (o *limitOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	left := o.n - o.sent
	n := b.NumRows()
	switch {
	case left <= 0 || n == 0:
		return nil
	case n <= left:
		o.sent += n
		b.Retain()
		return out.Emit(ctx, b)
	}
	o.sent = o.n
	return out.Emit(ctx, b.NewSlice(0, left))
}

// SnapshotState records the rows sent.
func (o *limitOp) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	return arrowexec.SubtaskSnapshot{Operator: binary.LittleEndian.AppendUint64(nil, uint64(o.sent))}, nil
}

func (o *limitOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *limitOp) Close() error                                    { return nil }
