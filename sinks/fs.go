package sinks

import (
	"io"
	"io/fs"
	"os"
)

// FS is the file I/O a file sink does. Tests wrap it to inject faults.
type FS interface {
	MkdirAll(dir string) error
	// Create creates or truncates name for writing.
	Create(name string) (File, error)
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	Remove(name string) error
	// ReadDir lists the names of the entries of dir.
	ReadDir(dir string) ([]string, error)
	// SyncDir makes the directory's entries (renames, removals) durable.
	SyncDir(dir string) error
	// Stat describes name (CommitOnCheckpoint recovery).
	Stat(name string) (fs.FileInfo, error)
	// Truncate cuts name to size bytes and makes that durable
	// (CommitOnCheckpoint recovery of open parts).
	Truncate(name string, size int64) error
	// Append opens the existing file name for writing at its end
	// (CommitOnCheckpoint recovery of open Parquet parts: the committed
	// footer).
	Append(name string) (File, error)
	// Open opens name for reading (CommitOnCheckpoint recovery: is the
	// committed footer already there?).
	Open(name string) (ReadFile, error)
}

// ReadFile is a file open for reading.
type ReadFile interface {
	io.ReaderAt
	Close() error
}

// File is a file open for writing.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

// OSFS is the operating system's file system.
type OSFS struct{}

var _ FS = OSFS{}

func (OSFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

func (OSFS) Create(name string) (File, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

func (OSFS) Append(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
}

func (OSFS) Open(name string) (ReadFile, error) { return os.Open(name) }

func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

func (OSFS) Remove(name string) error { return os.Remove(name) }

func (OSFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

func (OSFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

func (OSFS) Truncate(name string, size int64) error {
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

func (OSFS) SyncDir(dir string) error {
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
