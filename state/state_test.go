package state

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

func sign(c int) int { return cmp.Compare(c, 0) }

func TestCodecOrderAndRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	ints := []int64{math.MinInt64, -1, 0, 1, math.MaxInt64, -256, 255}
	for i := 0; i < 200; i++ {
		ints = append(ints, rng.Int63()-rng.Int63())
	}
	for _, a := range ints {
		for _, b := range ints[:20] {
			if got := bytes.Compare(Int64.Append(nil, a), Int64.Append(nil, b)); got != cmp.Compare(a, b) {
				t.Fatalf("int64 order %d vs %d: %d", a, b, got)
			}
		}
		if v, err := Int64.Decode(Int64.Append(nil, a)); err != nil || v != a {
			t.Fatalf("int64 %d: %d %v", a, v, err)
		}
	}
	floats := []float64{math.Inf(-1), -1e300, -1, -1e-300, 0, 1e-300, 1, 1e300, math.Inf(1)}
	for i := 0; i < 100; i++ {
		floats = append(floats, rng.NormFloat64()*1e6)
	}
	for _, a := range floats {
		for _, b := range floats[:9] {
			if got := bytes.Compare(Float64.Append(nil, a), Float64.Append(nil, b)); got != cmp.Compare(a, b) {
				t.Fatalf("float64 order %g vs %g: %d", a, b, got)
			}
		}
		if v, err := Float64.Decode(Float64.Append(nil, a)); err != nil || v != a {
			t.Fatalf("float64 %g: %g %v", a, v, err)
		}
	}
	if s, _ := String.Decode(String.Append(nil, "héllo\x00")); s != "héllo\x00" {
		t.Fatal(s)
	}
	src := []byte{0, 1, 2}
	b, _ := Bytes.Decode(src)
	src[0] = 9
	if b[0] != 0 {
		t.Fatal("Bytes.Decode kept its input")
	}
	f32, err := Float32s.Decode(Float32s.Append(nil, []float32{1.5, -2, float32(math.Inf(1))}))
	if err != nil || len(f32) != 3 || f32[0] != 1.5 || f32[1] != -2 {
		t.Fatal(f32, err)
	}
	f64, err := Float64s.Decode(Float64s.Append(nil, []float64{1.5, -2}))
	if err != nil || len(f64) != 2 || f64[1] != -2 {
		t.Fatal(f64, err)
	}
	type point struct {
		X, Y int32
		W    float64
		Ok   bool
	}
	pc, err := Fixed[point]()
	if err != nil {
		t.Fatal(err)
	}
	p, err := pc.Decode(pc.Append(nil, point{1, -2, 0.5, true}))
	if err != nil || p != (point{1, -2, 0.5, true}) {
		t.Fatal(p, err)
	}
	if _, err := Fixed[[]int](); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Fixed of a slice: %v", err)
	}
	for _, bad := range []error{
		func() error { _, err := Int64.Decode([]byte{1}); return err }(),
		func() error { _, err := Float64.Decode(nil); return err }(),
		func() error { _, err := Float32s.Decode([]byte{1, 2, 3}); return err }(),
		func() error { _, err := Float64s.Decode([]byte{1}); return err }(),
		func() error { _, err := pc.Decode([]byte{1}); return err }(),
	} {
		if !errors.Is(bad, ErrCodec) {
			t.Fatalf("bad input: %v", bad)
		}
	}
}

func TestEscapingOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	gen := func() []byte {
		b := make([]byte, rng.Intn(5))
		for i := range b {
			b[i] = []byte{0, 1, 0xff, 0xfe, 'a'}[rng.Intn(5)]
		}
		return b
	}
	for i := 0; i < 20000; i++ {
		a, x, b, y := gen(), gen(), gen(), gen()
		ea := appendEscaped(appendEscaped(nil, a), x)
		eb := appendEscaped(appendEscaped(nil, b), y)
		want := bytes.Compare(a, b)
		if want == 0 {
			want = bytes.Compare(x, y)
		}
		if got := bytes.Compare(ea, eb); got != want {
			t.Fatalf("(%x,%x) vs (%x,%x): %d, want %d", a, x, b, y, got, want)
		}
		// a key is never a prefix-match of another key's range
		if !bytes.Equal(a, b) && bytes.HasPrefix(eb, appendEscaped(nil, a)) {
			t.Fatalf("%x's range contains %x", a, b)
		}
		k := appendEntryKey(nil, 513, 99, a, x)
		k = append(k, y...)
		p, _, err := parseEntryKey(nil, k)
		if err != nil || p.kg != 513 || p.id != 99 || !bytes.Equal(p.key, a) || !bytes.Equal(p.ns, x) || !bytes.Equal(p.mapKey, y) {
			t.Fatalf("parse %x: %+v %v", k, p, err)
		}
	}
}

func TestEncodeKeys(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ib := array.NewInt64Builder(mem)
	ib.AppendValues([]int64{-5, 3, -5, 100, 0}, []bool{true, true, true, true, false})
	ints := ib.NewArray()
	defer ints.Release()
	ib.Release()
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"b", "a\x00", "b", "a", "z"}, nil)
	strs := sb.NewArray()
	defer strs.Release()
	sb.Release()
	cols := []arrow.Array{ints, strs}
	var ks Keys
	if err := EncodeKeys(cols, &ks); err != nil {
		t.Fatal(err)
	}
	hashes := make([]uint64, 5)
	if err := arrowexec.HashColumns(cols, hashes); err != nil {
		t.Fatal(err)
	}
	for i, h := range hashes {
		if ks.Hashes[i] != h {
			t.Fatalf("row %d: hash %x, want %x", i, ks.Hashes[i], h)
		}
	}
	if !bytes.Equal(ks.Key(0), ks.Key(2)) || ks.Hashes[0] != ks.Hashes[2] {
		t.Fatal("equal rows encode differently")
	}
	// order: null < -5 < 3 < 100, and within equal ints by string
	order := []int{4, 0, 1, 3}
	for i := 1; i < len(order); i++ {
		if bytes.Compare(ks.Key(order[i-1]), ks.Key(order[i])) >= 0 {
			t.Fatalf("row %d does not sort before row %d", order[i-1], order[i])
		}
	}
	if len(ks.Namespace(1)) != 0 {
		t.Fatal("EncodeKeys set a namespace")
	}
	fb := array.NewFloat16Builder(mem)
	fb.AppendNull()
	bad := fb.NewArray()
	defer bad.Release()
	fb.Release()
	if err := EncodeKeys([]arrow.Array{bad}, &ks); err == nil {
		t.Fatal("float16 keys accepted")
	}
}

func TestWindowNamespaces(t *testing.T) {
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			st := openSubtasks(t, bc.make(t, OSFS), "w", 4, 1)[0]
			k, h := []byte("k"), uint64(1)
			wins := [][2]int64{{10, 20}, {-10, 0}, {0, 20}, {5, 10}, {0, 10}}
			for i, w := range wins {
				if err := st.v.Put(h, k, AppendWindow(nil, w[0], w[1]), int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			var got [][2]int64
			err := st.v.Namespaces(h, k, func(ns []byte, _ int64) bool {
				s, e, err := DecodeWindow(ns)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, [2]int64{s, e})
				return true
			})
			want := [][2]int64{{-10, 0}, {0, 10}, {5, 10}, {0, 20}, {10, 20}}
			if err != nil || len(got) != len(want) {
				t.Fatal(got, err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("windows in order %v, want %v", got, want)
				}
			}
			if err := st.v.ClearKey(h, k); err != nil {
				t.Fatal(err)
			}
			if err := st.v.Namespaces(h, k, func([]byte, int64) bool { t.Fatal("cleared key has windows"); return false }); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.make(t, OSFS)
			s, err := b.Open(ctx, StoreOptions{Name: "e/1", MaxParallelism: 8, KeyGroupLo: 2, KeyGroupHi: 4})
			if err != nil {
				t.Fatal(err)
			}
			v, err := NewValue(s, ValueDescriptor[int64]{Name: "counts", Codec: Int64})
			if err != nil {
				t.Fatal(err)
			}
			err = v.Put(9, []byte("x"), nil, 1) // key group 1
			if !errors.Is(err, ErrKeyGroupOutOfRange) || !strings.Contains(err.Error(), "counts") {
				t.Fatalf("out of range: %v", err)
			}
			var ks Keys
			ks.Append(2, []byte("a"), nil)
			ks.Append(7, []byte("b"), nil)
			if err := v.PutMany(&ks, []int64{1, 2}); !errors.Is(err, ErrKeyGroupOutOfRange) {
				t.Fatalf("PutMany out of range: %v", err)
			}
			if err := v.PutMany(&ks, []int64{1}); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("PutMany short: %v", err)
			}
			if _, err := NewList(s, ListDescriptor[int64]{Name: "counts", Codec: Int64}); !errors.Is(err, ErrStateMismatch) {
				t.Fatalf("redeclared kind: %v", err)
			}
			if _, err := NewValue(s, ValueDescriptor[int64]{Name: "counts", Codec: Int64, TTL: time.Second}); !errors.Is(err, ErrStateMismatch) {
				t.Fatalf("redeclared TTL: %v", err)
			}
			if _, err := NewValue(s, ValueDescriptor[int64]{Name: "counts", Codec: Int64}); err != nil {
				t.Fatalf("same declaration twice: %v", err)
			}
			if _, err := NewValue[int64](s, ValueDescriptor[int64]{Name: "nocodec"}); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("no codec: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second close: %v", err)
			}
			if _, _, err := v.Get(2, []byte("a"), nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("after close: %v", err)
			}
			if _, err := s.Snapshot(ctx, t.TempDir()); !errors.Is(err, ErrClosed) {
				t.Fatalf("snapshot after close: %v", err)
			}
			for _, so := range []StoreOptions{
				{Name: "", MaxParallelism: 8, KeyGroupHi: 8},
				{Name: "x", MaxParallelism: 0},
				{Name: "x", MaxParallelism: 1 << 17, KeyGroupHi: 1},
				{Name: "x", MaxParallelism: 8, KeyGroupLo: 5, KeyGroupHi: 4},
				{Name: "x", MaxParallelism: 8, KeyGroupHi: 9},
				{Name: "../x", MaxParallelism: 8, KeyGroupHi: 8},
				{Name: "/abs", MaxParallelism: 8, KeyGroupHi: 8},
			} {
				if _, err := b.Open(ctx, so); !errors.Is(err, ErrInvalidOptions) {
					t.Fatalf("%+v: %v", so, err)
				}
			}
		})
	}
	if _, err := NewPebbleBackend(PebbleOptions{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("no dir: %v", err)
	}
	dir := t.TempDir()
	pb, _ := NewPebbleBackend(PebbleOptions{Dir: dir})
	// A working copy left by a process killed before Close (nobody holds
	// its lock) is removed and the store opens empty; a store that is open
	// is not opened twice.
	if err := os.MkdirAll(filepath.Join(dir, "stale"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stale", "junk"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := pb.Open(ctx, StoreOptions{Name: "stale", MaxParallelism: 1, KeyGroupHi: 1})
	if err != nil {
		t.Fatalf("stale working copy: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stale", "junk")); !os.IsNotExist(err) {
		t.Fatalf("stale working copy kept: %v", err)
	}
	if _, err := pb.Open(ctx, StoreOptions{Name: "stale", MaxParallelism: 1, KeyGroupHi: 1}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("a store opened twice: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := pb.Open(ctx, StoreOptions{Name: "gone", MaxParallelism: 1, KeyGroupHi: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, "gone")); !os.IsNotExist(err) {
		t.Fatalf("store directory not removed on close: %v", err)
	}
}

func TestTTL(t *testing.T) {
	ctx := context.Background()
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(100, 0)}
			var b Backend
			if bc.name == "memory" {
				b = NewMemoryBackend(Options{Clock: clock.Now})
			} else {
				pb, err := NewPebbleBackend(PebbleOptions{Options: Options{Clock: clock.Now}, Dir: t.TempDir()})
				if err != nil {
					t.Fatal(err)
				}
				b = pb
			}
			s, err := b.Open(ctx, StoreOptions{Name: "ttl", MaxParallelism: 4, KeyGroupHi: 4})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			v := must(NewValue(s, ValueDescriptor[string]{Name: "v", Codec: String, TTL: time.Minute}))
			l := must(NewList(s, ListDescriptor[int64]{Name: "l", Codec: Int64, TTL: time.Minute}))
			for i := 0; i < 10; i++ {
				_ = v.Put(uint64(i), []byte{byte(i)}, nil, "x")
				_ = l.Append(uint64(i), []byte{byte(i)}, nil, 1)
			}
			clock.now = clock.now.Add(30 * time.Second)
			for i := 0; i < 5; i++ {
				_ = v.Put(uint64(i), []byte{byte(i)}, nil, "y") // refreshes
				_ = l.Append(uint64(i), []byte{byte(i)}, nil, 2)
			}
			clock.now = clock.now.Add(45 * time.Second) // first writes expired
			for i := 0; i < 10; i++ {
				got, ok, _ := v.Get(uint64(i), []byte{byte(i)}, nil)
				if (i < 5) != ok || ok && got != "y" {
					t.Fatalf("value %d: %q %v", i, got, ok)
				}
			}
			lst, _ := l.Get(0, []byte{0}, nil)
			if len(lst) != 1 || lst[0] != 2 {
				t.Fatalf("list after partial expiry: %v", lst)
			}
			m, err := s.Snapshot(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if m.Entries() != 10 { // 5 values + 5 lists
				t.Fatalf("snapshot holds %d entries, want 10", m.Entries())
			}
			n, err := s.PurgeExpired(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Values 5..9 were already dropped lazily by Get, list 0 by
			// l.Get; lists 1..4 lose one element each, lists 5..9 their only one.
			if n != 4+5 {
				t.Fatalf("purged %d, want 9", n)
			}
			sz, _ := s.Sizes(ctx)
			for _, z := range sz {
				if z.Entries != 5 {
					t.Fatalf("%s: %d entries after expiry, want 5", z.Name, z.Entries)
				}
			}
			raw := 0
			_ = s.base().eng.scan(nil, nil, func(k, v []byte) (bool, error) { raw++; return true, nil })
			if raw != 10 {
				t.Fatalf("%d raw entries after purge, want 10", raw)
			}
			clock.now = clock.now.Add(time.Hour)
			if n, _ := s.PurgeExpired(ctx); n != 10 {
				t.Fatalf("purged %d, want 10", n)
			}
			raw = 0
			_ = s.base().eng.scan(nil, nil, func(k, v []byte) (bool, error) { raw++; return true, nil })
			if raw != 0 {
				t.Fatalf("%d raw entries after purging everything", raw)
			}
		})
	}
}

// TestPendingSnapshotConcurrent writes a snapshot from another goroutine
// while the store keeps changing; the snapshot holds the state at Begin.
func TestPendingSnapshotConcurrent(t *testing.T) {
	ctx := context.Background()
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.make(t, OSFS)
			st := openSubtasks(t, b, "c", 8, 1)[0]
			fill(t, []subtask{st}, 8, 2000)
			p, err := st.s.BeginSnapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			done := make(chan error, 1)
			go func() { _, err := p.Write(ctx, dir); done <- err }()
			for i := 0; i < 2000; i++ {
				k, h := testKey(i)
				_ = st.v.Put(h, k, nil, -1)
				_ = st.l.Append(h, k, nil, []float32{-1})
				if i%3 == 0 {
					_ = st.m.Clear(h, k, AppendWindow(nil, 0, 10))
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if _, err := p.Write(ctx, t.TempDir()); !errors.Is(err, ErrSnapshotDone) {
				t.Fatalf("second write: %v", err)
			}
			dst := openSubtasks(t, b, "d", 8, 1)[0]
			if err := Restore(ctx, dst.s, []string{dir}, 0, 8); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2000; i++ {
				k, h := testKey(i)
				v, ok, _ := dst.v.Get(h, k, nil)
				l, _ := dst.l.Get(h, k, nil)
				_, mok, _ := dst.m.Get(h, k, AppendWindow(nil, 0, 10), "f")
				if !ok || v != int64(i) || len(l) != 1 || !mok {
					t.Fatalf("key %d: %v %v %v %v", i, v, ok, l, mok)
				}
			}
		})
	}
}

// TestCloseWithPendingSnapshot closes a store between BeginSnapshot and
// Write: the write still succeeds and the engine closes after it.
func TestCloseWithPendingSnapshot(t *testing.T) {
	ctx := context.Background()
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.make(t, OSFS)
			st := openSubtasks(t, b, "p", 4, 1)[0]
			fill(t, []subtask{st}, 4, 100)
			p1, err := st.s.BeginSnapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			p2, err := st.s.BeginSnapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := st.s.BeginSnapshot(ctx); !errors.Is(err, ErrClosed) {
				t.Fatalf("begin after close: %v", err)
			}
			p2.Discard()
			dir := t.TempDir()
			m, err := p1.Write(ctx, dir)
			if err != nil || m.Entries() != 300 {
				t.Fatalf("write after close: %d entries, %v", m.Entries(), err)
			}
			p1.Discard() // no-op after Write
			if pb, ok := b.(*PebbleBackend); ok {
				if _, err := os.Stat(filepath.Join(pb.opts.Dir, "p", "0")); !os.IsNotExist(err) {
					t.Fatalf("engine not closed after the last pending snapshot: %v", err)
				}
			}
		})
	}
}
