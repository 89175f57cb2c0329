package windows

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// binaryRows collects the (key, window_start, min, max) rows of emitted
// batches; a NULL extreme is "NULL".
type binaryRows map[string][2]string

func (c binaryRows) Emit(_ context.Context, b arrow.RecordBatch) error {
	defer b.Release()
	k := b.Column(0).(*array.Int64)
	st := b.Column(1).(*array.Timestamp)
	for i := 0; i < int(b.NumRows()); i++ {
		var r [2]string
		for j, col := range []*array.Binary{b.Column(3).(*array.Binary), b.Column(4).(*array.Binary)} {
			r[j] = "NULL"
			if col.IsValid(i) {
				r[j] = fmt.Sprintf("%x", col.Value(i))
			}
		}
		c[fmt.Sprintf("%d@%d", k.Value(i), st.Value(i))] = r
	}
	return nil
}

// TestMinMaxBinary: min and max over a binary column with NULLs, bytes
// above 0x7f and zero bytes, in tumbling windows, against a brute-force
// bytewise oracle (bytes.Compare).
func TestMinMaxBinary(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64},
		{Name: "t", Type: arrow.PrimitiveTypes.Int64},
		{Name: "b", Type: arrow.BinaryTypes.Binary, Nullable: true},
	}, nil)
	op := openOperator(t, mem, sc, Options{Kind: Tumbling, Size: 100 * time.Millisecond, Keys: []string{"k"}, Time: "t", Aggs: []Agg{
		{Func: Min, Column: "b", As: "lo"}, {Func: Max, Column: "b", As: "hi"},
	}})
	defer op.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	type acc struct {
		lo, hi []byte
		has    bool
	}
	want := map[string]*acc{}
	got := binaryRows{}
	rb := array.NewRecordBuilder(mem, sc)
	defer rb.Release()
	for batch := range 20 {
		for range 1 + rng.IntN(200) {
			k, ts := rng.Int64N(4), int64(batch*50)+rng.Int64N(300)
			rb.Field(0).(*array.Int64Builder).Append(k)
			rb.Field(1).(*array.Int64Builder).Append(ts)
			w := fmt.Sprintf("%d@%d", k, ts/100*100)
			a := want[w]
			if a == nil {
				a = &acc{}
				want[w] = a
			}
			if rng.IntN(6) == 0 {
				rb.Field(2).AppendNull()
				continue
			}
			v := make([]byte, rng.IntN(5))
			for i := range v {
				v[i] = []byte{0, 1, 0x7f, 0x80, 0xff}[rng.IntN(5)]
			}
			rb.Field(2).(*array.BinaryBuilder).Append(v)
			if !a.has || bytes.Compare(v, a.lo) < 0 {
				a.lo = v
			}
			if !a.has || bytes.Compare(v, a.hi) > 0 {
				a.hi = v
			}
			a.has = true
		}
		rec := rb.NewRecordBatch()
		err := op.Process(ctx, 0, rec, got)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := op.OnWatermark(ctx, arrowexec.MaxWatermark, got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d windows, want %d", len(got), len(want))
	}
	for w, a := range want {
		r := [2]string{"NULL", "NULL"}
		if a.has {
			r = [2]string{fmt.Sprintf("%x", a.lo), fmt.Sprintf("%x", a.hi)}
		}
		if got[w] != r {
			t.Errorf("window %s: got min, max %v, want %v", w, got[w], r)
		}
	}
}
