package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
)

// Snapshot directory layout: one data file per non-empty key group and a
// MANIFEST written last.
//
// Data file ("kg-00042.state"):
//
//	magic "RFS1" | key group (uint16 BE)
//	records: uvarint(len k) | k | uvarint(len v) | v      (k, v as stored)
//	footer:  entries (uint64 LE) | CRC-32C of everything before (uint32 LE) | magic "RFS1"
//
// MANIFEST: CRC-32C of the JSON (uint32 LE) | JSON of Manifest. The
// manifest also holds each data file's size and whole-file CRC-32C, which is
// what Restore verifies.
const (
	ManifestName  = "MANIFEST"
	formatVersion = 1
	fileMagic     = "RFS1"
	headerLen     = 6
	footerLen     = 16
)

// KeyGroupFileName is the name of the data file of key group kg.
func KeyGroupFileName(kg int) string { return fmt.Sprintf("kg-%05d.state", kg) }

type pendingSnapshot struct {
	snap   engineSnapshot
	states map[uint32]StateInfo
	now    int64
	fs     FS
	mp     int
	lo, hi int
	done   bool
	// release tells the store the snapshot no longer reads its engine.
	release func()
}

func (s *store) BeginSnapshot(ctx context.Context) (PendingSnapshot, error) {
	if s.closed {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	snap, err := s.eng.snapshot()
	if err != nil {
		return nil, fmt.Errorf("state: snapshot of store %s: %w", s.so.Name, err)
	}
	s.beginPending()
	return &pendingSnapshot{
		snap: snap, states: s.stateMap(), now: s.now(), fs: s.opts.FS,
		mp: s.so.MaxParallelism, lo: s.lo, hi: s.hi, release: s.endPending,
	}, nil
}

func (s *store) Snapshot(ctx context.Context, dir string) (Manifest, error) {
	p, err := s.BeginSnapshot(ctx)
	if err != nil {
		return Manifest{}, err
	}
	return p.Write(ctx, dir)
}

func (p *pendingSnapshot) Discard() {
	if !p.done {
		p.done = true
		p.snap.close()
		p.release()
	}
}

func (p *pendingSnapshot) Write(ctx context.Context, dir string) (m Manifest, err error) {
	if p.done {
		return Manifest{}, ErrSnapshotDone
	}
	p.done = true
	defer p.release()
	defer p.snap.close()
	if err := p.fs.MkdirAll(dir, 0o755); err != nil {
		return Manifest{}, fmt.Errorf("state: snapshot %s: %w", dir, err)
	}
	if f, err := p.fs.Open(filepath.Join(dir, ManifestName)); err == nil {
		f.Close()
		return Manifest{}, fmt.Errorf("state: snapshot %s: directory already holds a snapshot", dir)
	}
	m = Manifest{Version: formatVersion, MaxParallelism: p.mp, KeyGroupLo: p.lo, KeyGroupHi: p.hi}
	for _, info := range p.states {
		m.States = append(m.States, info)
	}
	sortStates(m.States)
	var written []string
	defer func() {
		if err != nil { // best effort: leave no half snapshot behind
			for _, name := range written {
				_ = p.fs.Remove(filepath.Join(dir, name))
			}
		}
	}()
	var buf, scratch []byte
	for kg := p.lo; kg < p.hi; kg++ {
		if err := ctx.Err(); err != nil {
			return Manifest{}, err
		}
		var entries int64
		buf, entries, err = encodeKeyGroup(buf[:0], p.snap, kg, p.states, p.now, &scratch)
		if err != nil {
			return Manifest{}, fmt.Errorf("state: snapshot %s: key group %d: %w", dir, kg, err)
		}
		if entries == 0 {
			continue
		}
		name := KeyGroupFileName(kg)
		if err := writeFileAtomic(p.fs, dir, name, buf); err != nil {
			return Manifest{}, err
		}
		written = append(written, name)
		m.Files = append(m.Files, FileInfo{
			Name: name, KeyGroup: kg, Entries: entries,
			Bytes: int64(len(buf)), CRC32C: crc32.Checksum(buf, castagnoli),
		})
	}
	js, err := json.Marshal(&m)
	if err != nil {
		return Manifest{}, fmt.Errorf("state: snapshot %s: %w", dir, err)
	}
	mbuf := binary.LittleEndian.AppendUint32(nil, crc32.Checksum(js, castagnoli))
	mbuf = append(mbuf, js...)
	if err := writeFileAtomic(p.fs, dir, ManifestName, mbuf); err != nil {
		return Manifest{}, err
	}
	written = append(written, ManifestName)
	if err := p.fs.SyncDir(dir); err != nil {
		return Manifest{}, fmt.Errorf("state: snapshot %s: sync directory: %w", dir, err)
	}
	return m, nil
}

// encodeKeyGroup appends the data file of key group kg to dst, skipping
// expired data. It returns the number of entries.
func encodeKeyGroup(dst []byte, snap engineSnapshot, kg int, states map[uint32]StateInfo, now int64, scratch *[]byte) ([]byte, int64, error) {
	dst = append(dst, fileMagic...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(kg))
	var entries int64
	err := snap.scan(kgBound(kg), kgBound(kg+1), func(k, v []byte) (bool, error) {
		if len(k) >= prefixLen {
			if info, ok := states[binary.BigEndian.Uint32(k[2:])]; ok {
				live, _, err := liveBytes(info, v, now, scratch)
				if err != nil {
					return false, fmt.Errorf("state %s: %w", info.Name, err)
				}
				if live == nil {
					return true, nil
				}
				v = live
			}
		}
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
		entries++
		return true, nil
	})
	if err != nil {
		return dst, 0, err
	}
	dst = binary.LittleEndian.AppendUint64(dst, uint64(entries))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst, castagnoli))
	dst = append(dst, fileMagic...)
	return dst, entries, nil
}

// decodeKeyGroup checks the framing of a data file of key group kg and
// calls fn for every record.
func decodeKeyGroup(name string, data []byte, kg int, fn func(k, v []byte) error) (int64, error) {
	if len(data) < headerLen+footerLen || string(data[:4]) != fileMagic || string(data[len(data)-4:]) != fileMagic {
		return 0, corrupt(name, "bad magic or truncated")
	}
	if got := int(binary.BigEndian.Uint16(data[4:])); got != kg {
		return 0, corrupt(name, "holds key group %d, want %d", got, kg)
	}
	foot := data[len(data)-footerLen:]
	body := data[:len(data)-footerLen+8]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(foot[8:]) {
		return 0, corrupt(name, "checksum mismatch")
	}
	want := int64(binary.LittleEndian.Uint64(foot))
	recs := data[headerLen : len(data)-footerLen]
	var n int64
	var prev []byte
	for len(recs) > 0 {
		kl, w := binary.Uvarint(recs)
		if w <= 0 || uint64(len(recs)-w) < kl {
			return n, corrupt(name, "malformed record %d", n)
		}
		k := recs[w : w+int(kl)]
		recs = recs[w+int(kl):]
		vl, w := binary.Uvarint(recs)
		if w <= 0 || uint64(len(recs)-w) < vl {
			return n, corrupt(name, "malformed record %d", n)
		}
		v := recs[w : w+int(vl)]
		recs = recs[w+int(vl):]
		if len(k) < prefixLen || int(binary.BigEndian.Uint16(k)) != kg {
			return n, corrupt(name, "record %d outside key group %d", n, kg)
		}
		// Snapshots are written in key order, one record per key; both
		// backends load them that way (Pebble's bulk load requires it).
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return n, corrupt(name, "record %d out of key order", n)
		}
		prev = k
		if err := fn(k, v); err != nil {
			return n, err
		}
		n++
	}
	if n != want {
		return n, corrupt(name, "%d records, footer says %d", n, want)
	}
	return n, nil
}

func writeFileAtomic(fs FS, dir, name string, data []byte) error {
	final := filepath.Join(dir, name)
	tmp := final + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("state: write %s: %w", final, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, final)
	}
	if err != nil {
		_ = fs.Remove(tmp)
		return fmt.Errorf("state: write %s: %w", final, err)
	}
	return nil
}

func readFile(fs FS, name string) ([]byte, error) { return readFileInto(fs, name, nil) }

// readFileInto reads the whole file, appending to buf.
func readFileInto(fs FS, name string, buf []byte) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := bytes.NewBuffer(buf)
	_, err = io.Copy(b, f)
	return b.Bytes(), err
}

// ReadManifest reads and verifies the MANIFEST of a snapshot directory.
func ReadManifest(fs FS, dir string) (Manifest, error) {
	if fs == nil {
		fs = OSFS
	}
	name := filepath.Join(dir, ManifestName)
	data, err := readFile(fs, name)
	if err != nil {
		if isNotExist(err) {
			return Manifest{}, fmt.Errorf("%w: %s", ErrNoManifest, dir)
		}
		return Manifest{}, fmt.Errorf("state: read %s: %w", name, err)
	}
	return decodeManifest(name, data)
}

// decodeManifest verifies and parses the bytes of a snapshot MANIFEST;
// name is used in errors.
func decodeManifest(name string, data []byte) (Manifest, error) {
	if len(data) < 4 {
		return Manifest{}, corrupt(name, "truncated")
	}
	if crc32.Checksum(data[4:], castagnoli) != binary.LittleEndian.Uint32(data) {
		return Manifest{}, corrupt(name, "checksum mismatch")
	}
	var m Manifest
	if err := json.Unmarshal(data[4:], &m); err != nil {
		return Manifest{}, corrupt(name, "%v", err)
	}
	if m.Version != formatVersion {
		return Manifest{}, fmt.Errorf("%w: %s: format version %d, want %d", ErrIncompatibleSnapshot, name, m.Version, formatVersion)
	}
	if err := m.check(); err != nil {
		return Manifest{}, corrupt(name, "%v", err)
	}
	return m, nil
}

// check verifies a decoded manifest's internal consistency: what Restore
// relies on (file names are the key group files of key groups the
// snapshot covers, once each; nothing outside the directory is named).
func (m *Manifest) check() error {
	if m.MaxParallelism < 1 || m.MaxParallelism > 1<<16 {
		return fmt.Errorf("max_parallelism %d", m.MaxParallelism)
	}
	if m.KeyGroupLo < 0 || m.KeyGroupLo > m.KeyGroupHi || m.KeyGroupHi > m.MaxParallelism {
		return fmt.Errorf("key groups [%d, %d) not within [0, %d)", m.KeyGroupLo, m.KeyGroupHi, m.MaxParallelism)
	}
	for _, st := range m.States {
		if st.TTL < 0 {
			return fmt.Errorf("state %q: negative ttl", st.Name)
		}
	}
	seen := make(map[int]bool, len(m.Files))
	for _, f := range m.Files {
		if f.KeyGroup < m.KeyGroupLo || f.KeyGroup >= m.KeyGroupHi || seen[f.KeyGroup] {
			return fmt.Errorf("file %q: key group %d outside [%d, %d) or listed twice", f.Name, f.KeyGroup, m.KeyGroupLo, m.KeyGroupHi)
		}
		seen[f.KeyGroup] = true
		if f.Name != KeyGroupFileName(f.KeyGroup) || f.Bytes < 0 || f.Entries < 0 {
			return fmt.Errorf("file %q of key group %d: bad name or size", f.Name, f.KeyGroup)
		}
	}
	return nil
}

// Restore loads into s the key groups [lo, hi) from the snapshot
// directories of any number of previous subtasks (typically all subtasks of
// one checkpoint). [lo, hi) must lie within the store's key groups, and
// every key group in it must be covered by exactly one snapshot. Existing
// state of those key groups is replaced. Every file is verified against its
// manifest checksum before it is applied; on error the restored key groups
// are in an undefined state and the store should be discarded.
func Restore(ctx context.Context, s Store, dirs []string, lo, hi int) error {
	st := s.base()
	if st.closed {
		return ErrClosed
	}
	if lo < st.lo || hi > st.hi || lo > hi {
		return fmt.Errorf("%w: restore key groups [%d, %d) not within the store's [%d, %d)", ErrKeyGroupOutOfRange, lo, hi, st.lo, st.hi)
	}
	ms := make([]Manifest, len(dirs))
	owner := make([]int, hi-lo)
	for i := range owner {
		owner[i] = -1
	}
	for i, dir := range dirs {
		m, err := ReadManifest(st.opts.FS, dir)
		if err != nil {
			return err
		}
		if m.MaxParallelism != st.so.MaxParallelism {
			return fmt.Errorf("%w: %s has MaxParallelism %d, store has %d", ErrIncompatibleSnapshot, dir, m.MaxParallelism, st.so.MaxParallelism)
		}
		for kg := max(lo, m.KeyGroupLo); kg < min(hi, m.KeyGroupHi); kg++ {
			if o := owner[kg-lo]; o >= 0 {
				return fmt.Errorf("%w: key group %d in both %s and %s", ErrIncompatibleSnapshot, kg, dirs[o], dir)
			}
			owner[kg-lo] = i
		}
		ms[i] = m
	}
	for kg, o := range owner {
		if o < 0 {
			return fmt.Errorf("%w: key group %d is in none of the %d snapshots", ErrIncompatibleSnapshot, kg+lo, len(dirs))
		}
	}
	for _, m := range ms {
		if err := st.addStates(m.States); err != nil {
			return err
		}
	}
	if err := st.eng.delRange(kgBound(lo), kgBound(hi)); err != nil {
		return fmt.Errorf("state: restore: clear key groups [%d, %d): %w", lo, hi, err)
	}
	states := st.stateMap()
	now := st.now()
	sink, err := newSink(st.eng)
	if err != nil {
		return fmt.Errorf("state: restore: %w", err)
	}
	defer sink.abort()
	var scratch, data []byte
	for i, m := range ms {
		for _, f := range m.Files {
			if f.KeyGroup < lo || f.KeyGroup >= hi {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			name := filepath.Join(dirs[i], f.Name)
			data, err = readFileInto(st.opts.FS, name, data[:0])
			if err != nil {
				return fmt.Errorf("state: restore %s: %w", name, err)
			}
			if int64(len(data)) != f.Bytes {
				return corrupt(name, "size %d, manifest says %d", len(data), f.Bytes)
			}
			if crc32.Checksum(data, castagnoli) != f.CRC32C {
				return corrupt(name, "checksum mismatch")
			}
			if err := loadKeyGroup(sink, name, data, f.KeyGroup, states, now, &scratch); err != nil {
				return err
			}
		}
	}
	if err := sink.finish(); err != nil {
		return fmt.Errorf("state: restore: %w", err)
	}
	return nil
}

// loadKeyGroup verifies the framing of one key group's data and adds its
// live entries to sink.
func loadKeyGroup(sink loadSink, name string, data []byte, kg int, states map[uint32]StateInfo, now int64, scratch *[]byte) error {
	_, err := decodeKeyGroup(name, data, kg, func(k, v []byte) error {
		if info, ok := states[binary.BigEndian.Uint32(k[2:])]; ok {
			live, _, err := liveBytes(info, v, now, scratch)
			if err != nil {
				return corrupt(name, "state %s: %v", info.Name, err)
			}
			if live == nil {
				return nil
			}
			v = live
		}
		return sink.add(k, v)
	})
	if err != nil {
		if IsCorruption(err) {
			return err
		}
		return fmt.Errorf("state: restore %s: %w", name, err)
	}
	return sink.endFile()
}

// loadSink receives the sorted entries of restored key groups, one file
// (key group) at a time, in increasing key order within a file. Nothing is
// visible before finish; abort after finish is a no-op.
type loadSink interface {
	add(k, v []byte) error
	endFile() error
	finish() error
	abort()
}

// bulkLoader is implemented by engines with a faster load path than
// batches (Pebble: SSTables ingested into the LSM).
type bulkLoader interface {
	newLoader() (loadSink, error)
}

func newSink(e engine) (loadSink, error) {
	if bl, ok := e.(bulkLoader); ok {
		return bl.newLoader()
	}
	return &batchSink{b: e.newBatch()}, nil
}

// batchSink loads through write batches.
type batchSink struct{ b batch }

func (s *batchSink) add(k, v []byte) error {
	if err := s.b.set(k, v); err != nil {
		return err
	}
	if s.b.size() > batchFlushBytes {
		return s.b.commit()
	}
	return nil
}

func (s *batchSink) endFile() error { return nil }
func (s *batchSink) finish() error  { return s.b.commit() }
func (s *batchSink) abort()         { s.b.close() }

func sortStates(s []StateInfo) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Name < s[j-1].Name; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
