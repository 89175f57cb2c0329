package agg

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// hashInts hashes the values lo..hi-1 the way the operator does
// (arrowexec.HashColumns over the value column).
func hashInts(t testing.TB, mem memory.Allocator, lo, hi int64) []uint64 {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	for v := lo; v < hi; v++ {
		b.Append(v)
	}
	a := b.NewArray()
	defer a.Release()
	out := make([]uint64, a.Len())
	if err := arrowexec.HashColumns([]arrow.Array{a}, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHLLErrorBound checks the estimate against the exact count for sizes
// across the linear-counting and raw ranges: every estimate within 4
// standard errors (1.04/sqrt(2^14) = 0.81%), and the mean absolute error
// over disjoint value ranges within 1.5 standard errors.
func TestHLLErrorBound(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const se = 1.04 / 128
	for _, n := range []int64{10, 100, 1000, 10_000, 40_000, 60_000, 100_000, 1_000_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			trials := 8
			if n >= 1_000_000 {
				trials = 3
			}
			var sumErr float64
			for trial := 0; trial < trials; trial++ {
				var s HLL
				lo := int64(trial) * 10_000_000
				for _, h := range hashInts(t, mem, lo, lo+n) {
					s.AddHash(h)
				}
				// Duplicates do not count.
				for _, h := range hashInts(t, mem, lo, lo+n/2) {
					s.AddHash(h)
				}
				est := s.Estimate()
				rel := math.Abs(float64(est)-float64(n)) / float64(n)
				if n <= 100 && (est < n-1 || est > n+1) {
					t.Errorf("n=%d: estimate %d, want within 1 for tiny sets", n, est)
				}
				if rel > 4*se {
					t.Errorf("n=%d trial %d: estimate %d, relative error %.4f > %.4f", n, trial, est, rel, 4*se)
				}
				sumErr += rel
			}
			if mean := sumErr / float64(trials); mean > 1.5*se {
				t.Errorf("n=%d: mean relative error %.4f > %.4f", n, mean, 1.5*se)
			}
		})
	}
}

// TestHLLMerge checks that merging sketches estimates the union.
func TestHLLMerge(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var a, b, u HLL
	for _, h := range hashInts(t, mem, 0, 60_000) {
		a.AddHash(h)
		u.AddHash(h)
	}
	for _, h := range hashInts(t, mem, 30_000, 120_000) {
		b.AddHash(h)
		u.AddHash(h)
	}
	a.Merge(&b)
	if a != u {
		t.Fatalf("merged sketch differs from the sketch of the union")
	}
	if est := a.Estimate(); math.Abs(float64(est)-120_000)/120_000 > 4*1.04/128 {
		t.Fatalf("union estimate %d, want about 120000", est)
	}
}

func BenchmarkHLLAdd(b *testing.B) {
	mem := memory.NewGoAllocator()
	hs := hashInts(b, mem, 0, 1<<16)
	var s HLL
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, h := range hs {
			s.AddHash(h)
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(hs))/b.Elapsed().Seconds(), "values/s")
}

// TestSparseRegions checks that sparse sketch regions, their switch to
// dense and merges estimate exactly like a dense sketch of the same values.
func TestSparseRegions(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, n := range []int64{1, 100, 2000, 2100, 5000, 50_000} {
		hs := hashInts(t, mem, 0, n)
		var dense HLL
		region := AppendEmptySketch(nil)
		// Feed in chunks, as batches do.
		for lo := 0; lo < len(hs); lo += 700 {
			var ents []uint32
			for _, h := range hs[lo:min(lo+700, len(hs))] {
				dense.AddHash(h)
				idx, r := HLLRegister(h)
				ents = append(ents, idx<<8|uint32(r))
			}
			slices.Sort(ents)
			region = SketchUpdate(region, ents)
		}
		if got, want := SketchEstimate(region), dense.Estimate(); got != want {
			t.Fatalf("n=%d: region estimate %d, dense %d", n, got, want)
		}
		// About 16384*(1-exp(-n/16384)) registers are set: dense past 2048.
		if dense := region[0] == regionDense; dense != (n >= 5000) {
			t.Fatalf("n=%d: dense=%v", n, dense)
		}
		// Merge with a sparse region of other values.
		other := hashInts(t, mem, 1_000_000, 1_000_300)
		var ents []uint32
		for _, h := range other {
			dense.AddHash(h)
			idx, r := HLLRegister(h)
			ents = append(ents, idx<<8|uint32(r))
		}
		slices.Sort(ents)
		o := SketchUpdate(AppendEmptySketch(nil), ents)
		for _, m := range [][]byte{SketchMerge(append([]byte(nil), region...), o), SketchMerge(o, region)} {
			if got, want := SketchEstimate(m), dense.Estimate(); got != want {
				t.Fatalf("n=%d merged: estimate %d, dense %d", n, got, want)
			}
		}
	}
}
