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
	st, err := openRestored(ctx, rs, maxParallelism)
	if err != nil {
		return nil, nil, fmt.Errorf("ml: read histories: %w", err)
	}
	defer st.Close()
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

// openRestored opens a memory store holding every key group of rs.
func openRestored(ctx context.Context, rs *arrowexec.RestoreState, maxParallelism int) (state.Store, error) {
	st, err := state.NewMemoryBackend(state.Options{}).Open(ctx, state.StoreOptions{
		Name: "read-state", MaxParallelism: maxParallelism, KeyGroupLo: 0, KeyGroupHi: maxParallelism})
	if err != nil {
		return nil, err
	}
	if len(rs.Dirs) > 0 {
		err = state.Restore(ctx, st, rs.Dirs, 0, maxParallelism)
	} else {
		err = state.RestoreKeyGroups(ctx, st, rs.KeyGroups)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// ReadStoredFactors reads the factors the recommend operator keeps in
// its state (recommend/user and recommend/item) from the restore state
// of a checkpoint or savepoint, by key (as ReadHistories): the model a
// job restored from it starts with.
func ReadStoredFactors(ctx context.Context, rs *arrowexec.RestoreState, maxParallelism int) (users, items map[string][]float32, err error) {
	if rs == nil {
		return nil, nil, fmt.Errorf("ml: read factors: the checkpoint has no recommend node")
	}
	st, err := openRestored(ctx, rs, maxParallelism)
	if err != nil {
		return nil, nil, fmt.Errorf("ml: read factors: %w", err)
	}
	defer st.Close()
	read := func(name string, user bool) (map[string][]float32, error) {
		v, err := state.NewValue(st, state.ValueDescriptor[[]byte]{Name: name, Codec: state.Bytes})
		if err != nil {
			return nil, err
		}
		out := map[string][]float32{}
		var bad error
		err = v.Range(func(e state.Entry, blob []byte) bool {
			var sf storedFactor
			if sf, bad = decodeStored(blob, user, -1); bad != nil {
				bad = fmt.Errorf("%s: key %x: %w", name, e.Key, bad)
				return false
			}
			out[string(e.Key)] = sf.vec
			return true
		})
		if err == nil {
			err = bad
		}
		return out, err
	}
	if users, err = read(stateUser, true); err != nil {
		return nil, nil, fmt.Errorf("ml: read factors: %w", err)
	}
	if items, err = read(stateItem, false); err != nil {
		return nil, nil, fmt.Errorf("ml: read factors: %w", err)
	}
	return users, items, nil
}

// storedFactor is a decoded recommend/user or recommend/item value.
type storedFactor struct {
	count uint64 // users: the list length the model had seen
	idx   uint32 // dense index
	vec   []float32
}

// decodeStored decodes a recommend/user (user) or recommend/item value;
// k ≥ 0 checks the number of factors.
func decodeStored(blob []byte, user bool, k int) (storedFactor, error) {
	sf, _, err := decodeStoredAppend(blob, user, k, nil)
	return sf, err
}

// decodeStoredAppend is decodeStored with the factors appended to arena
// (sf.vec is the appended part, full capacity: an append to it copies),
// so that decoding many values allocates once.
func decodeStoredAppend(blob []byte, user bool, k int, arena []float32) (storedFactor, []float32, error) {
	var sf storedFactor
	if user {
		c, n := binary.Uvarint(blob)
		if n <= 0 {
			return sf, arena, fmt.Errorf("bad trained count")
		}
		sf.count, blob = c, blob[n:]
	}
	if len(blob) < 4 || len(blob)%4 != 0 || (k >= 0 && len(blob) != 4+4*k) {
		return sf, arena, fmt.Errorf("factor value of %d bytes (model of %d factors)", len(blob), k)
	}
	sf.idx = binary.LittleEndian.Uint32(blob)
	start := len(arena)
	for j := 4; j < len(blob); j += 4 {
		arena = append(arena, math.Float32frombits(binary.LittleEndian.Uint32(blob[j:])))
	}
	sf.vec = arena[start:len(arena):len(arena)]
	return sf, arena, nil
}
