package fsx

import (
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MemFS is an in-memory FS that knows what a crash would keep: a file's
// contents are durable as of its last File.Sync, a directory's entries
// (creates, renames, removals) as of its last SyncDir. Crash drops the
// rest, as a power failure may on a file system that orders nothing for
// the writer. Paths are slash- or OS-separated, absolute or relative to
// the same root. The zero value is an empty file system. Safe for
// concurrent use.
//
// A file renamed between directories and synced in only one of them can
// come back in both after a Crash (it is one file under two names), as
// can happen on real file systems; code that publishes by rename must
// cope with that.
type MemFS struct {
	mu   sync.Mutex
	root *memNode
}

var _ FS = (*MemFS)(nil)

type memNode struct {
	dir      bool
	kids     map[string]*memNode // directories: the entries now
	syncKids map[string]*memNode // directories: the entries at the last SyncDir
	data     []byte              // files: the contents now
	synced   []byte              // files: the contents at the last Sync
}

func newDir() *memNode {
	return &memNode{dir: true, kids: map[string]*memNode{}, syncKids: map[string]*memNode{}}
}

// NewMemFS returns an empty MemFS.
func NewMemFS() *MemFS { return &MemFS{} }

func (m *MemFS) rootNode() *memNode {
	if m.root == nil {
		m.root = newDir()
	}
	return m.root
}

// split cleans name into its components ("" for the root).
func split(name string) []string {
	p := strings.Trim(path.Clean("/"+filepath.ToSlash(name)), "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// walk returns the node at parts.
func (m *MemFS) walk(op, name string, parts []string) (*memNode, error) {
	n := m.rootNode()
	for _, p := range parts {
		if !n.dir {
			return nil, pathErr(op, name, syscall.ENOTDIR)
		}
		k, ok := n.kids[p]
		if !ok {
			return nil, pathErr(op, name, fs.ErrNotExist)
		}
		n = k
	}
	return n, nil
}

// parent returns the directory that holds name and name's base.
func (m *MemFS) parent(op, name string) (*memNode, string, error) {
	parts := split(name)
	if len(parts) == 0 {
		return nil, "", pathErr(op, name, fs.ErrInvalid)
	}
	d, err := m.walk(op, name, parts[:len(parts)-1])
	if err != nil {
		return nil, "", err
	}
	if !d.dir {
		return nil, "", pathErr(op, name, syscall.ENOTDIR)
	}
	return d, parts[len(parts)-1], nil
}

func (m *MemFS) openFile(op, name string, truncate, write, read bool) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.parent(op, name)
	if err != nil {
		return nil, err
	}
	n, ok := d.kids[base]
	switch {
	case ok && n.dir && write:
		return nil, pathErr(op, name, syscall.EISDIR)
	case !ok && !write:
		return nil, pathErr(op, name, fs.ErrNotExist)
	case !ok:
		n = &memNode{}
		d.kids[base] = n
	case truncate:
		n.data = nil
	}
	return &memFile{fs: m, n: n, name: name, write: write, read: read}, nil
}

// Create opens for reading and writing, like os.Create; Append for writing
// only.
func (m *MemFS) Create(name string) (File, error) {
	return m.openFile("create", name, true, true, true)
}
func (m *MemFS) Open(name string) (File, error) { return m.openFile("open", name, false, false, true) }
func (m *MemFS) Append(name string) (File, error) {
	return m.openFile("append", name, false, true, false)
}

func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	od, ob, err := m.parent("rename", oldname)
	if err != nil {
		return err
	}
	n, ok := od.kids[ob]
	if !ok {
		return pathErr("rename", oldname, fs.ErrNotExist)
	}
	nd, nb, err := m.parent("rename", newname)
	if err != nil {
		return err
	}
	if x, ok := nd.kids[nb]; ok && x != n {
		switch {
		case x.dir:
			// os.Rename refuses any existing directory as the new name.
			return pathErr("rename", newname, syscall.EEXIST)
		case n.dir:
			return pathErr("rename", newname, syscall.ENOTDIR)
		}
	}
	delete(od.kids, ob)
	nd.kids[nb] = n
	return nil
}

func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.parent("remove", name)
	if err != nil {
		return err
	}
	n, ok := d.kids[base]
	if !ok {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if n.dir && len(n.kids) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(d.kids, base)
	return nil
}

func (m *MemFS) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	parts := split(name)
	if len(parts) == 0 {
		clear(m.rootNode().kids)
		return nil
	}
	d, err := m.walk("removeall", name, parts[:len(parts)-1])
	if err != nil || !d.dir {
		return nil // nothing there
	}
	delete(d.kids, parts[len(parts)-1])
	return nil
}

func (m *MemFS) MkdirAll(dir string, _ os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.rootNode()
	for _, p := range split(dir) {
		k, ok := n.kids[p]
		if !ok {
			k = newDir()
			n.kids[p] = k
		} else if !k.dir {
			return pathErr("mkdir", dir, syscall.ENOTDIR)
		}
		n = k
	}
	return nil
}

func (m *MemFS) ReadDir(dir string) ([]fs.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.walk("readdir", dir, split(dir))
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, pathErr("readdir", dir, syscall.ENOTDIR)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range d.kids {
			if !yield(k) {
				return
			}
		}
	})
	out := make([]fs.DirEntry, len(names))
	for i, k := range names {
		out[i] = fs.FileInfoToDirEntry(memInfo{name: k, n: d.kids[k], size: int64(len(d.kids[k].data))})
	}
	return out, nil
}

func (m *MemFS) Stat(name string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	parts := split(name)
	n, err := m.walk("stat", name, parts)
	if err != nil {
		return nil, err
	}
	base := "/"
	if len(parts) > 0 {
		base = parts[len(parts)-1]
	}
	return memInfo{name: base, n: n, size: int64(len(n.data))}, nil
}

func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.walk("syncdir", dir, split(dir))
	if err != nil {
		return err
	}
	if !d.dir {
		return pathErr("syncdir", dir, syscall.ENOTDIR)
	}
	d.syncKids = cloneMap(d.kids)
	return nil
}

// Truncate cuts the file and makes the cut durable, like OSFS.Truncate
// (it syncs): what remains is durable as far as it was before.
func (m *MemFS) Truncate(name string, size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.walk("truncate", name, split(name))
	if err != nil {
		return err
	}
	if n.dir {
		return pathErr("truncate", name, syscall.EISDIR)
	}
	if size < 0 || size > int64(len(n.data)) {
		return pathErr("truncate", name, syscall.EINVAL)
	}
	n.data = n.data[:size:size]
	n.synced = slices.Clone(n.data)
	return nil
}

// Crash drops what was not made durable: every directory's entries go
// back to its last SyncDir, every file's contents to its last Sync. A
// directory that was never synced keeps no entries, and one whose entry
// in its parent was never synced is gone. Files still open must not be
// used afterwards.
func (m *MemFS) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[*memNode]bool{}
	var reset func(n *memNode)
	reset = func(n *memNode) {
		if seen[n] {
			return
		}
		seen[n] = true
		if !n.dir {
			n.data = slices.Clone(n.synced)
			return
		}
		n.kids = cloneMap(n.syncKids)
		for _, k := range n.kids {
			reset(k)
		}
	}
	reset(m.rootNode())
}

// Fsync makes everything durable at once, as if every file and directory
// had been synced (tests: the state before a scenario).
func (m *MemFS) Fsync() {
	m.mu.Lock()
	defer m.mu.Unlock()
	var sync func(n *memNode)
	sync = func(n *memNode) {
		if !n.dir {
			n.synced = slices.Clone(n.data)
			return
		}
		n.syncKids = cloneMap(n.kids)
		for _, k := range n.kids {
			sync(k)
		}
	}
	sync(m.rootNode())
}

func cloneMap(m map[string]*memNode) map[string]*memNode {
	out := make(map[string]*memNode, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

type memInfo struct {
	name string
	n    *memNode
	size int64
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() fs.FileMode {
	if i.n.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.n.dir }
func (i memInfo) Sys() any           { return nil }

// memFile is an open file of a MemFS. Writes append (files are written
// sequentially: Create truncates, Append keeps the contents) and move the
// offset reads start at to the end, as with a file of the OS.
type memFile struct {
	fs     *MemFS
	n      *memNode
	name   string
	write  bool
	read   bool
	pos    int
	closed bool
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	switch {
	case f.closed:
		return 0, pathErr("write", f.name, os.ErrClosed)
	case !f.write:
		return 0, pathErr("write", f.name, syscall.EBADF)
	}
	f.n.data = append(f.n.data, p...)
	f.pos = len(f.n.data)
	return len(p), nil
}

func (f *memFile) Read(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	switch {
	case f.closed:
		return 0, pathErr("read", f.name, os.ErrClosed)
	case !f.read:
		return 0, pathErr("read", f.name, syscall.EBADF)
	case f.n.dir:
		return 0, pathErr("read", f.name, syscall.EISDIR)
	case f.pos >= len(f.n.data):
		return 0, io.EOF
	}
	n := copy(p, f.n.data[f.pos:])
	f.pos += n
	return n, nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	switch {
	case f.closed:
		return 0, pathErr("read", f.name, os.ErrClosed)
	case !f.read:
		return 0, pathErr("read", f.name, syscall.EBADF)
	case f.n.dir:
		return 0, pathErr("read", f.name, syscall.EISDIR)
	case off < 0:
		return 0, pathErr("read", f.name, syscall.EINVAL)
	case off >= int64(len(f.n.data)):
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("sync", f.name, os.ErrClosed)
	}
	if f.n.dir {
		f.n.syncKids = cloneMap(f.n.kids)
	} else {
		f.n.synced = slices.Clone(f.n.data)
	}
	return nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, os.ErrClosed)
	}
	f.closed = true
	return nil
}
