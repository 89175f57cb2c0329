package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/sstable"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/riffle-dev/riffle/internal/fsx"
)

// PebbleOptions configure the Pebble backend. Only Dir is required.
type PebbleOptions struct {
	Options
	// Dir is the directory under which each store keeps its working files
	// (Dir/StoreOptions.Name). Required.
	Dir string
	// CacheSize is the block cache of each store. Default 64 MiB. Point
	// reads are fast only while the hot set fits: size it to the state.
	CacheSize int64
	// MemTableSize is the size of each memtable. Default 32 MiB.
	MemTableSize uint64
	// Compression of SSTable blocks. Default (zero) snappy. A block cache
	// miss costs a decompression: for read-heavy state larger than
	// CacheSize, pebble.NoCompression trades about 2.5x the disk for
	// about 2x faster uncached point reads.
	Compression pebble.Compression
	// WAL enables Pebble's write-ahead log. Off by default: a store's files
	// are a working copy rebuilt from snapshots after a failure, so a WAL
	// only costs write bandwidth.
	WAL bool
	// KeepFiles keeps a store's directory on Close (default: removed).
	KeepFiles bool
	// Logger receives Pebble's log lines. Default: discarded.
	Logger pebble.Logger
}

// EnsureDefaults fills unset fields with their defaults and returns o.
func (o *PebbleOptions) EnsureDefaults() *PebbleOptions {
	o.Options.EnsureDefaults()
	if o.CacheSize == 0 {
		o.CacheSize = 64 << 20
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 32 << 20
	}
	if o.Logger == nil {
		o.Logger = quietLogger{}
	}
	return o
}

// Validate checks the options.
func (o *PebbleOptions) Validate() error {
	switch {
	case o.Dir == "":
		return fmt.Errorf("%w: PebbleOptions.Dir is empty", ErrInvalidOptions)
	case o.CacheSize < 0:
		return fmt.Errorf("%w: PebbleOptions.CacheSize %d < 0", ErrInvalidOptions, o.CacheSize)
	}
	return nil
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...)) // pebble's own invariant failures
}

// PebbleBackend keeps each store in its own Pebble DB on local disk.
type PebbleBackend struct {
	opts PebbleOptions
}

var _ Backend = (*PebbleBackend)(nil)

// NewPebbleBackend returns a Pebble backend.
func NewPebbleBackend(opts PebbleOptions) (*PebbleBackend, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &PebbleBackend{opts: opts}, nil
}

// Open creates the store's Pebble DB under Dir/o.Name, which must not exist.
func (b *PebbleBackend) Open(ctx context.Context, o StoreOptions) (Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	dir := filepath.Join(b.opts.Dir, filepath.FromSlash(o.Name))
	// The store's directory is a working copy (its durable form is the
	// checkpoints), owned through a flock on dir.lock while the store is
	// open. A directory whose lock nobody holds was left by a process that
	// died (a SIGKILL before Close): it is removed, so a job restarted from
	// its checkpoint opens its stores again. One whose lock is held belongs
	// to a live store and is refused.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("state: open store %s: %w", o.Name, err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state: open store %s: %w", o.Name, err)
	}
	if err := fsx.Flock(lock); err != nil {
		lock.Close()
		if errors.Is(err, fsx.ErrLockHeld) {
			return nil, fmt.Errorf("%w: store %s: directory %s is in use by an open store", ErrInvalidOptions, o.Name, dir)
		}
		return nil, fmt.Errorf("state: lock store %s: %w", o.Name, err)
	}
	if _, err := os.Stat(dir); err == nil {
		if b.opts.KeepFiles {
			lock.Close()
			return nil, fmt.Errorf("%w: store %s: directory %s exists (kept files are not reused)", ErrInvalidOptions, o.Name, dir)
		}
		if b.opts.Logger != nil {
			b.opts.Logger.Infof("state: removing the working copy %s left by a store that was not closed", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			lock.Close()
			return nil, fmt.Errorf("state: remove the stale working copy of store %s: %w", o.Name, err)
		}
	}
	cache := pebble.NewCache(b.opts.CacheSize)
	defer cache.Unref()
	popts := &pebble.Options{
		Cache:        cache,
		Comparer:     &comparer,
		MemTableSize: b.opts.MemTableSize,
		DisableWAL:   !b.opts.WAL,
		Merger:       pebble.DefaultMerger, // list appends concatenate frames
		Logger:       b.opts.Logger,
	}
	// Bloom filters over whole keys: point lookups (Get, GetMany's
	// SeekPrefixGE) skip tables that do not hold the key.
	popts.Levels = make([]pebble.LevelOptions, 7)
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		popts.Levels[i].FilterType = pebble.TableFilter
		popts.Levels[i].Compression = b.opts.Compression
	}
	db, err := pebble.Open(dir, popts.EnsureDefaults())
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("state: open store %s at %s: %w", o.Name, dir, err)
	}
	s := newStore(b.opts.Options, o, &pebbleEngine{db: db, dir: dir, opts: popts})
	s.onClose = func() error {
		var err error
		if !b.opts.KeepFiles {
			err = os.RemoveAll(dir)
		}
		return errors.Join(err, lock.Close())
	}
	return s, nil
}

// comparer is bytewise order with every key its own prefix, so bloom
// filters and SeekPrefixGE work on whole entry keys.
var comparer = func() pebble.Comparer {
	c := *pebble.DefaultComparer
	c.Split = func(k []byte) int { return len(k) }
	return c
}()

type pebbleEngine struct {
	db    *pebble.DB
	dir   string
	opts  *pebble.Options
	order []int32 // getMany scratch
	dkeys []byte  // delRange scratch: keys to delete one by one
	doffs []int
	loads int // numbers ingest directories
}

var writeOpts = pebble.NoSync

func (e *pebbleEngine) get(k, dst []byte) ([]byte, bool, error) {
	v, closer, err := e.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	dst = append(dst[:0], v...)
	return dst, true, closer.Close()
}

// getMany seeks one iterator through the keys in sorted order: cheaper than
// a Get (which builds an iterator) per key, and monotonic seeks reuse the
// iterator's position.
func (e *pebbleEngine) getMany(flat []byte, offs []int, fn func(i int, v []byte) error) error {
	n := len(offs) - 1
	if n <= 0 {
		return nil
	}
	key := func(i int) []byte { return flat[offs[i]:offs[i+1]] }
	order := e.order[:0]
	for i := 0; i < n; i++ {
		order = append(order, int32(i))
	}
	e.order = order
	sort.Slice(order, func(a, b int) bool { return bytes.Compare(key(int(order[a])), key(int(order[b]))) < 0 })
	it, err := e.db.NewIter(nil)
	if err != nil {
		return err
	}
	for _, i := range order {
		k := key(int(i))
		if it.SeekPrefixGE(k) && bytes.Equal(it.Key(), k) {
			if err := fn(int(i), it.Value()); err != nil {
				it.Close()
				return err
			}
		}
	}
	return it.Close()
}

func (e *pebbleEngine) set(k, v []byte) error   { return e.db.Set(k, v, writeOpts) }
func (e *pebbleEngine) del(k []byte) error      { return e.db.Delete(k, writeOpts) }
func (e *pebbleEngine) merge(k, v []byte) error { return e.db.Merge(k, v, writeOpts) }

// pointDeleteMax is the most entries delRange deletes one by one; a
// larger range gets one range tombstone. A range tombstone in the memtable
// is cheap to write but costly to read past: Pebble re-fragments every
// range tombstone of a memtable for the first iterator (and Get) after each
// one is added, so a range tombstone per purged window (Map.Clear of its
// count_distinct values) made firing n windows cost O(n^2). Point deletes
// cost what writing the entries cost. With at most one range tombstone per
// pointDeleteMax entries and a memtable of at most ~1M entries, the
// re-fragmenting stays below one step per entry written.
const pointDeleteMax = 1024

// delRange deletes [lo, hi): the entries one by one when there are at
// most pointDeleteMax of them, else with a range tombstone.
func (e *pebbleEngine) delRange(lo, hi []byte) error {
	if hi == nil {
		b := e.newBatch()
		defer b.close()
		if err := b.delRange(lo, nil); err != nil {
			return err
		}
		return b.commit()
	}
	return e.takeRange(lo, hi, nil)
}

// takeRange reads [lo, hi) with one iterator, keeping the keys while there
// are at most pointDeleteMax, and deletes them one by one, or the range
// with a tombstone if there are more.
func (e *pebbleEngine) takeRange(lo, hi []byte, fn func(k, v []byte) error) error {
	if hi == nil { // unbounded: no finite key ends it
		if err := e.scan(lo, nil, func(k, v []byte) (bool, error) { return true, fn(k, v) }); err != nil {
			return err
		}
		return e.delRange(lo, nil)
	}
	if bytes.Compare(lo, hi) >= 0 {
		return nil
	}
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	e.dkeys, e.doffs = e.dkeys[:0], append(e.doffs[:0], 0)
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if fn != nil {
			if err := fn(it.Key(), it.Value()); err != nil {
				it.Close()
				return err
			}
		}
		if n++; n <= pointDeleteMax {
			e.dkeys = append(e.dkeys, it.Key()...)
			e.doffs = append(e.doffs, len(e.dkeys))
		} else if fn == nil {
			break // a range tombstone then; nothing more to read
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	b := &pebbleBatch{e: e, b: e.db.NewBatch()}
	defer b.close()
	if n > pointDeleteMax {
		if err := b.delRange(lo, hi); err != nil {
			return err
		}
	} else {
		for i := 0; i+1 < len(e.doffs); i++ {
			if err := b.b.Delete(e.dkeys[e.doffs[i]:e.doffs[i+1]], nil); err != nil {
				return err
			}
		}
	}
	return b.commit()
}

// upperOf turns an unbounded range end into the key just past the last key
// at or after lo (no finite key bounds every possible entry key).
func upperOf(r pebble.Reader, lo []byte) ([]byte, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo})
	if err != nil {
		return nil, err
	}
	var end []byte
	if it.Last() {
		end = append(append(end, it.Key()...), 0)
	}
	return end, it.Close()
}

func scanReader(r pebble.Reader, lo, hi []byte, fn func(k, v []byte) (bool, error)) error {
	if hi != nil && bytes.Compare(lo, hi) >= 0 {
		return nil // empty range; Pebble requires lower <= upper
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for valid := it.First(); valid; valid = it.Next() {
		more, err := fn(it.Key(), it.Value())
		if err != nil || !more {
			it.Close()
			return err
		}
	}
	return it.Close()
}

func (e *pebbleEngine) scan(lo, hi []byte, fn func(k, v []byte) (bool, error)) error {
	return scanReader(e.db, lo, hi, fn)
}

type pebbleSnapshot struct{ s *pebble.Snapshot }

func (e *pebbleEngine) snapshot() (engineSnapshot, error) {
	return pebbleSnapshot{e.db.NewSnapshot()}, nil
}

func (s pebbleSnapshot) scan(lo, hi []byte, fn func(k, v []byte) (bool, error)) error {
	return scanReader(s.s, lo, hi, fn)
}

func (s pebbleSnapshot) close() { _ = s.s.Close() }

func (e *pebbleEngine) diskBytes() int64 { return int64(e.db.Metrics().DiskSpaceUsage()) }

func (e *pebbleEngine) close() error { return e.db.Close() }

type pebbleBatch struct {
	e *pebbleEngine
	b *pebble.Batch
}

func (e *pebbleEngine) newBatch() batch        { return &pebbleBatch{e: e, b: e.db.NewBatch()} }
func (b *pebbleBatch) set(k, v []byte) error   { return b.b.Set(k, v, nil) }
func (b *pebbleBatch) del(k []byte) error      { return b.b.Delete(k, nil) }
func (b *pebbleBatch) merge(k, v []byte) error { return b.b.Merge(k, v, nil) }
func (b *pebbleBatch) size() int               { return b.b.Len() }
func (b *pebbleBatch) close()                  { _ = b.b.Close() }

func (b *pebbleBatch) delRange(lo, hi []byte) error {
	if hi == nil {
		var err error
		if hi, err = upperOf(b.e.db, lo); err != nil || hi == nil {
			return err
		}
	}
	return b.b.DeleteRange(lo, hi, nil)
}

func (b *pebbleBatch) commit() error {
	if b.b.Empty() {
		return nil
	}
	if err := b.b.Commit(writeOpts); err != nil {
		return err
	}
	b.b.Reset()
	return nil
}

// ingestLoader writes restored entries into one SSTable per key group
// under the DB's directory and ingests them all at the end: no memtable, no
// WAL, no compaction of the loaded data (key groups are disjoint, so the
// tables land in the bottom level).
type ingestLoader struct {
	e     *pebbleEngine
	dir   string
	w     *sstable.Writer
	paths []string
	done  bool
}

var _ bulkLoader = (*pebbleEngine)(nil)

func (e *pebbleEngine) newLoader() (loadSink, error) {
	e.loads++
	dir := filepath.Join(e.dir, fmt.Sprintf("restore-%d", e.loads))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &ingestLoader{e: e, dir: dir}, nil
}

func (l *ingestLoader) add(k, v []byte) error {
	if l.w == nil {
		path := filepath.Join(l.dir, fmt.Sprintf("%06d.sst", len(l.paths)))
		f, err := vfs.Default.Create(path)
		if err != nil {
			return err
		}
		l.paths = append(l.paths, path)
		wo := l.e.opts.MakeWriterOptions(6, l.e.db.FormatMajorVersion().MaxTableFormat())
		l.w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), wo)
	}
	return l.w.Set(k, v)
}

func (l *ingestLoader) endFile() error {
	if l.w == nil {
		return nil
	}
	err := l.w.Close()
	l.w = nil
	return err
}

func (l *ingestLoader) finish() error {
	if err := l.endFile(); err != nil {
		return err
	}
	l.done = true
	defer os.RemoveAll(l.dir)
	if len(l.paths) == 0 {
		return nil
	}
	return l.e.db.Ingest(l.paths)
}

func (l *ingestLoader) abort() {
	if l.w != nil {
		_ = l.w.Close()
		l.w = nil
	}
	if !l.done {
		_ = os.RemoveAll(l.dir)
	}
}
