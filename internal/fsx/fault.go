package fsx

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

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
	OpRemove // Remove and RemoveAll
	OpMkdirAll
	OpReadDir
	OpStat
	OpSyncDir
	OpAppend
	OpTruncate
	numOps // keep last
)

var opNames = [...]string{"create", "open", "write", "read", "sync", "close", "rename", "remove", "mkdirall", "readdir", "stat", "syncdir", "append", "truncate"}

func (o Op) String() string {
	if int(o) >= 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return "op?"
}

// ErrDiskFull is what tests inject for a full disk (it wraps ENOSPC).
var ErrDiskFull error = &os.PathError{Op: "write", Path: "(injected)", Err: syscall.ENOSPC}

// ErrorFS wraps an FS (OSFS if nil) and fails operations chosen by Inject:
// for every operation, Inject(op, path) is called and a non-nil result is
// returned instead of performing it. The path of a Rename is its old name;
// the path of a file's Write, Read, Sync and Close is the name it was
// created or opened with. A failed write writes nothing; a failed Close
// still closes the file. RemoveAll is checked as OpRemove. Safe for
// concurrent use if Inject is.
type ErrorFS struct {
	FS     FS
	Inject func(op Op, path string) error
}

var _ FS = (*ErrorFS)(nil)

// InjectAfter returns an Inject function that fails the n-th (0-based) and
// the following `times` operations op whose path matches (a filepath.Match
// pattern against the base name; "" matches all) with err: operations 0 to
// n-1 succeed, n to n+times-1 fail, later ones succeed again. times < 0
// fails every later matching operation. Only matching operations count.
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

// open is Create and Open: inject, then wrap the file for its own faults.
func (e *ErrorFS) open(op Op, name string, open func(string) (File, error)) (File, error) {
	if err := e.inject(op, name); err != nil {
		return nil, err
	}
	f, err := open(name)
	if err != nil {
		return nil, err
	}
	return &errorFile{File: f, fs: e, name: name}, nil
}

func (e *ErrorFS) Create(name string) (File, error) { return e.open(OpCreate, name, e.base().Create) }
func (e *ErrorFS) Open(name string) (File, error)   { return e.open(OpOpen, name, e.base().Open) }
func (e *ErrorFS) Append(name string) (File, error) { return e.open(OpAppend, name, e.base().Append) }

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

func (e *ErrorFS) Truncate(name string, size int64) error {
	if err := e.inject(OpTruncate, name); err != nil {
		return err
	}
	return e.base().Truncate(name, size)
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

func (f *errorFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.inject(OpRead, f.name); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
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
