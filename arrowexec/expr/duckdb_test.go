package expr

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	duck "github.com/riffle-dev/riffle/internal/oracle"
)

// This file checks CASE and coalesce against DuckDB: random data with NULLs
// is written to Parquet, random CASE/coalesce expressions (with comparisons,
// AND/OR/NOT, IS NULL and + - * inside) are evaluated by Eval and Select
// over slices of the batch and by DuckDB over the file, and every row is
// compared. The canonical text of an expression is valid DuckDB SQL for this
// subset. DuckDB also reports each result's type, whose family (integer,
// other number, string, bool) must match Bind's.

var duckSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "j", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "g", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "event_type", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
}, nil)

var duckStrings = []string{"purchase", "cart", "view", "", "a'b", "click"}

func duckRecord(rng *rand.Rand, mem memory.Allocator, n int) arrow.RecordBatch {
	rb := array.NewRecordBuilder(mem, duckSchema)
	defer rb.Release()
	for c := range duckSchema.Fields() {
		nullP := []float64{0, 0.05, 0.3, 0.7}[rng.IntN(4)]
		fb := rb.Field(c)
		for r := 0; r < n; r++ {
			if c > 0 && rng.Float64() < nullP {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.Int64Builder:
				if c == 0 {
					fb.Append(int64(r))
				} else {
					fb.Append(rng.Int64N(11) - 5)
				}
			case *array.Int32Builder:
				fb.Append(int32(rng.IntN(11) - 5))
			case *array.Float64Builder:
				fb.Append(float64(rng.IntN(21)-10) / 4)
			case *array.Float32Builder:
				fb.Append(float32(rng.IntN(21)-10) / 4)
			case *array.StringBuilder:
				fb.Append(duckStrings[rng.IntN(len(duckStrings))])
			case *array.BooleanBuilder:
				fb.Append(rng.IntN(2) == 0)
			}
		}
	}
	return rb.NewRecordBatch()
}

// duckGen generates expressions DuckDB evaluates with the same semantics:
// small integers (no overflow), floats that are multiples of 1/8, no casts
// and no division.
type duckGen struct{ rng *rand.Rand }

type family uint8

const (
	famInt family = iota
	famNum        // integers and floats mixed
	famStr
	famBool
)

func (g *duckGen) of(f family, d int) Expr {
	r := g.rng
	if d > 0 {
		switch r.IntN(5) {
		case 0, 1:
			return g.caseOf(f, d)
		case 2:
			args := make([]Expr, 1+r.IntN(4))
			for i := range args {
				if r.IntN(6) == 0 {
					args[i] = Lit(nil)
				} else {
					args[i] = g.of(f, d-1)
				}
			}
			return Coalesce(args...)
		}
	}
	switch f {
	case famInt:
		switch r.IntN(5) {
		case 0:
			return Lit(r.Int64N(11) - 5)
		case 1:
			if d > 0 {
				return bin([]BinaryOp{OpAdd, OpSub, OpMul}[r.IntN(3)], g.of(famInt, d-1), g.of(famInt, d-1))
			}
		case 2:
			return Col("j")
		}
		return Col("i")
	case famNum:
		switch r.IntN(5) {
		case 0:
			return Lit(float64(r.IntN(17)-8) / 8)
		case 1:
			return Col("f")
		case 2:
			return Col("g")
		case 3:
			if d > 0 {
				return bin([]BinaryOp{OpAdd, OpSub, OpMul}[r.IntN(3)], g.of(famNum, d-1), g.of(famInt, d-1))
			}
		}
		return g.of(famInt, d)
	case famStr:
		if r.IntN(3) == 0 {
			return Lit(duckStrings[r.IntN(len(duckStrings))])
		}
		return Col([]string{"s", "event_type"}[r.IntN(2)])
	}
	switch r.IntN(8) {
	case 0:
		return Col("b")
	case 1:
		return IsNull(g.of(famNum, d-1))
	case 2:
		if d > 0 {
			return And(g.of(famBool, d-1), g.of(famBool, d-1))
		}
	case 3:
		if d > 0 {
			return Or(g.of(famBool, d-1), g.of(famBool, d-1))
		}
	case 4:
		return Not(g.of(famBool, d-1))
	case 5:
		return bin(BinaryOp(int(OpEq)+r.IntN(6)), g.of(famStr, d-1), g.of(famStr, d-1))
	case 6:
		return Lit([]any{true, false, nil}[r.IntN(3)])
	}
	return bin(BinaryOp(int(OpEq)+r.IntN(6)), g.of(famNum, d-1), g.of(famNum, d-1))
}

func (g *duckGen) caseOf(f family, d int) Expr {
	r := g.rng
	c := &CaseExpr{}
	var opf family
	simple := r.IntN(3) == 0
	if simple {
		opf = []family{famInt, famNum, famStr}[r.IntN(3)]
		c.Operand = g.of(opf, d-1)
	}
	for k := 1 + r.IntN(3); k > 0; k-- {
		cond := g.of(famBool, d-1)
		if simple {
			cond = g.of(opf, d-1)
		}
		c.Whens = append(c.Whens, When{Cond: cond, Then: g.of(f, d-1)})
	}
	if r.IntN(4) > 0 {
		c.Else = g.of(f, d-1)
	}
	return c
}

// duckFamily names the family of a DuckDB type, as typeof() prints it.
func duckFamily(t string) string {
	switch {
	case strings.Contains(t, "INT"):
		return "int"
	case t == "DOUBLE" || t == "FLOAT" || strings.HasPrefix(t, "DECIMAL"):
		return "num"
	case t == "VARCHAR":
		return "str"
	case t == "BOOLEAN":
		return "bool"
	}
	return t // "NULL"
}

func ourFamily(t arrow.DataType) string {
	switch k := kindOf(t); {
	case k.isInt():
		return "int"
	case k.isFloat():
		return "num"
	case k.isString():
		return "str"
	case k == kBool:
		return "bool"
	}
	return "NULL"
}

func TestCaseCoalesceDuckDB(t *testing.T) {
	duck.Python(t)
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { testDuckOnce(t, seed) })
	}
}

func testDuckOnce(t *testing.T, seed uint64) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(seed, 7))
	const rows = 2000
	rec := duckRecord(rng, mem, rows)
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "data.parquet")
	writeParquet(t, path, rec)

	g := &duckGen{rng: rng}
	var exprs []Expr
	var bound []*Bound
	for len(exprs) < 60 {
		f := family(rng.IntN(4))
		var e Expr
		if rng.IntN(3) == 0 {
			e = Coalesce(g.of(f, 2), g.of(f, 1+rng.IntN(2)))
		} else {
			e = g.caseOf(f, 1+rng.IntN(3))
		}
		b, err := Bind(e, duckSchema)
		if err != nil {
			t.Fatalf("Bind(%s): %v", e, err)
		}
		exprs = append(exprs, e)
		bound = append(bound, b)
	}

	// One query for the values (numbers as DOUBLE), one for the types.
	var cols, types []string
	for i, e := range exprs {
		sql := "(" + e.String() + ")"
		types = append(types, fmt.Sprintf("typeof(%s) AS t%d", sql, i))
		if f := ourFamily(bound[i].Type()); f == "int" || f == "num" {
			sql = "CAST(" + sql + " AS DOUBLE)"
		}
		cols = append(cols, fmt.Sprintf("%s AS x%d", sql, i))
	}
	from := fmt.Sprintf(" FROM read_parquet('%s')", path)
	want := duck.DuckDB(t, "SELECT "+strings.Join(cols, ", ")+from+" ORDER BY id")
	tt := duck.DuckDB(t, "SELECT "+strings.Join(types, ", ")+from+" LIMIT 1")
	if len(want.Rows) != rows {
		t.Fatalf("DuckDB returned %d rows, want %d", len(want.Rows), rows)
	}

	var sel []int32
	for i, e := range exprs {
		if got, dt := ourFamily(bound[i].Type()), duckFamily(duck.Format(tt.Rows[0][i])); got != dt && dt != "NULL" {
			t.Errorf("%s: type %s (%s), DuckDB says %v (%s)", e, bound[i].Type(), got, tt.Rows[0][i], dt)
		}
		caseSparseDiv = []int{0, 1, 16}[i%3] // see TestOracle
		bs := []int{1, 7, 64, 333, rows}[rng.IntN(5)]
		for lo := 0; lo < rows; lo += bs {
			batch := rec.NewSlice(int64(lo), int64(min(lo+bs, rows)))
			a, err := bound[i].Eval(mem, batch)
			if err != nil {
				t.Fatalf("Eval(%s): %v", e, err)
			}
			var trueRows []int32
			for r := 0; r < a.Len(); r++ {
				w := duck.Format(want.Rows[lo+r][i])
				g := formatDuck(readVal(a, r))
				if g != w {
					t.Fatalf("Eval(%s) batch size %d, row %d: got %s, DuckDB %s", e, bs, lo+r, g, w)
				}
				if w == "true" {
					trueRows = append(trueRows, int32(r))
				}
			}
			a.Release()
			if k := kindOf(bound[i].Type()); k == kBool || k == kNull {
				if sel, err = bound[i].Select(batch, sel); err != nil {
					t.Fatalf("Select(%s): %v", e, err)
				}
				if fmt.Sprint(sel) != fmt.Sprint(trueRows) && len(sel)+len(trueRows) > 0 {
					t.Fatalf("Select(%s) batch at %d: got %v, DuckDB %v", e, lo, sel, trueRows)
				}
			}
			batch.Release()
		}
	}
	caseSparseDiv = 16
}

// formatDuck renders a value as duck.Format renders DuckDB's (numbers as
// DOUBLE).
func formatDuck(v val) string {
	switch {
	case v.null:
		return "NULL"
	case v.k.isNumeric():
		return strconv.FormatFloat(v.float(), 'g', -1, 64)
	case v.k == kBool:
		return strconv.FormatBool(v.i != 0)
	}
	return v.s
}

func writeParquet(t *testing.T, path string, rec arrow.RecordBatch) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
