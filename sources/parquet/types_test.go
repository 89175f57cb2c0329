package parquet

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestTypeFallbacks covers a timestamp[s] column (Parquet has no seconds:
// Arrow stores it as milliseconds and it reads back as timestamp[ms]), a
// decimal column the
// parquet-go decoder does not support (the default falls back to arrow, an
// explicit request fails), and empty row groups.
func TestTypeFallbacks(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "ts_s", Type: &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"}, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 12, Scale: 2}, Nullable: true},
	}, nil)
	// The oracle: what reading must produce.
	wantSc := arrow.NewSchema([]arrow.Field{sc.Field(0),
		{Name: "ts_s", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
		sc.Field(2)}, nil)
	var recs, wantRecs []arrow.RecordBatch
	var id int64
	for _, n := range []int{5, 0, 300, 0, 17} {
		b := array.NewRecordBuilder(mem, sc)
		w := array.NewRecordBuilder(mem, wantSc)
		for i := 0; i < n; i++ {
			for _, b := range []*array.RecordBuilder{b, w} {
				b.Field(0).(*array.Int64Builder).Append(id)
				if id%7 == 3 {
					b.Field(1).AppendNull()
					b.Field(2).AppendNull()
				} else {
					sec := 1_700_000_000 + id*61
					if b == w {
						sec *= 1000
					}
					b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(sec))
					b.Field(2).(*array.Decimal128Builder).Append(decimal128.FromI64(id*1234 - 50000))
				}
			}
			id++
		}
		recs = append(recs, b.NewRecordBatch())
		wantRecs = append(wantRecs, w.NewRecordBatch())
		b.Release()
		w.Release()
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "t.parquet"), sc, recs)
	tbl := array.NewTableFromRecords(wantSc, wantRecs)
	want := concatTable(t, tbl, mem)
	tbl.Release()
	for _, r := range append(recs, wantRecs...) {
		r.Release()
	}
	defer want.Release()

	src, err := New(Options{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if src.Decoder() != DecoderArrow {
		t.Fatalf("default decoder with a decimal column: %s, want fallback to %s", src.Decoder(), DecoderArrow)
	}
	if _, rgs, _, rows, _ := src.Stats(); rgs != 5 || rows != id {
		t.Fatalf("Stats: %d row groups %d rows, want 5, %d", rgs, rows, id)
	}
	got, _ := readAll(t, src, mem, 2)
	defer releaseBatches(got)
	verify(t, want, got, src.Schema(), DefaultBatchSize)

	_, err = New(Options{Paths: []string{dir}, Decoder: DecoderParquetGo})
	if err == nil || !strings.Contains(err.Error(), `column "dec": unsupported by the parquet-go decoder`) {
		t.Fatalf("explicit parquet-go with a decimal column: %v", err)
	}

	for _, dec := range []string{"", DecoderArrow, DecoderParquetGo} {
		src, err := New(Options{Paths: []string{dir}, Columns: []string{"id", "ts_s"}, Decoder: dec, BatchSize: 64})
		if err != nil {
			t.Fatal(err)
		}
		if dec == "" && src.Decoder() != DefaultDecoder {
			t.Fatalf("default decoder %s, want %s", src.Decoder(), DefaultDecoder)
		}
		got, _ := readAll(t, src, mem, 3)
		defer releaseBatches(got)
		verify(t, want, got, src.Schema(), 64)
	}
}
