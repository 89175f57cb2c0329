package sinks

import "github.com/riffle-dev/riffle/internal/fsx"

// The file sink does all its file I/O through internal/fsx, the one
// file-system layer of state, checkpoints, sinks and job commits; these
// aliases keep its names in this package. Tests inject faults with
// fsx.ErrorFS and simulate crashes with fsx.MemFS.

// FS is the file I/O a file sink does.
type FS = fsx.FS

// File is an open file.
type File = fsx.File

// OSFS is the operating system's file system.
var OSFS = fsx.OSFS

// readDirNames lists the names of the entries of dir.
func readDirNames(fsys FS, dir string) ([]string, error) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}
