package windows

import (
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
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
