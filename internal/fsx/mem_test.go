package fsx

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// script runs the same operations on an FS rooted at root and returns what
// an observer sees: every result, listing and file content, with errors
// reduced to their kind. MemFS must see what the operating system sees.
func script(fsys FS, root string) []string {
	var log []string
	p := func(name string) string { return filepath.Join(root, name) }
	kind := func(err error) string {
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, fs.ErrNotExist):
			return "notexist"
		case errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
			return "notempty"
		case errors.Is(err, syscall.ENOTDIR):
			return "notdir"
		case errors.Is(err, syscall.EISDIR):
			return "isdir"
		case errors.Is(err, syscall.EBADF):
			return "badf"
		case errors.Is(err, fs.ErrClosed):
			return "closed"
		}
		return "other: " + err.Error()
	}
	rec := func(what string, err error) { log = append(log, what+": "+kind(err)) }
	write := func(f File, s string) {
		_, err := f.Write([]byte(s))
		rec("write "+s, err)
	}
	read := func(name string) {
		f, err := fsys.Open(p(name))
		if err != nil {
			rec("open "+name, err)
			return
		}
		b, err := io.ReadAll(f)
		rec(fmt.Sprintf("read %s = %q", name, b), err)
		rec("close "+name, f.Close())
	}
	list := func(dir string) {
		ents, err := fsys.ReadDir(p(dir))
		var names []string
		for _, e := range ents {
			fi, _ := e.Info()
			names = append(names, fmt.Sprintf("%s(dir=%v,size=%d)", e.Name(), e.IsDir(), map[bool]int64{true: 0, false: fi.Size()}[e.IsDir()]))
		}
		rec(fmt.Sprintf("readdir %s = %v", dir, names), err)
	}

	rec("mkdirall a/b", fsys.MkdirAll(p("a/b"), 0o755))
	f, err := fsys.Create(p("a/b/x"))
	rec("create a/b/x", err)
	write(f, "hello")
	write(f, " world")
	rec("sync", f.Sync())
	rec("close", f.Close())
	rec("close again", f.Close())
	_, err = f.Write([]byte("late"))
	rec("write after close", err)
	read("a/b/x")
	f, err = fsys.Append(p("a/b/x"))
	rec("append a/b/x", err)
	write(f, "!")
	rec("close", f.Close())
	read("a/b/x")
	f, err = fsys.Append(p("a/new"))
	rec("append a/new (creates)", err)
	write(f, "n")
	rec("close", f.Close())
	f, err = fsys.Create(p("a/b/x"))
	rec("create a/b/x again (truncates)", err)
	write(f, "v2")
	_, err = f.Read(make([]byte, 4))
	rec("read a file opened for writing", err)
	rec("close", f.Close())
	read("a/b/x")
	r, err := fsys.Open(p("a/b/x"))
	rec("open", err)
	_, err = r.Write([]byte("no"))
	rec("write a file opened for reading", err)
	rec("close", r.Close())
	_, err = fsys.Create(p("missing/x"))
	rec("create in a missing dir", err)
	_, err = fsys.Open(p("a/missing"))
	rec("open missing", err)
	_, err = fsys.Create(p("a/b"))
	rec("create over a dir", err)
	rec("mkdirall through a file", fsys.MkdirAll(p("a/b/x/y"), 0o755))
	rec("rename a/b/x -> a/y", fsys.Rename(p("a/b/x"), p("a/y")))
	rec("rename missing", fsys.Rename(p("a/b/x"), p("a/z")))
	rec("rename a/new over a/y", fsys.Rename(p("a/new"), p("a/y")))
	rec("rename a file over a dir", fsys.Rename(p("a/y"), p("a/b")))
	rec("mkdirall c/d", fsys.MkdirAll(p("c/d"), 0o755))
	rec("rename a dir over a non-empty dir", fsys.Rename(p("a/b"), p("c")))
	rec("rename dir a/b -> c/e", fsys.Rename(p("a/b"), p("c/e")))
	list("a")
	list("c")
	read("a/y")
	fi, err := fsys.Stat(p("a/y"))
	rec(fmt.Sprintf("stat a/y size=%d dir=%v", sizeOf(fi), fi != nil && fi.IsDir()), err)
	fi, err = fsys.Stat(p("c"))
	rec(fmt.Sprintf("stat c dir=%v", fi != nil && fi.IsDir()), err)
	_, err = fsys.Stat(p("a/y/z"))
	rec("stat under a file", err)
	rec("remove non-empty c", fsys.Remove(p("c")))
	rec("remove a/y", fsys.Remove(p("a/y")))
	rec("remove a/y again", fsys.Remove(p("a/y")))
	rec("syncdir a", fsys.SyncDir(p("a")))
	rec("syncdir missing", fsys.SyncDir(p("nope")))
	rec("removeall c", fsys.RemoveAll(p("c")))
	rec("removeall c again", fsys.RemoveAll(p("c")))
	list("")
	_, err = fsys.ReadDir(p("c"))
	rec("readdir removed", err)
	return log
}

func sizeOf(fi fs.FileInfo) int64 {
	if fi == nil {
		return -1
	}
	return fi.Size()
}

// TestMemFSBehavesLikeOSFS: the operating system is the oracle.
func TestMemFSBehavesLikeOSFS(t *testing.T) {
	want := script(OSFS, t.TempDir())
	got := script(NewMemFS(), "/root/of/test")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MemFS differs from the OS:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func TestMemFSCrash(t *testing.T) {
	m := NewMemFS()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	put := func(name, data string, sync bool) {
		t.Helper()
		f, err := m.Create(name)
		must(err)
		_, err = f.Write([]byte(data))
		must(err)
		if sync {
			must(f.Sync())
		}
		must(f.Close())
	}
	content := func(name string) string {
		f, err := m.Open(name)
		if IsNotExist(err) {
			return "<none>"
		}
		must(err)
		b, err := io.ReadAll(f)
		must(err)
		return string(b)
	}
	must(m.MkdirAll("/d", 0o755))
	must(m.SyncDir("/"))
	put("/d/synced", "s1", true)
	put("/d/entry-only", "e1", false)
	must(m.SyncDir("/d"))
	put("/d/data-only", "d1", true) // its entry is never synced
	put("/d/synced", "s2", false)   // truncated and rewritten, not synced
	must(m.Rename("/d/entry-only", "/d/renamed"))
	must(m.MkdirAll("/new/sub", 0o755)) // never synced
	put("/new/sub/f", "x", true)

	m.Crash()
	for name, want := range map[string]string{
		"/d/synced":     "s1",     // the synced contents, not the later rewrite
		"/d/entry-only": "",       // its entry survived, its data did not
		"/d/renamed":    "<none>", // the rename was not synced
		"/d/data-only":  "<none>", // its entry was not synced
		"/new/sub/f":    "<none>", // nor was its directory
	} {
		if got := content(name); got != want {
			t.Errorf("after Crash %s = %q, want %q", name, got, want)
		}
	}
	if _, err := m.Stat("/new"); !IsNotExist(err) {
		t.Errorf("unsynced directory survived: %v", err)
	}

	// Removal is durable only once its directory is synced; Fsync makes
	// everything durable.
	must(m.Remove("/d/synced"))
	m.Crash()
	if got := content("/d/synced"); got != "s1" {
		t.Errorf("unsynced removal: %q, want it back", got)
	}
	must(m.Remove("/d/synced"))
	must(m.SyncDir("/d"))
	put("/d/later", "l", false)
	m.Fsync()
	m.Crash()
	if got := content("/d/synced"); got != "<none>" {
		t.Errorf("synced removal undone: %q", got)
	}
	if got := content("/d/later"); got != "l" {
		t.Errorf("after Fsync and Crash /d/later = %q, want %q", got, "l")
	}

	// A directory synced through an open handle (as OSFS.SyncDir does).
	must(m.MkdirAll("/e", 0o755))
	m.Fsync()
	put("/e/f", "f", true)
	d, err := m.Open("/e")
	must(err)
	must(d.Sync())
	must(d.Close())
	m.Crash()
	if got := content("/e/f"); got != "f" {
		t.Errorf("after syncing /e through a handle: %q, want %q", got, "f")
	}
}

func TestErrorFSAppend(t *testing.T) {
	boom := errors.New("boom")
	m := NewMemFS()
	efs := &ErrorFS{FS: m, Inject: InjectAfter(OpAppend, "", 1, 1, boom)}
	for i, want := range []error{nil, boom, nil} {
		f, err := efs.Append("/log")
		if err != want {
			t.Fatalf("Append %d = %v, want %v", i, err, want)
		}
		if f != nil {
			if _, err := f.Write([]byte{'a' + byte(i)}); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	f, _ := m.Open("/log")
	if b, _ := io.ReadAll(f); string(b) != "ac" {
		t.Fatalf("log = %q, want %q", b, "ac")
	}
}

// TestMkdirAllSync: directories MkdirAll creates are gone after a crash
// unless their parents were synced; MkdirAllSync's survive it.
func TestMkdirAllSync(t *testing.T) {
	m := NewMemFS()
	if err := m.MkdirAll("/a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	if _, err := m.Stat("/a"); !IsNotExist(err) {
		t.Fatalf("MkdirAll's directory survived a crash without a sync: %v", err)
	}
	if err := MkdirAllSync(m, "/a/b/c", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAllSync(m, "/a/b/c", 0o755); err != nil { // exists: nothing to do
		t.Fatal(err)
	}
	m.Crash()
	if fi, err := m.Stat("/a/b/c"); err != nil || !fi.IsDir() {
		t.Fatalf("after MkdirAllSync and a crash: %v", err)
	}
}
