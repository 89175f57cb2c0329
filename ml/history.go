package ml

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

// Int64Key is the key encoding of an int64 id in the recommend operator's
// state and in Interaction: 8 bytes big endian with the sign bit flipped,
// so keys sort like the numbers.
func Int64Key(v int64) []byte { return int64Key(v) }

// HistoryEntry is one stored interaction of a user (Partner an item key)
// or of an item (Partner a user key).
type HistoryEntry struct {
	Partner []byte
	Weight  float32
}

// ReadHistories reads the recommend operator's stored histories (its
// recommend/interactions and recommend/item-interactions lists, package
// doc "The recommend operator") from the restore state of a checkpoint or
// savepoint, every key group of it (checkpoint.Checkpoint.RestoreState
// with parallelism 1 gives them all): each user's entries and each item's,
// in the order they were stored. maxParallelism is the checkpoint's. It is
// how a test or a tool inspects what a job has learned from, e.g. that
// every interaction was applied exactly once across crashes.
func ReadHistories(ctx context.Context, rs *arrowexec.RestoreState, maxParallelism int) (users, items map[string][]HistoryEntry, err error) {
	if rs == nil {
		return nil, nil, fmt.Errorf("ml: read histories: the checkpoint has no recommend node")
	}
	st, err := state.NewMemoryBackend(state.Options{}).Open(ctx, state.StoreOptions{
		Name: "read-histories", MaxParallelism: maxParallelism, KeyGroupLo: 0, KeyGroupHi: maxParallelism})
	if err != nil {
		return nil, nil, fmt.Errorf("ml: read histories: %w", err)
	}
	defer st.Close()
	if len(rs.Dirs) > 0 {
		err = state.Restore(ctx, st, rs.Dirs, 0, maxParallelism)
	} else {
		err = state.RestoreKeyGroups(ctx, st, rs.KeyGroups)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ml: read histories: %w", err)
	}
	read := func(name string) (map[string][]HistoryEntry, error) {
		l, err := state.NewList(st, state.ListDescriptor[[]byte]{Name: name, Codec: state.Bytes})
		if err != nil {
			return nil, err
		}
		out := map[string][]HistoryEntry{}
		var bad error
		err = l.Range(func(e state.Entry, vals [][]byte) bool {
			es := make([]HistoryEntry, len(vals))
			for j, v := range vals {
				if len(v) < 4 {
					bad = fmt.Errorf("%s: key %x: entry %d of %d bytes", name, e.Key, j, len(v))
					return false
				}
				es[j] = HistoryEntry{Partner: bytes.Clone(v[4:]), Weight: math.Float32frombits(binary.LittleEndian.Uint32(v))}
			}
			out[string(e.Key)] = append(out[string(e.Key)], es...)
			return true
		})
		if err == nil {
			err = bad
		}
		return out, err
	}
	if users, err = read(stateInteractions); err != nil {
		return nil, nil, fmt.Errorf("ml: read histories: %w", err)
	}
	if items, err = read(stateItemInteractions); err != nil {
		return nil, nil, fmt.Errorf("ml: read histories: %w", err)
	}
	return users, items, nil
}
