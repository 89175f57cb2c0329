package windows

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

// Checkpoints: the window state is the state store's snapshot. SnapshotState
// writes it to a temporary directory and hands the runtime one blob per key
// group (the data file) and, as operator state, the snapshot's MANIFEST;
// restore writes them back and calls state.Restore for the key groups the
// subtask owns now, then rebuilds the timers from the restored windows.
// Snapshots are asynchronous (arrowexec.AsyncCheckpointer): at the barrier
// the operator copies the dirty windows of its write-back cache into
// per-key-group records and takes the store's
// point-in-time view (state.Store.BeginSnapshot: a Pebble snapshot, or the
// memory store's copy-on-write index); writing the view out and framing
// the blobs runs while the operator goes on processing. SnapshotState, the
// synchronous form, does both parts at once. With a Pebble store, in a job
// with a checkpoint directory, the snapshot is written as files into the
// subtask's directory
// (Task.SnapshotDir: the store's MANIFEST and data files, and
// window-cache with the cached windows' records), so window state larger
// than memory (Pebble) never passes through memory; the restore reads the
// owned key groups from every previous subtask's directory
// (RestoreState.Dirs). Without one (tests, direct calls) it is in-memory
// blobs, one frame per key group: so is the memory store's (its state is
// in memory anyway, and blobs cost fewer fsyncs).
//
// The late side output is an ordinary side edge (arrowexec.SideOutput
// "late"): its rows travel before the barrier that covers them, and the
// sink the job wires to it checkpoints them as it does any input.

type opSnapshot struct {
	Manifest  []byte `json:"manifest"`
	Watermark int64  `json:"watermark"`
	// Cached says every key group blob is a frame (see appendFrame): the
	// store's data file of the key group and the dirty windows of the
	// write-back cache in it, snapshotted straight from the cache.
	Cached bool `json:"cached,omitempty"`
	// Files says the snapshot is files in the subtask's checkpoint
	// directory (Task.SnapshotDir) instead of blobs: the store's snapshot
	// (its MANIFEST and data files) and cacheFileName with the cached
	// windows' records; Manifest is then empty.
	Files bool `json:"files,omitempty"`
}

// cacheFileName holds the cached window records of a files-mode snapshot:
// per key group, uvarint(key group) | uvarint(len frame) | frame, each
// frame being appendFrame(records, nil) (checksummed).
const cacheFileName = "window-cache"

// Key group frame (opSnapshot.Cached):
//
//	records: uvarint(len ck) | ck (cache key: start | key) | uvarint(len blob) | blob
//	| store (the state data file of the key group, may be empty)
//	| len(store) (uint32 LE) | CRC-32C of the records (uint32 LE) | magic "RWC1"
//
// Snapshotting the cache's windows directly, instead of writing them to
// the store first, keeps a checkpoint of many live windows a linear pass
// over the cache (the memory store's ordered index costs a skip-list
// insertion per window). The records come first so that the frame is
// built in place behind them.
const frameMagic = "RWC1"

const frameTrailer = 8 + len(frameMagic)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends store and the trailer to recs (the frame's start).
func appendFrame(recs, store []byte) []byte {
	crc := crc32.Checksum(recs, crcTable)
	b := append(recs, store...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(store)))
	b = binary.LittleEndian.AppendUint32(b, crc)
	return append(b, frameMagic...)
}

func splitFrame(b []byte) (store, recs []byte, err error) {
	if len(b) < frameTrailer || string(b[len(b)-len(frameMagic):]) != frameMagic {
		return nil, nil, errors.New("not a key group frame")
	}
	t := b[len(b)-frameTrailer:]
	b = b[:len(b)-frameTrailer]
	n := int(binary.LittleEndian.Uint32(t))
	if n > len(b) {
		return nil, nil, errors.New("corrupt key group frame")
	}
	recs, store = b[:len(b)-n], b[len(b)-n:]
	if crc32.Checksum(recs, crcTable) != binary.LittleEndian.Uint32(t[4:]) {
		return nil, nil, errors.New("key group frame: checksum mismatch")
	}
	return store, recs, nil
}

// eachRecord calls fn for every (cache key, blob) record of a frame.
func eachRecord(recs []byte, fn func(ck, blob []byte)) error {
	for len(recs) > 0 {
		var parts [2][]byte
		for i := range parts {
			n, k := binary.Uvarint(recs)
			if k <= 0 || n > uint64(len(recs)-k) {
				return errors.New("corrupt cached window record")
			}
			parts[i], recs = recs[k:k+int(n)], recs[k+int(n):]
		}
		if len(parts[0]) < 8 || len(parts[1]) < blobHeader {
			return errors.New("corrupt cached window record")
		}
		fn(parts[0], parts[1])
	}
	return nil
}

// cacheRecords encodes the dirty windows of the cache by key group.
func (o *operator) cacheRecords() map[int][]byte {
	lo, hi := o.store.KeyGroupRange()
	bufs := make([][]byte, hi-lo)
	// Size the buffers from a sample of records (key groups are uniform
	// under the hash), with room for the frame's trailer: growing them by
	// doubling copied several times the snapshot.
	sample, sampled := 0, 0
	o.win.eachDirty(func(_ uint64, ck, blob []byte) bool {
		sample += 2*binary.MaxVarintLen32 + len(ck) + len(blob)
		sampled++
		return sampled < 256
	})
	if sampled > 0 {
		per := (o.cache.n+o.sessN)/len(bufs)*sample/sampled*9/8 + 64 + frameTrailer
		for i := range bufs {
			bufs[i] = make([]byte, 0, per)
		}
	}
	o.win.eachDirty(func(hash uint64, ck, blob []byte) bool {
		i := arrowexec.KeyGroupOf(hash, o.maxPar) - lo
		b := binary.AppendUvarint(bufs[i], uint64(len(ck)))
		b = append(b, ck...)
		b = binary.AppendUvarint(b, uint64(len(blob)))
		bufs[i] = append(b, blob...)
		return true
	})
	out := map[int][]byte{}
	for i, b := range bufs {
		if len(b) > 0 {
			out[lo+i] = b
		}
	}
	return out
}

// SnapshotState implements arrowexec.Checkpointer.
func (o *operator) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	complete, err := o.SnapshotStateAsync(ctx, id)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return complete(ctx)
}

// SnapshotStateAsync implements arrowexec.AsyncCheckpointer.
func (o *operator) SnapshotStateAsync(ctx context.Context, id uint64) (func(context.Context) (arrowexec.SubtaskSnapshot, error), error) {
	o.pubDisk.Store(o.store.DiskBytes())
	cached := o.cacheRecords()
	return beginSnapshot(ctx, o.store, o.t, id, o.wm, cached)
}

var _ arrowexec.AsyncCheckpointer = (*operator)(nil)

// snapshotStore snapshots a store as a SubtaskSnapshot: one blob per key
// group, the MANIFEST and the watermark as operator state. With cached non-nil (records by key group), every key
// group blob is a frame holding both.
func snapshotStore(ctx context.Context, store state.Store, id uint64, wm int64, cached map[int][]byte) (arrowexec.SubtaskSnapshot, error) {
	complete, err := beginSnapshot(ctx, store, nil, id, wm, cached)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return complete(ctx)
}

// beginSnapshot takes the store's point-in-time view and returns the
// function that writes it (and may run on another goroutine while the
// store keeps changing); cached must not change afterwards. With
// t, whose SnapshotDir gives a directory (the job has a checkpoint
// directory), and a store on disk, the snapshot is written there as files
// (opSnapshot.Files): state larger than memory never passes through it.
// Otherwise it becomes in-memory blobs.
func beginSnapshot(ctx context.Context, store state.Store, t *arrowexec.Task, id uint64, wm int64, cached map[int][]byte) (func(context.Context) (arrowexec.SubtaskSnapshot, error), error) {
	p, err := store.BeginSnapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("windows: snapshot %d: %w", id, err)
	}
	return func(ctx context.Context) (arrowexec.SubtaskSnapshot, error) {
		// Files for a store on disk (Pebble): its state may not fit in
		// memory. A memory store's state does; blobs cost less there.
		if t != nil && t.SnapshotDir != nil && store.DiskBytes() > 0 {
			if dir, err := t.SnapshotDir(id); err == nil {
				return writeSnapshotFiles(ctx, p, dir, id, wm, cached)
			}
		}
		return writeSnapshot(ctx, p, id, wm, cached)
	}, nil
}

// writeSnapshotFiles writes p and the cached records into dir.
func writeSnapshotFiles(ctx context.Context, p state.PendingSnapshot, dir string, id uint64, wm int64, cached map[int][]byte) (arrowexec.SubtaskSnapshot, error) {
	if _, err := p.Write(ctx, dir); err != nil {
		return arrowexec.SubtaskSnapshot{}, fmt.Errorf("windows: snapshot %d: %w", id, err)
	}
	if cached != nil {
		kgs := make([]int, 0, len(cached))
		for kg := range cached {
			kgs = append(kgs, kg)
		}
		slices.Sort(kgs)
		var b []byte
		for _, kg := range kgs {
			frame := appendFrame(cached[kg], nil)
			b = binary.AppendUvarint(b, uint64(kg))
			b = binary.AppendUvarint(b, uint64(len(frame)))
			b = append(b, frame...)
		}
		if err := writeFileSync(filepath.Join(dir, cacheFileName), b); err != nil {
			return arrowexec.SubtaskSnapshot{}, fmt.Errorf("windows: snapshot %d: %w", id, err)
		}
	}
	op, err := json.Marshal(opSnapshot{Watermark: wm, Cached: cached != nil, Files: true})
	return arrowexec.SubtaskSnapshot{Operator: op}, err
}

// writeFileSync writes a file and fsyncs it.
func writeFileSync(name string, b []byte) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readCacheFile returns the cached records of the key groups in [lo, hi)
// from a files-mode snapshot directory (none when it has no such file).
func readCacheFile(dir string, lo, hi int, into map[int][]byte) error {
	b, err := os.ReadFile(filepath.Join(dir, cacheFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for len(b) > 0 {
		kg, k := binary.Uvarint(b)
		if k <= 0 {
			return fmt.Errorf("%s: corrupt", cacheFileName)
		}
		b = b[k:]
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return fmt.Errorf("%s: corrupt", cacheFileName)
		}
		frame := b[k : k+int(n)]
		b = b[k+int(n):]
		if int(kg) < lo || int(kg) >= hi {
			continue
		}
		st, recs, err := splitFrame(frame)
		if err != nil || len(st) != 0 {
			return fmt.Errorf("%s: key group %d: corrupt frame", cacheFileName, kg)
		}
		into[int(kg)] = append(into[int(kg)], recs...)
	}
	return nil
}

func writeSnapshot(ctx context.Context, p state.PendingSnapshot, id uint64, wm int64, cached map[int][]byte) (arrowexec.SubtaskSnapshot, error) {
	dir, err := os.MkdirTemp("", "riffle-window-snap-")
	if err != nil {
		p.Discard()
		return arrowexec.SubtaskSnapshot{}, fmt.Errorf("windows: snapshot: %w", err)
	}
	defer os.RemoveAll(dir)
	m, err := p.Write(ctx, dir)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, fmt.Errorf("windows: snapshot %d: %w", id, err)
	}
	snap := arrowexec.SubtaskSnapshot{KeyGroups: map[int][]byte{}}
	for _, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			return snap, fmt.Errorf("windows: snapshot %d: %w", id, err)
		}
		snap.KeyGroups[f.KeyGroup] = data
	}
	raw, err := os.ReadFile(filepath.Join(dir, state.ManifestName))
	if err != nil {
		return snap, fmt.Errorf("windows: snapshot %d: %w", id, err)
	}
	if cached != nil {
		for kg, data := range snap.KeyGroups {
			snap.KeyGroups[kg] = appendFrame(cached[kg], data)
		}
		for kg, recs := range cached {
			if _, ok := snap.KeyGroups[kg]; !ok {
				snap.KeyGroups[kg] = appendFrame(recs, nil)
			}
		}
	}
	snap.Operator, err = json.Marshal(opSnapshot{Manifest: raw, Watermark: wm, Cached: cached != nil})
	return snap, err
}

func (o *operator) restore(ctx context.Context, rs *arrowexec.RestoreState) error {
	wm, cached, err := restoreStore(ctx, o.store, rs)
	if err != nil {
		return err
	}
	o.wm = wm
	o.stateMaybe = true
	// Cached windows first: they are newer than the store's versions,
	// which rebuildTimers then skips.
	for _, recs := range cached {
		var derr error
		err := eachRecord(recs, func(ck, blob []byte) {
			if derr != nil {
				return
			}
			derr = o.win.restoreCached(ck, blob)
		})
		if err == nil {
			err = derr
		}
		if err != nil {
			return fmt.Errorf("windows: restore: %w", err)
		}
	}
	return o.win.rebuildTimers()
}

// schedule adds the timer of a restored window: fire if pending, else
// purge.
func (o *operator) schedule(e *cached) {
	end := e.start() + o.p.size
	if e.blob[0]&flagPending != 0 {
		o.addFixed(end-1, e, false)
	} else {
		o.addFixed(end-1+o.p.lateness, e, true)
	}
}

// restoreStore restores the key groups a store owns from the snapshots of
// snapshotStore and returns the largest watermark they recorded and the
// cached window records by key group (framed snapshots).
func restoreStore(ctx context.Context, store state.Store, rs *arrowexec.RestoreState) (int64, map[int][]byte, error) {
	root, err := os.MkdirTemp("", "riffle-window-restore-")
	if err != nil {
		return 0, nil, fmt.Errorf("windows: restore: %w", err)
	}
	defer os.RemoveAll(root)
	snaps := make([]*opSnapshot, len(rs.Operator))
	framed := false
	for i, blob := range rs.Operator {
		if len(blob) == 0 {
			continue
		}
		var s opSnapshot
		if err := json.Unmarshal(blob, &s); err != nil {
			return 0, nil, fmt.Errorf("windows: restore: subtask %d: %w", i, err)
		}
		snaps[i] = &s
		framed = framed || s.Cached
	}
	files := false
	for _, sp := range snaps {
		files = files || (sp != nil && sp.Files)
	}
	if files {
		return restoreFiles(ctx, store, rs, snaps)
	}
	kgs := rs.KeyGroups
	var cached map[int][]byte
	if framed {
		kgs, cached = map[int][]byte{}, map[int][]byte{}
		for kg, b := range rs.KeyGroups {
			st, recs, err := splitFrame(b)
			if err != nil {
				return 0, nil, fmt.Errorf("windows: restore: key group %d: %w", kg, err)
			}
			if len(st) > 0 {
				kgs[kg] = st
			}
			if len(recs) > 0 {
				cached[kg] = recs
			}
		}
	}
	var dirs []string
	wm := rs.Watermark
	for i, sp := range snaps {
		if sp == nil {
			continue
		}
		s := *sp
		m, err := decodeManifest(s.Manifest)
		if err != nil {
			return 0, nil, fmt.Errorf("windows: restore: subtask %d: %w", i, err)
		}
		dir := filepath.Join(root, fmt.Sprint(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, state.ManifestName), s.Manifest, 0o644); err != nil {
			return 0, nil, err
		}
		for _, f := range m.Files {
			if data, ok := kgs[f.KeyGroup]; ok {
				if err := os.WriteFile(filepath.Join(dir, f.Name), data, 0o644); err != nil {
					return 0, nil, err
				}
			}
		}
		dirs = append(dirs, dir)
		if s.Watermark > wm {
			wm = s.Watermark
		}
	}
	if len(dirs) > 0 {
		lo, hi := store.KeyGroupRange()
		if err := state.Restore(ctx, store, dirs, lo, hi); err != nil {
			return 0, nil, fmt.Errorf("windows: restore: %w", err)
		}
	}
	return wm, cached, nil
}

// restoreFiles restores a files-mode snapshot: the store from every
// previous subtask's directory (each holds its key groups), and the cached
// records of the key groups the store owns.
func restoreFiles(ctx context.Context, store state.Store, rs *arrowexec.RestoreState, snaps []*opSnapshot) (int64, map[int][]byte, error) {
	wm := rs.Watermark
	for i, sp := range snaps {
		if sp == nil || !sp.Files {
			return 0, nil, fmt.Errorf("windows: restore: subtask %d of checkpoint %d wrote no snapshot files", i, rs.CheckpointID)
		}
		wm = max(wm, sp.Watermark)
	}
	if len(rs.Dirs) != len(snaps) {
		return 0, nil, fmt.Errorf("windows: restore: checkpoint %d has %d snapshot directories for %d subtasks", rs.CheckpointID, len(rs.Dirs), len(snaps))
	}
	lo, hi := store.KeyGroupRange()
	if err := state.Restore(ctx, store, rs.Dirs, lo, hi); err != nil {
		return 0, nil, fmt.Errorf("windows: restore: %w", err)
	}
	cached := map[int][]byte{}
	for _, dir := range rs.Dirs {
		if err := readCacheFile(dir, lo, hi, cached); err != nil {
			return 0, nil, fmt.Errorf("windows: restore: %s: %w", dir, err)
		}
	}
	return wm, cached, nil
}

func decodeManifest(raw []byte) (state.Manifest, error) {
	var m state.Manifest
	if len(raw) < 4 {
		return m, fmt.Errorf("short manifest")
	}
	return m, json.Unmarshal(raw[4:], &m)
}
