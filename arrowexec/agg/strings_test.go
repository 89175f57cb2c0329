package agg

import (
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestStringLikeMinMaxDistinct runs min, max and count_distinct over a
// large_string column and a dictionary-encoded one (a new dictionary per
// batch, NULL indices, a NULL entry, unused entries) holding the same
// values, grouped by an integer key, and checks them against a brute-force
// oracle over the Go values.
func TestStringLikeMinMaxDistinct(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(21, 22))
	words := []string{"cart", "view", "", "purchase", "héllo", "Abc", "x%y", "zz"}
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String}
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "d", Type: dt, Nullable: true},
	}, nil)
	type acc struct {
		min, max string
		seen     bool
		set      map[string]bool
	}
	want := map[int64]*acc{}
	var batches []arrow.RecordBatch
	for b := 0; b < 25; b++ {
		perm := rng.Perm(len(words))[:1+rng.IntN(len(words))]
		db := array.NewStringBuilder(mem)
		for _, p := range perm {
			db.Append(words[p])
		}
		withNull := rng.IntN(2) == 0
		if withNull {
			db.AppendNull()
		}
		dict := db.NewArray()
		db.Release()
		kb, sb, ib := array.NewInt64Builder(mem), array.NewLargeStringBuilder(mem), array.NewInt16Builder(mem)
		n := 1 + rng.IntN(200)
		for i := 0; i < n; i++ {
			k := rng.Int64N(4)
			kb.Append(k)
			e := rng.IntN(dict.Len() + 1)
			if e == dict.Len() || dict.IsNull(e) {
				if e == dict.Len() {
					ib.AppendNull()
				} else {
					ib.Append(int16(e))
				}
				sb.AppendNull()
				if want[k] == nil {
					want[k] = &acc{set: map[string]bool{}}
				}
				continue
			}
			v := dict.(*array.String).Value(e)
			ib.Append(int16(e))
			sb.Append(v)
			a := want[k]
			if a == nil {
				a = &acc{set: map[string]bool{}}
				want[k] = a
			}
			if !a.seen || v < a.min {
				a.min = v
			}
			if !a.seen || v > a.max {
				a.max = v
			}
			a.seen = true
			a.set[v] = true
		}
		ka, sa, ia := kb.NewArray(), sb.NewArray(), ib.NewArray()
		kb.Release()
		sb.Release()
		ib.Release()
		da := array.NewDictionaryArray(dt, ia, dict)
		batches = append(batches, array.NewRecordBatch(sc, []arrow.Array{ka, sa, da}, int64(n)))
		for _, a := range []arrow.Array{ka, sa, ia, dict, da} {
			a.Release()
		}
	}
	defer releaseAll(batches)
	var aggs []Agg
	for _, c := range []string{"s", "d"} {
		aggs = append(aggs, Agg{Func: Min, Column: c}, Agg{Func: Max, Column: c}, Agg{Func: CountDistinct, Column: c})
	}
	spec, err := New(Options{GroupBy: []string{"k"}, Aggs: aggs})
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, mem, spec, sc, batches, nil)
	defer out.release()
	got := 0
	for _, b := range out.batches {
		for r := 0; r < int(b.NumRows()); r++ {
			k := b.Column(0).(*array.Int64).Value(r)
			w := want[k]
			for j := 0; j < 2; j++ {
				mn, mx := b.Column(1+3*j), b.Column(2+3*j)
				cd := b.Column(3 + 3*j).(*array.Int64).Value(r)
				str := func(a arrow.Array) string {
					if a.IsNull(r) {
						return "NULL"
					}
					return a.(*array.String).Value(r)
				}
				wmin, wmax := "NULL", "NULL"
				if w.seen {
					wmin, wmax = w.min, w.max
				}
				if str(mn) != wmin || str(mx) != wmax || cd != int64(len(w.set)) {
					t.Fatalf("k=%d %s: min %q max %q distinct %d, want %q %q %d", k, sc.Field(1+j).Name, str(mn), str(mx), cd, wmin, wmax, len(w.set))
				}
			}
			got++
		}
	}
	if got != len(want) {
		t.Fatalf("%d groups, want %d", got, len(want))
	}
}
