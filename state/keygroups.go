package state

import (
	"context"
	"fmt"
)

// SnapshotKeyGroups captures the store and returns one blob per non-empty
// key group, for arrowexec.SubtaskSnapshot.KeyGroups. A blob has the format
// of a snapshot data file, so it checks itself (CRC-32C footer). It holds the
// whole state in memory: meant for small state; large state is better
// written with Snapshot, carrying the directory in SubtaskSnapshot.Operator.
func SnapshotKeyGroups(ctx context.Context, s Store) (map[int][]byte, error) {
	st := s.base()
	p, err := st.BeginSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	ps := p.(*pendingSnapshot)
	defer ps.Discard()
	out := map[int][]byte{}
	var scratch []byte
	for kg := ps.lo; kg < ps.hi; kg++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		buf, n, err := encodeKeyGroup(nil, ps.snap, kg, ps.states, ps.now, &scratch)
		if err != nil {
			return nil, fmt.Errorf("state: snapshot key group %d: %w", kg, err)
		}
		if n > 0 {
			out[kg] = buf
		}
	}
	return out, nil
}

// RestoreKeyGroups replaces the store's state with the key group blobs of
// SnapshotKeyGroups (as handed over in arrowexec.RestoreState.KeyGroups,
// which holds exactly the key groups the subtask owns now). Every blob is
// verified before it is applied.
func RestoreKeyGroups(ctx context.Context, s Store, kgs map[int][]byte) error {
	st := s.base()
	if st.closed {
		return ErrClosed
	}
	for kg := range kgs {
		if kg < st.lo || kg >= st.hi {
			return fmt.Errorf("%w: restore key group %d into a store of [%d, %d)", ErrKeyGroupOutOfRange, kg, st.lo, st.hi)
		}
	}
	if err := st.eng.delRange(kgBound(st.lo), kgBound(st.hi)); err != nil {
		return fmt.Errorf("state: restore: %w", err)
	}
	states := st.stateMap()
	now := st.now()
	sink, err := newSink(st.eng)
	if err != nil {
		return fmt.Errorf("state: restore: %w", err)
	}
	defer sink.abort()
	var scratch []byte
	for kg := st.lo; kg < st.hi; kg++ {
		data, ok := kgs[kg]
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := loadKeyGroup(sink, fmt.Sprintf("key group %d", kg), data, kg, states, now, &scratch); err != nil {
			return err
		}
	}
	if err := sink.finish(); err != nil {
		return fmt.Errorf("state: restore: %w", err)
	}
	return nil
}
