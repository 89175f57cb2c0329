package windows

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
)

// TestSumUint64NullSlots: sum over a uint64 column keeps int64 state, so a
// valid value ≥ 2^63 is an overflow error; the value slot of a NULL row
// holds no value and must not count, whatever bits it holds, nor may a row
// the batch's pairs do not select.
func TestSumUint64NullSlots(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Uint64, Nullable: true}}, nil)
	ba, err := bindAgg(schema, Agg{Func: Sum, Column: "x"}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	aggs := []boundAgg{ba}
	run := func(valid []bool, rows []int32) (int64, error) {
		bld := array.NewUint64Builder(memory.DefaultAllocator)
		defer bld.Release()
		bld.AppendValues([]uint64{1, 1 << 63, 2, 1 << 63}, valid) // slots of NULL rows keep their bits
		col := bld.NewArray()
		defer col.Release()
		rec := array.NewRecordBatch(schema, []arrow.Array{col}, 4)
		defer rec.Release()
		var b batchAcc
		b.init(aggs)
		gids := make([]uint32, len(rows))
		if err := b.update(aggs, rec, rows, gids, 1); err != nil {
			return 0, err
		}
		return b.iv[0][0], nil
	}
	all := []int32{0, 1, 2, 3}
	if got, err := run([]bool{true, false, true, false}, all); err != nil || got != 3 {
		t.Errorf("NULLs with high-bit slots: sum %d, err %v; want 3, nil", got, err)
	}
	if got, err := run(nil, []int32{0, 2}); err != nil || got != 3 {
		t.Errorf("high-bit values in rows not selected: sum %d, err %v; want 3, nil", got, err)
	}
	if _, err := run(nil, all); !errors.Is(err, errOverflow) {
		t.Errorf("a valid value ≥ 2^63: err %v, want the overflow error", err)
	}
}

// captureEmitter keeps min and max per (window start, key) of emitted
// batches with uint64 columns mn, mx.
type captureEmitter struct{ got map[[2]int64][2]*uint64 }

func (c captureEmitter) Emit(_ context.Context, b arrow.RecordBatch) error {
	defer b.Release()
	col := func(name string) arrow.Array { return b.Column(b.Schema().FieldIndices(name)[0]) }
	st, k := col("window_start").(*array.Timestamp), col("k").(*array.Int64)
	mn, mx := col("mn").(*array.Uint64), col("mx").(*array.Uint64)
	for i := range int(b.NumRows()) {
		var pair [2]*uint64
		if mn.IsValid(i) {
			v, w := mn.Value(i), mx.Value(i)
			pair = [2]*uint64{&v, &w}
		}
		c.got[[2]int64{int64(st.Value(i)), k.Value(i)}] = pair
	}
	return nil
}

func (captureEmitter) EmitSide(context.Context, string, arrow.RecordBatch) error {
	return errors.New("no side outputs")
}

func (captureEmitter) SideWired(string) bool { return false }

// TestMinMaxUint64Unsigned: min and max over uint64 values on both sides
// of 2^63, with NULLs, over several batches (merged into the window's
// state) and a session-free tumbling window, equal a brute-force
// unsigned min and max.
func TestMinMaxUint64Unsigned(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "ts", Type: arrow.PrimitiveTypes.Int64},
		{Name: "k", Type: arrow.PrimitiveTypes.Int64}, {Name: "x", Type: arrow.PrimitiveTypes.Uint64, Nullable: true}}, nil)
	op := openOperator(t, mem, schema, Options{Kind: Tumbling, Size: time.Second, Keys: []string{"k"}, Time: "ts",
		Aggs: []Agg{{Func: Min, Column: "x", As: "mn"}, {Func: Max, Column: "x", As: "mx"}}})
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[[2]int64][2]*uint64{}
	emit := captureEmitter{got: map[[2]int64][2]*uint64{}}
	ctx := context.Background()
	for range 20 {
		n := 1 + rng.IntN(50)
		tb, kb, xb := array.NewInt64Builder(mem), array.NewInt64Builder(mem), array.NewUint64Builder(mem)
		for range n {
			ts, k := rng.Int64N(5000), rng.Int64N(3)
			tb.Append(ts)
			kb.Append(k)
			w := [2]int64{ts - ts%1000, k}
			if _, ok := want[w]; !ok {
				want[w] = [2]*uint64{}
			}
			if rng.IntN(5) == 0 {
				xb.AppendNull()
				continue
			}
			v := rng.Uint64() >> rng.IntN(3) // a third below 2^63
			xb.Append(v)
			p := want[w]
			if p[0] == nil {
				a, b := v, v
				p = [2]*uint64{&a, &b}
			}
			*p[0], *p[1] = min(*p[0], v), max(*p[1], v)
			want[w] = p
		}
		cols := []arrow.Array{tb.NewArray(), kb.NewArray(), xb.NewArray()}
		rec := array.NewRecordBatch(schema, cols, int64(n))
		for i, c := range cols {
			c.Release()
			[]array.Builder{tb, kb, xb}[i].Release()
		}
		err := op.Process(ctx, 0, rec, emit)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := op.OnWatermark(ctx, arrowexec.MaxWatermark, emit); err != nil {
		t.Fatal(err)
	}
	if err := op.Finish(ctx, emit); err != nil {
		t.Fatal(err)
	}
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}
	if len(emit.got) != len(want) {
		t.Fatalf("%d windows, want %d", len(emit.got), len(want))
	}
	str := func(p *uint64) string {
		if p == nil {
			return "NULL"
		}
		return fmt.Sprint(*p)
	}
	for w, p := range want {
		g, ok := emit.got[w]
		if !ok || str(g[0]) != str(p[0]) || str(g[1]) != str(p[1]) {
			t.Errorf("window %v: min %s max %s, want %s %s", w, str(g[0]), str(g[1]), str(p[0]), str(p[1]))
		}
	}
}
