package expr

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duck "github.com/riffle-dev/riffle/internal/oracle"
)

// dictSchema has a dictionary-encoded string column c, a plain int column
// and a dictionary column whose entries are mostly numbers (casts).
var dictSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "c", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, Nullable: true},
	{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "n", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}, Nullable: true},
}, nil)

// dictExprs run over dictionary batches (once per entry, gathered) and are
// checked against DuckDB over the decoded values.
var dictExprs = []string{
	"c", "c = 'cart'", "c <> 'view'", "c < 'b'", "c >= 'Purchase'", "c IN ('cart', 'abc', 'x%y')", "c NOT IN ('view')",
	"c LIKE '%a%'", "c LIKE 'c_rt'", "c NOT LIKE '%e%'", "c ILIKE '%A%'", "lower(c) LIKE '%a%'",
	"regexp_matches(c, '^(cart|purchase)$')", "regexp_matches(c, 'E', 'i')", "starts_with(c, 'ca')",
	"lower(c)", "upper(c)", "trim(c)", "ltrim(c)", "substr(c, 1, 3)", "substr(c, 2)", "length(c)", "replace(c, 'a', 'xy')",
	"split_part(c, ',', 2)", "concat(c, '-', c)", "c || '!'", "upper(c) = 'CART'", "length(c) > 3 AND c <> 'view'",
	"c IS NULL", "c IS NOT NULL", "coalesce(c, 'none')", "nullif(c, 'cart')", "hash(c)",
	"CASE WHEN c = 'cart' THEN 'c' WHEN c LIKE 'v%' THEN 'v' ELSE upper(c) END",
	"concat(c, i)", "c = 'cart' OR i > 0", "CASE WHEN i > 0 THEN lower(c) END", // with another column: decoded
	"CAST(n AS int64) + 1", "CAST(n AS int64) > 5", "coalesce(n, c)",
}

var dictWords = []string{"cart", "view", "purchase", "Purchase", "abc", "", " a b ", "a,b,,c", "héllo", "x%y", "ÉTÉ", "cartcart", "view "}

// dictBatches builds nb batches; each has its own dictionary (a random
// subset of dictWords in random order, sometimes with a NULL entry and
// entries no row uses), so the dictionary changes from batch to batch as
// it does between row groups.
func dictBatches(rng *rand.Rand, mem memory.Allocator, nb int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	id := int64(0)
	for b := 0; b < nb; b++ {
		rows := []int{1, 3, 40, 200, 1000}[rng.IntN(5)]
		perm := rng.Perm(len(dictWords))[:1+rng.IntN(len(dictWords))]
		db := array.NewStringBuilder(mem)
		for _, p := range perm {
			db.Append(dictWords[p])
		}
		nullEntry := rng.IntN(3) == 0
		if nullEntry {
			db.AppendNull()
		}
		dict := db.NewArray()
		db.Release()
		// Numbers dictionary: one entry that does not cast, used only when
		// unusedBad is false.
		nb := array.NewStringBuilder(mem)
		nb.AppendValues([]string{"1", "7", "12", "oops", "-3"}, nil)
		ndict := nb.NewArray()
		nb.Release()

		ids := array.NewInt64Builder(mem)
		ib := array.NewInt32Builder(mem)
		is := array.NewInt64Builder(mem)
		nbld := array.NewInt8Builder(mem)
		nullP := []float64{0, 0.1, 0.5}[rng.IntN(3)]
		for r := 0; r < rows; r++ {
			ids.Append(id)
			id++
			if rng.Float64() < nullP {
				ib.AppendNull()
			} else {
				ib.Append(int32(rng.IntN(dict.Len())))
			}
			if rng.Float64() < nullP {
				is.AppendNull()
			} else {
				is.Append(rng.Int64N(21) - 10)
			}
			if rng.Float64() < nullP {
				nbld.AppendNull()
			} else {
				nbld.Append([]int8{0, 1, 2, 4}[rng.IntN(4)]) // never "oops"
			}
		}
		idx, ia, iv, nidx := ids.NewArray(), ib.NewArray(), is.NewArray(), nbld.NewArray()
		for _, x := range []*array.Int64Builder{ids, is} {
			x.Release()
		}
		ib.Release()
		nbld.Release()
		c := array.NewDictionaryArray(dictSchema.Field(1).Type, ia, dict)
		n := array.NewDictionaryArray(dictSchema.Field(3).Type, nidx, ndict)
		out = append(out, array.NewRecordBatch(dictSchema, []arrow.Array{idx, c, iv, n}, int64(rows)))
		for _, a := range []arrow.Array{idx, ia, iv, nidx, dict, ndict, c, n} {
			a.Release()
		}
	}
	return out
}

// decodedRecord concatenates the batches with their dictionaries decoded.
func decodedRecord(t *testing.T, mem memory.Allocator, batches []arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "c", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "n", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	rb := array.NewRecordBuilder(mem, sc)
	defer rb.Release()
	for _, b := range batches {
		for r := 0; r < int(b.NumRows()); r++ {
			rb.Field(0).(*array.Int64Builder).Append(b.Column(0).(*array.Int64).Value(r))
			for _, j := range []int{1, 3} {
				d := b.Column(j).(*array.Dictionary)
				sb := rb.Field(j).(*array.StringBuilder)
				if d.IsNull(r) || d.Dictionary().IsNull(d.GetValueIndex(r)) {
					sb.AppendNull()
				} else {
					sb.Append(d.Dictionary().(*array.String).Value(d.GetValueIndex(r)))
				}
			}
			if v := b.Column(2).(*array.Int64); v.IsNull(r) {
				rb.Field(2).AppendNull()
			} else {
				rb.Field(2).(*array.Int64Builder).Append(v.Value(r))
			}
		}
	}
	return rb.NewRecordBatch()
}

// TestDictionaryExprsDuckDB evaluates expressions over dictionary-encoded
// batches (a new dictionary per batch, NULL indices, a NULL dictionary
// entry, unused entries, dictionaries larger than the batch) and checks
// every row against DuckDB over the decoded values; Select must keep the
// rows DuckDB's WHERE keeps.
func TestDictionaryExprsDuckDB(t *testing.T) {
	duck.Python(t)
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rng := rand.New(rand.NewPCG(seed, 14))
			batches := dictBatches(rng, mem, 12)
			defer func() {
				for _, b := range batches {
					b.Release()
				}
			}()
			flat := decodedRecord(t, mem, batches)
			defer flat.Release()
			path := filepath.Join(t.TempDir(), "d.parquet")
			writeParquet(t, path, flat)

			bound := make([]*Bound, len(dictExprs))
			var cols []string
			for i, src := range dictExprs {
				e, err := Parse(src)
				if err != nil {
					t.Fatalf("Parse(%s): %v", src, err)
				}
				if bound[i], err = Bind(e, dictSchema); err != nil {
					t.Fatalf("Bind(%s): %v", src, err)
				}
				sql := "(" + src + ")"
				if kindOf(bound[i].Type()).isNumeric() {
					sql = "CAST(" + sql + " AS DOUBLE)"
				}
				if strings.HasPrefix(src, "hash(") {
					sql = "0" // riffle's hash is its own; checked against the decoded column below
				}
				cols = append(cols, fmt.Sprintf("%s AS x%d", sql, i))
			}
			want := duck.DuckDB(t, "SELECT "+strings.Join(cols, ", ")+fmt.Sprintf(" FROM read_parquet('%s') ORDER BY id", path))
			if len(want.Rows) != int(flat.NumRows()) {
				t.Fatalf("DuckDB returned %d rows, want %d", len(want.Rows), flat.NumRows())
			}
			flatSchema := flat.Schema()
			for i, src := range dictExprs {
				lo := 0
				for _, b := range batches {
					a, err := bound[i].Eval(mem, b)
					if err != nil {
						t.Fatalf("Eval(%s): %v", src, err)
					}
					if a.Len() != int(b.NumRows()) || !arrow.TypeEqual(a.DataType(), bound[i].Type()) {
						t.Fatalf("Eval(%s): %d rows of %s, want %d of %s", src, a.Len(), a.DataType(), b.NumRows(), bound[i].Type())
					}
					var ref arrow.Array // hash: the same expression over the decoded rows
					if strings.HasPrefix(src, "hash(") {
						e, _ := Parse(src)
						pb, err := Bind(e, flatSchema)
						if err != nil {
							t.Fatal(err)
						}
						part := flat.NewSlice(int64(lo), int64(lo)+b.NumRows())
						ref, err = pb.Eval(mem, part)
						part.Release()
						if err != nil {
							t.Fatal(err)
						}
					}
					for r := 0; r < a.Len(); r++ {
						g := readVal(a, r)
						if ref != nil {
							if w := readVal(ref, r); formatFunc(g) != formatFunc(w) {
								t.Fatalf("Eval(%s) row %d: got %s, over decoded values %s", src, lo+r, formatFunc(g), formatFunc(w))
							}
							continue
						}
						if w := want.Rows[lo+r][i]; !sameAsDuck(g, w) {
							t.Fatalf("Eval(%s) row %d (%s): got %s, DuckDB %s", src, lo+r, rowText(flat, lo+r), formatFunc(g), duck.Format(w))
						}
					}
					if ref != nil {
						ref.Release()
					}
					if kindOf(bound[i].Type()) == kBool {
						sel, err := bound[i].Select(b, nil)
						if err != nil {
							t.Fatalf("Select(%s): %v", src, err)
						}
						var wantSel []int32
						for r := 0; r < a.Len(); r++ {
							if w, ok := want.Rows[lo+r][i].(bool); ok && w {
								wantSel = append(wantSel, int32(r))
							}
						}
						if fmt.Sprint(sel) != fmt.Sprint(wantSel) && !(len(sel) == 0 && len(wantSel) == 0) {
							t.Fatalf("Select(%s) batch at row %d: %v, DuckDB %v", src, lo, sel, wantSel)
						}
					}
					a.Release()
					lo += int(b.NumRows())
				}
			}
		})
	}
}

// TestDictionaryLifted checks that the expressions over one dictionary
// column are the ones evaluated per dictionary entry.
func TestDictionaryLifted(t *testing.T) {
	for src, lifted := range map[string]bool{
		"lower(c) LIKE '%a%'": true, "c = 'cart'": true, "substr(c, 1, 3)": true, "c": false,
		"concat(c, i)": false, "CAST(n AS int64) + 1": true,
	} {
		e, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Bind(e, dictSchema)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := b.root.(*dictNode); ok != lifted {
			t.Errorf("%s: root %T, lifted=%v, want %v", src, b.root, ok, lifted)
		}
	}
}
