package job

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/riffle-dev/riffle/internal/fsx"
)

// StagingName is the hidden directory, inside a backfill's output
// directory, that holds its files until the whole job succeeded.
const StagingName = ".riffle-staging"

// commitRecord is the name, inside the staging directory, of the record
// that makes a commit durable: once it is there (synced), the new output
// is the output, and an interrupted commit is finished, not undone.
const commitRecord = "COMMIT"

// Commit publishes a successful run's output: it replaces the output
// directory's files of this sink (same prefix and format, from an earlier
// run) with the new ones and removes the staging directory. Until Commit,
// a run's files are invisible, so a failed job leaves no partial output.
//
// The replacement is crash-safe: Commit first makes the staged files and
// a commit record naming the new and the old files durable (fsync of
// files and directories, every error returned), then moves the new files
// in and removes the old ones. A crash before the record is durable leaves
// the old output as it was; a crash after it is finished by the next plan
// of the same output (recoverStaging), which completes the moves. At no
// point does a crash lose both outputs. (A reader listing the directory
// while Commit moves files, or after a crash before riffle runs again,
// can see old and new files side by side: the record in the staging
// directory says which set is the output.)
func (p *Plan) Commit() ([]string, error) {
	if p.Sink == nil || p.staging == "" {
		return nil, nil
	}
	var staged []string
	for _, part := range p.Sink.Published() {
		rel, err := filepath.Rel(p.staging, part.Path)
		if err != nil {
			return nil, fmt.Errorf("job: commit %s: %w", p.OutputDir, err)
		}
		staged = append(staged, filepath.ToSlash(rel))
	}
	o := p.Sink.Options()
	ours := sinkFileMatcher(o.Prefix, "."+o.Format.Ext())
	if o.FileName != "" {
		ours = func(name string) bool { return name == o.FileName }
	}
	return commitOutput(p.fsys(), p.OutputDir, p.staging, staged, ours, len(o.PartitionBy) > 0)
}

// Abort removes a failed run's staged files.
func (p *Plan) Abort() error {
	if p.staging == "" {
		return nil
	}
	return p.fsys().RemoveAll(p.staging)
}

func (p *Plan) fsys() fsx.FS {
	if p.fs == nil {
		return fsx.OSFS
	}
	return p.fs
}

// sinkFileMatcher matches the files a file sink with prefix and extension
// ext (".parquet") writes: prefix-*.ext.
func sinkFileMatcher(prefix, ext string) func(string) bool {
	return func(name string) bool { return strings.HasPrefix(name, prefix+"-") && strings.HasSuffix(name, ext) }
}

// commitOutput publishes the files staged (paths relative to staging,
// '/'-separated: a partitioned sink's are in partition directories) into
// dir, replacing the files there that ours matches (by base name; with
// partitioned, also those in the Hive partition directories under dir, at
// any depth); it returns the published paths. See Plan.Commit for the
// protocol.
func commitOutput(fs fsx.FS, dir, staging string, staged []string, ours func(string) bool, partitioned bool) ([]string, error) {
	fail := func(err error) ([]string, error) { return nil, fmt.Errorf("job: commit %s: %w", dir, err) }
	old, err := listOutput(fs, dir, "", ours, partitioned)
	if err != nil {
		return fail(err)
	}
	// The staged files' entries (also in partition directories) and the
	// staging directory's own entry: the sinks synced the files' contents.
	if err := syncSubdirs(fs, staging, staged); err != nil {
		return fail(err)
	}
	if err := fs.SyncDir(staging); err != nil {
		return fail(err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return fail(err)
	}
	if err := writeCommitRecord(fs, staging, staged, old); err != nil {
		return fail(err)
	}
	// The commit point is passed: from here on, finish.
	if err := finishCommit(fs, dir, staging, staged, old); err != nil {
		return fail(err)
	}
	files := make([]string, len(staged))
	for i, n := range staged {
		files[i] = filepath.Join(dir, filepath.FromSlash(n))
	}
	return files, nil
}

// listOutput lists the files ours matches in dir/rel, and with
// partitioned those in its Hive partition directories ("col=value", not
// hidden), recursively: paths relative to dir, '/'-separated.
func listOutput(fs fsx.FS, dir, rel string, ours func(string) bool, partitioned bool) ([]string, error) {
	ents, err := fs.ReadDir(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		switch {
		case !e.IsDir() && ours(n):
			out = append(out, path.Join(rel, n))
		case e.IsDir() && partitioned && strings.Contains(n, "=") && n[0] != '.' && n[0] != '_':
			sub, err := listOutput(fs, dir, path.Join(rel, n), ours, partitioned)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		}
	}
	return out, nil
}

// writeCommitRecord writes the record atomically (temporary name, fsync,
// rename, fsync of the directory): one line per file, "new NAME" or "old
// NAME", then "end".
func writeCommitRecord(fs fsx.FS, staging string, staged, old []string) error {
	var b bytes.Buffer
	for _, n := range staged {
		fmt.Fprintf(&b, "new %s\n", n)
	}
	for _, n := range old {
		fmt.Fprintf(&b, "old %s\n", n)
	}
	b.WriteString("end\n")
	tmp := filepath.Join(staging, commitRecord+".tmp")
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(b.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := fs.Rename(tmp, filepath.Join(staging, commitRecord)); err != nil {
		return err
	}
	return fs.SyncDir(staging)
}

// readCommitRecord reads the record of staging; ok is false when there is
// none (or only a torn one, which is never renamed into place).
func readCommitRecord(fs fsx.FS, staging string) (staged, old []string, ok bool, err error) {
	f, err := fs.Open(filepath.Join(staging, commitRecord))
	if fsx.IsNotExist(err) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "end":
			return staged, old, true, nil
		case strings.HasPrefix(line, "new "):
			staged = append(staged, line[4:])
		case strings.HasPrefix(line, "old "):
			old = append(old, line[4:])
		default:
			return nil, nil, false, fmt.Errorf("commit record %s: bad line %q", filepath.Join(staging, commitRecord), line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, false, err
	}
	return nil, nil, false, fmt.Errorf("commit record %s: truncated (no end line)", filepath.Join(staging, commitRecord))
}

// finishCommit moves the new files in (over old ones of the same name) and
// removes the other old ones, makes that durable, then removes the
// staging directory. It can run again after a crash at any point.
func finishCommit(fs fsx.FS, dir, staging string, staged, old []string) error {
	for _, n := range staged {
		n = filepath.FromSlash(n)
		if sub := filepath.Dir(n); sub != "." {
			// A partition directory: made durable before a file moves in.
			if err := fsx.MkdirAllSync(fs, filepath.Join(dir, sub), 0o755); err != nil {
				return err
			}
		}
		err := fs.Rename(filepath.Join(staging, n), filepath.Join(dir, n))
		if fsx.IsNotExist(err) {
			// Moved by the interrupted run; it must be in place.
			if _, serr := fs.Stat(filepath.Join(dir, n)); serr != nil {
				return fmt.Errorf("new file %s is neither staged nor published: %w", n, serr)
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	// The moved files' entries in partition directories are durable
	// before staging can lose them (the top directory is synced below).
	if err := syncSubdirs(fs, dir, staged); err != nil {
		return err
	}
	for _, n := range old {
		if slices.Contains(staged, n) {
			continue // replaced by the rename
		}
		if err := fs.Remove(filepath.Join(dir, filepath.FromSlash(n))); err != nil && !fsx.IsNotExist(err) {
			return fmt.Errorf("replace earlier output: %w", err)
		}
	}
	if err := removeEmptyDirs(fs, dir, old); err != nil {
		return fmt.Errorf("replace earlier output: %w", err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return err
	}
	if err := fs.RemoveAll(staging); err != nil {
		return err
	}
	return fs.SyncDir(dir)
}

// syncSubdirs syncs the directories under root that hold files (relative
// paths), and their parents up to root (excluded), deepest first.
func syncSubdirs(fs fsx.FS, root string, files []string) error {
	var dirs []string
	for _, n := range files {
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range deepestFirst(dirs) {
		if err := fs.SyncDir(filepath.Join(root, filepath.FromSlash(d))); err != nil {
			return err
		}
	}
	return nil
}

// deepestFirst sorts and dedups relative directory paths, deepest first.
func deepestFirst(dirs []string) []string {
	slices.SortFunc(dirs, func(a, b string) int {
		if c := strings.Count(b, "/") - strings.Count(a, "/"); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(dirs)
}

// removeEmptyDirs removes the partition directories of the old files
// (paths relative to dir) that are empty now, deepest first, and syncs
// their parents.
func removeEmptyDirs(fs fsx.FS, dir string, old []string) error {
	var dirs []string
	for _, n := range old {
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			dirs = append(dirs, d)
		}
	}
	// Deepest first: a parent is emptied by its children's removal.
	for _, d := range deepestFirst(dirs) {
		abs := filepath.Join(dir, filepath.FromSlash(d))
		ents, err := fs.ReadDir(abs)
		if fsx.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		if len(ents) > 0 {
			continue
		}
		if err := fs.Remove(abs); err != nil && !fsx.IsNotExist(err) {
			return err
		}
		if err := fs.SyncDir(filepath.Dir(abs)); err != nil {
			return err
		}
	}
	return nil
}

// recoverStaging readies a backfill's staging directory before a run: a
// commit whose record is durable is finished (the new output it names is
// the output), anything else left by a crashed or failed run is removed.
func recoverStaging(fs fsx.FS, dir, staging string) error {
	staged, old, ok, err := readCommitRecord(fs, staging)
	if err != nil {
		return fmt.Errorf("job: recover %s: %w", staging, err)
	}
	if ok {
		if err := finishCommit(fs, dir, staging, staged, old); err != nil {
			return fmt.Errorf("job: finish the interrupted commit of %s: %w", dir, err)
		}
		return nil
	}
	if err := fs.RemoveAll(staging); err != nil {
		return fmt.Errorf("job: remove %s: %w", staging, err)
	}
	if err := fs.SyncDir(dir); err != nil && !fsx.IsNotExist(err) {
		return fmt.Errorf("job: remove %s: %w", staging, err)
	}
	return nil
}
