package state

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
	"sync"
)

// engine is the ordered byte store under a Store: an in-memory index or a
// Pebble DB. Values returned by get alias dst or engine memory and are valid
// until the next call on the engine.
type engine interface {
	get(k, dst []byte) ([]byte, bool, error)
	// getMany looks up the keys flat[offs[i]:offs[i+1]] and calls fn for
	// every key found, in any order; v is valid during the call.
	getMany(flat []byte, offs []int, fn func(i int, v []byte) error) error
	set(k, v []byte) error
	del(k []byte) error
	merge(k, v []byte) error
	// delRange deletes [lo, hi); hi nil means unbounded.
	delRange(lo, hi []byte) error
	// takeRange calls fn for every entry in [lo, hi) (hi not nil) in key
	// order, then deletes them like delRange: one pass where scan and
	// delRange take two.
	takeRange(lo, hi []byte, fn func(k, v []byte) error) error
	newBatch() batch
	// scan calls fn for every entry in [lo, hi) in key order until fn
	// returns false or an error. Writes during a scan are allowed; whether
	// the scan sees them is unspecified.
	scan(lo, hi []byte, fn func(k, v []byte) (bool, error)) error
	snapshot() (engineSnapshot, error)
	// diskBytes is the size of the engine's files (0 in memory).
	diskBytes() int64
	close() error
}

// batch buffers writes; commit applies them (the memory engine applies them
// immediately). A committed batch can be reused.
type batch interface {
	set(k, v []byte) error
	del(k []byte) error
	merge(k, v []byte) error
	delRange(lo, hi []byte) error
	size() int
	commit() error
	close()
}

type engineSnapshot interface {
	scan(lo, hi []byte, fn func(k, v []byte) (bool, error)) error
	close()
}

// store is the one Store implementation; backends differ by engine.
type store struct {
	opts   Options
	so     StoreOptions
	eng    engine
	mp     uint64
	lo, hi int

	mu     sync.Mutex // guards states (read by PendingSnapshot.Write)
	states map[uint32]StateInfo
	closed bool
	// pending counts snapshots begun but not yet written or discarded
	// (guarded by mu). They read the engine, so Close leaves closing the
	// engine to the last of them.
	pending int
	// onClose runs after the engine closed (removes Pebble's directory).
	onClose func() error
}

var _ Store = (*store)(nil)

func newStore(opts Options, so StoreOptions, eng engine) *store {
	return &store{
		opts:   opts,
		so:     so,
		eng:    eng,
		mp:     uint64(so.MaxParallelism),
		lo:     so.KeyGroupLo,
		hi:     so.KeyGroupHi,
		states: map[uint32]StateInfo{},
	}
}

func (s *store) base() *store                { return s }
func (s *store) MaxParallelism() int         { return s.so.MaxParallelism }
func (s *store) KeyGroupRange() (lo, hi int) { return s.lo, s.hi }

func (s *store) DiskBytes() int64 {
	if s.closed {
		return 0
	}
	return s.eng.diskBytes()
}

func (s *store) Close() error {
	if s.closed {
		return nil
	}
	s.mu.Lock()
	s.closed = true
	deferred := s.pending > 0
	s.mu.Unlock()
	if deferred {
		return nil // the last pending snapshot closes the engine
	}
	return s.closeEngine()
}

func (s *store) closeEngine() error {
	err := s.eng.close()
	if s.onClose != nil {
		if cerr := s.onClose(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("state: close store %s: %w", s.so.Name, err)
	}
	return nil
}

func (s *store) beginPending() {
	s.mu.Lock()
	s.pending++
	s.mu.Unlock()
}

// endPending is called when a pending snapshot is done with the engine.
func (s *store) endPending() {
	s.mu.Lock()
	s.pending--
	last := s.pending == 0 && s.closed
	s.mu.Unlock()
	if last {
		_ = s.closeEngine()
	}
}

func (s *store) now() int64 { return s.opts.Clock().UnixNano() }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// stateID is the CRC-32C of the state name.
func stateID(name string) uint32 { return crc32.Checksum([]byte(name), castagnoli) }

// declare registers a state, checking it against earlier declarations and
// restored snapshots.
func (s *store) declare(name string, kind Kind, ttl int64) (StateInfo, error) {
	if s.closed {
		return StateInfo{}, ErrClosed
	}
	if name == "" {
		return StateInfo{}, fmt.Errorf("%w: state name is empty", ErrInvalidOptions)
	}
	if ttl < 0 {
		return StateInfo{}, fmt.Errorf("%w: state %s: negative TTL", ErrInvalidOptions, name)
	}
	info := StateInfo{Name: name, ID: stateID(name), Kind: kind, TTL: durationOf(ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.states[info.ID]; ok && old != info {
		return StateInfo{}, fmt.Errorf("%w: state %s (%s, ttl %v) vs %s (%s, ttl %v)", ErrStateMismatch, name, kind, info.TTL, old.Name, old.Kind, old.TTL)
	}
	s.states[info.ID] = info
	return info, nil
}

func (s *store) addStates(infos []StateInfo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, info := range infos {
		if info.ID != stateID(info.Name) {
			return fmt.Errorf("%w: state %s has id %d, want %d", ErrIncompatibleSnapshot, info.Name, info.ID, stateID(info.Name))
		}
		if old, ok := s.states[info.ID]; ok && old != info {
			return fmt.Errorf("%w: state %s (%s, ttl %v) in snapshot vs %s (%s, ttl %v)", ErrStateMismatch, info.Name, info.Kind, info.TTL, old.Name, old.Kind, old.TTL)
		}
		s.states[info.ID] = info
	}
	return nil
}

func (s *store) stateList() []StateInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StateInfo, 0, len(s.states))
	for _, i := range s.states {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

func (s *store) stateMap() map[uint32]StateInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[uint32]StateInfo, len(s.states))
	for k, v := range s.states {
		m[k] = v
	}
	return m
}

// kgBound returns the first key of key group kg, or nil (unbounded) past the
// last possible key group.
func kgBound(kg int) []byte {
	if kg >= 1<<16 {
		return nil
	}
	return binary.BigEndian.AppendUint16(nil, uint16(kg))
}

// Sizes walks every state of every owned key group.
func (s *store) Sizes(ctx context.Context) ([]StateSize, error) {
	if s.closed {
		return nil, ErrClosed
	}
	now := s.now()
	var out []StateSize
	var lo, hi []byte
	var scratch []byte
	for _, info := range s.stateList() {
		sz := StateSize{StateInfo: info}
		for kg := s.lo; kg < s.hi; kg++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			lo = appendPrefix(lo[:0], kg, info.ID)
			hi = prefixEnd(hi[:0], lo)
			err := s.eng.scan(lo, hi, func(k, v []byte) (bool, error) {
				live, _, err := liveBytes(info, v, now, &scratch)
				if err != nil {
					return false, fmt.Errorf("state %s: %w", info.Name, err)
				}
				if live != nil {
					sz.Entries++
					sz.Bytes += int64(len(k) + len(live))
				}
				return true, nil
			})
			if err != nil {
				return nil, err
			}
		}
		out = append(out, sz)
	}
	return out, nil
}

// PurgeExpired rewrites or deletes entries with expired data.
func (s *store) PurgeExpired(ctx context.Context) (int64, error) {
	if s.closed {
		return 0, ErrClosed
	}
	now := s.now()
	var removed int64
	var lo, hi, scratch []byte
	b := s.eng.newBatch()
	defer b.close()
	for _, info := range s.stateList() {
		if info.TTL <= 0 {
			continue
		}
		for kg := s.lo; kg < s.hi; kg++ {
			if err := ctx.Err(); err != nil {
				return removed, err
			}
			lo = appendPrefix(lo[:0], kg, info.ID)
			hi = prefixEnd(hi[:0], lo)
			err := s.eng.scan(lo, hi, func(k, v []byte) (bool, error) {
				live, n, err := liveBytes(info, v, now, &scratch)
				if err != nil {
					return false, fmt.Errorf("state %s: %w", info.Name, err)
				}
				if n == 0 {
					return true, nil
				}
				removed += int64(n)
				if live == nil {
					err = b.del(k)
				} else {
					err = b.set(k, live)
				}
				if err == nil && b.size() > batchFlushBytes {
					err = b.commit()
				}
				return err == nil, err
			})
			if err != nil {
				return removed, err
			}
		}
	}
	return removed, b.commit()
}

const batchFlushBytes = 4 << 20
