package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/riffle-dev/riffle/arrowexec"
)

type backendCase struct {
	name string
	make func(t testing.TB, fs FS) Backend
}

var backends = []backendCase{
	{"memory", func(t testing.TB, fs FS) Backend { return NewMemoryBackend(Options{FS: fs}) }},
	{"pebble", func(t testing.TB, fs FS) Backend {
		b, err := NewPebbleBackend(PebbleOptions{Options: Options{FS: fs}, Dir: t.TempDir(), CacheSize: 4 << 20, MemTableSize: 4 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}},
}

func testKey(i int) ([]byte, uint64) {
	k := []byte(fmt.Sprintf("key-%06d", i))
	return k, xxhash.Sum64(k)
}

type subtask struct {
	s      Store
	v      *Value[int64]
	m      *Map[string, float64]
	l      *List[[]float32]
	lo, hi int
}

func openSubtasks(t testing.TB, b Backend, prefix string, mp, par int) []subtask {
	ctx := context.Background()
	subs := make([]subtask, par)
	for i := range subs {
		lo, hi := arrowexec.KeyGroupRange(mp, par, i)
		s, err := b.Open(ctx, StoreOptions{Name: fmt.Sprintf("%s/%d", prefix, i), MaxParallelism: mp, KeyGroupLo: lo, KeyGroupHi: hi})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		subs[i] = subtask{s: s, lo: lo, hi: hi}
		subs[i].declare(t)
	}
	return subs
}

func (st *subtask) declare(t testing.TB) {
	var err error
	if st.v, err = NewValue(st.s, ValueDescriptor[int64]{Name: "count", Codec: Int64}); err != nil {
		t.Fatal(err)
	}
	if st.m, err = NewMap(st.s, MapDescriptor[string, float64]{Name: "features", KeyCodec: String, ValueCodec: Float64}); err != nil {
		t.Fatal(err)
	}
	if st.l, err = NewList(st.s, ListDescriptor[[]float32]{Name: "vectors", Codec: Float32s}); err != nil {
		t.Fatal(err)
	}
}

func fill(t testing.TB, subs []subtask, mp, n int) {
	for i := 0; i < n; i++ {
		k, h := testKey(i)
		st := &subs[arrowexec.SubtaskOfKeyGroup(arrowexec.KeyGroupOf(h, mp), mp, len(subs))]
		if err := st.v.Put(h, k, nil, int64(i)); err != nil {
			t.Fatal(err)
		}
		if err := st.m.Put(h, k, AppendWindow(nil, 0, 10), "f", float64(i)/2); err != nil {
			t.Fatal(err)
		}
		if err := st.l.Append(h, k, nil, []float32{float32(i), 1}); err != nil {
			t.Fatal(err)
		}
	}
}

func snapshotAll(t testing.TB, subs []subtask, root string) []string {
	var dirs []string
	for i, st := range subs {
		dir := filepath.Join(root, fmt.Sprint(i))
		if _, err := st.s.Snapshot(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	return dirs
}

// TestRestoreRedistribution snapshots 3 subtasks (MaxParallelism 16) and
// restores into 2 and 5: every key is found exactly once, in the subtask
// that owns its key group, with all its state.
func TestRestoreRedistribution(t *testing.T) {
	const mp, n = 16, 3000
	ctx := context.Background()
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.make(t, OSFS)
			old := openSubtasks(t, b, "old", mp, 3)
			fill(t, old, mp, n)
			dirs := snapshotAll(t, old, t.TempDir())
			for _, par := range []int{2, 5} {
				subs := openSubtasks(t, b, fmt.Sprint("new", par), mp, par)
				for i := range subs {
					if err := Restore(ctx, subs[i].s, dirs, subs[i].lo, subs[i].hi); err != nil {
						t.Fatal(err)
					}
					if err := checkOwnKeyGroups(subs[i].s); err != nil {
						t.Fatal(err)
					}
				}
				seen := make([]int, n)
				for si := range subs {
					err := subs[si].v.Range(func(e Entry, val int64) bool {
						var i int
						fmt.Sscanf(string(e.Key), "key-%d", &i)
						_, h := testKey(i)
						if want := arrowexec.SubtaskOfKeyGroup(arrowexec.KeyGroupOf(h, mp), mp, par); want != si || int64(i) != val {
							t.Errorf("par %d: key %d (value %d) in subtask %d, want subtask %d", par, i, val, si, want)
						}
						seen[i]++
						return true
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				for i, c := range seen {
					if c != 1 {
						t.Fatalf("par %d: key %d seen %d times", par, i, c)
					}
					k, h := testKey(i)
					st := &subs[arrowexec.SubtaskOfKeyGroup(arrowexec.KeyGroupOf(h, mp), mp, par)]
					f, ok, err := st.m.Get(h, k, AppendWindow(nil, 0, 10), "f")
					if err != nil || !ok || f != float64(i)/2 {
						t.Fatalf("par %d: key %d: map %v %v %v", par, i, f, ok, err)
					}
					l, err := st.l.Get(h, k, nil)
					if err != nil || len(l) != 1 || l[0][0] != float32(i) {
						t.Fatalf("par %d: key %d: list %v %v", par, i, l, err)
					}
				}
				var total int64
				for _, st := range subs {
					sz, err := st.s.Sizes(ctx)
					if err != nil {
						t.Fatal(err)
					}
					for _, z := range sz {
						total += z.Entries
					}
				}
				if total != 3*n {
					t.Fatalf("par %d: %d entries, want %d", par, total, 3*n)
				}
			}
		})
	}
}

// TestRestoreAcrossBackends restores a memory snapshot into Pebble and back.
func TestRestoreAcrossBackends(t *testing.T) {
	const mp, n = 8, 500
	ctx := context.Background()
	mem, peb := backends[0].make(t, OSFS), backends[1].make(t, OSFS)
	src := openSubtasks(t, mem, "src", mp, 2)
	fill(t, src, mp, n)
	dirs := snapshotAll(t, src, t.TempDir())
	dst := openSubtasks(t, peb, "dst", mp, 1)
	if err := Restore(ctx, dst[0].s, dirs, 0, mp); err != nil {
		t.Fatal(err)
	}
	dirs2 := snapshotAll(t, dst, t.TempDir())
	back := openSubtasks(t, mem, "back", mp, 3)
	for _, st := range back {
		if err := Restore(ctx, st.s, dirs2, st.lo, st.hi); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		k, h := testKey(i)
		st := &back[arrowexec.SubtaskOfKeyGroup(arrowexec.KeyGroupOf(h, mp), mp, 3)]
		if v, ok, err := st.v.Get(h, k, nil); err != nil || !ok || v != int64(i) {
			t.Fatalf("key %d: %v %v %v", i, v, ok, err)
		}
	}
}

func TestRestoreRejects(t *testing.T) {
	ctx := context.Background()
	b := backends[0].make(t, OSFS)
	src := openSubtasks(t, b, "src", 16, 2)
	fill(t, src, 16, 100)
	dirs := snapshotAll(t, src, t.TempDir())
	one := openSubtasks(t, b, "one", 16, 1)[0]
	if err := Restore(ctx, one.s, dirs[:1], 0, 16); !errors.Is(err, ErrIncompatibleSnapshot) {
		t.Fatalf("missing key groups: %v", err)
	}
	if err := Restore(ctx, one.s, []string{dirs[0], dirs[1], dirs[0]}, 0, 16); !errors.Is(err, ErrIncompatibleSnapshot) {
		t.Fatalf("overlap: %v", err)
	}
	other := openSubtasks(t, b, "mp32", 32, 1)[0]
	if err := Restore(ctx, other.s, dirs, 0, 32); !errors.Is(err, ErrIncompatibleSnapshot) {
		t.Fatalf("max parallelism: %v", err)
	}
	if err := Restore(ctx, one.s, []string{t.TempDir()}, 0, 16); !errors.Is(err, ErrNoManifest) {
		t.Fatalf("empty dir: %v", err)
	}
	half := openSubtasks(t, b, "half", 16, 2)[0]
	if err := Restore(ctx, half.s, dirs, 0, 16); !errors.Is(err, ErrKeyGroupOutOfRange) {
		t.Fatalf("range beyond the store: %v", err)
	}
	if _, err := src[0].s.Snapshot(ctx, dirs[0]); err == nil {
		t.Fatal("snapshot over an existing snapshot succeeded")
	}
	if err := Restore(ctx, one.s, dirs, 0, 16); err != nil {
		t.Fatalf("after rejected snapshot: %v", err)
	}
}

func flipByte(t *testing.T, name string, off int) {
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += len(data)
	}
	data[off] ^= 0x40
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCorruption(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string, m Manifest) string // returns the file named in the error
		want   string
	}{
		{"flip data byte", func(t *testing.T, dir string, m Manifest) string {
			f := filepath.Join(dir, m.Files[0].Name)
			flipByte(t, f, int(m.Files[0].Bytes/2))
			return f
		}, "checksum mismatch"},
		{"flip footer byte", func(t *testing.T, dir string, m Manifest) string {
			f := filepath.Join(dir, m.Files[1].Name)
			flipByte(t, f, -7)
			return f
		}, "checksum mismatch"},
		{"truncate", func(t *testing.T, dir string, m Manifest) string {
			f := filepath.Join(dir, m.Files[0].Name)
			if err := os.Truncate(f, m.Files[0].Bytes-3); err != nil {
				t.Fatal(err)
			}
			return f
		}, "size"},
		{"flip manifest byte", func(t *testing.T, dir string, m Manifest) string {
			f := filepath.Join(dir, ManifestName)
			flipByte(t, f, 20)
			return f
		}, "checksum mismatch"},
		{"truncate manifest", func(t *testing.T, dir string, m Manifest) string {
			f := filepath.Join(dir, ManifestName)
			if err := os.Truncate(f, 2); err != nil {
				t.Fatal(err)
			}
			return f
		}, "truncated"},
	}
	for _, bc := range backends {
		for _, c := range cases {
			t.Run(bc.name+"/"+c.name, func(t *testing.T) {
				b := bc.make(t, OSFS)
				src := openSubtasks(t, b, "src", 16, 1)
				fill(t, src, 16, 200)
				dir := snapshotAll(t, src, t.TempDir())[0]
				m, err := ReadManifest(OSFS, dir)
				if err != nil || len(m.Files) < 2 {
					t.Fatalf("manifest: %v %v", m, err)
				}
				file := c.damage(t, dir, m)
				dst := openSubtasks(t, b, "dst", 16, 1)[0]
				err = Restore(ctx, dst.s, []string{dir}, 0, 16)
				if !IsCorruption(err) {
					t.Fatalf("got %v, want a corruption error", err)
				}
				want := "state: corrupt snapshot file " + file + ": " + c.want
				if !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("got %q, want prefix %q", err, want)
				}
			})
		}
	}
}

// TestDecodeKeyGroupFraming checks the file's own framing, which guards a
// file whose manifest checksum was recomputed or lost.
func TestDecodeKeyGroupFraming(t *testing.T) {
	e := newMemEngine()
	k := appendEntryKey(nil, 3, 7, []byte("k"), nil)
	_ = e.set(k, []byte("v"))
	snap, _ := e.snapshot()
	var scratch []byte
	data, n, err := encodeKeyGroup(nil, snap, 3, nil, 0, &scratch)
	if err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if _, err := decodeKeyGroup("f", data, 3, func(k, v []byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeKeyGroup("f", data, 4, func(k, v []byte) error { return nil }); !IsCorruption(err) {
		t.Fatalf("wrong key group: %v", err)
	}
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 1
		if _, err := decodeKeyGroup("f", bad, 3, func(k, v []byte) error { return nil }); !IsCorruption(err) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	for i := 0; i < len(data); i++ {
		if _, err := decodeKeyGroup("f", data[:i], 3, func(k, v []byte) error { return nil }); !IsCorruption(err) {
			t.Fatalf("truncated to %d: %v", i, err)
		}
	}
}

// TestSnapshotFaults injects disk-full, sync and rename failures: the
// snapshot fails with the injected error, leaves no MANIFEST and no files,
// and the previous snapshot still restores.
func TestSnapshotFaults(t *testing.T) {
	ctx := context.Background()
	faults := []struct {
		name   string
		inject func(Op, string) error
		want   error
	}{
		{"disk full on data write", InjectAfter(OpWrite, "kg-*", 2, ErrDiskFull), syscall.ENOSPC},
		{"disk full on manifest", InjectAfter(OpWrite, ManifestName+"*", 0, ErrDiskFull), syscall.ENOSPC},
		{"failed rename", InjectAfter(OpRename, "kg-*", 3, syscall.EIO), syscall.EIO},
		{"failed manifest rename", InjectAfter(OpRename, ManifestName+"*", 0, syscall.EIO), syscall.EIO},
		{"failed sync", InjectAfter(OpSync, "", 1, syscall.EIO), syscall.EIO},
		{"failed dir sync", InjectAfter(OpSyncDir, "", 0, syscall.EIO), syscall.EIO},
		{"failed create", InjectAfter(OpCreate, "", 4, syscall.EACCES), syscall.EACCES},
	}
	for _, bc := range backends {
		for _, f := range faults {
			t.Run(bc.name+"/"+f.name, func(t *testing.T) {
				efs := &ErrorFS{FS: OSFS}
				b := bc.make(t, efs)
				src := openSubtasks(t, b, "src", 16, 1)
				fill(t, src, 16, 200)
				root := t.TempDir()
				good := filepath.Join(root, "chk-1")
				if _, err := src[0].s.Snapshot(ctx, good); err != nil {
					t.Fatal(err)
				}
				k, h := testKey(7)
				if err := src[0].v.Put(h, k, nil, -1); err != nil {
					t.Fatal(err)
				}
				efs.Inject = f.inject
				bad := filepath.Join(root, "chk-2")
				_, err := src[0].s.Snapshot(ctx, bad)
				if !errors.Is(err, f.want) {
					t.Fatalf("got %v, want %v", err, f.want)
				}
				efs.Inject = nil
				if _, err := ReadManifest(OSFS, bad); !errors.Is(err, ErrNoManifest) {
					t.Fatalf("failed snapshot has a manifest: %v", err)
				}
				if ents, _ := os.ReadDir(bad); len(ents) != 0 {
					t.Fatalf("failed snapshot left %d files (%s)", len(ents), ents[0].Name())
				}
				dst := openSubtasks(t, b, "dst", 16, 1)[0]
				if err := Restore(ctx, dst.s, []string{good}, 0, 16); err != nil {
					t.Fatal(err)
				}
				if v, ok, err := dst.v.Get(h, k, nil); err != nil || !ok || v != 7 {
					t.Fatalf("previous snapshot: %v %v %v", v, ok, err)
				}
				// The store still works after a failed snapshot.
				if _, err := src[0].s.Snapshot(ctx, filepath.Join(root, "chk-3")); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	t.Run("read error on restore", func(t *testing.T) {
		efs := &ErrorFS{FS: OSFS}
		b := backends[1].make(t, efs)
		src := openSubtasks(t, b, "src", 16, 1)
		fill(t, src, 16, 50)
		dir := snapshotAll(t, src, t.TempDir())[0]
		efs.Inject = InjectAfter(OpRead, "kg-*", 0, syscall.EIO)
		dst := openSubtasks(t, b, "dst", 16, 1)[0]
		err := Restore(ctx, dst.s, []string{dir}, 0, 16)
		if !errors.Is(err, syscall.EIO) || IsCorruption(err) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestKeyGroupBlobs round-trips state through arrowexec-style key group
// blobs, redistributing 2 subtasks into 3.
func TestKeyGroupBlobs(t *testing.T) {
	const mp, n = 16, 1000
	ctx := context.Background()
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.make(t, OSFS)
			old := openSubtasks(t, b, "old", mp, 2)
			fill(t, old, mp, n)
			all := map[int][]byte{}
			for _, st := range old {
				kgs, err := SnapshotKeyGroups(ctx, st.s)
				if err != nil {
					t.Fatal(err)
				}
				for kg, blob := range kgs {
					all[kg] = blob
				}
			}
			subs := openSubtasks(t, b, "new", mp, 3)
			for _, st := range subs {
				mine := map[int][]byte{}
				for kg := st.lo; kg < st.hi; kg++ {
					if blob, ok := all[kg]; ok {
						mine[kg] = blob
					}
				}
				if err := RestoreKeyGroups(ctx, st.s, mine); err != nil {
					t.Fatal(err)
				}
				if err := RestoreKeyGroups(ctx, st.s, all); !errors.Is(err, ErrKeyGroupOutOfRange) {
					t.Fatalf("foreign key groups: %v", err)
				}
			}
			for i := 0; i < n; i++ {
				k, h := testKey(i)
				st := &subs[arrowexec.SubtaskOfKeyGroup(arrowexec.KeyGroupOf(h, mp), mp, 3)]
				if v, ok, err := st.v.Get(h, k, nil); err != nil || !ok || v != int64(i) {
					t.Fatalf("key %d: %v %v %v", i, v, ok, err)
				}
			}
			var kg int
			for kg = range all {
				break
			}
			all[kg][len(all[kg])/2] ^= 1
			st := subs[arrowexec.SubtaskOfKeyGroup(kg, mp, 3)]
			mine := map[int][]byte{kg: all[kg]}
			if err := RestoreKeyGroups(ctx, st.s, mine); !IsCorruption(err) {
				t.Fatalf("flipped blob: %v", err)
			}
		})
	}
}
