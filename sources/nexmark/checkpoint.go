package nexmark

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/riffle-dev/riffle/arrowexec"
)

// A reader's checkpoint is its streams: what it has left to generate. The
// generator needs nothing else, since every event is a function of the seed
// and its position. The blob is
//
//	"nxm1" | seed | table | batch events | events | n | n × (block, stride, cur)
//
// all but the magic as varints. On a restore, the streams of every subtask
// of the previous run are pooled (in subtask order) and shared out among
// the new subtasks: subtask j of p takes streams j, j+p, j+2p, ... When
// there are fewer streams than subtasks, each is first split in k =
// ⌈p/n⌉: stream (b, s, c) becomes (b, s·k, c) and, for m = 1 .. k-1,
// (b + m·s, s·k, its block's first position). The union of the positions
// left is unchanged, so a restored job, at any parallelism, emits exactly
// the events the checkpoint had not covered.
const checkpointMagic = "nxm1"

// errBadCheckpoint classifies a checkpoint blob that cannot be decoded.
var errBadCheckpoint = errors.New("nexmark: corrupt checkpoint state")

// SnapshotState implements arrowexec.Checkpointer.
func (r *Reader) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	o := r.g.o
	b := []byte(checkpointMagic)
	b = binary.AppendVarint(b, o.Seed)
	b = binary.AppendVarint(b, int64(o.Table))
	b = binary.AppendVarint(b, int64(o.BatchEvents))
	b = binary.AppendVarint(b, o.Events)
	b = binary.AppendVarint(b, int64(len(r.streams)))
	for _, s := range r.streams {
		b = binary.AppendVarint(b, s.block)
		b = binary.AppendVarint(b, s.stride)
		b = binary.AppendVarint(b, s.cur)
	}
	return arrowexec.SubtaskSnapshot{Operator: b}, nil
}

// restoreStreams decodes the streams of every previous subtask, leaving
// out those a bounded stream has finished.
func (s *Source) restoreStreams(blobs [][]byte) ([]stream, error) {
	o := s.g.o
	var all []stream
	for i, b := range blobs {
		if len(b) == 0 { // a subtask that snapshot nothing
			continue
		}
		if len(b) < len(checkpointMagic) || string(b[:len(checkpointMagic)]) != checkpointMagic {
			return nil, fmt.Errorf("%w: subtask %d: bad magic", errBadCheckpoint, i)
		}
		b = b[len(checkpointMagic):]
		var vals []int64
		for len(b) > 0 {
			v, n := binary.Varint(b)
			if n <= 0 {
				return nil, fmt.Errorf("%w: subtask %d: bad varint", errBadCheckpoint, i)
			}
			vals = append(vals, v)
			b = b[n:]
		}
		if len(vals) < 5 || vals[4] < 0 || int64(len(vals)) != 5+3*vals[4] {
			return nil, fmt.Errorf("%w: subtask %d: %d values", errBadCheckpoint, i, len(vals))
		}
		if vals[0] != o.Seed || vals[1] != int64(o.Table) || vals[2] != int64(o.BatchEvents) || vals[3] != o.Events {
			return nil, fmt.Errorf("nexmark: checkpoint of seed %d, table %s, batch events %d, events %d; now seed %d, table %s, batch events %d, events %d",
				vals[0], Table(vals[1]), vals[2], vals[3], o.Seed, o.Table, o.BatchEvents, o.Events)
		}
		be := int64(o.BatchEvents)
		for k := int64(0); k < vals[4]; k++ {
			st := stream{block: vals[5+3*k], stride: vals[6+3*k], cur: vals[7+3*k]}
			if st.block < 0 || st.stride < 1 || st.cur < st.block*be || st.cur > (st.block+1)*be {
				return nil, fmt.Errorf("%w: subtask %d: stream %+v", errBadCheckpoint, i, st)
			}
			if o.Events > 0 && st.cur >= o.Events {
				continue
			}
			all = append(all, st)
		}
	}
	return all, nil
}

// shareStreams returns subtask j's streams of all among p subtasks, splitting
// them first when there are fewer than p.
func shareStreams(all []stream, j, p int, be int64) []stream {
	if n := len(all); n > 0 && n < p {
		k := int64((p + n - 1) / n)
		split := make([]stream, 0, int64(n)*k)
		for _, s := range all {
			split = append(split, stream{block: s.block, stride: s.stride * k, cur: s.cur})
			for m := int64(1); m < k; m++ {
				b := s.block + m*s.stride
				split = append(split, stream{block: b, stride: s.stride * k, cur: b * be})
			}
		}
		all = split
	}
	var mine []stream
	for i := j; i < len(all); i += p {
		mine = append(mine, all[i])
	}
	return mine
}
