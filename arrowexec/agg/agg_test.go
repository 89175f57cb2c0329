package agg

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// collector is a test Emitter that keeps every batch it is given.
type collector struct{ batches []arrow.RecordBatch }

func (c *collector) Emit(_ context.Context, b arrow.RecordBatch) error {
	c.batches = append(c.batches, b)
	return nil
}

func (c *collector) release() {
	for _, b := range c.batches {
		b.Release()
	}
	c.batches = nil
}

// run drives one operator over batches and returns what it emitted.
func run(t testing.TB, mem memory.Allocator, spec *Spec, in *arrow.Schema, batches []arrow.RecordBatch, hook func(*operator)) *collector {
	t.Helper()
	ctx := context.Background()
	op, err := spec.New(&arrowexec.Task{Node: "agg", Parallelism: 1, Mem: mem, Inputs: []*arrow.Schema{in}})
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(op.(*operator))
	}
	defer func() {
		if err := op.Close(); err != nil {
			t.Fatal(err)
		}
		if err := op.Close(); err != nil { // twice is safe
			t.Fatal(err)
		}
	}()
	if err := op.Open(ctx); err != nil {
		t.Fatal(err)
	}
	out := &collector{}
	for _, b := range batches {
		if err := op.Process(ctx, 0, b, out); err != nil {
			out.release()
			t.Fatal(err)
		}
	}
	if err := op.Finish(ctx, out); err != nil {
		out.release()
		t.Fatal(err)
	}
	return out
}

// ---- random test data ----

// column is one generated column: Go values, nil for NULL.
type column struct {
	name string
	dt   arrow.DataType
	vals []any
}

var tsType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// keyValue derives the value of a key column of type dt from group r.
func keyValue(dt arrow.DataType, r int, rng *rand.Rand) any {
	switch dt.ID() {
	case arrow.INT64:
		return int64(r)*7919 - 1_000_000
	case arrow.INT32:
		return int32(r*31 - 5000)
	case arrow.INT8:
		return int8(r)
	case arrow.UINT16:
		return uint16(r * 3)
	case arrow.UINT64:
		return uint64(r) * 0x9e3779b97f4a7c15
	case arrow.FLOAT64:
		switch {
		case r == 0 && rng.IntN(2) == 0:
			return math.Copysign(0, -1)
		case r%97 == 1:
			return math.NaN()
		}
		return float64(r)/4 - 10
	case arrow.FLOAT32:
		if r == 0 && rng.IntN(2) == 0 {
			return float32(math.Copysign(0, -1))
		}
		return float32(r)/2 - 3
	case arrow.BOOL:
		return r%2 == 0
	case arrow.STRING:
		if r == 2 {
			return ""
		}
		return fmt.Sprintf("key-%d", r*31)
	case arrow.TIMESTAMP:
		return arrow.Timestamp(1_700_000_000_000_000 + int64(r)*1_000_003)
	case arrow.DATE32:
		return arrow.Date32(r - 500)
	case arrow.DATE64:
		return arrow.Date64(int64(r-20) * 86_400_000)
	case arrow.INT16:
		return int16(r*7 - 300)
	case arrow.UINT8:
		return uint8(r)
	case arrow.UINT32:
		return uint32(r) * 2654435761
	case arrow.BINARY:
		return string([]byte{byte(r), 0, byte(r >> 8)})
	}
	panic(dt)
}

var keyTypes = []arrow.DataType{
	arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int8,
	arrow.PrimitiveTypes.Uint16, arrow.PrimitiveTypes.Uint64, arrow.PrimitiveTypes.Float64,
	arrow.PrimitiveTypes.Float32, arrow.FixedWidthTypes.Boolean, arrow.BinaryTypes.String,
	tsType, arrow.FixedWidthTypes.Date32,
}

func keyName(dt arrow.DataType) string { return "k_" + dt.Name() }

// genData returns n rows: key columns derived from a group index drawn from
// [0, card), value columns random; every column has NULLs.
func genData(rng *rand.Rand, n, card int) []column {
	var cols []column
	groups := make([]int, n)
	for i := range groups {
		groups[i] = rng.IntN(card)
	}
	for _, dt := range keyTypes {
		c := column{name: keyName(dt), dt: dt, vals: make([]any, n)}
		for i, r := range groups {
			if rng.IntN(20) != 0 {
				c.vals[i] = keyValue(dt, r, rng)
			}
		}
		cols = append(cols, c)
	}
	value := func(name string, dt arrow.DataType, nullEvery int, f func() any) {
		c := column{name: name, dt: dt, vals: make([]any, n)}
		for i := range c.vals {
			if nullEvery == 0 || rng.IntN(nullEvery) != 0 {
				c.vals[i] = f()
			}
		}
		cols = append(cols, c)
	}
	letters := "abcxyz"
	value("v_i64", arrow.PrimitiveTypes.Int64, 8, func() any { return rng.Int64N(2_000_000) - 1_000_000 })
	value("v_i16", arrow.PrimitiveTypes.Int16, 3, func() any { return int16(rng.IntN(60) - 30) })
	value("v_u32", arrow.PrimitiveTypes.Uint32, 8, func() any { return rng.Uint32() })
	value("v_f64", arrow.PrimitiveTypes.Float64, 8, func() any {
		if rng.IntN(500) == 0 {
			return math.NaN()
		}
		return rng.NormFloat64() * 1000
	})
	value("v_f32", arrow.PrimitiveTypes.Float32, 8, func() any { return float32(rng.IntN(200)) / 8 })
	value("v_str", arrow.BinaryTypes.String, 8, func() any {
		b := make([]byte, rng.IntN(4))
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return string(b)
	})
	value("v_ts", tsType, 8, func() any { return arrow.Timestamp(rng.Int64N(1 << 50)) })
	value("v_bool", arrow.FixedWidthTypes.Boolean, 4, func() any { return rng.IntN(3) == 0 })
	value("v_date", arrow.FixedWidthTypes.Date32, 8, func() any { return arrow.Date32(rng.IntN(20000)) })
	value("v_null", arrow.PrimitiveTypes.Int32, 1, func() any { return int32(1) })
	return cols
}

func schemaOf(cols []column) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.dt, Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// record builds one record of all rows.
func record(mem memory.Allocator, cols []column) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schemaOf(cols))
	defer b.Release()
	for ci, c := range cols {
		fb := b.Field(ci)
		for _, v := range c.vals {
			if v == nil {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.Int64Builder:
				fb.Append(v.(int64))
			case *array.Int32Builder:
				fb.Append(v.(int32))
			case *array.Int16Builder:
				fb.Append(v.(int16))
			case *array.Int8Builder:
				fb.Append(v.(int8))
			case *array.Uint16Builder:
				fb.Append(v.(uint16))
			case *array.Uint32Builder:
				fb.Append(v.(uint32))
			case *array.Uint64Builder:
				fb.Append(v.(uint64))
			case *array.Float64Builder:
				fb.Append(v.(float64))
			case *array.Float32Builder:
				fb.Append(v.(float32))
			case *array.BooleanBuilder:
				fb.Append(v.(bool))
			case *array.StringBuilder:
				fb.Append(v.(string))
			case *array.TimestampBuilder:
				fb.Append(v.(arrow.Timestamp))
			case *array.Date32Builder:
				fb.Append(v.(arrow.Date32))
			case *array.Date64Builder:
				fb.Append(v.(arrow.Date64))
			case *array.Uint8Builder:
				fb.Append(v.(uint8))
			case *array.BinaryBuilder:
				fb.AppendString(v.(string))
			default:
				panic(fmt.Sprintf("%T", fb))
			}
		}
	}
	return b.NewRecordBatch()
}

// slices cuts rec into batches of size rows (views with offsets).
func split(rec arrow.RecordBatch, size int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for lo := int64(0); lo < rec.NumRows(); lo += int64(size) {
		out = append(out, rec.NewSlice(lo, min(lo+int64(size), rec.NumRows())))
	}
	return out
}

func releaseAll(bs []arrow.RecordBatch) {
	for _, b := range bs {
		b.Release()
	}
}

// ---- the oracle ----

// keyString encodes a key value canonically: NULL, -0 == +0, NaN == NaN.
func keyString(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case float64:
		if x != x {
			return "NaN"
		}
		if x == 0 {
			x = 0
		}
		return "f" + strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		if x != x {
			return "NaN"
		}
		if x == 0 {
			x = 0
		}
		return "f" + strconv.FormatFloat(float64(x), 'g', -1, 32)
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case uint64:
		return "u" + strconv.FormatUint(x, 10)
	case arrow.Timestamp:
		return "t" + strconv.FormatInt(int64(x), 10)
	case arrow.Date32:
		return "d" + strconv.FormatInt(int64(x), 10)
	case arrow.Date64:
		return "D" + strconv.FormatInt(int64(x), 10)
	}
	if i, ok := asInt64(v); ok {
		return fmt.Sprintf("%T", v) + strconv.FormatInt(i, 10)
	}
	panic(fmt.Sprintf("keyString %T", v))
}

func isNaN(v any) bool {
	switch x := v.(type) {
	case float64:
		return x != x
	case float32:
		return x != x
	}
	return false
}

// less orders values of one type; NaN is the greatest float.
func less(a, b any) bool {
	if isNaN(a) || isNaN(b) {
		return !isNaN(a)
	}
	switch x := a.(type) {
	case int64:
		return x < b.(int64)
	case int32:
		return x < b.(int32)
	case int16:
		return x < b.(int16)
	case uint32:
		return x < b.(uint32)
	case float64:
		return x < b.(float64)
	case float32:
		return x < b.(float32)
	case string:
		return x < b.(string)
	case bool:
		return !x && b.(bool)
	case arrow.Timestamp:
		return x < b.(arrow.Timestamp)
	case arrow.Date32:
		return x < b.(arrow.Date32)
	case arrow.Date64:
		return x < b.(arrow.Date64)
	case uint8:
		return x < b.(uint8)
	}
	panic(fmt.Sprintf("less %T", a))
}

func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), true
	}
	return 0, false
}

func asFloat64(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	}
	panic(v)
}

type aggState struct {
	count    int64
	isum     int64
	fsum     float64
	abs      float64 // sum of |x|, for float tolerances
	ext      any     // min or max
	distinct map[string]bool
	vals     []float64 // variance functions
	coll     collectState
}

// value is an expected result: the value and, for floats, a tolerance.
type value struct {
	v   any
	tol float64
	// approx: an int64 estimate within tol of v (float64)
	approx bool
	// oneOf: any of these values (tied rows of arg_max and friends)
	oneOf []any
}

// oracle computes the expected result rows keyed by their canonical key.
func oracle(cols []column, groupBy []string, aggs []Agg) map[string][]value {
	byName := map[string]column{}
	for _, c := range cols {
		byName[c.name] = c
	}
	type group struct {
		keys  []any
		state []aggState
	}
	groups := map[string]*group{}
	n := len(cols[0].vals)
	keyVals := make([][]any, len(groupBy))
	for j, k := range groupBy {
		keyVals[j] = byName[k].vals
	}
	aggVals := make([][]any, len(aggs))
	aggVals2 := make([][]any, len(aggs))
	for j, a := range aggs {
		if !a.star() {
			aggVals[j] = byName[a.Column].vals
		}
		if a.Column2 != "" {
			aggVals2[j] = byName[a.Column2].vals
		}
	}
	if len(groupBy) == 0 {
		groups[""] = &group{state: make([]aggState, len(aggs))}
	}
	for i := 0; i < n; i++ {
		var kb strings.Builder
		keys := make([]any, len(groupBy))
		for j, k := range groupBy {
			_ = k
			keys[j] = keyVals[j][i]
			kb.WriteString(keyString(keys[j]))
			kb.WriteByte('|')
		}
		g := groups[kb.String()]
		if g == nil {
			g = &group{keys: keys, state: make([]aggState, len(aggs))}
			groups[kb.String()] = g
		}
		for j, a := range aggs {
			st := &g.state[j]
			if a.star() {
				st.count++
				continue
			}
			v := aggVals[j][i]
			if isCollect(a.Func) {
				var by any
				if aggVals2[j] != nil {
					by = aggVals2[j][i]
				}
				st.coll.add(a.Func, v, by)
				continue
			}
			if v == nil {
				continue
			}
			st.count++
			switch a.Func {
			case Sum, Avg:
				if x, ok := asInt64(v); ok {
					st.isum += x
				} else {
					st.fsum += asFloat64(v)
					st.abs += math.Abs(asFloat64(v))
				}
			case Min, BoolAnd:
				if st.ext == nil || less(v, st.ext) {
					st.ext = v
				}
			case Max, BoolOr:
				if st.ext == nil || less(st.ext, v) {
					st.ext = v
				}
			case VarSamp, VarPop, StddevSamp, StddevPop:
				if x, ok := asInt64(v); ok {
					st.vals = append(st.vals, float64(x))
				} else {
					st.vals = append(st.vals, asFloat64(v))
				}
			case CountDistinct, ApproxDistinct:
				if st.distinct == nil {
					st.distinct = map[string]bool{}
				}
				st.distinct[keyString(v)] = true
			}
		}
	}
	out := map[string][]value{}
	for ks, g := range groups {
		var row []value
		for _, k := range g.keys {
			row = append(row, value{v: k})
		}
		for j, a := range aggs {
			st := g.state[j]
			isFloat := false
			if !a.star() {
				for _, c := range cols {
					if c.name == a.Column {
						isFloat = c.dt.ID() == arrow.FLOAT64 || c.dt.ID() == arrow.FLOAT32
					}
				}
			}
			switch a.Func {
			case Count:
				row = append(row, value{v: st.count})
			case CountDistinct:
				row = append(row, value{v: int64(len(st.distinct))})
			case Sum:
				switch {
				case st.count == 0:
					row = append(row, value{})
				case isFloat:
					row = append(row, value{v: st.fsum, tol: 1e-9 * (st.abs + 1)})
				default:
					row = append(row, value{v: st.isum})
				}
			case Avg:
				switch {
				case st.count == 0:
					row = append(row, value{})
				case isFloat:
					row = append(row, value{v: st.fsum / float64(st.count), tol: 1e-9 * (st.abs/float64(st.count) + 1)})
				default:
					row = append(row, value{v: float64(st.isum) / float64(st.count)})
				}
			case Min, Max, BoolAnd, BoolOr:
				row = append(row, value{v: st.ext})
			case ApproxDistinct:
				// HyperLogLog p=14: within 4 standard errors, or 2.
				n := float64(len(st.distinct))
				row = append(row, value{v: n, tol: max(2, 4*0.0081*n), approx: true})
			case VarSamp, VarPop, StddevSamp, StddevPop:
				row = append(row, varOracle(a.Func, st.vals))
			default:
				row = append(row, st.coll.result(a))
			}
		}
		out[ks] = row
	}
	return out
}

// goValue reads row i of a result column as the oracle's Go value.
func goValue(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.Int64:
		return a.Value(i)
	case *array.Int32:
		return a.Value(i)
	case *array.Int16:
		return a.Value(i)
	case *array.Int8:
		return a.Value(i)
	case *array.Uint16:
		return a.Value(i)
	case *array.Uint32:
		return a.Value(i)
	case *array.Uint64:
		return a.Value(i)
	case *array.Float64:
		return a.Value(i)
	case *array.Float32:
		return a.Value(i)
	case *array.Boolean:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.Timestamp:
		return a.Value(i)
	case *array.Date32:
		return a.Value(i)
	case *array.Date64:
		return a.Value(i)
	case *array.Uint8:
		return a.Value(i)
	case *array.Binary:
		return string(a.Value(i))
	case *array.List:
		return listString(a, i)
	}
	panic(fmt.Sprintf("goValue %T", a))
}

// varOracle computes a variance function in two passes (the mean, then
// the squared deviations), with a tolerance for the summation order.
func varOracle(f Func, vals []float64) value {
	n := float64(len(vals))
	if len(vals) == 0 || len(vals) == 1 && (f == VarSamp || f == StddevSamp) {
		return value{}
	}
	mean, ss, sq := 0.0, 0.0, 0.0
	for _, v := range vals {
		mean += v
	}
	mean /= n
	for _, v := range vals {
		ss += (v - mean) * (v - mean)
		sq += v * v
	}
	d := n
	if f == VarSamp || f == StddevSamp {
		d = n - 1
	}
	r, tol := ss/d, 1e-9*(sq/d+1)
	if f == StddevSamp || f == StddevPop {
		r, tol = math.Sqrt(r), math.Sqrt(tol) // |sqrt(a) - sqrt(b)| <= sqrt(|a - b|)
	}
	return value{v: r, tol: tol}
}

func sameValue(got any, want value) bool {
	if want.oneOf != nil {
		for _, w := range want.oneOf {
			if sameValue(got, value{v: w}) {
				return true
			}
		}
		return false
	}
	if want.approx {
		g, ok := got.(int64)
		return ok && math.Abs(float64(g)-want.v.(float64)) <= want.tol
	}
	if want.v == nil || got == nil {
		return want.v == nil && got == nil
	}
	if isNaN(want.v) || isNaN(got) {
		return isNaN(want.v) && isNaN(got)
	}
	if w, ok := want.v.(float64); ok {
		g, ok := got.(float64)
		return ok && math.Abs(g-w) <= want.tol
	}
	if w, ok := want.v.(float32); ok && w == 0 {
		return got == float32(0) // -0 keys come out as +0
	}
	if w, ok := want.v.(float64); ok && w == 0 {
		return got == float64(0)
	}
	return got == want.v
}

// check compares emitted batches with the oracle's rows.
func check(t *testing.T, what string, out []arrow.RecordBatch, want map[string][]value, nkeys, batchSize int, schema *arrow.Schema) {
	t.Helper()
	seen := map[string]bool{}
	for _, b := range out {
		if !b.Schema().Equal(schema) {
			t.Fatalf("%s: schema %s, want %s", what, b.Schema(), schema)
		}
		if int(b.NumRows()) > batchSize || b.NumRows() == 0 {
			t.Fatalf("%s: batch of %d rows, batch size %d", what, b.NumRows(), batchSize)
		}
		for i := 0; i < int(b.NumRows()); i++ {
			var kb strings.Builder
			for c := 0; c < nkeys; c++ {
				kb.WriteString(keyString(goValue(b.Column(c), i)) + "|")
			}
			ks := kb.String()
			if seen[ks] {
				t.Fatalf("%s: group %s emitted twice", what, ks)
			}
			seen[ks] = true
			row, ok := want[ks]
			if !ok {
				t.Fatalf("%s: unexpected group %s", what, ks)
			}
			for c := range row {
				if got := goValue(b.Column(c), i); !sameValue(got, row[c]) {
					t.Fatalf("%s: group %s column %q: got %v (%T), want %v (%T)",
						what, ks, b.ColumnName(c), got, got, row[c].v, row[c].v)
				}
			}
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("%s: %d groups, want %d", what, len(seen), len(want))
	}
}

func allAggs() []Agg {
	aggs := []Agg{
		{Func: Count},
		{Func: Count, Column: "v_str", As: "n_str"},
		{Func: Count, Column: "v_null"},
		{Func: Sum, Column: "v_i64"},
		{Func: Sum, Column: "v_i16"},
		{Func: Sum, Column: "v_u32"},
		{Func: Sum, Column: "v_f64"},
		{Func: Sum, Column: "v_f32"},
		{Func: Sum, Column: "v_null"},
		{Func: Avg, Column: "v_i64"},
		{Func: Avg, Column: "v_i16"},
		{Func: Avg, Column: "v_f64"},
		{Func: Avg, Column: "v_null"},
	}
	for _, c := range []string{"v_i64", "v_i16", "v_u32", "v_f64", "v_f32", "v_str", "v_ts", "v_bool", "v_date", "v_null"} {
		aggs = append(aggs, Agg{Func: Min, Column: c}, Agg{Func: Max, Column: c})
	}
	for _, c := range []string{"v_i16", "v_str", "v_f32", "v_bool", "v_date", "k_float64", "v_null"} {
		aggs = append(aggs, Agg{Func: CountDistinct, Column: c})
	}
	aggs = append(aggs,
		Agg{Func: ApproxDistinct, Column: "v_str"}, Agg{Func: ApproxDistinct, Column: "v_i16"},
		Agg{Func: VarSamp, Column: "v_i64"}, Agg{Func: VarPop, Column: "v_f64"},
		Agg{Func: StddevSamp, Column: "v_f32"}, Agg{Func: StddevPop, Column: "v_null"},
		Agg{Func: BoolAnd, Column: "v_bool"}, Agg{Func: BoolOr, Column: "v_bool"},
		// collect.go
		Agg{Func: Median, Column: "v_f64"}, Agg{Func: Quantile, Column: "v_i64", Param: 0.9},
		Agg{Func: Quantile, Column: "v_f32", Param: 0.1}, Agg{Func: Median, Column: "v_null", Param: 0.5},
		Agg{Func: ArgMax, Column: "v_str", Column2: "v_i64"}, Agg{Func: ArgMin, Column: "v_date", Column2: "v_f64"},
		Agg{Func: ArgMax, Column: "v_bool", Column2: "v_str"}, Agg{Func: ArgMin, Column: "v_i16", Column2: "v_ts"},
		Agg{Func: ArgMax, Column: "v_i64", Column2: "v_bool"}, Agg{Func: ArgMin, Column: "v_f64", Column2: "v_null"},
		Agg{Func: First, Column: "v_f32", Column2: "v_ts"}, Agg{Func: Last, Column: "v_str", Column2: "v_i16"},
		Agg{Func: First, Column: "v_i64", Column2: "v_u32"}, Agg{Func: Last, Column: "v_ts", Column2: "v_f64"},
		Agg{Func: List, Column: "v_i16"}, Agg{Func: List, Column: "v_str"}, Agg{Func: List, Column: "v_bool"})
	return aggs
}

var groupBys = [][]string{
	nil,
	{"k_int64"},
	{"k_utf8"},
	{"k_float64"},
	{"k_bool"},
	{"k_int8"},
	{"k_date32"},
	{"k_int32", "k_utf8", "k_timestamp"},
	{"k_uint16", "k_float32", "k_bool", "k_uint64", "k_date32", "k_float64"},
}

func TestOracle(t *testing.T) {
	cards := []int{1, 10, 1000, 100_000}
	sizes := []int{1, 7, 1024, 65536}
	for ci, card := range cards {
		rng := rand.New(rand.NewPCG(uint64(card), 42))
		nrows := map[int]int{1: 3000, 10: 6000, 1000: 30_000, 100_000: 110_000}[card]
		if testing.Short() {
			nrows /= 5
		}
		data := genData(rng, nrows, card)
		for _, size := range sizes {
			rows := nrows
			switch size {
			case 1:
				rows = min(rows, 2000)
			case 7:
				rows = min(rows, 15000)
			}
			cols := make([]column, len(data))
			for i, c := range data {
				cols[i] = column{name: c.name, dt: c.dt, vals: c.vals[:rows]}
			}
			for gi, gb := range groupBys {
				if (size < 1024 || card > 1000 && size < 65536) && gi%2 == ci%2 && gi > 1 {
					continue // slow combinations: alternate group-by sets
				}
				name := fmt.Sprintf("card=%d/batch=%d/by=%s", card, size, strings.Join(gb, ","))
				t.Run(name, func(t *testing.T) {
					testOracleCase(t, cols, gb, size, 0)
				})
			}
		}
	}
}

// TestCollisions forces hash collisions (every hash masked to its low 8
// bits: all tags equal, long probe chains) so the key comparisons and the
// slow re-probe path decide every group.
func TestCollisions(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	data := genData(rng, 8000, 1000)
	for _, gb := range groupBys[1:] {
		for _, size := range []int{7, 1024} {
			t.Run(fmt.Sprintf("batch=%d/by=%s", size, strings.Join(gb, ",")), func(t *testing.T) {
				testOracleCase(t, data, gb, size, 0xff)
			})
		}
	}
}

var (
	oracleCache     = map[string]map[string][]value{}
	oracleCacheData *any
)

// cachedOracle memoizes the oracle per data set and group-by (the data of a
// cardinality is shared by several batch sizes).
func cachedOracle(cols []column, groupBy []string, aggs []Agg) map[string][]value {
	if oracleCacheData != &cols[0].vals[0] { // new data set
		oracleCache, oracleCacheData = map[string]map[string][]value{}, &cols[0].vals[0]
	}
	k := fmt.Sprintf("%d/%v/%d", len(cols[0].vals), groupBy, len(aggs))
	if w, ok := oracleCache[k]; ok {
		return w
	}
	w := oracle(cols, groupBy, aggs)
	oracleCache[k] = w
	return w
}

// project selects the result columns of the aggregates sub (a subsequence
// of aggs) from oracle rows over aggs.
func project(rows map[string][]value, nkeys int, aggs, sub []Agg) map[string][]value {
	var idx []int
	for i, j := 0, 0; i < len(aggs) && j < len(sub); i++ {
		if aggs[i] == sub[j] {
			idx = append(idx, nkeys+i)
			j++
		}
	}
	out := make(map[string][]value, len(rows))
	for k, r := range rows {
		p := append([]value(nil), r[:nkeys]...)
		for _, i := range idx {
			p = append(p, r[i])
		}
		out[k] = p
	}
	return out
}

func testOracleCase(t *testing.T, cols []column, groupBy []string, size int, hashMask uint64) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := record(mem, cols)
	defer rec.Release()
	batches := split(rec, size)
	defer releaseAll(batches)
	hook := func(o *operator) {
		if hashMask != 0 {
			o.hashMask = hashMask
		}
	}

	aggs := allAggs()
	outSize := MaxBatchSize
	if len(cols[0].vals) > 10000 {
		outSize = 1000 // several output batches
	}
	want := cachedOracle(cols, groupBy, aggs)
	spec, err := New(Options{GroupBy: groupBy, Aggs: aggs, BatchSize: outSize})
	if err != nil {
		t.Fatal(err)
	}
	schema, err := spec.Schema([]*arrow.Schema{rec.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	single := run(t, mem, spec, rec.Schema(), batches, hook)
	defer single.release()
	check(t, "single", single.batches, want, len(groupBy), outSize, schema)

	// Partial -> Final over the decomposable aggregates: three partial
	// operators, each given every third batch; one final operator merges
	// their states, re-cut into batches of the same size.
	var dec []Agg
	for _, a := range aggs {
		if Decomposable([]Agg{a}) {
			dec = append(dec, a)
		}
	}
	want = project(want, len(groupBy), aggs, dec)
	pspec, err := New(Options{GroupBy: groupBy, Aggs: dec, Mode: Partial, BatchSize: outSize})
	if err != nil {
		t.Fatal(err)
	}
	pschema, err := pspec.Schema([]*arrow.Schema{rec.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	var states []arrow.RecordBatch
	defer func() { releaseAll(states) }()
	const parts = 3
	for p := 0; p < parts; p++ {
		var mine []arrow.RecordBatch
		for i := p; i < len(batches); i += parts {
			mine = append(mine, batches[i])
		}
		out := run(t, mem, pspec, rec.Schema(), mine, hook)
		for _, b := range out.batches {
			if !b.Schema().Equal(pschema) {
				t.Fatalf("partial schema %s, want %s", b.Schema(), pschema)
			}
			states = append(states, split(b, size)...)
			b.Release()
		}
	}
	fspec, err := New(Options{GroupBy: groupBy, Aggs: dec, Mode: Final, BatchSize: outSize})
	if err != nil {
		t.Fatal(err)
	}
	fschema, err := fspec.Schema([]*arrow.Schema{pschema})
	if err != nil {
		t.Fatal(err)
	}
	final := run(t, mem, fspec, pschema, states, hook)
	defer final.release()
	check(t, "partial->final", final.batches, want, len(groupBy), outSize, fschema)

	sspec, err := New(Options{GroupBy: groupBy, Aggs: dec, BatchSize: outSize})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := sspec.Schema([]*arrow.Schema{rec.Schema()}); !s.Equal(fschema) {
		t.Fatalf("final schema %s differs from single schema %s", fschema, s)
	}
}

func TestEmptyInput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "v", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	aggs := []Agg{{Func: Count}, {Func: Sum, Column: "v", As: "s"}, {Func: Avg, Column: "v", As: "a"}, {Func: CountDistinct, Column: "v", As: "d"}}

	spec, err := New(Options{Aggs: aggs})
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, mem, spec, sc, nil, nil)
	defer out.release()
	if len(out.batches) != 1 || out.batches[0].NumRows() != 1 {
		t.Fatalf("global aggregate over empty input: %d batches, want one row", len(out.batches))
	}
	b := out.batches[0]
	if got := goValue(b.Column(0), 0); got != int64(0) {
		t.Errorf("count(*) = %v, want 0", got)
	}
	if !b.Column(1).IsNull(0) || !b.Column(2).IsNull(0) {
		t.Errorf("sum, avg of no rows must be NULL")
	}
	if got := goValue(b.Column(3), 0); got != int64(0) {
		t.Errorf("count_distinct = %v, want 0", got)
	}

	spec, err = New(Options{GroupBy: []string{"k"}, Aggs: aggs})
	if err != nil {
		t.Fatal(err)
	}
	out2 := run(t, mem, spec, sc, nil, nil)
	defer out2.release()
	if len(out2.batches) != 0 {
		t.Fatalf("grouped aggregate over empty input emitted %d batches", len(out2.batches))
	}
}

func TestNaNAndZeros(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	nan := math.NaN()
	negz := math.Copysign(0, -1)
	cols := []column{
		{name: "k", dt: arrow.PrimitiveTypes.Float64, vals: []any{nan, 0.0, negz, nan, 1.0, nil, math.Float64frombits(0x7ff8000000000abc)}},
		{name: "v", dt: arrow.PrimitiveTypes.Float64, vals: []any{1.0, nan, 2.0, 3.0, nan, 5.0, 4.0}},
	}
	rec := record(mem, cols)
	defer rec.Release()
	aggs := []Agg{{Func: Count}, {Func: Min, Column: "v"}, {Func: Max, Column: "v"}, {Func: CountDistinct, Column: "v"}}
	spec, err := New(Options{GroupBy: []string{"k"}, Aggs: aggs})
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, mem, spec, rec.Schema(), []arrow.RecordBatch{rec}, nil)
	defer out.release()
	sc, _ := spec.Schema([]*arrow.Schema{rec.Schema()})
	want := oracle(cols, []string{"k"}, aggs)
	if len(want) != 4 { // NaN, 0, 1, NULL
		t.Fatalf("oracle: %d groups, want 4", len(want))
	}
	check(t, "nan", out.batches, want, 1, MaxBatchSize, sc)
	// Spot checks independent of the oracle. Columns: k, count, min, max,
	// count_distinct.
	b := out.batches[0]
	got := map[string][]any{}
	for i := 0; i < int(b.NumRows()); i++ {
		got[keyString(goValue(b.Column(0), i))] = []any{goValue(b.Column(1), i), goValue(b.Column(2), i), goValue(b.Column(3), i), goValue(b.Column(4), i)}
	}
	if g := got["f0"]; g == nil || g[0] != int64(2) || g[1] != 2.0 || !isNaN(g[2]) || g[3] != int64(2) {
		t.Errorf("group 0 (0 and -0): %v, want count 2, min 2, max NaN, 2 distinct", g)
	}
	if g := got["NaN"]; g == nil || g[0] != int64(3) || g[1] != 1.0 || g[2] != 4.0 {
		t.Errorf("group NaN: %v, want count 3, min 1, max 4", g)
	}
	if g := got["f1"]; g == nil || !isNaN(g[1]) || !isNaN(g[2]) {
		t.Errorf("group 1: %v, want min and max NaN", g)
	}
}

func TestSchemaErrors(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String},
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)},
	}, nil)
	cases := []struct {
		opts Options
		want []string // substrings of the error
	}{
		{Options{GroupBy: []string{"nope"}}, []string{`"nope"`, "available: k, name, l"}},
		{Options{Aggs: []Agg{{Func: Sum, Column: "missing"}}}, []string{`"missing"`, "available: k, name, l"}},
		{Options{Aggs: []Agg{{Func: Sum, Column: "name"}}}, []string{"sum", `"name"`, "utf8", "integer or floating-point"}},
		{Options{Aggs: []Agg{{Func: Avg, Column: "name"}}}, []string{"avg", `"name"`}},
		{Options{GroupBy: []string{"l"}}, []string{"cannot group by", `"l"`}},
		{Options{Aggs: []Agg{{Func: Min, Column: "l"}}}, []string{"min", `"l"`}},
	}
	for _, c := range cases {
		spec, err := New(c.opts)
		if err != nil {
			t.Fatalf("New(%+v): %v", c.opts, err)
		}
		_, err = spec.Schema([]*arrow.Schema{sc})
		if err == nil {
			t.Fatalf("Schema(%+v): no error", c.opts)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Schema(%+v): error %q does not mention %s", c.opts, err, w)
			}
		}
	}

	bad := []struct {
		opts Options
		want string
	}{
		{Options{Aggs: []Agg{{Func: "mode", Column: "k"}}}, "unknown aggregate function"},
		{Options{Aggs: []Agg{{Func: Sum}}}, "needs a column"},
		{Options{Aggs: []Agg{{Func: CountDistinct, Column: "k"}}, Mode: Partial}, "not decomposable"},
		{Options{Aggs: []Agg{{Func: CountDistinct, Column: "k"}}, Mode: Final}, "not decomposable"},
		{Options{Aggs: []Agg{{Func: Sum, Column: "k", As: "x"}, {Func: Max, Column: "k", As: "x"}}}, "duplicate"},
		{Options{GroupBy: []string{"k"}, Aggs: []Agg{{Func: Sum, Column: "k", As: "k"}}}, "duplicate"},
		{Options{BatchSize: MaxBatchSize + 1}, "BatchSize"},
		{Options{Mode: 7}, "mode"},
	}
	for _, c := range bad {
		if _, err := New(c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): error %v, want one mentioning %q", c.opts, err, c.want)
		}
	}

	if Decomposable([]Agg{{Func: Sum, Column: "k"}, {Func: CountDistinct, Column: "k"}}) {
		t.Error("count_distinct reported decomposable")
	}
	if !Decomposable([]Agg{{Func: Sum, Column: "k"}, {Func: Avg, Column: "k"}, {Func: Count}}) {
		t.Error("sum, avg, count reported not decomposable")
	}

	// Final checks the partial state schema.
	fspec, _ := New(Options{GroupBy: []string{"k"}, Aggs: []Agg{{Func: Avg, Column: "v", As: "a"}}, Mode: Final})
	if _, err := fspec.Schema([]*arrow.Schema{sc}); err == nil || !strings.Contains(err.Error(), `"a.sum"`) {
		t.Errorf("final over a non-state schema: %v", err)
	}
	pspec, _ := New(Options{GroupBy: []string{"k"}, Aggs: []Agg{{Func: Avg, Column: "k", As: "a"}, {Func: Min, Column: "name"}}, Mode: Partial})
	ps, err := pspec.Schema([]*arrow.Schema{sc})
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"k", "a.sum", "a.count", "min(name)"}
	var names []string
	for _, f := range ps.Fields() {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("partial schema %v, want %v", names, wantNames)
	}
	if _, err := fspec.Schema([]*arrow.Schema{ps}); err != nil {
		t.Errorf("final over partial schema: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cols := genData(rand.New(rand.NewPCG(1, 2)), 100, 10)
	rec := record(mem, cols)
	defer rec.Release()
	spec, err := New(Options{GroupBy: []string{"k_utf8"}, Aggs: allAggs()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	op, err := spec.New(&arrowexec.Task{Mem: mem, Inputs: []*arrow.Schema{rec.Schema()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Open(ctx); err != nil {
		t.Fatal(err)
	}
	out := &collector{}
	if err := op.Process(ctx, 0, rec, out); err != nil {
		t.Fatal(err)
	}
	if n := op.(interface{ StateBytes() int }).StateBytes(); n <= 0 {
		t.Errorf("StateBytes = %d after a batch", n)
	}
	// A batch whose column types differ from the input schema is refused.
	swapped := slices.Clone(cols)
	for i, c := range swapped {
		if c.name == "k_utf8" {
			swapped[i] = column{name: c.name, dt: arrow.PrimitiveTypes.Int64, vals: make([]any, len(c.vals))}
		}
	}
	other := record(mem, swapped)
	defer other.Release()
	if err := op.Process(ctx, 0, other, out); err == nil || !strings.Contains(err.Error(), `"k_utf8"`) {
		t.Errorf("Process of a batch with another key type: %v", err)
	}
	// Close without Finish, twice; then every call fails cleanly.
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}
	if err := op.Close(); err != nil {
		t.Fatal(err)
	}
	if err := op.Process(ctx, 0, rec, out); err != ErrClosed {
		t.Errorf("Process after Close: %v", err)
	}
	if err := op.Finish(ctx, out); err != ErrClosed {
		t.Errorf("Finish after Close: %v", err)
	}
	if len(out.batches) != 0 {
		t.Fatal("emitted without Finish")
	}

	// Cancellation is checked per batch.
	op, _ = spec.New(&arrowexec.Task{Mem: mem, Inputs: []*arrow.Schema{rec.Schema()}})
	defer op.Close()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := op.Process(cctx, 0, rec, out); err == nil {
		t.Error("Process with a cancelled context succeeded")
	}
}

// processAll drives an operator and returns the first error.
func processAll(mem memory.Allocator, spec *Spec, in *arrow.Schema, batches []arrow.RecordBatch) error {
	ctx := context.Background()
	op, err := spec.New(&arrowexec.Task{Mem: mem, Inputs: []*arrow.Schema{in}})
	if err != nil {
		return err
	}
	defer op.Close()
	out := &collector{}
	defer out.release()
	for _, b := range batches {
		if err := op.Process(ctx, 0, b, out); err != nil {
			return err
		}
	}
	return op.Finish(ctx, out)
}

func TestOverflow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	batch := func(dt arrow.DataType, vals ...any) arrow.RecordBatch {
		k := make([]any, len(vals))
		for i := range k {
			k[i] = int64(1)
		}
		return record(mem, []column{{name: "k", dt: arrow.PrimitiveTypes.Int64, vals: k}, {name: "v", dt: dt, vals: vals}})
	}
	i64, u64 := arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Uint64
	cases := []struct {
		name    string
		batches []arrow.RecordBatch
		fail    bool
	}{
		{"int64 overflow", []arrow.RecordBatch{batch(i64, int64(math.MaxInt64), int64(1))}, true},
		{"int64 underflow", []arrow.RecordBatch{batch(i64, int64(math.MinInt64)), batch(i64, int64(-1))}, true},
		{"int64 at the edge", []arrow.RecordBatch{batch(i64, int64(math.MaxInt64), int64(-1), nil, int64(1))}, false},
		{"uint64 beyond int64", []arrow.RecordBatch{batch(u64, uint64(1)<<63)}, true},
		{"uint64 null beyond int64", []arrow.RecordBatch{batch(u64, uint64(math.MaxInt64), nil)}, false},
	}
	for _, c := range cases {
		for _, f := range []Func{Sum, Avg} {
			for _, gb := range [][]string{nil, {"k"}} {
				spec, err := New(Options{GroupBy: gb, Aggs: []Agg{{Func: f, Column: "v"}}})
				if err != nil {
					t.Fatal(err)
				}
				err = processAll(mem, spec, c.batches[0].Schema(), c.batches)
				if c.fail && (err == nil || !strings.Contains(err.Error(), "overflow") || !strings.Contains(err.Error(), string(f)+"(v)")) {
					t.Errorf("%s: %s by %v: error %v, want an overflow error naming %s(v)", c.name, f, gb, err, f)
				}
				if !c.fail && err != nil {
					t.Errorf("%s: %s by %v: %v", c.name, f, gb, err)
				}
			}
		}
		releaseAll(c.batches)
	}

	// Partial sums that fit, whose merge does not.
	b1, b2 := batch(i64, int64(math.MaxInt64)), batch(i64, int64(1))
	defer b1.Release()
	defer b2.Release()
	for _, f := range []Func{Sum, Avg} {
		aggs := []Agg{{Func: f, Column: "v"}}
		pspec, _ := New(Options{GroupBy: []string{"k"}, Aggs: aggs, Mode: Partial})
		var states []arrow.RecordBatch
		for _, b := range []arrow.RecordBatch{b1, b2} {
			out := run(t, mem, pspec, b.Schema(), []arrow.RecordBatch{b}, nil)
			states = append(states, out.batches...)
		}
		fspec, _ := New(Options{GroupBy: []string{"k"}, Aggs: aggs, Mode: Final})
		err := processAll(mem, fspec, states[0].Schema(), states)
		if err == nil || !strings.Contains(err.Error(), "overflow") {
			t.Errorf("final %s: error %v, want overflow", f, err)
		}
		releaseAll(states)
	}
}

// TestMoreKeyTypes covers the key types the main oracle data leaves out, as
// single keys (fast paths) and together (generic grouper), and min/max of
// binary and date64 values.
func TestMoreKeyTypes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, card = 3000, 60
	types := []arrow.DataType{arrow.BinaryTypes.Binary, arrow.FixedWidthTypes.Date64,
		arrow.PrimitiveTypes.Int16, arrow.PrimitiveTypes.Uint8, arrow.PrimitiveTypes.Uint32}
	var cols []column
	for _, dt := range types {
		c := column{name: keyName(dt), dt: dt, vals: make([]any, n)}
		for i := range c.vals {
			if rng.IntN(15) != 0 {
				c.vals[i] = keyValue(dt, rng.IntN(card), rng)
			}
		}
		cols = append(cols, c)
	}
	aggs := []Agg{{Func: Count}}
	for _, c := range cols {
		aggs = append(aggs, Agg{Func: Min, Column: c.name}, Agg{Func: Max, Column: c.name}, Agg{Func: CountDistinct, Column: c.name})
	}
	for _, gb := range [][]string{{"k_binary"}, {"k_date64"}, {"k_int16"}, {"k_uint8"}, {"k_uint32"},
		{"k_binary", "k_date64", "k_int16", "k_uint8", "k_uint32"}} {
		for _, size := range []int{13, 1024} {
			t.Run(fmt.Sprintf("by=%s/batch=%d", strings.Join(gb, ","), size), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				rec := record(mem, cols)
				defer rec.Release()
				batches := split(rec, size)
				defer releaseAll(batches)
				spec, err := New(Options{GroupBy: gb, Aggs: aggs})
				if err != nil {
					t.Fatal(err)
				}
				sc, err := spec.Schema([]*arrow.Schema{rec.Schema()})
				if err != nil {
					t.Fatal(err)
				}
				out := run(t, mem, spec, rec.Schema(), batches, nil)
				defer out.release()
				check(t, "single", out.batches, oracle(cols, gb, aggs), len(gb), MaxBatchSize, sc)
			})
		}
	}
}
