package state

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
)

// Benchmarks over one store owning all 128 key groups, with
// -state.benchkeys keys (default 1M). ns/op is per key for the get/put
// benchmarks and per snapshot/restore of all keys for the others.
//
//	go test ./state -run - -bench . -benchtime 1x     # snapshot/restore once
//	go test ./state -run - -bench 'Get|Put' -state.benchkeys 1000000

var (
	benchKeys  = flag.Int("state.benchkeys", 1_000_000, "benchmarks: number of keys")
	benchCache = flag.Int64("state.benchcache", 0, "benchmarks: Pebble block cache bytes (0: default)")
	benchRaw   = flag.Bool("state.benchnocompress", false, "benchmarks: Pebble without block compression")
)

const benchMaxPar = 128

var benchBackends = []string{"memory", "pebble"}

type benchFixture struct {
	b     Backend
	s     Store
	v     *Value[int64]
	keys  *Keys
	perm  []int
	root  string
	count int
}

var fixtures = map[string]*benchFixture{}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	for _, f := range fixtures {
		f.s.Close()
		os.RemoveAll(f.root)
	}
	os.Exit(code)
}

func benchCompression() pebble.Compression {
	if *benchRaw {
		return pebble.NoCompression
	}
	return pebble.DefaultCompression
}

func benchKeySet(n int) *Keys {
	ks := &Keys{}
	for i := 0; i < n; i++ {
		k, h := testKey(i)
		ks.Append(h, k, nil)
	}
	return ks
}

func newBenchBackend(tb testing.TB, name, root string) Backend {
	if name == "memory" {
		return NewMemoryBackend(Options{})
	}
	b, err := NewPebbleBackend(PebbleOptions{Dir: filepath.Join(root, "pebble"), CacheSize: *benchCache, Compression: benchCompression()})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fixture returns a store of backend name loaded with benchKeys keys, built
// once per process.
func fixture(b *testing.B, name string) *benchFixture {
	if f := fixtures[name]; f != nil {
		return f
	}
	b.StopTimer()
	defer b.StartTimer()
	// Keep one fixture alive: a million-node memory fixture would otherwise
	// tax the Pebble runs with its GC scanning.
	for other, f := range fixtures {
		f.s.Close()
		os.RemoveAll(f.root)
		delete(fixtures, other)
	}
	runtime.GC()
	root, err := os.MkdirTemp("", "state-bench-")
	if err != nil {
		b.Fatal(err)
	}
	f := &benchFixture{root: root, count: *benchKeys}
	f.b = newBenchBackend(b, name, root)
	f.s, err = f.b.Open(context.Background(), StoreOptions{Name: "fixture", MaxParallelism: benchMaxPar, KeyGroupHi: benchMaxPar})
	if err != nil {
		b.Fatal(err)
	}
	f.v = must(NewValue(f.s, ValueDescriptor[int64]{Name: "v", Codec: Int64}))
	f.keys = benchKeySet(f.count)
	f.perm = rand.New(rand.NewSource(1)).Perm(f.count)
	start := time.Now()
	if err := loadValues(f.v, f.keys, 0); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: loaded %d keys in %v", name, f.count, time.Since(start))
	if pe, ok := f.s.base().eng.(*pebbleEngine); ok {
		// Settle the LSM so reads do not race the load's flushes and
		// compactions (steady state, not the minute after a bulk load).
		start = time.Now()
		if err := pe.db.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := pe.db.Compact([]byte{0}, []byte{0xff, 0xff, 0xff}, true); err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: flushed and compacted in %v", name, time.Since(start))
	}
	if d := f.s.DiskBytes(); d > 0 {
		b.Logf("%s: %d bytes on disk after load", name, d)
	}
	fixtures[name] = f
	return f
}

// loadValues writes every key of ks in batches of 4096.
func loadValues(v *Value[int64], ks *Keys, add int64) error {
	var batch Keys
	vals := make([]int64, 4096)
	for lo := 0; lo < ks.Len(); lo += 4096 {
		batch.Reset()
		hi := min(lo+4096, ks.Len())
		for i := lo; i < hi; i++ {
			batch.Append(ks.Hashes[i], ks.Key(i), nil)
			vals[i-lo] = int64(i) + add
		}
		if err := v.PutMany(&batch, vals[:hi-lo]); err != nil {
			return err
		}
	}
	return nil
}

func reportKeysPerSec(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "keys/s")
}

func BenchmarkValuePut(b *testing.B) {
	for _, name := range benchBackends {
		b.Run(name, func(b *testing.B) {
			f := fixture(b, name)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j := f.perm[i%f.count]
				if err := f.v.Put(f.keys.Hashes[j], f.keys.Key(j), nil, int64(i)); err != nil {
					b.Fatal(err)
				}
			}
			reportKeysPerSec(b, b.N)
		})
	}
}

func BenchmarkValueGet(b *testing.B) {
	for _, name := range benchBackends {
		b.Run(name, func(b *testing.B) {
			f := fixture(b, name)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j := f.perm[i%f.count]
				if _, ok, err := f.v.Get(f.keys.Hashes[j], f.keys.Key(j), nil); err != nil || !ok {
					b.Fatal(j, ok, err)
				}
			}
			reportKeysPerSec(b, b.N)
		})
	}
}

const benchBatch = 1024

// randomBatches builds batches of benchBatch random keys.
func randomBatches(f *benchFixture, n int) []*Keys {
	out := make([]*Keys, n)
	for bi := range out {
		ks := &Keys{}
		for i := 0; i < benchBatch; i++ {
			j := f.perm[(bi*benchBatch+i)%f.count]
			ks.Append(f.keys.Hashes[j], f.keys.Key(j), nil)
		}
		out[bi] = ks
	}
	return out
}

func BenchmarkValuePutMany(b *testing.B) {
	for _, name := range benchBackends {
		b.Run(name, func(b *testing.B) {
			f := fixture(b, name)
			batches := randomBatches(f, f.count/benchBatch)
			vals := make([]int64, benchBatch)
			b.ReportAllocs()
			b.ResetTimer()
			rows := 0
			for ; rows < b.N; rows += benchBatch {
				if err := f.v.PutMany(batches[(rows/benchBatch)%len(batches)], vals); err != nil {
					b.Fatal(err)
				}
			}
			reportKeysPerSec(b, rows)
		})
	}
}

func BenchmarkValueGetMany(b *testing.B) {
	for _, name := range benchBackends {
		b.Run(name, func(b *testing.B) {
			f := fixture(b, name)
			batches := randomBatches(f, f.count/benchBatch)
			out := make([]int64, benchBatch)
			found := make([]bool, benchBatch)
			b.ReportAllocs()
			b.ResetTimer()
			rows := 0
			for ; rows < b.N; rows += benchBatch {
				if err := f.v.GetMany(batches[(rows/benchBatch)%len(batches)], out, found); err != nil {
					b.Fatal(err)
				}
			}
			reportKeysPerSec(b, rows)
		})
	}
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func BenchmarkSnapshot(b *testing.B) {
	for _, name := range benchBackends {
		b.Run(name, func(b *testing.B) {
			f := fixture(b, name)
			b.ReportAllocs()
			b.ResetTimer()
			var bytes int64
			for i := 0; i < b.N; i++ {
				dir := filepath.Join(f.root, fmt.Sprintf("snap-bench-%d", i))
				m, err := f.s.Snapshot(context.Background(), dir)
				if err != nil {
					b.Fatal(err)
				}
				bytes = m.Bytes()
				b.StopTimer()
				os.RemoveAll(dir)
				b.StartTimer()
			}
			b.ReportMetric(float64(bytes)/1e6, "MB")
			reportKeysPerSec(b, b.N*f.count)
		})
	}
}

func BenchmarkRestore(b *testing.B) {
	for _, name := range benchBackends {
		b.Run(name, func(b *testing.B) {
			f := fixture(b, name)
			dir := filepath.Join(f.root, "snap-restore")
			if _, err := os.Stat(dir); err != nil {
				b.StopTimer()
				if _, err := f.s.Snapshot(context.Background(), dir); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := f.b.Open(context.Background(), StoreOptions{Name: fmt.Sprintf("restore-%d-%d", b.N, i), MaxParallelism: benchMaxPar, KeyGroupHi: benchMaxPar})
				if err != nil {
					b.Fatal(err)
				}
				if err := Restore(context.Background(), s, []string{dir}, 0, benchMaxPar); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			reportKeysPerSec(b, b.N*f.count)
		})
	}
}
