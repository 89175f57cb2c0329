package checkpoint

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// File is an open checkpoint file.
type File interface {
	io.Reader
	io.Writer
	io.Closer
	// Sync commits the file's contents to stable storage. It also works on
	// a file opened for reading (the coordinator fsyncs files operators
	// wrote while it checksums them).
	Sync() error
}

// FS is the file system checkpoints are written to and loaded from. It is
// deliberately small so tests can inject faults (ErrorFS).
type FS interface {
	// Create creates or truncates the named file for writing.
	Create(name string) (File, error)
	// Open opens the named file for reading.
	Open(name string) (File, error)
	// Rename atomically renames oldname to newname (files or directories).
	Rename(oldname, newname string) error
	// Remove removes the named file or empty directory.
	Remove(name string) error
	// RemoveAll removes path and everything under it; a missing path is
	// not an error.
	RemoveAll(path string) error
	// MkdirAll creates dir and any missing parents.
	MkdirAll(dir string, perm os.FileMode) error
	// ReadDir lists dir, sorted by name.
	ReadDir(dir string) ([]fs.DirEntry, error)
	// Stat describes the named file.
	Stat(name string) (fs.FileInfo, error)
	// SyncDir commits the directory entries of dir (after creates and
	// renames).
	SyncDir(dir string) error
}

// OSFS is the FS of the operating system.
var OSFS FS = osFS{}

type osFS struct{}

func (osFS) Create(name string) (File, error)            { return os.Create(name) }
func (osFS) Open(name string) (File, error)              { return os.Open(name) }
func (osFS) Rename(o, n string) error                    { return os.Rename(o, n) }
func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) RemoveAll(path string) error                 { return os.RemoveAll(path) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) ReadDir(dir string) ([]fs.DirEntry, error)   { return os.ReadDir(dir) }
func (osFS) Stat(name string) (fs.FileInfo, error)       { return os.Stat(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Op names an FS operation for ErrorFS.
type Op int

// FS operations ErrorFS can fail.
const (
	OpCreate Op = iota
	OpOpen
	OpWrite
	OpRead
	OpSync
	OpClose
	OpRename
	OpRemove
	OpMkdirAll
	OpReadDir
	OpStat
	OpSyncDir
)

var opNames = [...]string{"create", "open", "write", "read", "sync", "close", "rename", "remove", "mkdirall", "readdir", "stat", "syncdir"}

func (o Op) String() string {
	if int(o) >= 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return "op?"
}

// ErrDiskFull is what tests inject for a full disk (it wraps ENOSPC).
var ErrDiskFull error = &os.PathError{Op: "write", Path: "(injected)", Err: syscall.ENOSPC}

// ErrorFS wraps an FS and fails operations chosen by Inject: for every
// operation, Inject(op, path) is called and a non-nil result is returned
// instead of performing it. A failed write writes nothing; RemoveAll is
// checked as OpRemove. Safe for concurrent use if Inject is.
type ErrorFS struct {
	FS     FS
	Inject func(op Op, path string) error
}

var _ FS = (*ErrorFS)(nil)

// InjectAfter returns an Inject function that fails the n-th (0-based) and
// the following `times` operations op whose path matches (a
// filepath.Match pattern against the base name; "" matches all) with err.
// times < 0 fails every later matching operation.
func InjectAfter(op Op, pattern string, n, times int, err error) func(Op, string) error {
	var mu sync.Mutex
	count := 0
	return func(o Op, path string) error {
		if o != op {
			return nil
		}
		if pattern != "" {
			if ok, _ := filepath.Match(pattern, filepath.Base(path)); !ok {
				return nil
			}
		}
		mu.Lock()
		defer mu.Unlock()
		count++
		if count > n && (times < 0 || count <= n+times) {
			return err
		}
		return nil
	}
}

func (e *ErrorFS) inject(op Op, path string) error {
	if e.Inject == nil {
		return nil
	}
	return e.Inject(op, path)
}

func (e *ErrorFS) base() FS {
	if e.FS == nil {
		return OSFS
	}
	return e.FS
}

func (e *ErrorFS) Create(name string) (File, error) {
	if err := e.inject(OpCreate, name); err != nil {
		return nil, err
	}
	f, err := e.base().Create(name)
	if err != nil {
		return nil, err
	}
	return &errorFile{File: f, fs: e, name: name}, nil
}

func (e *ErrorFS) Open(name string) (File, error) {
	if err := e.inject(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := e.base().Open(name)
	if err != nil {
		return nil, err
	}
	return &errorFile{File: f, fs: e, name: name}, nil
}

func (e *ErrorFS) Rename(o, n string) error {
	if err := e.inject(OpRename, o); err != nil {
		return err
	}
	return e.base().Rename(o, n)
}

func (e *ErrorFS) Remove(name string) error {
	if err := e.inject(OpRemove, name); err != nil {
		return err
	}
	return e.base().Remove(name)
}

func (e *ErrorFS) RemoveAll(path string) error {
	if err := e.inject(OpRemove, path); err != nil {
		return err
	}
	return e.base().RemoveAll(path)
}

func (e *ErrorFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := e.inject(OpMkdirAll, dir); err != nil {
		return err
	}
	return e.base().MkdirAll(dir, perm)
}

func (e *ErrorFS) ReadDir(dir string) ([]fs.DirEntry, error) {
	if err := e.inject(OpReadDir, dir); err != nil {
		return nil, err
	}
	return e.base().ReadDir(dir)
}

func (e *ErrorFS) Stat(name string) (fs.FileInfo, error) {
	if err := e.inject(OpStat, name); err != nil {
		return nil, err
	}
	return e.base().Stat(name)
}

func (e *ErrorFS) SyncDir(dir string) error {
	if err := e.inject(OpSyncDir, dir); err != nil {
		return err
	}
	return e.base().SyncDir(dir)
}

type errorFile struct {
	File
	fs   *ErrorFS
	name string
}

func (f *errorFile) Write(p []byte) (int, error) {
	if err := f.fs.inject(OpWrite, f.name); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *errorFile) Read(p []byte) (int, error) {
	if err := f.fs.inject(OpRead, f.name); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}

func (f *errorFile) Sync() error {
	if err := f.fs.inject(OpSync, f.name); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *errorFile) Close() error {
	err := f.File.Close()
	if ierr := f.fs.inject(OpClose, f.name); ierr != nil && err == nil {
		err = ierr
	}
	return err
}

// IsNotExist reports a missing file across FS implementations.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
