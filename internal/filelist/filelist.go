// Package filelist resolves the paths a file source is given (files, globs
// and directories) into the sorted, deduplicated list of files it reads. It
// is the one home of that rule for every file source (Parquet, CSV, JSONL).
//
// Directories are walked recursively and keep the files whose names end in
// one of Options.Extensions; directory walks and globs skip every file or
// directory whose name starts with '.' or '_' (_SUCCESS, _temporary, .crc,
// ...). A glob keeps the other files it matches whatever their extension,
// and a file named explicitly is always read. A glob matching nothing, a
// directory holding no matching file and a missing path are errors.
package filelist

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Options says how to resolve paths.
type Options struct {
	// Prefix starts every error message that does not concern one file
	// ("parquet", "csv").
	Prefix string
	// Extensions are the suffixes (".parquet") a directory walk keeps.
	Extensions []string
	// FileErr wraps an error about one file (missing, unreadable) so the
	// caller's error type names it; nil leaves "<path>: <err>".
	FileErr func(path string, err error) error
}

func (o *Options) fileErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if o.FileErr != nil {
		return o.FileErr(path, err)
	}
	return fmt.Errorf("%s: %s: %w", o.Prefix, path, err)
}

// Resolve expands files, globs and directories into a sorted, deduplicated
// list of files.
func Resolve(paths []string, o Options) ([]string, error) {
	var out []string
	for _, p := range paths {
		if strings.ContainsAny(p, "*?[") {
			matches, err := filepath.Glob(p)
			if err != nil {
				return nil, fmt.Errorf("%s: bad glob %q: %v", o.Prefix, p, err)
			}
			if len(matches) == 0 {
				return nil, fmt.Errorf("%s: no files match %q", o.Prefix, p)
			}
			for _, m := range matches {
				if skipName(filepath.Base(m)) {
					continue
				}
				st, err := os.Stat(m)
				if err != nil {
					return nil, o.fileErr(m, err)
				}
				if st.IsDir() {
					files, err := o.walk(m)
					if err != nil {
						return nil, err
					}
					out = append(out, files...)
				} else {
					out = append(out, m)
				}
			}
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, o.fileErr(p, err)
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		files, err := o.walk(p)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: no %s files in directory %s", o.Prefix, strings.Join(o.Extensions, " or "), p)
		}
		out = append(out, files...)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no files in %q", o.Prefix, paths)
	}
	return out, nil
}

func skipName(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

func (o *Options) keep(name string) bool {
	for _, e := range o.Extensions {
		if strings.HasSuffix(name, e) {
			return true
		}
	}
	return false
}

func (o *Options) walk(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return o.fileErr(p, err)
		}
		if p != root && skipName(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && o.keep(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}
