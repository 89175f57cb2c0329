package parquet

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"
)

// fuzzSeedFile is a small valid file: two row groups of 8 rows of every
// column type of pruneSchema, snappy, with the stored ARROW:schema.
// TestFuzzSeedFile checks it and rewrites it with -rewrite.
var fuzzSeedFile = filepath.Join("testdata", "small.parquet")

func TestFuzzSeedFile(t *testing.T) {
	if *rewrite {
		mem := memory.NewGoAllocator()
		rng := rand.New(rand.NewPCG(5, 6))
		a, b := pruneRecord(rng, mem, 8), pruneRecord(rng, mem, 8)
		defer a.Release()
		defer b.Release()
		writeFile(t, fuzzSeedFile, pruneSchema, []arrow.RecordBatch{a, b}, pq.WithMaxRowGroupLength(8))
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, dec := range []string{DecoderArrow, DecoderParquetGo} {
		src, err := New(Options{Paths: []string{fuzzSeedFile}, Decoder: dec})
		if err != nil {
			t.Fatal(err)
		}
		rows := 0
		for _, bs := range must2(readAll(t, src, mem, 1)) {
			for _, b := range bs {
				rows += int(b.NumRows())
				b.Release()
			}
		}
		if _, rgs, _, _, _ := src.Stats(); rows != 16 || rgs != 2 {
			t.Fatalf("%s: %s holds %d rows in %d row groups, want 16 in 2 (rewrite it with -rewrite)", dec, fuzzSeedFile, rows, rgs)
		}
	}
}

func must2[A, B any](a A, _ B) A { return a }

// FuzzRead reads mutated bytes of testdata/small.parquet with both
// decoders: an error is fine if it names the file, a panic, a leak or an
// unbounded allocation is not. Seeds: the file, a few corruptions of it and
// testdata/fuzz/FuzzRead.
func FuzzRead(f *testing.F) {
	good, err := os.ReadFile(fuzzSeedFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[len(good)-64:])
	f.Add([]byte("PAR1PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		b := append([]byte(nil), good...)
		for range 4 {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		f.Add(b)
	}
	p := filepath.Join(f.TempDir(), "x.parquet")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		for _, dec := range []string{DecoderArrow, DecoderParquetGo} {
			err := readErr([]string{p}, dec, mem)
			if err != nil && !strings.HasPrefix(err.Error(), "parquet: file "+p) {
				t.Fatalf("%s: error does not name the file: %v", dec, err)
			}
		}
	})
}
