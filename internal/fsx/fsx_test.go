package fsx

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
)

// writeFile creates name on fsys, writes data, syncs and closes it.
func writeFile(t *testing.T, fsys FS, name, data string) {
	t.Helper()
	f, err := fsys.Create(name)
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

func TestOSFS(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "a", "b")
	if err := OSFS.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, final := filepath.Join(sub, "f.tmp"), filepath.Join(sub, "f")
	writeFile(t, OSFS, tmp, "hello")
	if err := OSFS.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	if err := OSFS.SyncDir(sub); err != nil {
		t.Fatal(err)
	}
	if _, err := OSFS.Stat(tmp); !IsNotExist(err) {
		t.Fatalf("Stat of the renamed file: %v, want not exist", err)
	}
	fi, err := OSFS.Stat(final)
	if err != nil || fi.Size() != 5 {
		t.Fatalf("Stat = %v, %v; want size 5", fi, err)
	}
	// A file opened for reading can be synced too (the coordinator
	// fsyncs operators' files while it checksums them).
	r, err := OSFS.Open(final)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	if err != nil || string(data) != "hello" {
		t.Fatalf("read %q, %v", data, err)
	}
	if err := r.Sync(); err != nil {
		t.Fatalf("Sync of a read-only file: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"c", "b"} {
		if err := OSFS.MkdirAll(filepath.Join(sub, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := OSFS.ReadDir(sub)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"b", "c", "f"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("ReadDir = %v, want %v (sorted)", names, want)
	}
	if err := OSFS.Remove(final); err != nil {
		t.Fatal(err)
	}
	if err := OSFS.Remove(final); !IsNotExist(err) {
		t.Fatalf("second Remove: %v, want not exist", err)
	}
	if err := OSFS.RemoveAll(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if err := OSFS.RemoveAll(filepath.Join(dir, "a")); err != nil {
		t.Fatalf("RemoveAll of a missing path: %v", err)
	}
	if _, err := OSFS.ReadDir(sub); !IsNotExist(err) {
		t.Fatalf("ReadDir after RemoveAll: %v, want not exist", err)
	}
	if err := OSFS.SyncDir(sub); !IsNotExist(err) {
		t.Fatalf("SyncDir of a missing dir: %v, want not exist", err)
	}
}

func TestIsNotExistUnwraps(t *testing.T) {
	_, err := OSFS.Open(filepath.Join(t.TempDir(), "missing"))
	wrapped := errors.Join(errors.New("context"), err)
	if !IsNotExist(wrapped) {
		t.Fatalf("IsNotExist(%v) = false", wrapped)
	}
	if IsNotExist(ErrDiskFull) {
		t.Fatal("IsNotExist(ErrDiskFull) = true")
	}
}

func TestErrDiskFull(t *testing.T) {
	if !errors.Is(ErrDiskFull, syscall.ENOSPC) {
		t.Fatalf("ErrDiskFull = %v does not wrap ENOSPC", ErrDiskFull)
	}
}

// fire calls inject k times with (op, path) and reports which calls failed.
func fire(inject func(Op, string) error, op Op, path string, k int) []bool {
	out := make([]bool, k)
	for i := range out {
		out[i] = inject(op, path) != nil
	}
	return out
}

func TestInjectAfter(t *testing.T) {
	boom := errors.New("boom")
	T, F := true, false
	for _, tc := range []struct {
		name     string
		n, times int
		want     []bool
	}{
		{"first only", 0, 1, []bool{T, F, F, F, F}},
		{"third only", 2, 1, []bool{F, F, T, F, F}},
		{"twice from the second", 1, 2, []bool{F, T, T, F, F}},
		{"from the second on", 1, -1, []bool{F, T, T, T, T}},
		{"always", 0, -1, []bool{T, T, T, T, T}},
		{"never (times 0)", 0, 0, []bool{F, F, F, F, F}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inject := InjectAfter(OpWrite, "", tc.n, tc.times, boom)
			if got := fire(inject, OpWrite, "/d/x", len(tc.want)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("failures = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("returns err", func(t *testing.T) {
		if err := InjectAfter(OpSync, "", 0, 1, boom)(OpSync, "x"); err != boom {
			t.Fatalf("err = %v, want %v", err, boom)
		}
	})

	t.Run("other ops neither fail nor count", func(t *testing.T) {
		inject := InjectAfter(OpRename, "", 1, 1, boom)
		for op := OpCreate; op < numOps; op++ {
			if op == OpRename {
				continue
			}
			if got := fire(inject, op, "/d/x", 3); !reflect.DeepEqual(got, []bool{F, F, F}) {
				t.Fatalf("%v: failures = %v", op, got)
			}
		}
		if got := fire(inject, OpRename, "/d/x", 3); !reflect.DeepEqual(got, []bool{F, T, F}) {
			t.Fatalf("rename failures = %v, want [false true false]", got)
		}
	})

	t.Run("pattern matches the base name; others do not count", func(t *testing.T) {
		inject := InjectAfter(OpWrite, "kg-*", 1, -1, boom)
		var got []bool
		for _, p := range []string{"/d/kg-1", "/d/manifest", "/kg-x/manifest", "/d/kg-2", "/d/MANIFEST", "/d/kg-3"} {
			got = append(got, inject(OpWrite, p) != nil)
		}
		if want := []bool{F, F, F, T, F, T}; !reflect.DeepEqual(got, want) {
			t.Fatalf("failures = %v, want %v", got, want)
		}
	})
}

// recorder is an Inject function that records every call and fails the
// ones fail picks.
type recorder struct {
	calls []string
	fail  func(Op, string) error
}

func (r *recorder) inject(op Op, path string) error {
	r.calls = append(r.calls, op.String()+" "+filepath.Base(path))
	if r.fail != nil {
		return r.fail(op, path)
	}
	return nil
}

func TestErrorFSRoutesEveryOperation(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	efs := &ErrorFS{Inject: rec.inject} // nil FS: OSFS
	p := func(name string) string { return filepath.Join(dir, name) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(efs.MkdirAll(p("sub"), 0o755))
	f, err := efs.Create(p("f.tmp"))
	must(err)
	_, err = f.Write([]byte("abc"))
	must(err)
	must(f.Sync())
	must(f.Close())
	must(efs.Rename(p("f.tmp"), p("f")))
	must(efs.SyncDir(dir))
	_, err = efs.Stat(p("f"))
	must(err)
	_, err = efs.ReadDir(dir)
	must(err)
	f, err = efs.Open(p("f"))
	must(err)
	_, err = f.Read(make([]byte, 8))
	must(err)
	must(f.Close())
	must(efs.Remove(p("f")))
	must(efs.RemoveAll(p("sub")))
	want := []string{
		"mkdirall sub", "create f.tmp", "write f.tmp", "sync f.tmp", "close f.tmp",
		"rename f.tmp", "syncdir " + filepath.Base(dir), "stat f", "readdir " + filepath.Base(dir),
		"open f", "read f", "close f", "remove f", "remove sub",
	}
	if !reflect.DeepEqual(rec.calls, want) {
		t.Fatalf("calls:\n got %q\nwant %q", rec.calls, want)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Fatalf("dir left with %v, %v; want empty", ents, err)
	}
}

func TestErrorFSFailures(t *testing.T) {
	boom := errors.New("boom")
	failOn := func(op Op) func(Op, string) error {
		return func(o Op, _ string) error {
			if o == op {
				return boom
			}
			return nil
		}
	}
	newFile := func(t *testing.T, content string) string {
		name := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}

	t.Run("nil Inject passes everything", func(t *testing.T) {
		writeFile(t, &ErrorFS{FS: OSFS}, filepath.Join(t.TempDir(), "f"), "x")
	})

	t.Run("failed create creates nothing", func(t *testing.T) {
		name := filepath.Join(t.TempDir(), "f")
		if _, err := (&ErrorFS{Inject: failOn(OpCreate)}).Create(name); err != boom {
			t.Fatalf("Create: %v", err)
		}
		if _, err := os.Stat(name); !IsNotExist(err) {
			t.Fatalf("file exists after a failed create: %v", err)
		}
	})

	t.Run("failed write writes nothing", func(t *testing.T) {
		name := filepath.Join(t.TempDir(), "f")
		f, err := (&ErrorFS{Inject: InjectAfter(OpWrite, "", 1, 1, ErrDiskFull)}).Create(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range []string{"ab", "cd", "ef"} {
			n, err := f.Write([]byte(s))
			if i == 1 {
				if n != 0 || !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("failed Write = %d, %v", n, err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(name); string(data) != "abef" {
			t.Fatalf("file = %q, want %q", data, "abef")
		}
	})

	t.Run("failed read reads nothing", func(t *testing.T) {
		f, err := (&ErrorFS{Inject: failOn(OpRead)}).Open(newFile(t, "abc"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if n, err := f.Read(make([]byte, 8)); n != 0 || err != boom {
			t.Fatalf("Read = %d, %v", n, err)
		}
	})

	t.Run("failed sync", func(t *testing.T) {
		f, err := (&ErrorFS{Inject: failOn(OpSync)}).Create(filepath.Join(t.TempDir(), "f"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Sync(); err != boom {
			t.Fatalf("Sync = %v", err)
		}
	})

	t.Run("failed close still closes", func(t *testing.T) {
		f, err := (&ErrorFS{Inject: failOn(OpClose)}).Open(newFile(t, "abc"))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != boom {
			t.Fatalf("Close = %v", err)
		}
		if err := f.(*errorFile).File.Close(); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("second close of the underlying file: %v, want ErrClosed", err)
		}
	})

	t.Run("failed rename keeps the old name; matched on it", func(t *testing.T) {
		old := newFile(t, "abc")
		newName := old + ".final"
		efs := &ErrorFS{Inject: InjectAfter(OpRename, filepath.Base(old), 0, -1, boom)}
		if err := efs.Rename(old, newName); err != boom {
			t.Fatalf("Rename = %v", err)
		}
		if _, err := os.Stat(old); err != nil {
			t.Fatalf("old name gone after a failed rename: %v", err)
		}
		if _, err := os.Stat(newName); !IsNotExist(err) {
			t.Fatalf("new name exists after a failed rename: %v", err)
		}
	})

	t.Run("remove and RemoveAll fail as OpRemove", func(t *testing.T) {
		name := newFile(t, "abc")
		efs := &ErrorFS{Inject: failOn(OpRemove)}
		if err := efs.Remove(name); err != boom {
			t.Fatalf("Remove = %v", err)
		}
		if err := efs.RemoveAll(filepath.Dir(name)); err != boom {
			t.Fatalf("RemoveAll = %v", err)
		}
		if _, err := os.Stat(name); err != nil {
			t.Fatalf("file gone after failed removes: %v", err)
		}
	})

	t.Run("directory operations", func(t *testing.T) {
		dir := t.TempDir()
		for _, tc := range []struct {
			op   Op
			call func(*ErrorFS) error
		}{
			{OpMkdirAll, func(e *ErrorFS) error { return e.MkdirAll(filepath.Join(dir, "x"), 0o755) }},
			{OpReadDir, func(e *ErrorFS) error { _, err := e.ReadDir(dir); return err }},
			{OpStat, func(e *ErrorFS) error { _, err := e.Stat(dir); return err }},
			{OpSyncDir, func(e *ErrorFS) error { return e.SyncDir(dir) }},
			{OpOpen, func(e *ErrorFS) error { _, err := e.Open(dir); return err }},
		} {
			if err := tc.call(&ErrorFS{Inject: failOn(tc.op)}); err != boom {
				t.Errorf("%v: err = %v, want injected", tc.op, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "x")); !IsNotExist(err) {
			t.Errorf("MkdirAll created the dir although it failed: %v", err)
		}
	})
}

func TestOpString(t *testing.T) {
	for op, want := range map[Op]string{OpCreate: "create", OpRemove: "remove", OpSyncDir: "syncdir", OpAppend: "append", -1: "op?", numOps: "op?"} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q, want %q", int(op), got, want)
		}
	}
}
