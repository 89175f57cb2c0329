package lastn

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

// A key group's blob: uvarint number of keys; per key uvarint key length,
// key, hash (8 bytes LE), uvarint n, uvarint pos, then N·len(args) slots
// of a validity byte and 8 value bytes (LE); then the key group's held
// rows as an Arrow IPC stream (absent when there are none).

type opSnapshot struct {
	Watermark int64 `json:"watermark"`
}

// SnapshotState implements arrowexec.Checkpointer.
func (o *operator) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	maxPar := o.t.MaxParallelism
	groups := map[int]*bytes.Buffer{}
	buf := func(g int) *bytes.Buffer {
		if b, ok := groups[g]; ok {
			return b
		}
		b := &bytes.Buffer{}
		groups[g] = b
		return b
	}
	perGroup := map[int][]string{}
	for k, rg := range o.keys {
		g := arrowexec.KeyGroupOf(rg.hash, maxPar)
		perGroup[g] = append(perGroup[g], k)
	}
	for g, ks := range perGroup {
		b := buf(g)
		b.Write(binary.AppendUvarint(nil, uint64(len(ks))))
		for _, k := range ks {
			rg := o.keys[k]
			b.Write(binary.AppendUvarint(nil, uint64(len(k))))
			b.WriteString(k)
			b.Write(binary.LittleEndian.AppendUint64(nil, rg.hash))
			b.Write(binary.AppendUvarint(nil, uint64(rg.n)))
			b.Write(binary.AppendUvarint(nil, uint64(rg.pos)))
			for i, v := range rg.vals {
				var ok byte
				if rg.valid[i] {
					ok = 1
				}
				b.WriteByte(ok)
				b.Write(binary.LittleEndian.AppendUint64(nil, uint64(v)))
			}
		}
	}
	// Held rows, per key group.
	rows := map[int][]arrow.RecordBatch{}
	defer func() {
		for _, rs := range rows {
			for _, r := range rs {
				r.Release()
			}
		}
	}()
	for _, h := range o.held {
		idx := map[int][]int32{}
		for _, r := range h.left {
			g := arrowexec.KeyGroupOf(h.keys.Hashes[r], maxPar)
			idx[g] = append(idx[g], r)
		}
		for g, rs := range idx {
			rec, err := arrowexec.TakeRecord(o.t.Mem, h.b, rs)
			if err != nil {
				return arrowexec.SubtaskSnapshot{}, fmt.Errorf("lastn: %s: snapshot %d: %w", o.t.Node, id, err)
			}
			rows[g] = append(rows[g], rec)
		}
	}
	for g, recs := range rows {
		b := buf(g)
		if _, ok := perGroup[g]; !ok {
			b.Write(binary.AppendUvarint(nil, 0))
		}
		w := ipc.NewWriter(b, ipc.WithSchema(o.s.in), ipc.WithAllocator(o.t.Mem), ipc.WithLZ4())
		for _, r := range recs {
			if err := w.Write(r); err != nil {
				return arrowexec.SubtaskSnapshot{}, fmt.Errorf("lastn: %s: snapshot %d: %w", o.t.Node, id, err)
			}
		}
		if err := w.Close(); err != nil {
			return arrowexec.SubtaskSnapshot{}, fmt.Errorf("lastn: %s: snapshot %d: %w", o.t.Node, id, err)
		}
	}
	snap := arrowexec.SubtaskSnapshot{KeyGroups: map[int][]byte{}}
	for g, b := range groups {
		snap.KeyGroups[g] = b.Bytes()
	}
	var err error
	snap.Operator, err = json.Marshal(opSnapshot{Watermark: o.wm})
	return snap, err
}

// restore loads the key groups the subtask owns and the largest
// watermark recorded.
func (o *operator) restore(rs *arrowexec.RestoreState) error {
	o.wm = max(o.wm, rs.Watermark)
	for i, blob := range rs.Operator {
		if len(blob) == 0 {
			continue
		}
		var s opSnapshot
		if err := json.Unmarshal(blob, &s); err != nil {
			return fmt.Errorf("lastn: %s: restore: subtask %d: %w", o.t.Node, i, err)
		}
		o.wm = max(o.wm, s.Watermark)
	}
	lo, hi := o.t.KeyGroupRange()
	for g := lo; g < hi; g++ {
		blob, ok := rs.KeyGroups[g]
		if !ok {
			continue
		}
		if err := o.restoreGroup(blob); err != nil {
			return fmt.Errorf("lastn: %s: restore: key group %d: %w", o.t.Node, g, err)
		}
	}
	return nil
}

var errCorrupt = errors.New("corrupt snapshot")

func (o *operator) restoreGroup(blob []byte) error {
	rd := bytes.NewReader(blob)
	nkeys, err := binary.ReadUvarint(rd)
	if err != nil {
		return errCorrupt
	}
	slots := o.s.o.N * len(o.s.args)
	for range nkeys {
		kl, err := binary.ReadUvarint(rd)
		if err != nil || kl > uint64(rd.Len()) {
			return errCorrupt
		}
		key := make([]byte, kl)
		io.ReadFull(rd, key)
		var hb [8]byte
		if _, err := io.ReadFull(rd, hb[:]); err != nil {
			return errCorrupt
		}
		n, err1 := binary.ReadUvarint(rd)
		pos, err2 := binary.ReadUvarint(rd)
		if err1 != nil || err2 != nil || n > uint64(o.s.o.N) || pos >= uint64(o.s.o.N) {
			return errCorrupt
		}
		rg := &ring{hash: binary.LittleEndian.Uint64(hb[:]), n: int(n), pos: int(pos), valid: make([]bool, slots), vals: make([]int64, slots)}
		for i := range slots {
			var sb [9]byte
			if _, err := io.ReadFull(rd, sb[:]); err != nil {
				return errCorrupt
			}
			rg.valid[i] = sb[0] == 1
			rg.vals[i] = int64(binary.LittleEndian.Uint64(sb[1:]))
		}
		o.keys[string(key)] = rg
	}
	if rd.Len() == 0 {
		return nil
	}
	ir, err := ipc.NewReader(rd, ipc.WithAllocator(o.t.Mem), ipc.WithSchema(o.s.in))
	if err != nil {
		return err
	}
	defer ir.Release()
	for ir.Next() {
		if err := o.hold(ir.RecordBatch()); err != nil {
			return err
		}
	}
	return ir.Err()
}
