package arrowexec_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
)

// TestTakeMatchesRowCopy compares the gather kernel with a row-at-a-time
// copy through builders, including sliced inputs (non-zero offsets).
func TestTakeMatchesRowCopy(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 7, 1024, 65536} {
		batches, _ := randomBatches(mem, rng, n, n, 1000)
		full := batches[0]
		for _, slice := range []bool{false, true} {
			rec := full
			if slice && n > 2 {
				rec = full.NewSlice(1, int64(n-1))
			} else {
				rec.Retain()
			}
			m := int(rec.NumRows())
			idx := make([]int32, rng.IntN(2*m+1))
			for i := range idx {
				idx[i] = int32(rng.IntN(m))
			}
			got, err := arrowexec.TakeRecord(mem, rec, idx)
			if err != nil {
				t.Fatal(err)
			}
			for c := 0; c < int(rec.NumCols()); c++ {
				want := rowCopy(mem, rec.Column(c), idx)
				if !array.Equal(got.Column(c), want) {
					t.Fatalf("n=%d slice=%v col %s: take differs\n got %v\nwant %v", n, slice, rec.ColumnName(c), got.Column(c), want)
				}
				if got.Column(c).NullN() != want.NullN() {
					t.Fatalf("null count %d want %d", got.Column(c).NullN(), want.NullN())
				}
				want.Release()
			}
			got.Release()
			rec.Release()
		}
		release(batches)
	}
}

func rowCopy(mem memory.Allocator, a arrow.Array, idx []int32) arrow.Array {
	b := array.NewBuilder(mem, a.DataType())
	defer b.Release()
	for _, j := range idx {
		if a.IsNull(int(j)) {
			b.AppendNull()
			continue
		}
		switch x := a.(type) {
		case *array.Int64:
			b.(*array.Int64Builder).Append(x.Value(int(j)))
		case *array.Float64:
			b.(*array.Float64Builder).Append(x.Value(int(j)))
		case *array.String:
			b.(*array.StringBuilder).Append(x.Value(int(j)))
		case *array.Boolean:
			b.(*array.BooleanBuilder).Append(x.Value(int(j)))
		default:
			panic(fmt.Sprintf("type %T", a))
		}
	}
	return b.NewArray()
}

func BenchmarkTake(b *testing.B) {
	mem := memory.NewGoAllocator()
	rng := rand.New(rand.NewPCG(1, 1))
	batches, _ := randomBatches(mem, rng, 65536, 65536, 1000)
	rec := batches[0]
	defer rec.Release()
	idx := make([]int32, 0, 65536)
	for i := 0; i < 65536; i++ {
		if rng.IntN(2) == 0 {
			idx = append(idx, int32(i))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out, err := arrowexec.TakeRecord(mem, rec, idx)
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
	b.ReportMetric(float64(len(idx))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkHashExchange measures hash partitioning of 64K-row batches over
// an int64 key to 4 targets, including the gathers.
func BenchmarkHashExchange(b *testing.B) {
	mem := memory.NewGoAllocator()
	rng := rand.New(rand.NewPCG(1, 2))
	batches, _ := randomBatches(mem, rng, 65536, 65536, 100000)
	rec := batches[0]
	defer rec.Release()
	hashes := make([]uint64, rec.NumRows())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		parts, err := arrowexec.PartitionRecord(mem, rec, []int{1}, 128, 4, hashes)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range parts {
			if p != nil {
				p.Release()
			}
		}
	}
	b.ReportMetric(float64(rec.NumRows())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestTakeFallbackList covers the compute.Take fallback (a list column):
// it once built its compute context from a nil parent and panicked.
func TestTakeFallbackList(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	lb := array.NewListBuilder(mem, arrow.PrimitiveTypes.Int64)
	defer lb.Release()
	vb := lb.ValueBuilder().(*array.Int64Builder)
	lb.Append(true)
	vb.AppendValues([]int64{1, 2}, nil)
	lb.AppendNull()
	lb.Append(true)
	vb.Append(3)
	a := lb.NewArray()
	defer a.Release()
	got, err := arrowexec.TakeArray(mem, a, []int32{2, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if s := fmt.Sprint(got); s != "[[3] [1 2] (null)]" {
		t.Fatalf("take = %s", s)
	}
}

// TestTakeDictionary gathers a dictionary array (sliced, with NULL
// indices): the result shares the dictionary and decodes to the rows taken.
func TestTakeDictionary(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(3, 4))
	db := array.NewStringBuilder(mem)
	db.AppendValues([]string{"cart", "view", "", "purchase"}, nil)
	dict := db.NewArray()
	db.Release()
	ib := array.NewInt32Builder(mem)
	for i := 0; i < 500; i++ {
		if rng.IntN(5) == 0 {
			ib.AppendNull()
		} else {
			ib.Append(int32(rng.IntN(4)))
		}
	}
	ix := ib.NewArray()
	ib.Release()
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	full := array.NewDictionaryArray(dt, ix, dict)
	ix.Release()
	dict.Release()
	defer full.Release()
	a := array.NewSlice(full, 3, 450).(*array.Dictionary)
	defer a.Release()
	idx := make([]int32, 300)
	for i := range idx {
		idx[i] = int32(rng.IntN(a.Len()))
	}
	got, err := arrowexec.TakeArray(mem, a, idx)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	g := got.(*array.Dictionary)
	if g.Dictionary() != a.Dictionary() && g.Dictionary().Data() != a.Dictionary().Data() {
		t.Errorf("dictionary copied, want shared")
	}
	str := func(d *array.Dictionary, i int) string {
		if d.IsNull(i) {
			return "NULL"
		}
		return d.Dictionary().(*array.String).Value(d.GetValueIndex(i))
	}
	for i, j := range idx {
		if str(g, i) != str(a, int(j)) {
			t.Fatalf("row %d: %s, want row %d's %s", i, str(g, i), j, str(a, int(j)))
		}
	}
}

// TestHashDictionary checks that a dictionary-encoded key hashes as its
// decoded values: batches with different dictionaries (permuted entries, a
// NULL entry, NULL indices, a slice) give every row the hash of the plain
// string column, alone and next to another key column.
func TestHashDictionary(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(5, 6))
	words := []string{"cart", "view", "", "purchase", "héllo"}
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	for round := 0; round < 20; round++ {
		perm := rng.Perm(len(words))
		db := array.NewStringBuilder(mem)
		for _, p := range perm {
			db.Append(words[p])
		}
		if round%3 == 0 {
			db.AppendNull()
		}
		dict := db.NewArray()
		db.Release()
		ib := array.NewInt32Builder(mem)
		pb := array.NewStringBuilder(mem)
		kb := array.NewInt64Builder(mem)
		n := 1 + rng.IntN(300)
		for i := 0; i < n; i++ {
			kb.Append(rng.Int64N(3))
			k := rng.IntN(dict.Len() + 1)
			if k == dict.Len() {
				ib.AppendNull()
				pb.AppendNull()
				continue
			}
			ib.Append(int32(k))
			if dict.IsNull(k) {
				pb.AppendNull()
			} else {
				pb.Append(dict.(*array.String).Value(k))
			}
		}
		ix, plain, other := ib.NewArray(), pb.NewArray(), kb.NewArray()
		ib.Release()
		pb.Release()
		kb.Release()
		d := array.NewDictionaryArray(dt, ix, dict)
		lo := rng.IntN(n)
		ds, ps, os := array.NewSlice(d, int64(lo), int64(n)), array.NewSlice(plain, int64(lo), int64(n)), array.NewSlice(other, int64(lo), int64(n))
		for _, cols := range [][2][]arrow.Array{{{ds}, {ps}}, {{os, ds}, {os, ps}}} {
			got, want := make([]uint64, n-lo), make([]uint64, n-lo)
			if err := arrowexec.HashColumns(cols[0], got); err != nil {
				t.Fatal(err)
			}
			if err := arrowexec.HashColumns(cols[1], want); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("round %d row %d: dictionary hash %x, plain %x", round, i, got[i], want[i])
				}
			}
		}
		for _, a := range []arrow.Array{ix, plain, other, dict, d, ds, ps, os} {
			a.Release()
		}
	}
}

// TestHashExchangeDictionary runs a hash exchange keyed by a
// dictionary-encoded column whose dictionary differs from batch to batch:
// every value lands on one subtask, and every row arrives.
func TestHashExchangeDictionary(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(7, 8))
	words := []string{"cart", "view", "", "purchase", "héllo", "a", "b"}
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	sc := arrow.NewSchema([]arrow.Field{{Name: "s", Type: dt, Nullable: true}}, nil)
	var batches []arrow.RecordBatch
	rows := 0
	for b := 0; b < 30; b++ {
		perm := rng.Perm(len(words))[:1+rng.IntN(len(words))]
		db := array.NewStringBuilder(mem)
		for _, p := range perm {
			db.Append(words[p])
		}
		dict := db.NewArray()
		db.Release()
		ib := array.NewInt32Builder(mem)
		n := 1 + rng.IntN(100)
		for i := 0; i < n; i++ {
			if rng.IntN(10) == 0 {
				ib.AppendNull()
			} else {
				ib.Append(int32(rng.IntN(len(perm))))
			}
		}
		ix := ib.NewArray()
		ib.Release()
		d := array.NewDictionaryArray(dt, ix, dict)
		batches = append(batches, array.NewRecordBatch(sc, []arrow.Array{d}, int64(n)))
		rows += n
		ix.Release()
		dict.Release()
		d.Release()
	}
	src := exectest.NewSource(sc, batches)
	release(batches)
	defer src.Release()
	sink := exectest.NewSink()
	defer sink.Release()
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 2)
	mid := g.Add("mid", exectest.Identity(), 3, s.HashBy("s"))
	g.Add("sink", sink, 3, mid.Forward())
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	owner := map[string]int{}
	got := 0
	for sub, bs := range sink.Batches {
		for _, b := range bs {
			d := b.Column(0).(*array.Dictionary)
			for i := 0; i < d.Len(); i++ {
				key := "NULL"
				if d.IsValid(i) {
					key = "v:" + d.Dictionary().(*array.String).Value(d.GetValueIndex(i))
				}
				if o, ok := owner[key]; ok && o != sub {
					t.Fatalf("key %q on subtasks %d and %d", key, o, sub)
				}
				owner[key] = sub
				got++
			}
		}
	}
	if got != rows {
		t.Fatalf("%d rows arrived, want %d", got, rows)
	}
}
