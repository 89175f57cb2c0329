package job

import (
	"errors"
	"io"
	"maps"
	"path"
	"slices"
	"testing"

	"github.com/riffle-dev/riffle/internal/fsx"
)

const (
	commitDir     = "/out"
	commitStaging = "/out/" + StagingName
)

var (
	oldOutput = map[string]string{
		"part-00000-00000.parquet": "old-0",
		"part-00001-00000.parquet": "old-1",
		"part-00002-00000.parquet": "old-2", // no new file of that name
	}
	newOutput = map[string]string{
		"part-00000-00000.parquet": "new-0", // replaces old-0
		"part-00000-00001.parquet": "new-0b",
		"part-00001-00000.parquet": "new-1",
	}
	// Files of the directory that are not this sink's output.
	bystanders = map[string]string{"other.txt": "keep", "part-notes.txt": "keep too"}
)

func putFile(t *testing.T, fs fsx.FS, name, data string) {
	t.Helper()
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// commitScene is an output directory holding an earlier run's output
// (durable) and a finished run's files in staging: their contents are
// synced, as the file sink does, their directory entries not yet.
func commitScene(t *testing.T) *fsx.MemFS {
	m := fsx.NewMemFS()
	if err := m.MkdirAll(commitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, d := range oldOutput {
		putFile(t, m, path.Join(commitDir, n), d)
	}
	for n, d := range bystanders {
		putFile(t, m, path.Join(commitDir, n), d)
	}
	m.Fsync()
	if err := m.MkdirAll(commitStaging, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, d := range newOutput {
		putFile(t, m, path.Join(commitStaging, n), d)
	}
	return m
}

func stagedNames() []string { return slices.Sorted(maps.Keys(newOutput)) }

// dirContents returns the files of dir and their contents.
func dirContents(t *testing.T, fs fsx.FS, dir string) map[string]string {
	t.Helper()
	ents, err := fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if e.IsDir() {
			out[e.Name()+"/"] = ""
			continue
		}
		out[e.Name()] = fileText(t, fs, path.Join(dir, e.Name()))
	}
	return out
}

func withBystanders(out map[string]string) map[string]string {
	m := maps.Clone(out)
	maps.Copy(m, bystanders)
	return m
}

var errCrash = errors.New("crash (injected)")

// TestCommitSurvivesACrashAnywhere stops Commit at every one of its file
// operations in turn (the process dies: that operation and every later one
// fail), drops what was not durable (MemFS.Crash), runs the recovery the
// next plan of this output runs, and checks that the directory then holds
// exactly the old output or exactly the new one, durably.
func TestCommitSurvivesACrashAnywhere(t *testing.T) {
	checkCommitCrashes(t, func() *fsx.MemFS { return commitScene(t) }, stagedNames(), false,
		withBystanders(oldOutput), withBystanders(newOutput))
}

// checkCommitCrashes stops commitOutput of staged (partitioned or not)
// at every one of its file operations in turn on the scene (the process
// dies: that operation and every later one fail), drops what was not
// durable (MemFS.Crash), runs the recovery the next plan of this output
// runs, and checks that the tree then holds exactly the old output or
// exactly the new one, durably.
func checkCommitCrashes(t *testing.T, scene func() *fsx.MemFS, staged []string, partitioned bool, wantOld, wantNew map[string]string) {
	t.Helper()
	ours := sinkFileMatcher("part", ".parquet")
	sawOld, sawNew := 0, 0
	for n := 0; ; n++ {
		m := scene()
		ops, crashed := 0, false
		efs := &fsx.ErrorFS{FS: m, Inject: func(fsx.Op, string) error {
			ops++
			if ops > n {
				crashed = true
				return errCrash
			}
			return nil
		}}
		files, err := commitOutput(efs, commitDir, commitStaging, staged, ours, partitioned)
		if !crashed {
			if err != nil {
				t.Fatalf("commit without a fault: %v", err)
			}
			if len(files) != len(staged) {
				t.Fatalf("commit returned %v, want %d files", files, len(staged))
			}
			m.Crash() // a committed output is durable
			if got := treeContents(t, m, commitDir); !maps.Equal(got, wantNew) {
				t.Fatalf("after a successful commit and a crash: %v, want %v", got, wantNew)
			}
			t.Logf("commit takes %d file operations; crashed after each of 0..%d: %d times the old output, %d times the new", ops, n-1, sawOld, sawNew)
			break
		}
		if err == nil {
			t.Fatalf("crash after %d operations: commit returned no error", n)
		}
		m.Crash()
		if err := recoverStaging(m, commitDir, commitStaging); err != nil {
			t.Fatalf("crash after %d operations: recovery: %v", n, err)
		}
		got := treeContents(t, m, commitDir)
		switch {
		case maps.Equal(got, wantOld):
			sawOld++
		case maps.Equal(got, wantNew):
			sawNew++
		default:
			t.Fatalf("crash after %d operations: the tree holds %v: neither the old output %v nor the new %v", n, got, wantOld, wantNew)
		}
		m.Crash() // the recovery is durable too
		if again := treeContents(t, m, commitDir); !maps.Equal(again, got) {
			t.Fatalf("crash after %d operations, then after recovery: %v, was %v", n, again, got)
		}
	}
	if sawOld == 0 || sawNew == 0 {
		t.Fatalf("crash points kept the old output %d times and the new %d times; want both outcomes", sawOld, sawNew)
	}
}

// TestCommitChecksEverySync fails each fsync Commit does, one at a time:
// Commit must report it.
func TestCommitChecksEverySync(t *testing.T) {
	ours := sinkFileMatcher("part", ".parquet")
	var syncs []int // indexes of the sync operations of a commit
	{
		m := commitScene(t)
		i := 0
		efs := &fsx.ErrorFS{FS: m, Inject: func(op fsx.Op, _ string) error {
			if op == fsx.OpSync || op == fsx.OpSyncDir {
				syncs = append(syncs, i)
			}
			i++
			return nil
		}}
		if _, err := commitOutput(efs, commitDir, commitStaging, stagedNames(), ours, false); err != nil {
			t.Fatal(err)
		}
	}
	if len(syncs) < 3 {
		t.Fatalf("commit does %d fsyncs; it needs at least the staged files' directory, the record and the output directory", len(syncs))
	}
	for _, k := range syncs {
		m := commitScene(t)
		i := 0
		efs := &fsx.ErrorFS{FS: m, Inject: func(op fsx.Op, _ string) error {
			defer func() { i++ }()
			if i == k {
				return fsx.ErrDiskFull
			}
			return nil
		}}
		if _, err := commitOutput(efs, commitDir, commitStaging, stagedNames(), ours, false); !errors.Is(err, fsx.ErrDiskFull) {
			t.Errorf("fsync failed at operation %d: commit returned %v, want the failure", k, err)
		}
	}
}

// TestRecoverStagingRemovesAnUncommittedRun: without a commit record the
// staging directory is a failed run's, and the old output stays.
func TestRecoverStagingRemovesAnUncommittedRun(t *testing.T) {
	m := commitScene(t)
	m.Fsync()
	if err := recoverStaging(m, commitDir, commitStaging); err != nil {
		t.Fatal(err)
	}
	if got, want := dirContents(t, m, commitDir), withBystanders(oldOutput); !maps.Equal(got, want) {
		t.Fatalf("after recovery: %v, want %v", got, want)
	}
}

// TestCommitFailingMidwayKeepsAnOutput fails one file operation of Commit
// at a time (a full disk, a failed rename; the process lives on), then
// runs the next plan's recovery: an output must be left whole.
func TestCommitFailingMidwayKeepsAnOutput(t *testing.T) {
	ours := sinkFileMatcher("part", ".parquet")
	wantOld, wantNew := withBystanders(oldOutput), withBystanders(newOutput)
	for k := 0; ; k++ {
		m := commitScene(t)
		i, failed := 0, false
		efs := &fsx.ErrorFS{FS: m, Inject: func(fsx.Op, string) error {
			defer func() { i++ }()
			if i == k {
				failed = true
				return fsx.ErrDiskFull
			}
			return nil
		}}
		_, err := commitOutput(efs, commitDir, commitStaging, stagedNames(), ours, false)
		if !failed {
			break
		}
		if err == nil {
			t.Fatalf("operation %d failed: commit returned no error", k)
		}
		if err := recoverStaging(m, commitDir, commitStaging); err != nil {
			t.Fatalf("operation %d failed: recovery: %v", k, err)
		}
		if got := dirContents(t, m, commitDir); !maps.Equal(got, wantOld) && !maps.Equal(got, wantNew) {
			t.Fatalf("operation %d failed: the directory holds %v: neither the old output %v nor the new %v", k, got, wantOld, wantNew)
		}
	}
}

// TestCommitPartitionedSurvivesACrashAnywhere is
// TestCommitSurvivesACrashAnywhere for partitioned output: the old output
// has files in Hive partition directories (one of which the new output
// does not have: it goes, emptied) and at the top; the new one in other
// and new partition directories. After a crash at any file operation and
// the recovery, the tree holds exactly the old or exactly the new output.
func TestCommitPartitionedSurvivesACrashAnywhere(t *testing.T) {
	old := map[string]string{
		"part-00000-00000.parquet":         "old-top",
		"a=1/part-00000-00000.parquet":     "old-a1",
		"a=2/b=x/part-00000-00000.parquet": "old-a2x",
		"a=2/b=y/part-00001-00000.parquet": "old-a2y",
	}
	staged := map[string]string{
		"a=1/part-00000-00000.parquet":       "new-a1",
		"a=3/b=%2F/part-00000-00000.parquet": "new-a3",
		"a=3/b=%2F/part-00001-00000.parquet": "new-a3b",
	}
	// The bystander and the hidden directory stay; emptied partition
	// directories go.
	other := map[string]string{"notes.txt": "keep", "a=1/readme.txt": "keep"}
	scene := func() *fsx.MemFS {
		m := fsx.NewMemFS()
		for n, d := range old {
			if err := fsx.MkdirAllSync(m, path.Dir(path.Join(commitDir, n)), 0o755); err != nil {
				t.Fatal(err)
			}
			putFile(t, m, path.Join(commitDir, n), d)
		}
		for n, d := range other {
			putFile(t, m, path.Join(commitDir, n), d)
		}
		m.Fsync()
		for n, d := range staged {
			if err := m.MkdirAll(path.Dir(path.Join(commitStaging, n)), 0o755); err != nil {
				t.Fatal(err)
			}
			putFile(t, m, path.Join(commitStaging, n), d)
		}
		return m
	}
	wantOld, wantNew := maps.Clone(other), maps.Clone(other)
	maps.Copy(wantOld, old)
	maps.Copy(wantNew, staged)
	checkCommitCrashes(t, scene, slices.Sorted(maps.Keys(staged)), true, wantOld, wantNew)
}

// treeContents returns the files under dir (relative paths) and their
// contents, and every empty directory as "name/".
func treeContents(t *testing.T, fs fsx.FS, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(rel string)
	walk = func(rel string) {
		ents, err := fs.ReadDir(path.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) == 0 && rel != "" {
			out[rel+"/"] = ""
		}
		for _, e := range ents {
			p := path.Join(rel, e.Name())
			if e.IsDir() {
				walk(p)
				continue
			}
			out[p] = fileText(t, fs, path.Join(dir, p))
		}
	}
	walk("")
	return out
}

// fileText returns the content of file name.
func fileText(t *testing.T, fs fsx.FS, name string) string {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
