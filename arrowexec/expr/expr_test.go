package expr

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// fixture is a small batch with nulls in every column:
//
//	a  int64        1, 0, NULL, -7, 300
//	b  float64      0.5, 2, 1.5, NULL, -1
//	s  string       "apple", "", "ab", NULL, "banana"
//	t  bool         true, false, NULL, true, false
//	ts timestamp[s] 2024-01-02 00:00:00 + 0, 1, 2, NULL, 4 seconds
//	us timestamp[us]  same instants + 500ms, NULL in row 0
//	d  date32       2024-01-02 + 0..4 days, NULL in row 1
//	i8 int8         -128, 127, 0, NULL, 5
func fixture(mem memory.Allocator) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "b", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "t", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_s, Nullable: true},
		{Name: "us", Type: arrow.FixedWidthTypes.Timestamp_us, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
	}, nil)
	rb := array.NewRecordBuilder(mem, schema)
	defer rb.Release()
	ok := func(null int) []bool {
		v := []bool{true, true, true, true, true}
		v[null] = false
		return v
	}
	rb.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 0, 0, -7, 300}, ok(2))
	rb.Field(1).(*array.Float64Builder).AppendValues([]float64{0.5, 2, 1.5, 0, -1}, ok(3))
	rb.Field(2).(*array.StringBuilder).AppendValues([]string{"apple", "", "ab", "", "banana"}, ok(3))
	rb.Field(3).(*array.BooleanBuilder).AppendValues([]bool{true, false, false, true, false}, ok(2))
	base := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	var ts, us []arrow.Timestamp
	var ds []arrow.Date32
	for i := 0; i < 5; i++ {
		t := base.Add(time.Duration(i) * time.Second)
		ts = append(ts, arrow.Timestamp(t.Unix()))
		us = append(us, arrow.Timestamp(t.Add(500*time.Millisecond).UnixMicro()))
		ds = append(ds, arrow.Date32FromTime(base)+arrow.Date32(i))
	}
	rb.Field(4).(*array.TimestampBuilder).AppendValues(ts, ok(3))
	rb.Field(5).(*array.TimestampBuilder).AppendValues(us, ok(0))
	rb.Field(6).(*array.Date32Builder).AppendValues(ds, ok(1))
	rb.Field(7).(*array.Int8Builder).AppendValues([]int8{-128, 127, 0, 0, 5}, ok(3))
	return rb.NewRecordBatch()
}

func TestEvalCases(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := fixture(mem)
	defer rec.Release()
	for _, tc := range []struct{ src, want string }{
		// Arithmetic, division by zero, wrapping.
		{"a + 1", "[2 1 (null) -6 301]"},
		{"a / 0", "[(null) (null) (null) (null) (null)]"},
		{"10 / a", "[10 (null) (null) -1.4285714285714286 0.03333333333333333]"},
		{"a % 0", "[(null) (null) (null) (null) (null)]"},
		{"7 % a", "[0 (null) (null) 0 7]"},
		{"b % 0.5", "[0 0 0 (null) -0]"},
		{"a * 2 + b", "[2.5 2 (null) (null) 599]"},
		{"9223372036854775807 + a", "[-9223372036854775808 9223372036854775807 (null) 9223372036854775800 -9223372036854775509]"},
		{"-i8", "[128 -127 0 (null) -5]"},
		{"i8 + i8", "[-256 254 0 (null) 10]"},
		// Comparisons; literals out of the column's range.
		{"i8 > 300", "[false false false (null) false]"},
		{"i8 < 300", "[true true true (null) true]"},
		{"i8 != -1000", "[true true true (null) true]"},
		{"a > 0.5", "[true false (null) false true]"},
		{"b = a", "[false false (null) (null) false]"},
		{"s >= 'ab'", "[true false true (null) true]"},
		{"t = FALSE", "[false true (null) false true]"},
		{"t < TRUE", "[false true (null) false true]"},
		// Timestamps: literals between ticks, columns of different units.
		{"ts > TIMESTAMP '2024-01-02 00:00:01.5'", "[false false true (null) true]"},
		{"ts >= TIMESTAMP '2024-01-02 00:00:01.5'", "[false false true (null) true]"},
		{"ts = TIMESTAMP '2024-01-02 00:00:01.5'", "[false false false (null) false]"},
		{"ts != TIMESTAMP '2024-01-02 00:00:01.5'", "[true true true (null) true]"},
		{"ts <= TIMESTAMP '2024-01-02 00:00:01.5'", "[true true false (null) false]"},
		{"us = TIMESTAMP '2024-01-02 00:00:01.5'", "[(null) true false false false]"},
		{"us > ts", "[(null) true true (null) true]"},
		{"d = DATE '2024-01-04'", "[false (null) true false false]"},
		// Three-valued logic.
		{"t AND NULL", "[(null) false (null) (null) false]"},
		{"t OR NULL", "[true (null) (null) true (null)]"},
		{"t AND a > 0", "[true false (null) false false]"},
		{"t OR a > 0", "[true false (null) true true]"},
		{"NOT t", "[false true (null) false true]"},
		{"NOT (t AND a > 0)", "[false true (null) true true]"},
		{"a IS NULL", "[false false true false false]"},
		{"NOT a IS NULL", "[true true false true true]"},
		// IN, with a NULL in the list.
		{"a IN (1, 300)", "[true false (null) false true]"},
		{"a IN (1, 64)", "[true false (null) false false]"}, // a bitset of exactly one word
		{"a IN (1, NULL)", "[true (null) (null) (null) (null)]"},
		{"a NOT IN (1, 300)", "[false true (null) true false]"},
		{"b IN (0.5, 2)", "[true true false (null) false]"},
		{"a IN (1.0, 2.5)", "[true false (null) false false]"},
		{"s IN ('ab', 'banana')", "[false false true (null) true]"},
		{"t IN (TRUE)", "[true false (null) true false]"},
		{"i8 IN (127, 1000)", "[false true false (null) false]"},
		// Prefix.
		{"starts_with(s, 'a')", "[true false true (null) false]"},
		{"s LIKE ''", "[false true false (null) false]"},
		{"s LIKE '%'", "[true true true (null) true]"},
		// Casts.
		{"CAST(b AS int8)", "[0 2 1 (null) -1]"},
		{"CAST(a * 1.0e300 AS int64)", "[(null) 0 (null) (null) (null)]"},
		{"a::int8", "[1 0 (null) -7 44]"},
		{"a::string", `["1" "0" (null) "-7" "300"]`},
		{"s::int64", "[(null) (null) (null) (null) (null)]"},
		{"'12'::int64 + a", "[13 12 (null) 5 312]"},
		{"t::int32", "[1 0 (null) 1 0]"},
		{"b::bool", "[true true true (null) true]"},
		{"ts::string", `["2024-01-02 00:00:00" "2024-01-02 00:00:01" "2024-01-02 00:00:02" (null) "2024-01-02 00:00:04"]`},
		{"CAST(us AS timestamp) = TIMESTAMP '2024-01-02 00:00:00.5'", "[(null) false false false false]"},
		{"us::date = DATE '2024-01-02'", "[(null) true true true true]"},
		{"d::string", `["2024-01-02" (null) "2024-01-04" "2024-01-05" "2024-01-06"]`},
		{"'2024-01-03'::date = d", "[false (null) false false false]"},
		// Constants are materialized to the batch length.
		{"1 + 2", "[3 3 3 3 3]"},
		{"NULL", "[(null) (null) (null) (null) (null)]"},
	} {
		b, err := Bind(MustParse(tc.src), rec.Schema())
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		a, err := b.Eval(mem, rec)
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if got := a.String(); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.src, got, tc.want)
		}
		// Every slice of the batch (offsets, empty batches) gives the
		// matching slice of the result, through Eval and Select.
		for lo := int64(0); lo <= 5; lo++ {
			for hi := lo; hi <= 5; hi++ {
				part := rec.NewSlice(lo, hi)
				pa, err := b.Eval(mem, part)
				if err != nil {
					t.Fatalf("%s on rows [%d,%d): %v", tc.src, lo, hi, err)
				}
				want := array.NewSlice(a, lo, hi)
				if !array.Equal(pa, want) && b.Type().ID() != arrow.NULL {
					t.Errorf("%s on rows [%d,%d) = %s, want %s", tc.src, lo, hi, pa, want)
				}
				if b.Type().ID() == arrow.BOOL {
					sel, err := b.Select(part, nil)
					if err != nil {
						t.Fatal(err)
					}
					var wsel []int32
					for i := 0; i < want.Len(); i++ {
						if want.IsValid(i) && want.(*array.Boolean).Value(i) {
							wsel = append(wsel, int32(i))
						}
					}
					if !reflect.DeepEqual(sel, wsel) && len(sel)+len(wsel) > 0 {
						t.Errorf("Select(%s) on rows [%d,%d) = %v, want %v", tc.src, lo, hi, sel, wsel)
					}
				}
				want.Release()
				pa.Release()
				part.Release()
			}
		}
		a.Release()
	}
}

func TestSelectErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := fixture(mem)
	defer rec.Release()
	b, err := Bind(MustParse("a + 1"), rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Select(rec, nil); err == nil || !strings.HasPrefix(err.Error(), "expr: Select needs a boolean") {
		t.Errorf("Select on int64: %v", err)
	}
	// A batch whose column type differs from the bound schema.
	other := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int32}}, nil)
	b, err = Bind(MustParse("a > 1"), other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Eval(mem, rec); err == nil || !strings.Contains(err.Error(), `column "a"`) {
		t.Errorf("Eval with wrong schema: %v", err)
	}
	if _, err := b.Select(rec, nil); err == nil {
		t.Errorf("Select with wrong schema: no error")
	}
}

func TestBuilders(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 6000000, time.UTC)
	for _, tc := range []struct {
		e    Expr
		want string
	}{
		{And(Gt(Col("a"), Lit(10)), Lt(Col("b"), Lit(0.5))), "a > 10 AND b < 0.5"},
		{Add(Mul(Col("a"), Lit(2)), Col("b")), "a * 2 + b"},
		{Mul(Add(Col("a"), Lit(2)), Col("b")), "(a + 2) * b"},
		{Sub(Col("a"), Sub(Col("b"), Col("c"))), "a - (b - c)"},
		{Div(Col("a"), Mod(Col("b"), Lit(int8(3)))), "a / (b % 3)"},
		{Or(Eq(Col("x"), Lit("it's")), Ne(Col("y"), Lit(nil))), "x = 'it''s' OR y != NULL"},
		{And(Or(Le(Col("a"), Lit(1)), Ge(Col("a"), Lit(2))), Not(IsNull(Col("b")))), "(a <= 1 OR a >= 2) AND NOT b IS NULL"},
		{In(Col("a"), 1, 2.5, "x", nil, true), "a IN (1, 2.5, 'x', NULL, TRUE)"},
		{StartsWith(Col("my col"), "ab"), `starts_with("my col", 'ab')`},
		{Cast(Col("a"), "FLOAT64"), "CAST(a AS float64)"},
		{Eq(Col("t"), Lit(ts)), "t = TIMESTAMP '2024-01-02 03:04:05.006'"},
		{Eq(Col("d"), Lit(arrow.Date32FromTime(ts))), "d = DATE '2024-01-02'"},
		{Neg(Lit(3)), "-(3)"},
		{Neg(Neg(Col("a"))), "-(-a)"},
		{Eq(Lt(Col("a"), Col("b")), Lit(true)), "(a < b) = TRUE"},
		{And(), "TRUE"},
		{Or(), "FALSE"},
		{Col("and"), `"and"`},
		{Lit(-0.0), "0.0"},
		{Lit(1e100), "1e+100"},
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("String() = %s, want %s", got, tc.want)
		}
		if p, err := Parse(tc.e.String()); err != nil || p.String() != tc.e.String() {
			t.Errorf("round trip %s: %v %v", tc.e, p, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Errorf("Lit(struct{}{}) did not panic")
		}
	}()
	Lit(struct{}{})
}

func TestColumns(t *testing.T) {
	got := Columns(MustParse(`a > 1 AND (b + a < 2 OR starts_with("c d", 'x')) AND e::int64 IN (1) AND f IS NULL`))
	want := []string{"a", "b", "c d", "e", "f"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Columns = %q, want %q", got, want)
	}
	if got := Columns(MustParse("1 + 2")); len(got) != 0 {
		t.Errorf("Columns of a constant = %q", got)
	}
}

func TestPushdownPredicates(t *testing.T) {
	ts := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		src  string
		want []Predicate
	}{
		{"a > 10 AND b < 0.5", []Predicate{{"a", ">", int64(10)}, {"b", "<", 0.5}}},
		{"10 < a", []Predicate{{"a", ">", int64(10)}}},
		{"'x' >= s AND 3 = a", []Predicate{{"s", "<=", "x"}, {"a", "=", int64(3)}}},
		{"a > 1 OR b < 2", nil},
		{"NOT a > 1", nil},
		{"a != 1", nil},
		{"a = b", nil},
		{"a + 1 > 2", nil},
		{"a = NULL", nil},
		{"a > 1 AND (b < 2 AND c = TRUE)", []Predicate{{"a", ">", int64(1)}, {"b", "<", int64(2)}, {"c", "=", true}}},
		{"ts >= TIMESTAMP '2024-01-02 00:00:00' AND d < DATE '2024-01-02'", []Predicate{{"ts", ">=", ts}, {"d", "<", ts}}},
		{"s LIKE 'ab%'", []Predicate{{"s", ">=", "ab"}, {"s", "<", "ac"}}},
		{"s LIKE 'a\xff%'", []Predicate{{"s", ">=", "a\xff"}, {"s", "<", "b"}}},
		{"s LIKE '%'", nil},
		{"a IN (3)", []Predicate{{"a", "=", int64(3)}}},
		{"a IN (3, 4)", nil},
	} {
		got := PushdownPredicates(MustParse(tc.src))
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("PushdownPredicates(%s) = %v, want %v", tc.src, got, tc.want)
		}
	}
}

func TestSelectReusesMemory(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := fixture(mem)
	defer rec.Release()
	b, err := Bind(MustParse("a >= 0 AND s IS NOT NULL"), rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]int32, 3, 16)
	sel, err := b.Select(rec, buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sel, []int32{0, 1, 4}) {
		t.Errorf("Select = %v", sel)
	}
	if &sel[0] != &buf[0] {
		t.Errorf("Select did not reuse sel's memory")
	}
}

// TestConcurrentUse runs one Bound from several goroutines, as parallel
// subtasks do (run with -race).
func TestConcurrentUse(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := fixture(mem)
	defer rec.Release()
	b, err := Bind(MustParse("(a IN (1, 300) OR s IN ('ab', 'x', 'y', 'z', 'w', 'v', 'u', 't', 's')) AND b * 2 > 0"), rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			var sel []int32
			for i := 0; i < 100; i++ {
				a, err := b.Eval(mem, rec)
				if err != nil {
					done <- err
					return
				}
				if got := a.String(); got != "[true false true (null) false]" {
					a.Release()
					done <- fmt.Errorf("Eval = %s", got)
					return
				}
				a.Release()
				if sel, err = b.Select(rec, sel); err != nil || !reflect.DeepEqual(sel, []int32{0, 2}) {
					done <- fmt.Errorf("Select = %v, %v", sel, err)
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
