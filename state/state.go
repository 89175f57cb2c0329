package state

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
)

// Backend opens keyed state stores, one per subtask of a keyed operator.
type Backend interface {
	// Open creates the store of one subtask for the key groups
	// [o.KeyGroupLo, o.KeyGroupHi). The store starts empty; Restore fills it.
	Open(ctx context.Context, o StoreOptions) (Store, error)
}

// StoreOptions describes the subtask a store is opened for.
type StoreOptions struct {
	// Name identifies the store within its backend, unique among open
	// stores (e.g. "window/3"): a relative slash-separated path without
	// "..". The Pebble backend keeps the store's files under
	// PebbleOptions.Dir/Name.
	Name string
	// MaxParallelism is the number of key groups (Task.MaxParallelism), at
	// most 65536.
	MaxParallelism int
	// KeyGroupLo and KeyGroupHi are the key groups [lo, hi) the store owns.
	KeyGroupLo, KeyGroupHi int
}

// StoreOptionsFor returns the StoreOptions of an arrowexec subtask.
func StoreOptionsFor(t *arrowexec.Task) StoreOptions {
	lo, hi := t.KeyGroupRange()
	return StoreOptions{
		Name:           fmt.Sprintf("%s/%d", t.Node, t.Subtask),
		MaxParallelism: t.MaxParallelism,
		KeyGroupLo:     lo,
		KeyGroupHi:     hi,
	}
}

// Validate checks the options.
func (o StoreOptions) Validate() error {
	switch {
	case o.Name == "":
		return fmt.Errorf("%w: store name is empty", ErrInvalidOptions)
	case path.IsAbs(o.Name) || strings.Contains(o.Name, "\\") || slices.Contains(strings.Split(o.Name, "/"), ".."):
		return fmt.Errorf("%w: store name %q must be a relative slash-separated path without \"..\"", ErrInvalidOptions, o.Name)
	case o.MaxParallelism < 1 || o.MaxParallelism > 1<<16:
		return fmt.Errorf("%w: store %s: MaxParallelism %d not in [1, 65536]", ErrInvalidOptions, o.Name, o.MaxParallelism)
	case o.KeyGroupLo < 0 || o.KeyGroupLo > o.KeyGroupHi || o.KeyGroupHi > o.MaxParallelism:
		return fmt.Errorf("%w: store %s: key groups [%d, %d) not within [0, %d)", ErrInvalidOptions, o.Name, o.KeyGroupLo, o.KeyGroupHi, o.MaxParallelism)
	}
	return nil
}

// Options are shared by both backends. The zero value works.
type Options struct {
	// Clock returns the current time, for TTL. Default time.Now.
	Clock func() time.Time
	// FS is where snapshots are written and restored from. Default OSFS.
	FS FS
}

// EnsureDefaults fills unset fields with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.FS == nil {
		o.FS = OSFS
	}
	return o
}

// Store is the keyed state of one subtask. It is used from one goroutine
// (see the package documentation). States are accessed through handles
// created by NewValue, NewMap and NewList.
type Store interface {
	// MaxParallelism is the number of key groups.
	MaxParallelism() int
	// KeyGroupRange returns the key groups [lo, hi) the store owns.
	KeyGroupRange() (lo, hi int)
	// Sizes reports the size of every declared or restored state. It walks
	// the state: call it at checkpoint or metrics frequency, not per batch.
	Sizes(ctx context.Context) ([]StateSize, error)
	// DiskBytes is the size of the store's working files on local disk (0
	// for the memory backend).
	DiskBytes() int64
	// PurgeExpired removes expired entries of every state with a TTL and
	// returns how many entries (list elements count one each) it removed.
	PurgeExpired(ctx context.Context) (int64, error)
	// Snapshot writes the store's current state under dir (created if
	// missing, which should be empty) and returns its manifest. It is
	// BeginSnapshot followed by Write.
	Snapshot(ctx context.Context, dir string) (Manifest, error)
	// BeginSnapshot captures the store's current state synchronously; the
	// returned PendingSnapshot writes it later, possibly from another
	// goroutine while the store keeps changing.
	BeginSnapshot(ctx context.Context) (PendingSnapshot, error)
	// Close releases the store (for Pebble: closes and removes the working
	// directory unless PebbleOptions.KeepFiles). A snapshot begun and not
	// yet written or discarded stays valid: the last one closes the engine.
	// Safe to call twice.
	Close() error

	base() *store
}

// PendingSnapshot is a point-in-time view of a store waiting to be written.
// Exactly one of Write or Discard must be called.
type PendingSnapshot interface {
	// Write writes the snapshot under dir. It may run concurrently with
	// further use of the store.
	Write(ctx context.Context, dir string) (Manifest, error)
	// Discard releases the view without writing it.
	Discard()
}

// Kind is the kind of a state.
type Kind uint8

// State kinds.
const (
	KindValue Kind = 1 + iota
	KindMap
	KindList
)

func (k Kind) String() string {
	switch k {
	case KindValue:
		return "value"
	case KindMap:
		return "map"
	case KindList:
		return "list"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// StateInfo describes a declared state.
type StateInfo struct {
	Name string        `json:"name"`
	ID   uint32        `json:"id"`
	Kind Kind          `json:"kind"`
	TTL  time.Duration `json:"ttl,omitempty"`
}

// StateSize is the approximate size of one state in a store: live entries
// (a map entry or a list of one (key, namespace) counts one) and the bytes of
// their encoded keys and values.
type StateSize struct {
	StateInfo
	Entries int64
	Bytes   int64
}

// Manifest describes one snapshot directory.
type Manifest struct {
	Version        int         `json:"version"`
	MaxParallelism int         `json:"max_parallelism"`
	KeyGroupLo     int         `json:"key_group_lo"`
	KeyGroupHi     int         `json:"key_group_hi"`
	States         []StateInfo `json:"states"`
	Files          []FileInfo  `json:"files"`
}

// FileInfo describes one snapshot file: the entries of one key group.
type FileInfo struct {
	Name     string `json:"name"`
	KeyGroup int    `json:"key_group"`
	Entries  int64  `json:"entries"`
	Bytes    int64  `json:"bytes"`
	CRC32C   uint32 `json:"crc32c"`
}

// Entries returns the total number of entries in the snapshot.
func (m *Manifest) Entries() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Entries
	}
	return n
}

// Bytes returns the total size of the snapshot's data files.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Bytes
	}
	return n
}

// Entry identifies a state entry during iteration. Key and Namespace are
// only valid during the callback.
type Entry struct {
	KeyGroup  int
	Key       []byte
	Namespace []byte
}

// MarshalText writes the kind's name (manifests are JSON).
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a kind name.
func (k *Kind) UnmarshalText(b []byte) error {
	for _, c := range []Kind{KindValue, KindMap, KindList} {
		if string(b) == c.String() {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("%w: unknown state kind %q", ErrIncompatibleSnapshot, b)
}
