package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
)

// Checkpoint is a complete checkpoint (or savepoint) loaded from disk and
// verified: its manifest and every file's size and CRC-32C. It holds the
// in-memory snapshots (operator state, key group blobs); files operators
// wrote themselves stay on disk and are found through RestoreState.Dirs.
type Checkpoint struct {
	// Path is the checkpoint's directory.
	Path     string
	Manifest Manifest
	subs     map[subKey]*loadedSubtask
}

type subKey struct {
	node    string
	subtask int
}

type loadedSubtask struct {
	operator  []byte
	keyGroups map[int][]byte
}

// ID returns the checkpoint id.
func (c *Checkpoint) ID() uint64 { return c.Manifest.CheckpointID }

// Load reads and verifies the checkpoint in dir from the OS file system.
func Load(dir string) (*Checkpoint, error) { return LoadFS(OSFS, dir) }

// LoadFS reads and verifies the checkpoint in dir: the manifest's checksum
// and every listed file's size and CRC-32C. A failure wraps ErrCorrupt
// (IsCorruption) or ErrIncompatible and names the file.
func LoadFS(fsys FS, dir string) (*Checkpoint, error) { return load(fsys, dir, true) }

// load reads and verifies the checkpoint in dir; with keep, it keeps the
// in-memory snapshots (operator state, key group blobs) for RestoreState.
func load(fsys FS, dir string, keep bool) (*Checkpoint, error) {
	if fsys == nil {
		fsys = OSFS
	}
	mname := filepath.Join(dir, ManifestName)
	data, err := readAll(fsys, mname)
	if err != nil {
		if isNotExist(err) {
			return nil, corrupt(mname, "missing")
		}
		return nil, fmt.Errorf("checkpoint: read %s: %w", mname, err)
	}
	m, err := decodeManifest(mname, data)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Path: dir, Manifest: *m, subs: map[subKey]*loadedSubtask{}}
	buf := make([]byte, 256<<10)
	for _, nm := range m.Nodes {
		for _, sm := range nm.Subtasks {
			ls := &loadedSubtask{}
			for _, f := range sm.Files {
				name := filepath.Join(dir, filepath.FromSlash(sm.Dir), filepath.FromSlash(f.Name))
				isOp, isKG := f.Name == sm.Operator, f.Name == KeyGroupFileName && len(sm.KeyGroups) > 0
				content, size, crc, err := checksumFile(fsys, name, keep && (isOp || isKG), false, buf)
				if err != nil {
					if isNotExist(err) {
						return nil, corrupt(name, "missing")
					}
					return nil, fmt.Errorf("checkpoint: read %s: %w", name, err)
				}
				if size != f.Size {
					return nil, corrupt(name, "size %d, manifest says %d", size, f.Size)
				}
				if crc != f.CRC32C {
					return nil, corrupt(name, "checksum mismatch")
				}
				if !keep {
					continue
				}
				if isOp {
					ls.operator = content
				}
				if isKG {
					ls.keyGroups = splitKeyGroups(content, sm.KeyGroups)
				}
			}
			c.subs[subKey{nm.Name, sm.Subtask}] = ls
		}
	}
	return c, nil
}

// splitKeyGroups cuts the key group blobs out of the content of a key
// group file. The manifest's check guarantees every blob lies within the
// file's listed size, and the caller verified content has that size.
func splitKeyGroups(content []byte, kgs []KeyGroupBlob) map[int][]byte {
	out := make(map[int][]byte, len(kgs))
	for _, kg := range kgs {
		out[kg.KeyGroup] = content[kg.Offset : kg.Offset+kg.Size : kg.Offset+kg.Size]
	}
	return out
}

// checksumFile reads name and returns its size and CRC-32C, and its
// content when keep is set. With sync, the file is also fsynced.
func checksumFile(fsys FS, name string, keep, sync bool, buf []byte) ([]byte, int64, uint32, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	h := crc32.New(castagnoli)
	var w io.Writer = h
	var content bytes.Buffer
	if keep {
		w = io.MultiWriter(h, &content)
	}
	n, err := io.CopyBuffer(w, f, buf)
	if err != nil {
		return nil, 0, 0, err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return nil, 0, 0, fmt.Errorf("fsync: %w", err)
		}
	}
	return content.Bytes(), n, h.Sum32(), nil
}

func readAll(fsys FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	_, err = io.Copy(&b, f)
	return b.Bytes(), err
}

// Latest returns the newest complete checkpoint in dir (OS file system,
// slog.Default for the log). See LatestFS.
func Latest(dir string) (*Checkpoint, error) { return LatestFS(OSFS, nil, dir) }

// LatestFS returns the newest complete checkpoint under dir whose manifest
// and every file verify. A checkpoint that does not (truncated, corrupt,
// missing file, unparsable manifest) is skipped with a warning naming it and
// the reason, and the next older one is tried; when an older one is used, a
// second warning says which checkpoints were passed over ("checkpoint:
// falling back to an older checkpoint"). It returns ErrNoCheckpoint when
// dir holds no complete checkpoint, and an error wrapping both
// ErrNoCheckpoint and ErrUnusableCheckpoints, naming every checkpoint and
// why it is unusable, when it holds some but none verifies. In-progress
// directories are never considered.
func LatestFS(fsys FS, log *slog.Logger, dir string) (*Checkpoint, error) {
	if fsys == nil {
		fsys = OSFS
	}
	if log == nil {
		log = slog.Default()
	}
	ids, err := completeIDs(fsys, dir)
	if err != nil {
		return nil, err
	}
	var skipped []error
	for i := len(ids) - 1; i >= 0; i-- {
		p := filepath.Join(dir, checkpointDirName(ids[i]))
		c, err := loadID(fsys, p, ids[i], true)
		if err == nil {
			if len(skipped) > 0 {
				log.Warn("checkpoint: falling back to an older checkpoint; the newer ones are unusable and stay in place for inspection",
					"checkpoint", p, "skipped", len(skipped), "reasons", errors.Join(skipped...).Error())
			}
			return c, nil
		}
		log.Warn("checkpoint: skipping unusable checkpoint", "checkpoint", p, "reason", err)
		skipped = append(skipped, fmt.Errorf("%s: %w", p, err))
	}
	if len(skipped) > 0 {
		return nil, &unusableError{dir: dir, reasons: skipped}
	}
	return nil, fmt.Errorf("%w in %s", ErrNoCheckpoint, dir)
}

// loadID is load of the complete checkpoint directory chk-<id>, whose
// manifest must hold checkpoint id.
func loadID(fsys FS, dir string, id uint64, keep bool) (*Checkpoint, error) {
	c, err := load(fsys, dir, keep)
	if err == nil && c.Manifest.CheckpointID != id {
		return nil, corrupt(filepath.Join(dir, ManifestName), "holds checkpoint %d", c.Manifest.CheckpointID)
	}
	return c, err
}

// unusableError is LatestFS's error when every checkpoint is unusable.
type unusableError struct {
	dir     string
	reasons []error // one per checkpoint, newest first, naming it
}

func (e *unusableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "checkpoint: none of the %d checkpoints in %s is usable", len(e.reasons), e.dir)
	for _, r := range e.reasons {
		b.WriteString("; ")
		b.WriteString(r.Error())
	}
	return b.String()
}

func (e *unusableError) Is(target error) bool {
	return target == ErrNoCheckpoint || target == ErrUnusableCheckpoints
}

func (e *unusableError) Unwrap() []error { return e.reasons }

// completeIDs lists the ids of the complete checkpoint directories
// ("chk-<id>") under dir, ascending. A missing dir has none.
func completeIDs(fsys FS, dir string) ([]uint64, error) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("checkpoint: list %s: %w", dir, err)
	}
	var ids []uint64
	for _, e := range ents {
		if id, inProgress, ok := parseCheckpointDirName(e.Name()); ok && !inProgress && e.IsDir() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Info is one entry of List.
type Info struct {
	ID   uint64
	Path string
	// InProgress marks a staging directory: a checkpoint being written, or
	// left by a crash (never restored from; removed at the next start).
	InProgress bool
	// From the manifest (zero when InProgress or Err is set).
	Time      time.Time
	Savepoint bool
	Bytes     int64
	Watermark int64
	// Err is set when the checkpoint fails verification (as Load verifies:
	// the manifest, and every file's size and CRC-32C); it names the file
	// and the reason.
	Err error
}

// List lists the checkpoint directories under dir, oldest first, and
// verifies every complete one. See ListFS.
func List(dir string) ([]Info, error) { return ListFS(OSFS, dir) }

// ListFS lists the checkpoint directories under dir, oldest first, and
// verifies each complete one like Load (the manifest, and every file's size
// and CRC-32C; reading all of it): Info.Err says why one is unusable. When
// dir is itself a checkpoint or savepoint (it holds a MANIFEST, or is named
// chk-<id>), the list is that one checkpoint.
func ListFS(fsys FS, dir string) ([]Info, error) {
	if fsys == nil {
		fsys = OSFS
	}
	id, inProgress, named := parseCheckpointDirName(filepath.Base(dir))
	if _, err := fsys.Stat(filepath.Join(dir, ManifestName)); err == nil || (named && !inProgress) {
		inf := Info{ID: id, Path: dir}
		verifyInto(fsys, &inf, named)
		return []Info{inf}, nil
	}
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: list %s: %w", dir, err)
	}
	var out []Info
	for _, e := range ents {
		id, inProgress, ok := parseCheckpointDirName(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		inf := Info{ID: id, Path: filepath.Join(dir, e.Name()), InProgress: inProgress}
		if !inProgress {
			verifyInto(fsys, &inf, true)
		}
		out = append(out, inf)
	}
	slices.SortFunc(out, func(a, b Info) int {
		if a.ID != b.ID {
			if a.ID < b.ID {
				return -1
			}
			return 1
		}
		if a.InProgress == b.InProgress {
			return 0
		}
		if a.InProgress {
			return 1
		}
		return -1
	})
	return out, nil
}

// verifyInto verifies the checkpoint in inf.Path and fills inf from its
// manifest, or sets inf.Err. With checkID, the manifest's id must be
// inf.ID (the id of its chk-<id> directory); without, inf.ID is taken from
// the manifest.
func verifyInto(fsys FS, inf *Info, checkID bool) {
	var c *Checkpoint
	var err error
	if checkID {
		c, err = loadID(fsys, inf.Path, inf.ID, false)
	} else {
		c, err = load(fsys, inf.Path, false)
	}
	if err != nil {
		inf.Err = err
		if !checkID {
			// Show the id of a corrupt savepoint when its manifest is fine.
			mname := filepath.Join(inf.Path, ManifestName)
			if data, rerr := readAll(fsys, mname); rerr == nil {
				if m, merr := decodeManifest(mname, data); merr == nil {
					inf.ID = m.CheckpointID
				}
			}
		}
		return
	}
	m := &c.Manifest
	inf.ID, inf.Time, inf.Savepoint, inf.Bytes, inf.Watermark = m.CheckpointID, m.Time, m.Savepoint, m.Bytes(), m.Watermark
}

// RestoreState returns what subtask `subtask` of node restores from when
// the node now runs with parallelism subtasks: the operator state of every
// previous subtask, the key groups it owns now (whoever held them), the
// snapshot directories of every previous subtask that wrote files, and the
// checkpoint's watermark. It returns nil for a node the checkpoint does not
// know (a fresh start for that node).
func (c *Checkpoint) RestoreState(node string, subtask, parallelism int) *arrowexec.RestoreState {
	nm := c.Manifest.Node(node)
	if nm == nil {
		return nil
	}
	rs := &arrowexec.RestoreState{
		CheckpointID: c.Manifest.CheckpointID,
		Operator:     make([][]byte, nm.Parallelism),
		Watermark:    c.Manifest.Watermark,
	}
	lo, hi := arrowexec.KeyGroupRange(c.Manifest.MaxParallelism, parallelism, subtask)
	for _, sm := range nm.Subtasks {
		ls := c.subs[subKey{node, sm.Subtask}]
		if ls != nil {
			rs.Operator[sm.Subtask] = ls.operator
			for kg, b := range ls.keyGroups {
				if kg >= lo && kg < hi {
					if rs.KeyGroups == nil {
						rs.KeyGroups = map[int][]byte{}
					}
					rs.KeyGroups[kg] = b
				}
			}
		}
		if sm.SnapshotFiles {
			rs.Dirs = append(rs.Dirs, filepath.Join(c.Path, filepath.FromSlash(sm.Dir)))
		}
	}
	return rs
}

// FileCount returns the number of files of the checkpoint (without the
// MANIFEST).
func (m *Manifest) FileCount() int {
	n := 0
	for _, nm := range m.Nodes {
		for _, sm := range nm.Subtasks {
			n += len(sm.Files)
		}
	}
	return n
}

// checkRestorable reports why c cannot be restored into a job with
// fingerprint fp and maxParallelism maxPar.
func (c *Checkpoint) checkRestorable(fp string, maxPar int) error {
	if c.Manifest.JobFingerprint != fp {
		return fmt.Errorf("%w: %s was written by job %q, this job is %q; refusing to restore it into a different job",
			ErrFingerprintMismatch, c.Path, c.Manifest.JobFingerprint, fp)
	}
	if c.Manifest.MaxParallelism != maxPar {
		return fmt.Errorf("%w: %s has MaxParallelism %d, the job has %d (key groups cannot be remapped)",
			ErrIncompatible, c.Path, c.Manifest.MaxParallelism, maxPar)
	}
	return nil
}

// walkFiles calls fn for every regular file under dir (recursively), with
// its path relative to dir using '/' separators, in lexical order.
func walkFiles(fsys FS, dir, rel string, fn func(rel string) error) error {
	ents, err := fsys.ReadDir(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	for _, e := range ents {
		r := path.Join(rel, e.Name())
		if e.IsDir() {
			if err := walkFiles(fsys, dir, r, fn); err != nil {
				return err
			}
			continue
		}
		if !e.Type().IsRegular() {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}
