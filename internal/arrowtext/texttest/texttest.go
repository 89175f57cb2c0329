// Package texttest builds a batch of every Arrow type riffle writes as text
// (internal/arrowtext), with the values a JSON reader must read back from
// its rows, for the oracle tests of the file sink's JSONL and the Kafka
// sink's messages. The expected values are computed from the Arrow values
// with the standard library, not with arrowtext.
package texttest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Rows is the number of rows of AllTypes.
const Rows = 6

var (
	nyc    = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "America/New_York"}
	schema = arrow.NewSchema([]arrow.Field{
		{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
		{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "u8", Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: "u16", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
		{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
		{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "ts_s", Type: &arrow.TimestampType{Unit: arrow.Second}, Nullable: true},
		{Name: "ts_ms_utc", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "ts_us_nyc", Type: nyc, Nullable: true},
		{Name: "ts_ns", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}, Nullable: true},
		{Name: "d32", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "d64", Type: arrow.FixedWidthTypes.Date64, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 12, Scale: 3}, Nullable: true},
		{Name: "dict", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, Nullable: true},
		{Name: "li", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
		{Name: "lf", Type: arrow.ListOf(arrow.PrimitiveTypes.Float64), Nullable: true},
		{Name: "lls", Type: arrow.ListOf(arrow.ListOf(arrow.BinaryTypes.String)), Nullable: true},
		{Name: "fsl", Type: arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Float32), Nullable: true},
		{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, arrow.Field{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true}), Nullable: true},
	}, nil)
)

// Schema is the schema of AllTypes.
func Schema() *arrow.Schema { return schema }

// The values, row by row (nil: null).
var (
	i64s  = []any{int64(math.MinInt64), int64(-1), int64(0), nil, int64(math.MaxInt64), int64(42)}
	u64s  = []any{uint64(0), uint64(math.MaxUint64), nil, uint64(7), uint64(1 << 53), uint64(3)}
	f32s  = []any{float32(math.Pi), float32(3), float32(math.NaN()), nil, float32(math.Inf(1)), float32(1e-7)}
	f64s  = []any{math.Pi, 3.0, math.Inf(-1), nil, 1e21, -2.5e-8}
	bools = []any{true, false, nil, true, false, true}
	strs  = []any{"", "q\"x\\y", "tab\tnl\nuni\u00e9\u2028", nil, "日本🚀", "a,b"}
	bins  = []any{[]byte{}, []byte{0, 1, 2, 255}, nil, []byte("riffle"), []byte{0xfb, 0xff}, []byte("x")}
	// instants, nanoseconds since the epoch; every unit truncates them.
	instants = []any{int64(0), int64(-1), int64(1_700_000_000_123_456_789), nil, int64(-2_208_988_800_000_000_000), int64(4_102_444_799_999_999_999)}
	days     = []any{int32(0), int32(-1), int32(19_000), nil, int32(-719_162), int32(2_932_896)}
	decs     = []any{"0.000", "-123.456", "999999999.999", nil, "0.001", "42.500"}
	dict     = []any{"red", "green", nil, "red", "blue", "green"}
	lis      = []any{[]any{int64(1), nil, int64(-3)}, []any{}, nil, []any{int64(math.MaxInt64)}, []any{nil}, []any{int64(0)}}
	lfs      = []any{[]any{0.5, math.NaN(), 2.0}, nil, []any{math.Inf(1)}, []any{}, []any{nil, 1e-300}, []any{1e300}}
	llss     = []any{[]any{[]any{"a", nil}, []any{}}, nil, []any{nil}, []any{[]any{"\"q\""}}, []any{}, []any{[]any{"x"}, []any{"y", "z"}}}
	fsls     = []any{[]any{float32(1), float32(-0.25)}, nil, []any{nil, float32(2)}, []any{float32(0), float32(0)}, []any{float32(1e20), float32(3e-10)}, []any{float32(5), nil}}
	structs  = []any{map[string]any{"a": int64(1), "t": int64(0)}, nil, map[string]any{"a": nil, "t": int64(1_700_000_000_123)}, map[string]any{"a": int64(-5), "t": nil}, map[string]any{"a": int64(7), "t": int64(-1)}, map[string]any{"a": int64(8), "t": int64(86_400_000)}}
)

func unitPer(u arrow.TimeUnit) int64 {
	return map[arrow.TimeUnit]int64{arrow.Second: 1e9, arrow.Millisecond: 1e6, arrow.Microsecond: 1e3, arrow.Nanosecond: 1}[u]
}

// floorDiv is a / b rounded toward minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// AllTypes returns a batch of Schema: every type riffle writes, with
// nulls, NaN and infinities, extremes, nested lists and a struct.
func AllTypes(mem memory.Allocator) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for r := 0; r < Rows; r++ {
		i := i64s[r]
		if i == nil {
			for c := 0; c < 4; c++ {
				b.Field(c).AppendNull()
			}
		} else {
			v := i.(int64)
			b.Field(0).(*array.Int8Builder).Append(int8(v))
			b.Field(1).(*array.Int16Builder).Append(int16(v))
			b.Field(2).(*array.Int32Builder).Append(int32(v))
			b.Field(3).(*array.Int64Builder).Append(v)
		}
		if u := u64s[r]; u == nil {
			for c := 4; c < 8; c++ {
				b.Field(c).AppendNull()
			}
		} else {
			v := u.(uint64)
			b.Field(4).(*array.Uint8Builder).Append(uint8(v))
			b.Field(5).(*array.Uint16Builder).Append(uint16(v))
			b.Field(6).(*array.Uint32Builder).Append(uint32(v))
			b.Field(7).(*array.Uint64Builder).Append(v)
		}
		appendOr(b.Field(8), f32s[r], func(v any) { b.Field(8).(*array.Float32Builder).Append(v.(float32)) })
		appendOr(b.Field(9), f64s[r], func(v any) { b.Field(9).(*array.Float64Builder).Append(v.(float64)) })
		appendOr(b.Field(10), bools[r], func(v any) { b.Field(10).(*array.BooleanBuilder).Append(v.(bool)) })
		appendOr(b.Field(11), strs[r], func(v any) { b.Field(11).(*array.StringBuilder).Append(v.(string)) })
		appendOr(b.Field(12), strs[r], func(v any) { b.Field(12).(*array.LargeStringBuilder).Append(v.(string)) })
		appendOr(b.Field(13), bins[r], func(v any) { b.Field(13).(*array.BinaryBuilder).Append(v.([]byte)) })
		for c := 14; c <= 17; c++ {
			unit := schema.Field(c).Type.(*arrow.TimestampType).Unit
			appendOr(b.Field(c), instants[r], func(v any) {
				b.Field(c).(*array.TimestampBuilder).Append(arrow.Timestamp(floorDiv(v.(int64), unitPer(unit))))
			})
		}
		appendOr(b.Field(18), days[r], func(v any) { b.Field(18).(*array.Date32Builder).Append(arrow.Date32(v.(int32))) })
		appendOr(b.Field(19), days[r], func(v any) {
			b.Field(19).(*array.Date64Builder).Append(arrow.Date64(int64(v.(int32)) * 86_400_000))
		})
		appendOr(b.Field(20), decs[r], func(v any) {
			d, err := decimal128.FromString(v.(string), 12, 3)
			if err != nil {
				panic(err) // the fixed values above are valid
			}
			b.Field(20).(*array.Decimal128Builder).Append(d)
		})
		appendOr(b.Field(21), dict[r], func(v any) {
			if err := b.Field(21).(*array.BinaryDictionaryBuilder).AppendString(v.(string)); err != nil {
				panic(err)
			}
		})
		appendList(b.Field(22), lis[r])
		appendList(b.Field(23), lfs[r])
		appendList(b.Field(24), llss[r])
		appendList(b.Field(25), fsls[r])
		sb := b.Field(26).(*array.StructBuilder)
		if s := structs[r]; s == nil {
			sb.AppendNull()
		} else {
			m := s.(map[string]any)
			sb.Append(true)
			appendOr(sb.FieldBuilder(0), m["a"], func(v any) { sb.FieldBuilder(0).(*array.Int64Builder).Append(v.(int64)) })
			appendOr(sb.FieldBuilder(1), m["t"], func(v any) {
				sb.FieldBuilder(1).(*array.TimestampBuilder).Append(arrow.Timestamp(v.(int64)))
			})
		}
	}
	return b.NewRecordBatch()
}

func appendOr(b array.Builder, v any, f func(any)) {
	if v == nil {
		b.AppendNull()
		return
	}
	f(v)
}

// appendList appends v (nil or []any of values or nested []any) to a list
// builder.
func appendList(b array.Builder, v any) {
	if v == nil {
		b.AppendNull()
		return
	}
	switch lb := b.(type) {
	case *array.ListBuilder:
		lb.Append(true)
		for _, x := range v.([]any) {
			appendValue(lb.ValueBuilder(), x)
		}
	case *array.FixedSizeListBuilder:
		lb.Append(true)
		for _, x := range v.([]any) {
			appendValue(lb.ValueBuilder(), x)
		}
	}
}

func appendValue(b array.Builder, x any) {
	if x == nil {
		b.AppendNull()
		return
	}
	switch vb := b.(type) {
	case *array.Int64Builder:
		vb.Append(x.(int64))
	case *array.Float64Builder:
		vb.Append(x.(float64))
	case *array.Float32Builder:
		vb.Append(x.(float32))
	case *array.StringBuilder:
		vb.Append(x.(string))
	default:
		appendList(b, x)
	}
}

// Expected returns, for each row of AllTypes, what a JSON reader must read
// back: a map from column name to a cell, {"t": kind, "v": value}, kinds
// int (v decimal text), float (v Go's hex text, null for NaN and
// infinities: riffle's policy), bool, str, bin (v the base64 text),
// ts (v nanoseconds since the epoch as text, "zoned": written with Z),
// date (v "2006-01-02"), dec (v exact text), list (v cells), struct (v a
// map of cells) and null.
func Expected() []map[string]any {
	rows := make([]map[string]any, Rows)
	for r := range rows {
		m := map[string]any{}
		if v := i64s[r]; v != nil {
			x := v.(int64)
			m["i8"], m["i16"], m["i32"], m["i64"] = intCell(int64(int8(x))), intCell(int64(int16(x))), intCell(int64(int32(x))), intCell(x)
		} else {
			m["i8"], m["i16"], m["i32"], m["i64"] = nullCell, nullCell, nullCell, nullCell
		}
		if v := u64s[r]; v != nil {
			x := v.(uint64)
			m["u8"], m["u16"], m["u32"] = intCell(int64(uint8(x))), intCell(int64(uint16(x))), intCell(int64(uint32(x)))
			m["u64"] = map[string]any{"t": "int", "v": strconv.FormatUint(x, 10)}
		} else {
			m["u8"], m["u16"], m["u32"], m["u64"] = nullCell, nullCell, nullCell, nullCell
		}
		m["f32"] = valueCell(f32s[r])
		m["f64"] = valueCell(f64s[r])
		m["b"] = valueCell(bools[r])
		m["s"] = valueCell(strs[r])
		m["ls"] = valueCell(strs[r])
		m["bin"] = valueCell(bins[r])
		for c := 14; c <= 17; c++ {
			f := schema.Field(c)
			tt := f.Type.(*arrow.TimestampType)
			if instants[r] == nil {
				m[f.Name] = nullCell
				continue
			}
			per := unitPer(tt.Unit)
			m[f.Name] = tsCell(floorDiv(instants[r].(int64), per)*per, tt.TimeZone != "")
		}
		if days[r] == nil {
			m["d32"], m["d64"] = nullCell, nullCell
		} else {
			d := time.Unix(int64(days[r].(int32))*86400, 0).UTC().Format(time.DateOnly)
			m["d32"] = map[string]any{"t": "date", "v": d}
			m["d64"] = m["d32"]
		}
		if decs[r] == nil {
			m["dec"] = nullCell
		} else {
			m["dec"] = map[string]any{"t": "dec", "v": decs[r]}
		}
		m["dict"] = valueCell(dict[r])
		m["li"], m["lf"], m["lls"], m["fsl"] = valueCell(lis[r]), valueCell(lfs[r]), valueCell(llss[r]), valueCell(fsls[r])
		if s := structs[r]; s == nil {
			m["st"] = nullCell
		} else {
			sm := s.(map[string]any)
			t := nullCell
			if sm["t"] != nil {
				t = tsCell(sm["t"].(int64)*1e6, true)
			}
			m["st"] = map[string]any{"t": "struct", "v": map[string]any{"a": valueCell(sm["a"]), "t": t}}
		}
		rows[r] = m
	}
	return rows
}

var nullCell = map[string]any{"t": "null"}

func intCell(x int64) map[string]any {
	return map[string]any{"t": "int", "v": strconv.FormatInt(x, 10)}
}

func tsCell(nanos int64, zoned bool) map[string]any {
	return map[string]any{"t": "ts", "v": strconv.FormatInt(nanos, 10), "zoned": zoned}
}

func floatCell(f float64, bits int) map[string]any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nullCell
	}
	return map[string]any{"t": "float", "v": strconv.FormatFloat(f, 'x', -1, 64), "bits": bits}
}

func valueCell(v any) map[string]any {
	switch x := v.(type) {
	case nil:
		return nullCell
	case int64:
		return intCell(x)
	case float32:
		return floatCell(float64(x), 32)
	case float64:
		return floatCell(x, 64)
	case bool:
		return map[string]any{"t": "bool", "v": x}
	case string:
		return map[string]any{"t": "str", "v": x}
	case []byte:
		return map[string]any{"t": "bin", "v": base64.StdEncoding.EncodeToString(x)}
	case []any:
		cells := make([]any, len(x))
		for i, e := range x {
			cells[i] = valueCell(e)
		}
		return map[string]any{"t": "list", "v": cells}
	}
	panic(fmt.Sprintf("texttest: no cell for %T", v))
}

// ExpectedJSON is Expected as JSON, the form the oracle script reads.
func ExpectedJSON() ([]byte, error) { return json.Marshal(Expected()) }
