package parquet

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"
)

var pruneSchema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
	{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
}, nil)

var pruneEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// pruneRecord builds a row group whose values sit in a narrow random range,
// so statistics differ between row groups.
func pruneRecord(rng *rand.Rand, mem memory.Allocator, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, pruneSchema)
	defer b.Release()
	base := rng.Int64N(20) * 50 // row groups often share boundaries with predicates
	allNull := rng.IntN(6) == 0
	flag := rng.IntN(3)
	w0 := rng.IntN(len(words) - 2)
	for i := 0; i < n; i++ {
		null := func(c int) bool {
			if rng.IntN(10) == 0 || (c == 0 && allNull) {
				b.Field(c).AppendNull()
				return true
			}
			return false
		}
		x := base + rng.Int64N(50)
		if !null(0) {
			b.Field(0).(*array.Int64Builder).Append(x)
		}
		if !null(1) {
			b.Field(1).(*array.Int32Builder).Append(int32(x - 500))
		}
		if !null(2) {
			b.Field(2).(*array.Uint32Builder).Append(uint32(x))
		}
		if !null(3) {
			b.Field(3).(*array.Float64Builder).Append(float64(x) + rng.Float64())
		}
		if !null(4) {
			b.Field(4).(*array.StringBuilder).Append(words[w0+rng.IntN(3)])
		}
		if !null(5) {
			v := rng.IntN(2) == 1
			if flag < 2 {
				v = flag == 1
			}
			b.Field(5).(*array.BooleanBuilder).Append(v)
		}
		if !null(6) {
			b.Field(6).(*array.TimestampBuilder).Append(arrow.Timestamp(pruneEpoch.UnixMilli() + x*1000))
		}
		if !null(7) {
			b.Field(7).(*array.Date32Builder).Append(arrow.Date32(20000 + x/10))
		}
	}
	return b.NewRecordBatch()
}

// randomPredicate picks a column, an operator and a value near the data.
func randomPredicate(rng *rand.Rand) Predicate {
	ops := []string{"=", "<", "<=", ">", ">="}
	op := ops[rng.IntN(len(ops))]
	x := rng.Int64N(1100) - 25
	if rng.IntN(2) == 0 {
		x = rng.Int64N(21)*50 - rng.Int64N(2) // likely a row group's min or max
	}
	switch rng.IntN(9) {
	case 0:
		return Predicate{"k", op, x}
	case 1:
		return Predicate{"k", op, float64(x) + 0.5}
	case 2:
		return Predicate{"i32", op, int(x - 500)}
	case 3:
		return Predicate{"u32", op, x}
	case 4:
		return Predicate{"f", op, float64(x) + rng.Float64()}
	case 5:
		return Predicate{"s", op, words[rng.IntN(len(words))]}
	case 6:
		return Predicate{"flag", op, rng.IntN(2) == 1}
	case 7:
		t := pruneEpoch.Add(time.Duration(x) * time.Second)
		if rng.IntN(4) == 0 {
			t = t.Add(500 * time.Microsecond) // not a whole millisecond: must not prune
		}
		return Predicate{"ts", op, t}
	default:
		return Predicate{"d", op, time.Unix((20000+x/10)*86400, 0).UTC()}
	}
}

// compareRow compares row i of a with v. prunable is false when statistics
// must not be used for this column and value.
func compareRow(a arrow.Array, i int, v any) (c int, prunable bool) {
	switch a := a.(type) {
	case *array.Int64:
		if f, ok := v.(float64); ok {
			return cmp.Compare(float64(a.Value(i)), f), true
		}
		return cmp.Compare(a.Value(i), v.(int64)), true
	case *array.Int32:
		return cmp.Compare(int64(a.Value(i)), int64(v.(int))), true
	case *array.Uint32:
		return cmp.Compare(int64(a.Value(i)), v.(int64)), false
	case *array.Float64:
		return cmp.Compare(a.Value(i), v.(float64)), true
	case *array.String:
		return cmp.Compare(a.Value(i), v.(string)), true
	case *array.Boolean:
		b2i := func(b bool) int {
			if b {
				return 1
			}
			return 0
		}
		return cmp.Compare(b2i(a.Value(i)), b2i(v.(bool))), true
	case *array.Timestamp:
		t := v.(time.Time)
		return cmp.Compare(time.UnixMilli(int64(a.Value(i))).UnixNano(), t.UnixNano()), t.Nanosecond()%1e6 == 0
	case *array.Date32:
		return cmp.Compare(int64(a.Value(i)), v.(time.Time).Unix()/86400), true
	}
	panic(fmt.Sprintf("compareRow: %T", a))
}

func opHolds(op string, c int) bool {
	switch op {
	case "=":
		return c == 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	panic(op)
}

// bruteForcePrune decides from the data itself whether statistics prove that
// no row of rec satisfies p: every value is null, or the [min, max] of the
// non-null values lies outside the predicate. "Some value x <= v" is the same
// as "min <= v", so it is checked row by row.
func bruteForcePrune(rec arrow.RecordBatch, p Predicate) bool {
	a := rec.Column(rec.Schema().FieldIndices(p.Column)[0])
	if a.NullN() == a.Len() {
		return true
	}
	var lt, eq, gt, prunable bool
	for i := 0; i < a.Len(); i++ {
		if a.IsNull(i) {
			continue
		}
		var c int
		c, prunable = compareRow(a, i, p.Value)
		lt, eq, gt = lt || c < 0, eq || c == 0, gt || c > 0
	}
	if !prunable {
		return false
	}
	minLE, maxGE := lt || eq, gt || eq
	switch p.Op {
	case "=":
		return !(minLE && maxGE)
	case "<":
		return !lt
	case "<=":
		return !minLE
	case ">":
		return !gt
	default:
		return !maxGE
	}
}

// rowMatches evaluates the predicates on row i (nulls never match).
func rowMatches(rec arrow.RecordBatch, i int, preds []Predicate) bool {
	for _, p := range preds {
		a := rec.Column(rec.Schema().FieldIndices(p.Column)[0])
		if a.IsNull(i) {
			return false
		}
		c, _ := compareRow(a, i, p.Value)
		if !opHolds(p.Op, c) {
			return false
		}
	}
	return true
}

func TestPrune(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(11, 12))
	dir := t.TempDir()
	type file struct {
		path    string
		recs    []arrow.RecordBatch
		noStats bool
	}
	var files []file
	for i, noStats := range []bool{false, false, true} {
		f := file{path: filepath.Join(dir, fmt.Sprintf("p%d.parquet", i)), noStats: noStats}
		for g := 0; g < 8; g++ {
			f.recs = append(f.recs, pruneRecord(rng, mem, 1+rng.IntN(60)))
		}
		writeFile(t, f.path, pruneSchema, f.recs, pq.WithStats(!noStats))
		files = append(files, f)
	}
	defer func() {
		for _, f := range files {
			for _, r := range f.recs {
				r.Release()
			}
		}
	}()

	var prunedAny, keptAny int
	for iter := 0; iter < 300; iter++ {
		preds := []Predicate{randomPredicate(rng)}
		if rng.IntN(3) == 0 {
			preds = append(preds, randomPredicate(rng))
		}
		src, err := New(Options{Paths: []string{dir}, Predicates: preds})
		if err != nil {
			t.Fatal(err)
		}
		kept := make(map[rgKey]bool)
		for _, g := range src.groups {
			kept[rgKey{src.files[g.file].path, g.index}] = true
		}
		wantPruned := 0
		for _, f := range files {
			for rg, rec := range f.recs {
				want := false
				for _, p := range preds {
					if p.Column == "u32" && rec.Column(2).NullN() < int(rec.NumRows()) {
						continue // unsigned columns are never pruned by range
					}
					want = want || (!f.noStats && bruteForcePrune(rec, p))
				}
				got := !kept[rgKey{f.path, rg}]
				if got != want {
					t.Fatalf("predicates %v: %s row group %d pruned=%v, brute force says %v", preds, filepath.Base(f.path), rg, got, want)
				}
				if got {
					wantPruned++
					prunedAny++
					for i := 0; i < int(rec.NumRows()); i++ {
						if rowMatches(rec, i, preds) {
							t.Fatalf("predicates %v: pruned row group %d of %s has matching row %d", preds, rg, f.path, i)
						}
					}
				} else {
					keptAny++
				}
			}
		}
		if _, total, pruned, _, _ := src.Stats(); pruned != wantPruned || total != 24 {
			t.Fatalf("Stats: %d of %d pruned, want %d of 24", pruned, total, wantPruned)
		}
	}
	if prunedAny == 0 || keptAny == 0 {
		t.Fatalf("degenerate test: %d pruned, %d kept", prunedAny, keptAny)
	}
	t.Logf("%d row groups pruned, %d kept", prunedAny, keptAny)
}
