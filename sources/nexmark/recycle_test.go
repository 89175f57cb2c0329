package nexmark

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
)

// poisoned is an allocator whose fresh memory is garbage (0xA5), so that
// a column relying on zeroed memory shows up in the output.
type poisoned struct{ memory.Allocator }

func (p poisoned) Allocate(n int) []byte {
	b := p.Allocator.Allocate(n)
	for i := range b {
		b[i] = 0xA5
	}
	return b
}

func (p poisoned) Reallocate(n int, b []byte) []byte {
	nb := p.Allocate(n)
	copy(nb, b)
	p.Free(b)
	return nb
}

// digestCase is one configuration of the output digests.
type digestCase struct {
	table         Table
	seed          int64
	group, events int
}

func (c digestCase) String() string {
	return fmt.Sprintf("%s seed=%d group=%d events=%d", c.table, c.seed, c.group, c.events)
}

func digestCases() []digestCase {
	var cs []digestCase
	for _, tab := range Tables {
		cs = append(cs, digestCase{tab, 3, 1, 150_000}, digestCase{tab, 4, 10, 60_000})
	}
	return cs
}

// digest hashes the sorted rendered rows.
func digest(rows []string) string {
	slices.Sort(rows)
	h := sha256.New()
	for _, r := range rows {
		io.WriteString(h, r)
		h.Write([]byte{'\n'})
	}
	return fmt.Sprintf("%d %x", len(rows), h.Sum(nil)[:16])
}

// batchRows renders the rows of Generator.Batch over [0, events) in
// blocks of 8192 positions, with fresh Go memory.
func batchRows(t *testing.T, c digestCase) []string {
	g, err := New(Options{Seed: c.seed, OutOfOrderGroupSize: c.group})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for lo := int64(0); lo < int64(c.events); lo += 8192 {
		b, err := g.Batch(memory.DefaultAllocator, c.table, lo, min(lo+8192, int64(c.events)))
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, rowStrings([]arrow.RecordBatch{b})...)
		b.Release()
	}
	return rows
}

// readerRows renders the rows of par readers of 1000-position batches on
// poisoned, checked memory, keeping up to 5 batches alive and releasing a
// random one of them after each read (so buffers are recycled while others
// are still held, and some only after the reader is closed).
func readerRows(t *testing.T, c digestCase, par int, mem memory.Allocator) []string {
	src, err := NewSource(Options{Table: c.table, Seed: c.seed, OutOfOrderGroupSize: c.group, Events: int64(c.events), BatchEvents: 1000})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(c.seed), uint64(c.group)))
	var rows []string
	var held []arrow.RecordBatch
	for i := range par {
		r, err := src.Open(context.Background(), &arrowexec.Task{Subtask: i, Parallelism: par, Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		for {
			b, err := r.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, rowStrings([]arrow.RecordBatch{b})...)
			held = append(held, b)
			if len(held) > 5 {
				k := rng.IntN(len(held))
				held[k].Release()
				held = slices.Delete(held, k, k+1)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range held { // after Close: straight to mem
		b.Release()
	}
	return rows
}

var updateDigests = flag.Bool("update-digests", false, "rewrite testdata/output.golden")

// TestOutputDigestGolden pins the generated events themselves: digests of
// every row of every table for two seeds (one with out-of-order groups),
// recorded from the generator as it was before its buffers were recycled
// and its strings written in place (go test -run TestOutputDigestGolden
// -update-digests rewrites the file). Generator.Batch on fresh memory and
// readers at parallelism 3 on recycled, poisoned memory must both match,
// and the checked allocator must end at zero.
func TestOutputDigestGolden(t *testing.T) {
	var sb strings.Builder
	for _, c := range digestCases() {
		direct := digest(batchRows(t, c))
		mem := memory.NewCheckedAllocator(poisoned{memory.NewGoAllocator()})
		viaReader := digest(readerRows(t, c, 3, mem))
		mem.AssertSize(t, 0)
		if direct != viaReader {
			t.Fatalf("%s: Generator.Batch gives %s, readers on recycled memory %s", c, direct, viaReader)
		}
		fmt.Fprintf(&sb, "%s: %s\n", c, direct)
	}
	checkGolden(t, "output.golden", sb.String(), *updateDigests)
}

// countingAlloc counts the allocations that reach it.
type countingAlloc struct {
	memory.Allocator
	n int
}

func (c *countingAlloc) Allocate(n int) []byte { c.n++; return c.Allocator.Allocate(n) }

// TestRecyclerReuses checks that a reader whose batches are released
// before the next asks the allocator below for its big buffers only once:
// after the first batch, only small ones (< recycleMinBytes) reach it.
func TestRecyclerReuses(t *testing.T) {
	checked := memory.NewCheckedAllocator(memory.NewGoAllocator())
	count := &countingAlloc{Allocator: checked}
	src, err := NewSource(Options{Table: Bid, BatchEvents: 4096})
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Open(context.Background(), &arrowexec.Task{Parallelism: 1, Mem: count})
	if err != nil {
		t.Fatal(err)
	}
	var first int
	for i := range 20 {
		b, err := r.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		b.Release()
		if i == 0 {
			first = count.n
		}
	}
	// Bids: 4 int64 columns and 3 string columns (offsets and data): 10
	// big buffers. A string data buffer of a larger class than before may
	// be allocated anew now and then.
	if first < 10 {
		t.Fatalf("first batch made %d allocations, want at least 10", first)
	}
	if extra := count.n - first; extra > 10 {
		t.Fatalf("19 more batches made %d more allocations, want buffers reused", extra)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	checked.AssertSize(t, 0)
}

func TestClassSize(t *testing.T) {
	for n := recycleMinBytes; n < 1<<22; n += 1 + n/37 {
		c := classSize(n)
		if c < n || c > n+n/8+1 {
			t.Fatalf("classSize(%d) = %d, want in [n, n+n/8]", n, c)
		}
		if classSize(c) != c {
			t.Fatalf("classSize(%d) = %d is not a class (classSize gives %d)", n, c, classSize(c))
		}
	}
}
