package sinks_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/sinks"
)

// TestDictionaryColumnsWritten writes a dictionary-encoded string column
// (a new dictionary per batch, NULL indices, a NULL entry) as Parquet, CSV
// and JSONL, and checks that DuckDB reads back the decoded values.
func TestDictionaryColumnsWritten(t *testing.T) {
	oracle.Python(t)
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: dt, Nullable: true},
	}, nil)
	words := []string{"cart", "view", "purchase", "héllo", "a,b", `q"uote`}
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV, sinks.JSONL} {
		t.Run(string(f), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rng := rand.New(rand.NewPCG(1, 2))
			want := map[int64]string{}
			var batches []arrow.RecordBatch
			id := int64(0)
			for b := 0; b < 20; b++ {
				perm := rng.Perm(len(words))[:1+rng.IntN(len(words))]
				db := array.NewStringBuilder(mem)
				for _, p := range perm {
					db.Append(words[p])
				}
				if b%3 == 0 {
					db.AppendNull()
				}
				dict := db.NewArray()
				db.Release()
				ib, idb := array.NewInt32Builder(mem), array.NewInt64Builder(mem)
				n := 1 + rng.IntN(50)
				for i := 0; i < n; i++ {
					idb.Append(id)
					k := rng.IntN(dict.Len() + 1)
					switch {
					case k == dict.Len():
						ib.AppendNull()
						want[id] = "NULL"
					case dict.IsNull(k):
						ib.Append(int32(k))
						want[id] = "NULL"
					default:
						ib.Append(int32(k))
						want[id] = dict.(*array.String).Value(k)
					}
					id++
				}
				ix, ids := ib.NewArray(), idb.NewArray()
				ib.Release()
				idb.Release()
				d := array.NewDictionaryArray(dt, ix, dict)
				whole := array.NewRecordBatch(sc, []arrow.Array{ids, d}, int64(n))
				if n > 2 && b%2 == 1 {
					// A slice (non-zero offset); the cut rows are not written.
					for r := int64(0); r < int64(n); r++ {
						if r == 0 || r == int64(n)-1 {
							delete(want, ids.(*array.Int64).Value(int(r)))
						}
					}
					sl := whole.NewSlice(1, int64(n)-1)
					whole.Release()
					whole = sl
				}
				batches = append(batches, whole)
				for _, a := range []arrow.Array{ix, ids, dict, d} {
					a.Release()
				}
			}
			defer releaseAll(batches)
			dir := t.TempDir()
			spec, err := sinks.NewFile(smallParts(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := spec.Schema([]*arrow.Schema{sc}); err != nil {
				t.Fatal(err)
			}
			if err := runSubtask(t, spec, task(mem, sc, 0, 1), batches, true); err != nil {
				t.Fatal(err)
			}
			read := map[sinks.Format]string{
				sinks.Parquet: "read_parquet('%s')", sinks.CSV: "read_csv('%s', allow_quoted_nulls=false)", sinks.JSONL: "read_json('%s')",
			}[f]
			got := oracle.DuckDB(t, fmt.Sprintf("SELECT id, CAST(s AS VARCHAR) FROM "+read, glob(dir, f.Ext()))).Rows
			if len(got) != len(want) {
				t.Fatalf("DuckDB read %d rows, wrote %d", len(got), len(want))
			}
			for _, r := range got {
				if s := oracle.Format(r[1]); s != want[r[0].(int64)] {
					t.Fatalf("id %v: %q, wrote %q", r[0], s, want[r[0].(int64)])
				}
			}
		})
	}
}
