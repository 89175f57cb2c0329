package windowmax

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/riffle-dev/riffle/arrowexec"
)

// snapHeader describes a final operator's snapshot: the watermark and the
// open windows, whose rows follow as one Arrow IPC stream, window by
// window (Batches records each).
type snapHeader struct {
	Watermark int64        `json:"watermark"`
	Windows   []snapWindow `json:"windows"`
}

type snapWindow struct {
	Start   int64 `json:"start"`
	Max     int64 `json:"max"`
	Batches int   `json:"batches"`
}

// SnapshotState implements arrowexec.Checkpointer (final mode; a partial
// operator has nothing to keep).
func (o *operator) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	if !o.s.o.Final {
		return arrowexec.SubtaskSnapshot{}, nil
	}
	h := snapHeader{Watermark: o.wm}
	var recs []arrow.RecordBatch
	for start, w := range o.wins {
		h.Windows = append(h.Windows, snapWindow{Start: start, Max: w.max, Batches: len(w.rows)})
		recs = append(recs, w.rows...)
	}
	head, err := json.Marshal(h)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	var buf bytes.Buffer
	buf.Write(binary.AppendUvarint(nil, uint64(len(head))))
	buf.Write(head)
	wr := ipc.NewWriter(&buf, ipc.WithSchema(o.s.schema), ipc.WithAllocator(o.t.Mem), ipc.WithLZ4())
	for _, r := range recs {
		if err := wr.Write(r); err != nil {
			return arrowexec.SubtaskSnapshot{}, fmt.Errorf("windowmax: %s: snapshot: %w", o.t.Node, err)
		}
	}
	if err := wr.Close(); err != nil {
		return arrowexec.SubtaskSnapshot{}, fmt.Errorf("windowmax: %s: snapshot: %w", o.t.Node, err)
	}
	return arrowexec.SubtaskSnapshot{Operator: buf.Bytes()}, nil
}

// restore merges the snapshots of every previous subtask.
func (o *operator) restore(rs *arrowexec.RestoreState) error {
	o.wm = max(o.wm, rs.Watermark)
	for i, blob := range rs.Operator {
		if len(blob) == 0 {
			continue
		}
		if err := o.restoreOne(blob); err != nil {
			return fmt.Errorf("windowmax: %s: restore: subtask %d: %w", o.t.Node, i, err)
		}
	}
	return nil
}

func (o *operator) restoreOne(blob []byte) error {
	n, k := binary.Uvarint(blob)
	if k <= 0 || uint64(len(blob)-k) < n {
		return errors.New("corrupt snapshot header")
	}
	var h snapHeader
	if err := json.Unmarshal(blob[k:k+int(n)], &h); err != nil {
		return err
	}
	o.wm = max(o.wm, h.Watermark)
	rd, err := ipc.NewReader(bytes.NewReader(blob[k+int(n):]), ipc.WithAllocator(o.t.Mem), ipc.WithSchema(o.s.schema))
	if err != nil {
		return err
	}
	defer rd.Release()
	for _, sw := range h.Windows {
		var rows []arrow.RecordBatch
		for range sw.Batches {
			r, err := rd.Read()
			if err != nil {
				releaseAll(rows)
				if err == io.EOF {
					err = errors.New("snapshot ends early")
				}
				return err
			}
			r.Retain()
			rows = append(rows, r)
		}
		cur, ok := o.wins[sw.Start]
		switch {
		case !ok:
			o.wins[sw.Start] = &window{max: sw.Max, rows: rows}
		case sw.Max > cur.max:
			releaseAll(cur.rows)
			cur.max, cur.rows = sw.Max, rows
		case sw.Max == cur.max:
			cur.rows = append(cur.rows, rows...)
		default:
			releaseAll(rows)
		}
	}
	return nil
}
