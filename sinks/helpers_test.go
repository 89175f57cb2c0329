package sinks_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/sinks"
)

// kind is how a test column's values are compared.
type kind int

const (
	kInt kind = iota
	kFloat
	kString
	kBool
	kTime // time.Time; integers from a reader are in the column's unit
	kDate // "YYYY-MM-DD"
)

type testCol struct {
	field arrow.Field
	kind  kind
	unit  arrow.TimeUnit
}

// testSchema is the schema of the random round-trip data: a unique non-null
// id to order by, then one nullable column per kind.
var testCols = []testCol{
	{arrow.Field{Name: "id", Type: arrow.PrimitiveTypes.Int64}, kInt, 0},
	{arrow.Field{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, kInt, 0},
	{arrow.Field{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true}, kFloat, 0},
	{arrow.Field{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}, kString, 0},
	{arrow.Field{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true}, kBool, 0},
	{arrow.Field{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true}, kTime, arrow.Millisecond},
	{arrow.Field{Name: "tsn", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true}, kTime, arrow.Microsecond},
	{arrow.Field{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true}, kDate, 0},
}

func testSchema() *arrow.Schema {
	fs := make([]arrow.Field, len(testCols))
	for i, c := range testCols {
		fs[i] = c.field
	}
	return arrow.NewSchema(fs, nil)
}

// nastyStrings are string values that break naive CSV/JSON writers. None of
// them is one of pandas' default NA markers ("NA", "null", "NaN", ...).
var nastyStrings = []string{
	"", "plain", `he said "hi"`, "a,b,c", "line1\nline2", "crlf\r\nend", "tab\there",
	"ünïcødé 日本語 🚀", "  padded  ", `back\slash`, `"`, ",", "'single'", "x\x01y",
	`{"json":true}`, "trailing,", "é",
}

// randomRows returns n rows of random values, about 10% nulls per column.
func randomRows(rng *rand.Rand, n int) [][]any {
	base := time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC).UnixMilli()
	rows := make([][]any, n)
	for i := range rows {
		r := make([]any, len(testCols))
		r[0] = int64(i)
		null := func() bool { return rng.IntN(10) == 0 }
		if !null() {
			r[1] = rng.Int64N(2e12) - 1e12
		}
		if !null() {
			r[2] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-4))
		}
		if !null() {
			if rng.IntN(2) == 0 {
				r[3] = nastyStrings[rng.IntN(len(nastyStrings))]
			} else {
				r[3] = fmt.Sprintf("w%d-%s", rng.IntN(1000), nastyStrings[rng.IntN(len(nastyStrings))])
			}
		}
		if !null() {
			r[4] = rng.IntN(2) == 0
		}
		if !null() {
			// Up to 60 years either side, including before 1970.
			r[5] = time.UnixMilli(base + rng.Int64N(2*60*365*86400e3) - 60*365*86400e3).UTC()
		}
		if !null() {
			r[6] = time.UnixMicro(base*1000 + rng.Int64N(400*86400e6)).UTC()
		}
		if !null() {
			r[7] = time.Unix(int64(rng.IntN(40000)-10000)*86400, 0).UTC().Format("2006-01-02")
		}
		rows[i] = r
	}
	return rows
}

// buildBatch builds one batch from rows.
func buildBatch(mem memory.Allocator, schema *arrow.Schema, rows [][]any) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, r := range rows {
		for c, v := range r {
			fb := b.Field(c)
			if v == nil {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.Int64Builder:
				fb.Append(v.(int64))
			case *array.Float64Builder:
				fb.Append(v.(float64))
			case *array.StringBuilder:
				fb.Append(v.(string))
			case *array.BooleanBuilder:
				fb.Append(v.(bool))
			case *array.TimestampBuilder:
				unit := testCols[c].unit
				ts, err := arrow.TimestampFromTime(v.(time.Time), unit)
				if err != nil {
					panic(err)
				}
				fb.Append(ts)
			case *array.Date32Builder:
				t, err := time.Parse("2006-01-02", v.(string))
				if err != nil {
					panic(err)
				}
				fb.Append(arrow.Date32FromTime(t))
			default:
				panic(fmt.Sprintf("builder %T", fb))
			}
		}
	}
	return b.NewRecordBatch()
}

// splitBatches cuts rows into batches of random sizes (1..max rows).
func splitBatches(rng *rand.Rand, mem memory.Allocator, schema *arrow.Schema, rows [][]any, max int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for len(rows) > 0 {
		n := 1 + rng.IntN(max)
		if n > len(rows) {
			n = len(rows)
		}
		out = append(out, buildBatch(mem, schema, rows[:n]))
		rows = rows[n:]
	}
	return out
}

func releaseAll(bs []arrow.RecordBatch) {
	for _, b := range bs {
		b.Release()
	}
}

func task(mem memory.Allocator, schema *arrow.Schema, subtask, parallelism int) *arrowexec.Task {
	return &arrowexec.Task{
		Node: "sink", Subtask: subtask, Parallelism: parallelism,
		MaxParallelism: arrowexec.DefaultMaxParallelism,
		Mem:            mem, Inputs: []*arrow.Schema{schema}, Metrics: &arrowexec.TaskMetrics{},
	}
}

// runSubtask drives one sink subtask the way the runtime does: Open, Process
// every batch, Finish when finish is set, Close.
func runSubtask(t testing.TB, spec *sinks.FileSpec, tk *arrowexec.Task, batches []arrow.RecordBatch, finish bool) error {
	t.Helper()
	ctx := context.Background()
	op, err := spec.New(tk)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if err := op.Open(ctx); err != nil {
		return err
	}
	for _, b := range batches {
		if err := op.Process(ctx, 0, b, nil); err != nil {
			return err
		}
	}
	if finish {
		if err := op.Finish(ctx, nil); err != nil {
			return err
		}
	}
	return op.Close()
}

// writeRows writes rows through a sink with `parallelism` subtasks, each
// taking a contiguous share, in batches of random sizes.
func writeRows(t testing.TB, mem memory.Allocator, opts sinks.FileOptions, rows [][]any, parallelism int, seed uint64) *sinks.FileSpec {
	t.Helper()
	spec, err := sinks.NewFile(opts)
	if err != nil {
		t.Fatal(err)
	}
	schema := testSchema()
	if _, err := spec.Schema([]*arrow.Schema{schema}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	per := (len(rows) + parallelism - 1) / parallelism
	for st := 0; st < parallelism; st++ {
		lo, hi := min(st*per, len(rows)), min((st+1)*per, len(rows))
		batches := splitBatches(rng, mem, schema, rows[lo:hi], 300)
		err := runSubtask(t, spec, task(mem, schema, st, parallelism), batches, true)
		releaseAll(batches)
		if err != nil {
			t.Fatal(err)
		}
	}
	return spec
}

// listDir returns the names in dir, sorted.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func hidden(names []string) []string {
	var h []string
	for _, n := range names {
		if sinks.IsPublishLog(n) {
			continue // the publish log, not a part
		}
		if strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") {
			h = append(h, n)
		}
	}
	return h
}

// cmpOpts says how loosely a reader's values compare.
type cmpOpts struct {
	emptyIsNull bool    // the reader cannot tell "" from null
	floatTol    float64 // relative tolerance for floats (0: exact)
	floatAbs    float64 // absolute tolerance for floats, on top of floatTol
}

// normalize turns a reader's value for column c into the kind's Go type.
func normalize(c testCol, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch c.kind {
	case kInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case float64:
			if x != math.Trunc(x) {
				return nil, fmt.Errorf("non-integral %v", x)
			}
			return int64(x), nil
		case string:
			return strconv.ParseInt(x, 10, 64)
		}
	case kFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case string:
			return strconv.ParseFloat(x, 64)
		}
	case kString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case kBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case float64: // pandas reads a JSON bool column with nulls as float64
			if x != 0 && x != 1 {
				return nil, fmt.Errorf("not a bool: %v", x)
			}
			return x == 1, nil
		case string:
			return strconv.ParseBool(strings.ToLower(x))
		}
	case kTime:
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), nil
		case int64:
			switch c.unit {
			case arrow.Millisecond:
				return time.UnixMilli(x).UTC(), nil
			case arrow.Microsecond:
				return time.UnixMicro(x).UTC(), nil
			}
		case string:
			return parseISO(x)
		}
	case kDate:
		switch x := v.(type) {
		case string:
			if len(x) > 10 { // a date read as a timestamp
				t, err := parseISO(x)
				return t.Format("2006-01-02"), err
			}
			return x, nil
		}
	}
	return nil, fmt.Errorf("unexpected %T %v", v, v)
}

// parseISO parses an ISO-8601 timestamp with or without fraction and "Z" or
// offset; one without a zone is read as UTC.
func parseISO(s string) (time.Time, error) {
	s = strings.Replace(s, " ", "T", 1)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not an ISO-8601 timestamp: %q", s)
}

// compareRows checks got (rows in testCols order, any order of rows) against
// want, sorting got by id first.
func compareRows(t testing.TB, who string, got, want [][]any, o cmpOpts) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", who, len(got), len(want))
	}
	norm := make([][]any, len(got))
	for i, r := range got {
		if len(r) != len(testCols) {
			t.Fatalf("%s: row %d has %d columns, want %d", who, i, len(r), len(testCols))
		}
		n := make([]any, len(r))
		for c, v := range r {
			x, err := normalize(testCols[c], v)
			if err != nil {
				t.Fatalf("%s: row %d column %s: %v", who, i, testCols[c].field.Name, err)
			}
			n[c] = x
		}
		norm[i] = n
	}
	sort.Slice(norm, func(i, j int) bool { return norm[i][0].(int64) < norm[j][0].(int64) })
	bad := 0
	for i := range want {
		for c, w := range want[i] {
			g := norm[i][c]
			if !valueEqual(testCols[c], g, w, o) {
				t.Errorf("%s: id %d column %s: got %#v, want %#v", who, want[i][0], testCols[c].field.Name, g, w)
				if bad++; bad > 10 {
					t.Fatalf("%s: too many differences", who)
				}
			}
		}
	}
}

func valueEqual(c testCol, g, w any, o cmpOpts) bool {
	if o.emptyIsNull && c.kind == kString {
		if g == "" {
			g = nil
		}
		if w == "" {
			w = nil
		}
	}
	if g == nil || w == nil {
		return g == nil && w == nil
	}
	switch c.kind {
	case kFloat:
		gf, wf := g.(float64), w.(float64)
		if o.floatTol == 0 && o.floatAbs == 0 {
			return gf == wf
		}
		return math.Abs(gf-wf) <= o.floatTol*math.Abs(wf)+o.floatAbs
	case kTime:
		return g.(time.Time).Equal(w.(time.Time))
	}
	return g == w
}

// arrowRows turns arrow columns into rows of Go values (test kinds).
func arrowRows(t testing.TB, cols []arrow.Array) [][]any {
	t.Helper()
	n := cols[0].Len()
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = make([]any, len(cols))
	}
	for c, a := range cols {
		for i := 0; i < n; i++ {
			if a.IsNull(i) {
				continue
			}
			var v any
			switch a := a.(type) {
			case *array.Int64:
				v = a.Value(i)
			case *array.Float64:
				v = a.Value(i)
			case *array.String:
				v = a.Value(i)
			case *array.LargeString:
				v = a.Value(i)
			case *array.Boolean:
				v = a.Value(i)
			case *array.Timestamp:
				v = a.Value(i).ToTime(a.DataType().(*arrow.TimestampType).Unit).UTC()
			case *array.Date32:
				v = a.Value(i).ToTime().Format("2006-01-02")
			default:
				t.Fatalf("column %d: unexpected array %T", c, a)
			}
			rows[i][c] = v
		}
	}
	return rows
}

func publishedPaths(spec *sinks.FileSpec) []string {
	var ps []string
	for _, p := range spec.Published() {
		ps = append(ps, p.Path)
	}
	sort.Strings(ps)
	return ps
}

func glob(dir string, ext string) string { return filepath.Join(dir, "*."+ext) }

func float64FromBits(b uint64) float64 { return math.Float64frombits(b) }

// sameFields compares names, types and nullability, not metadata.
func sameFields(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.Fields() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || !arrow.TypeEqual(fa.Type, fb.Type) || fa.Nullable != fb.Nullable {
			return false
		}
	}
	return true
}
