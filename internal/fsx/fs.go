package fsx

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File is an open file.
type File interface {
	io.Reader
	io.ReaderAt // files opened for reading (a Parquet footer)
	io.Writer
	io.Closer
	// Sync commits the file's contents to stable storage. It also works on
	// a file opened for reading (the checkpoint coordinator fsyncs files
	// operators wrote while it checksums them).
	Sync() error
}

// FS is the file system checkpoints and snapshots are written to and read
// from. It is deliberately small so tests can inject faults (ErrorFS).
type FS interface {
	// Create creates or truncates the named file for writing.
	Create(name string) (File, error)
	// Open opens the named file for reading.
	Open(name string) (File, error)
	// Append opens the named file for writing at its end, creating it if
	// it does not exist (dead-letter files, logs).
	Append(name string) (File, error)
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
	// SyncDir commits the directory entries of dir (after creates,
	// renames and removals).
	SyncDir(dir string) error
	// Truncate cuts the named file to size bytes and commits that to
	// stable storage (a two-phase sink's recovery of an open part).
	Truncate(name string, size int64) error
}

// OSFS is the FS of the operating system.
var OSFS FS = osFS{}

type osFS struct{}

func (osFS) Create(name string) (File, error) { return os.Create(name) }
func (osFS) Open(name string) (File, error)   { return os.Open(name) }
func (osFS) Append(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
}
func (osFS) Rename(o, n string) error                    { return os.Rename(o, n) }
func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) RemoveAll(path string) error                 { return os.RemoveAll(path) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) ReadDir(dir string) ([]fs.DirEntry, error)   { return os.ReadDir(dir) }
func (osFS) Stat(name string) (fs.FileInfo, error)       { return os.Stat(name) }

func (osFS) Truncate(name string, size int64) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

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

// IsNotExist reports a missing file across FS implementations (it unwraps,
// unlike os.IsNotExist).
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// MkdirAllSync is MkdirAll that makes what it created durable: it fsyncs
// the parent of every directory it had to create (a new directory's entry
// lives in its parent, and without that fsync a crash can take the
// directory, and everything later written and synced in it, away).
func MkdirAllSync(fsys FS, dir string, perm os.FileMode) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fsys.Stat(d); err == nil {
			break
		} else if !IsNotExist(err) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := fsys.MkdirAll(dir, perm); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fsys.SyncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}
