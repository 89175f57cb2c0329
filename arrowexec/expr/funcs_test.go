package expr

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	duck "github.com/riffle-dev/riffle/internal/oracle"
)

// TestHashDuckDB checks hash against DuckDB's equality: DuckDB's hash
// function differs from riffle's, but two rows must hash equal under one
// exactly when they do under the other (no collision in this small data).
func TestHashDuckDB(t *testing.T) {
	duck.Python(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(5, 11))
	const rows = 1500
	rec := funcRecord(rng, mem, rows)
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "data.parquet")
	writeParquet(t, path, rec)
	exprs := []string{"hash(k)", "hash(s)", "hash(k, s)", "hash(j, b, d)", "hash(tsm)", "hash(k % 3, NULL::int64)"}
	var cols []string
	for i, e := range exprs {
		cols = append(cols, fmt.Sprintf("CAST(%s AS VARCHAR) AS h%d", strings.ReplaceAll(e, "::int64", "::BIGINT"), i))
	}
	want := duck.DuckDB(t, "SELECT "+strings.Join(cols, ", ")+fmt.Sprintf(" FROM read_parquet('%s') ORDER BY id", path))
	for i, src := range exprs {
		b, err := Bind(MustParse(src), funcSchema)
		if err != nil {
			t.Fatalf("Bind(%s): %v", src, err)
		}
		ours := map[uint64]string{}
		theirs := map[string]uint64{}
		for lo := 0; lo < rows; lo += 100 {
			batch := rec.NewSlice(int64(lo), int64(lo+100))
			a, err := b.Eval(mem, batch)
			if err != nil {
				t.Fatalf("Eval(%s): %v", src, err)
			}
			for r := 0; r < a.Len(); r++ {
				if a.IsNull(r) {
					t.Fatalf("%s row %d: NULL", src, lo+r)
				}
				h := a.(*array.Uint64).Value(r)
				w := duck.Format(want.Rows[lo+r][i])
				if x, ok := ours[h]; ok && x != w {
					t.Fatalf("%s: row %d hashes like a row DuckDB tells apart (%s vs %s)", src, lo+r, x, w)
				}
				if x, ok := theirs[w]; ok && x != h {
					t.Fatalf("%s: row %d and an equal row (DuckDB hash %s) hash differently", src, lo+r, w)
				}
				ours[h], theirs[w] = w, h
			}
			a.Release()
			batch.Release()
		}
		if len(ours) < 2 {
			t.Fatalf("%s: only %d distinct hashes", src, len(ours))
		}
	}
}

// TestDateTruncClosedForm checks date_trunc and date_part of nanosecond
// timestamps, before and after 1970, against time.Time: the cases DuckDB
// gets one microsecond late (see funcExprs).
func TestDateTruncClosedForm(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "t", Type: arrow.FixedWidthTypes.Timestamp_ns, Nullable: true}}, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	bld := array.NewTimestampBuilder(mem, arrow.FixedWidthTypes.Timestamp_ns.(*arrow.TimestampType))
	var in []time.Time
	for i := 0; i < 500; i++ {
		v := rng.Int64N(4e18) - 2e18
		bld.Append(arrow.Timestamp(v))
		in = append(in, time.Unix(0, v).UTC())
	}
	col := bld.NewArray()
	bld.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, int64(col.Len()))
	col.Release()
	defer rec.Release()
	for _, c := range []struct {
		src  string
		want func(time.Time) int64
	}{
		{"date_trunc('microsecond', t)", func(x time.Time) int64 { return x.Truncate(time.Microsecond).UnixNano() }},
		{"date_trunc('second', t)", func(x time.Time) int64 { return x.Truncate(time.Second).UnixNano() }},
		{"date_trunc('month', t)", func(x time.Time) int64 {
			return time.Date(x.Year(), x.Month(), 1, 0, 0, 0, 0, time.UTC).UnixNano()
		}},
		{"date_part('microsecond', t)", func(x time.Time) int64 { return int64(x.Second())*1e6 + int64(x.Nanosecond()/1e3) }},
		{"date_part('week', t)", func(x time.Time) int64 { _, w := x.ISOWeek(); return int64(w) }},
		{"date_part('doy', t)", func(x time.Time) int64 { return int64(x.YearDay()) }},
	} {
		b, err := Bind(MustParse(c.src), schema)
		if err != nil {
			t.Fatal(err)
		}
		a, err := b.Eval(mem, rec)
		if err != nil {
			t.Fatal(err)
		}
		for r, x := range in {
			var got int64
			switch a := a.(type) {
			case *array.Timestamp:
				got = int64(a.Value(r))
			case *array.Int64:
				got = a.Value(r)
			}
			if w := c.want(x); got != w {
				t.Errorf("%s of %s: got %d, want %d", c.src, x.Format(time.RFC3339Nano), got, w)
				break
			}
		}
		a.Release()
	}
}

// TestFunctionErrors checks bind-time errors (they name the function and
// the argument) and runtime errors for values outside a function's domain.
func TestFunctionErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"regexp_matches(s, 'a(')", "regexp_matches argument 2 (string literal 'a('): invalid regular expression"},
		{"regexp_matches(s, s)", "regexp_matches argument 2 (string \"s\"): must be a constant string"},
		{"regexp_matches(s, 'a', 'x')", "unknown option 'x'"},
		{"date_trunc('fortnight', ts)", "date_trunc argument 1 (string literal 'fortnight'): unknown unit \"fortnight\" (known: century, day,"},
		{"date_trunc('day', i)", "date_trunc argument 2 (int64 \"i\"): must be a timestamp or a date"},
		{"date_part('eon', ts)", "unknown field \"eon\""},
		{"abs(s)", "abs argument 1 (string \"s\"): must be a number"},
		{"round(f, i)", "round argument 2 (int64 \"i\"): must be a constant integer"},
		{"round(f, 1.5)", "must be an integer"},
		{"lower(i)", "lower argument 1 (int64 \"i\"): must be a string"},
		{"substr(s, 'a')", "substr argument 2"},
		{"s LIKE s", "expected a string pattern after LIKE"},
		{"trim(s, ls)", "must be a constant string"},
		{"greatest(i, s)", "greatest has no common type"},
		{"greatest(b, b)", "greatest of booleans"},
		{"hash(ls)", "large_string is not supported"},
		{"sqrt(1, 2)", "sqrt needs 1 argument, got 2"},
		{"d + INTERVAL '1 hour'", "INTERVAL can only be added to or subtracted from a timestamp"},
		{"tsm + INTERVAL '1 microsecond'", "the interval is finer than timestamp[ms]"},
		{"CAST(ts - tsm AS string)", "cannot cast"},
		{"hash(ts - tsm)", "durations are not supported"},
		{"ts - tsm > 5", "cannot compare"},
		{"ts - tsm > tsn - tsm", "the units differ"},
		{"(ts - tsm) * 2", "cannot apply *"},
		{"INTERVAL '1 hour' - ts", "cannot subtract a timestamp from an INTERVAL"},
		{"ts - tsm > INTERVAL '1 nanosecond'", "the interval is finer than duration[us]"},
		{"epoch_ms(s)", "epoch_ms argument 1 (string \"s\"): must be a timestamp or an integer"},
	} {
		e, err := Parse(c.src)
		if err == nil {
			_, err = Bind(e, funcSchema)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", c.src, err, c.want)
		}
	}
	// LIKE with a column pattern, built in Go.
	if _, err := Bind(&CallExpr{Name: "like", Args: []Expr{Col("s"), Col("s")}}, funcSchema); err == nil ||
		!strings.Contains(err.Error(), `like argument 2 (string "s"): must be a constant string`) {
		t.Errorf("like(s, s): got %v", err)
	}
	for _, c := range []struct{ src, want string }{
		{"ts + INTERVAL '1 month'", "unit \"month\" has no fixed length"},
		{"ts + INTERVAL 'soon'", "invalid INTERVAL"},
		{"extract(year ts)", "expected FROM"},
	} {
		if _, err := Parse(c.src); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%s): got error %v, want one containing %q", c.src, err, c.want)
		}
	}

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "i", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	ib := array.NewInt8Builder(mem)
	ib.AppendValues([]int8{1, -128, -128}, []bool{true, false, true})
	fb := array.NewFloat64Builder(mem)
	fb.AppendValues([]float64{4, -1, 0}, []bool{true, false, true})
	ic, fc := ib.NewArray(), fb.NewArray()
	ib.Release()
	fb.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{ic, fc}, 3)
	ic.Release()
	fc.Release()
	defer rec.Release()
	for _, c := range []struct {
		src, want string
		rows      int64 // the error needs rows [0, rows)
	}{
		{"abs(i)", "abs: overflow on -128 at row 2", 3},
		{"ln(f)", "ln: cannot take the logarithm of zero or a negative number (0 at row 2)", 3},
		{"sqrt(f - 1)", "sqrt: cannot take the square root of a negative number (-1 at row 2)", 3},
		{"to_timestamp(f * 1e300)", "to_timestamp: 4e+300 seconds at row 0 is out of the timestamp range", 1},
	} {
		b, err := Bind(MustParse(c.src), schema)
		if err != nil {
			t.Fatal(err)
		}
		// The rows before the bad one (the NULL at row 1 does not count).
		if c.rows == 3 {
			ok := rec.NewSlice(0, 2)
			a, err := b.Eval(mem, ok)
			if err != nil {
				t.Errorf("%s over rows 0-1: %v", c.src, err)
			} else {
				a.Release()
			}
			ok.Release()
		}
		part := rec.NewSlice(0, c.rows)
		_, err = b.Eval(mem, part)
		part.Release()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.src, err, c.want)
		}
	}
}

// TestFunctionsDocumented keeps the function table of doc.go in step with
// the function table of funcs.go: every callable function has a row.
func TestFunctionsDocumented(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(src), "\n") {
		row, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			continue
		}
		// The name column: names separated by commas, up to two spaces.
		name, _, _ := strings.Cut(row, "  ")
		for _, n := range strings.Split(name, ",") {
			documented[strings.TrimSpace(n)] = true
		}
	}
	names := []string{"starts_with", "extract"}
	for n := range functions {
		names = append(names, n)
	}
	for _, n := range names {
		switch n {
		case "-": // ts - ts, documented as such
			continue
		case "||":
			n = "a || b"
		case "like", "ilike":
			n = "LIKE"
		case "substring":
			n = "substr"
		}
		if !documented[n] {
			t.Errorf("function %s has no row in doc.go's function table", n)
		}
	}
}
