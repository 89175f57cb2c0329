package expr

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// This file holds the randomized oracle test: random schemas and data with
// nulls, random well-typed expression trees, evaluated row at a time by the
// simple interpreter below and compared with Bound.Eval and Bound.Select
// across batch sizes.

// val is one value in the oracle. k is the static kind even when null.
type val struct {
	k    kind
	null bool
	i    int64 // signed ints, date (days), timestamp (ns), bool 0/1
	u    uint64
	f    float64
	s    string
}

func (v val) String() string {
	if v.null {
		return "NULL"
	}
	switch {
	case v.k.isUnsigned():
		return strconv.FormatUint(v.u, 10)
	case v.k.isFloat():
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case v.k.isString():
		return strconv.Quote(v.s)
	case v.k == kBool:
		return strconv.FormatBool(v.i != 0)
	}
	return strconv.FormatInt(v.i, 10)
}

func (v val) float() float64 {
	switch {
	case v.k.isUnsigned():
		return float64(v.u)
	case v.k.isFloat():
		return v.f
	}
	return float64(v.i)
}

// int64 of an integer value, uint64 reinterpreted (the arithmetic domain).
func (v val) int() int64 {
	if v.k.isUnsigned() {
		return int64(v.u)
	}
	return v.i
}

type row []val

func boolVal(b bool) val { return val{k: kBool, i: int64(b2u(b))} }

// oracle evaluates e over one row.
func oracle(e Expr, s *arrow.Schema, r row) val {
	switch x := e.(type) {
	case *ColumnRef:
		return r[s.FieldIndices(x.Name)[0]]
	case *Literal:
		switch v := x.Value.(type) {
		case nil:
			return val{k: kNull, null: true}
		case int64:
			return val{k: kI64, i: v}
		case float64:
			return val{k: kF64, f: v}
		case string:
			return val{k: kString, s: v}
		case bool:
			return boolVal(v)
		case time.Time:
			return val{k: kTimestamp, i: v.UnixNano()}
		case arrow.Date32:
			return val{k: kDate32, i: int64(v)}
		}
	case *NegExpr:
		return oracleArith(OpMul, oracle(x.X, s, r), val{k: kI64, i: -1})
	case *NotExpr:
		v := oracle(x.X, s, r)
		if v.null {
			return val{k: kBool, null: true}
		}
		return boolVal(v.i == 0)
	case *IsNullExpr:
		return boolVal(oracle(x.X, s, r).null != x.Not)
	case *StartsWithExpr:
		v := oracle(x.X, s, r)
		if v.null {
			return val{k: kBool, null: true}
		}
		return boolVal(strings.HasPrefix(v.s, x.Prefix))
	case *InExpr:
		v := oracle(x.X, s, r)
		if v.null {
			return val{k: kBool, null: true}
		}
		sawNull := false
		for _, l := range x.List {
			c := oracleCmp(OpEq, v, oracle(l, s, r))
			if c.null {
				sawNull = true
			} else if c.i != 0 {
				return boolVal(true)
			}
		}
		if sawNull {
			return val{k: kBool, null: true}
		}
		return boolVal(false)
	case *CastExpr:
		return oracleCast(oracle(x.X, s, r), x.To)
	case *CaseExpr:
		k := oracleKind(x, s)
		var op val
		if x.Operand != nil {
			op = oracle(x.Operand, s, r)
		}
		for _, w := range x.Whens {
			c := oracle(w.Cond, s, r)
			if x.Operand != nil {
				c = oracleCmp(OpEq, op, c)
			}
			if !c.null && c.i != 0 {
				return toKind(oracle(w.Then, s, r), k)
			}
		}
		if x.Else != nil {
			return toKind(oracle(x.Else, s, r), k)
		}
		return val{k: k, null: true}
	case *CallExpr:
		if x.Name != "coalesce" {
			break
		}
		k := oracleKind(x, s)
		for _, a := range x.Args {
			if v := oracle(a, s, r); !v.null {
				return toKind(v, k)
			}
		}
		return val{k: k, null: true}
	case *BinaryExpr:
		l, rv := oracle(x.L, s, r), oracle(x.R, s, r)
		switch {
		case x.Op.isArith():
			return oracleArith(x.Op, l, rv)
		case x.Op.isCmp():
			return oracleCmp(x.Op, l, rv)
		}
		lt, lf := !l.null && l.i != 0, !l.null && l.i == 0
		rt, rf := !rv.null && rv.i != 0, !rv.null && rv.i == 0
		if x.Op == OpAnd {
			switch {
			case lf || rf:
				return boolVal(false)
			case lt && rt:
				return boolVal(true)
			}
			return val{k: kBool, null: true}
		}
		switch {
		case lt || rt:
			return boolVal(true)
		case lf && rf:
			return boolVal(false)
		}
		return val{k: kBool, null: true}
	}
	panic(fmt.Sprintf("oracle: unsupported %T", e))
}

// oracleKinds caches the result kinds of CASE and COALESCE nodes. The
// oracle takes the result type from Bind (its rules are checked by the
// golden files) and computes the values itself.
var oracleKinds = map[Expr]kind{}

func oracleKind(e Expr, s *arrow.Schema) kind {
	if k, ok := oracleKinds[e]; ok {
		return k
	}
	b, err := Bind(e, s)
	if err != nil {
		panic(fmt.Sprintf("oracle: bind %s: %v", e, err))
	}
	k := kindOf(b.Type())
	oracleKinds[e] = k
	return k
}

// toKind converts v to kind k as CASE and COALESCE widen their values.
func toKind(v val, k kind) val {
	if v.null {
		return val{k: k, null: true}
	}
	if v.k == k {
		return v
	}
	out := v
	out.k = k
	switch {
	case k.isFloat():
		out.f = v.float()
		if k == kF32 {
			out.f = float64(float32(out.f))
		}
	case k.isUnsigned():
		out.u = uint64(v.int())
		if v.k.isUnsigned() {
			out.u = v.u
		}
	case k.isSigned():
		out.i = v.int()
	}
	return out
}

func oracleArith(op BinaryOp, a, b val) val {
	float := op == OpDiv || a.k.isFloat() || b.k.isFloat()
	if float {
		out := val{k: kF64}
		if a.null || b.null {
			out.null = true
			return out
		}
		x, y := a.float(), b.float()
		switch op {
		case OpAdd:
			out.f = x + y
		case OpSub:
			out.f = x - y
		case OpMul:
			out.f = x * y
		case OpDiv:
			out.f, out.null = x/y, y == 0
		case OpMod:
			out.f, out.null = math.Mod(x, y), y == 0
		}
		return out
	}
	out := val{k: kI64}
	if a.null || b.null {
		out.null = true
		return out
	}
	x, y := a.int(), b.int()
	switch op {
	case OpAdd:
		out.i = x + y
	case OpSub:
		out.i = x - y
	case OpMul:
		out.i = x * y
	case OpMod:
		if y == 0 {
			out.null = true
		} else {
			out.i = x % y
		}
	}
	return out
}

// cmpInts compares two integer values exactly.
func cmpInts(a, b val) int {
	au, bu := a.k.isUnsigned(), b.k.isUnsigned()
	switch {
	case au && bu:
		return cmpOrd(a.u, b.u)
	case !au && !bu:
		return cmpOrd(a.i, b.i)
	case au:
		if b.i < 0 {
			return 1
		}
		return cmpOrd(a.u, uint64(b.i))
	default:
		if a.i < 0 {
			return -1
		}
		return cmpOrd(uint64(a.i), b.u)
	}
}

func cmpOrd[T int64 | uint64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func oracleCmp(op BinaryOp, a, b val) val {
	if a.null || b.null {
		return val{k: kBool, null: true}
	}
	var c int
	switch {
	case a.k.isFloat() || b.k.isFloat():
		x, y := a.float(), b.float()
		// NaN never occurs in generated data; keep Go's semantics anyway.
		switch op {
		case OpEq:
			return boolVal(x == y)
		case OpNe:
			return boolVal(x != y)
		}
		c = cmpOrd(x, y)
	case a.k.isInt():
		c = cmpInts(a, b)
	case a.k.isString():
		c = bytes.Compare([]byte(a.s), []byte(b.s))
	default: // bool, timestamp (ns), date
		c = cmpOrd(a.i, b.i)
	}
	switch op {
	case OpEq:
		return boolVal(c == 0)
	case OpNe:
		return boolVal(c != 0)
	case OpLt:
		return boolVal(c < 0)
	case OpLe:
		return boolVal(c <= 0)
	case OpGt:
		return boolVal(c > 0)
	}
	return boolVal(c >= 0)
}

// oracleCast supports the casts the generator produces.
func oracleCast(v val, to string) val {
	tk := kindOf(castTypes[to])
	out := val{k: tk, null: v.null}
	if v.null {
		return out
	}
	switch {
	case tk == kString:
		switch {
		case v.k.isSigned():
			out.s = strconv.FormatInt(v.i, 10)
		case v.k.isUnsigned():
			out.s = strconv.FormatUint(v.u, 10)
		case v.k == kF32:
			out.s = strconv.FormatFloat(v.f, 'g', -1, 32)
		case v.k == kF64:
			out.s = strconv.FormatFloat(v.f, 'g', -1, 64)
		case v.k == kBool:
			out.s = strconv.FormatBool(v.i != 0)
		default:
			out.s = v.s
		}
	case v.k.isString():
		var err error
		switch tk {
		case kI64:
			out.i, err = strconv.ParseInt(v.s, 10, 64)
		case kF64:
			out.f, err = strconv.ParseFloat(v.s, 64)
		default:
			panic("oracle: cast from string to " + to)
		}
		out.null = err != nil
	case tk == kBool:
		if v.k.isFloat() {
			return boolVal(v.f != 0)
		}
		return boolVal(v.int() != 0)
	case v.k == kBool:
		return convInt(v.i, tk)
	case v.k.isFloat():
		if v.k == kF32 {
			v.f = float64(float32(v.f))
		}
		if tk.isFloat() {
			out.f = v.f
			if tk == kF32 {
				out.f = float64(float32(v.f))
			}
			return out
		}
		lo, hi := intRange(tk)
		fhi := float64(hi) + 1
		if tk == kI64 {
			fhi = 9223372036854775808.0
		} else if tk == kU64 {
			fhi = 18446744073709551616.0
		}
		if !(v.f >= float64(lo) && v.f < fhi) {
			out.null = true
			return out
		}
		if tk == kU64 {
			return val{k: tk, u: uint64(v.f)}
		}
		return convInt(int64(v.f), tk)
	default: // integer source
		if tk.isFloat() {
			if v.k.isUnsigned() {
				out.f = float64(v.u)
				if tk == kF32 {
					out.f = float64(float32(v.u))
				}
			} else {
				out.f = float64(v.i)
				if tk == kF32 {
					out.f = float64(float32(v.i))
				}
			}
			return out
		}
		return convInt(v.int(), tk)
	}
	return out
}

// convInt narrows the int64 bit pattern x to kind tk as Go conversions do.
func convInt(x int64, tk kind) val {
	v := val{k: tk}
	switch tk {
	case kI8:
		v.i = int64(int8(x))
	case kI16:
		v.i = int64(int16(x))
	case kI32:
		v.i = int64(int32(x))
	case kI64:
		v.i = x
	case kU8:
		v.u = uint64(uint8(x))
	case kU16:
		v.u = uint64(uint16(x))
	case kU32:
		v.u = uint64(uint32(x))
	case kU64:
		v.u = uint64(x)
	case kF32:
		v.f = float64(float32(x))
	case kF64:
		v.f = float64(x)
	}
	return v
}

// readVal reads row i of an array into the oracle's representation.
func readVal(a arrow.Array, i int) val {
	k := kindOf(a.DataType())
	v := val{k: k, null: a.IsNull(i)}
	if v.null {
		return v
	}
	switch a := a.(type) {
	case *array.Boolean:
		v.i = int64(b2u(a.Value(i)))
	case *array.Int8:
		v.i = int64(a.Value(i))
	case *array.Int16:
		v.i = int64(a.Value(i))
	case *array.Int32:
		v.i = int64(a.Value(i))
	case *array.Int64:
		v.i = a.Value(i)
	case *array.Uint8:
		v.u = uint64(a.Value(i))
	case *array.Uint16:
		v.u = uint64(a.Value(i))
	case *array.Uint32:
		v.u = uint64(a.Value(i))
	case *array.Uint64:
		v.u = a.Value(i)
	case *array.Float32:
		v.f = float64(a.Value(i))
	case *array.Float64:
		v.f = a.Value(i)
	case *array.String:
		v.s = a.Value(i)
	case *array.LargeString:
		v.s = a.Value(i)
	case *array.Timestamp:
		v.i = int64(a.Value(i)) * unitNanos(a.DataType().(*arrow.TimestampType).Unit)
	case *array.Date32:
		v.i = int64(a.Value(i))
	case *array.Null:
		v.null = true
	default:
		panic(fmt.Sprintf("readVal: %T", a))
	}
	return v
}

func sameVal(a, b val) bool {
	if a.null || b.null {
		return a.null == b.null
	}
	switch {
	case a.k.isFloat():
		return a.f == b.f || math.IsNaN(a.f) && math.IsNaN(b.f)
	case a.k.isUnsigned():
		return a.u == b.u
	case a.k.isString():
		return a.s == b.s
	}
	return a.i == b.i
}

// ---- random data ----

var genTypes = []arrow.DataType{
	arrow.PrimitiveTypes.Int8, arrow.PrimitiveTypes.Int16, arrow.PrimitiveTypes.Int32,
	arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Uint8, arrow.PrimitiveTypes.Uint32,
	arrow.PrimitiveTypes.Uint64, arrow.PrimitiveTypes.Float32, arrow.PrimitiveTypes.Float64,
	arrow.FixedWidthTypes.Boolean, arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString,
	arrow.FixedWidthTypes.Timestamp_ms, arrow.FixedWidthTypes.Timestamp_us, arrow.FixedWidthTypes.Date32,
}

var genStrings = []string{"", "a", "ab", "abc", "abd", "b", "ba", "bab", "zz", "a'b", "\xff"}

var baseTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func randSchema(rng *rand.Rand) *arrow.Schema {
	n := 3 + rng.IntN(6)
	fields := make([]arrow.Field, n)
	for i := range fields {
		fields[i] = arrow.Field{Name: fmt.Sprintf("c%d", i), Type: genTypes[rng.IntN(len(genTypes))], Nullable: true}
	}
	// Make sure the common kinds are present.
	fields[0].Type = arrow.PrimitiveTypes.Int64
	fields[1].Type = arrow.PrimitiveTypes.Float64
	fields[2].Type = arrow.BinaryTypes.String
	fields[0].Name, fields[1].Name, fields[2].Name = "i", "f", "s"
	return arrow.NewSchema(fields, nil)
}

func randInt(rng *rand.Rand) int64 {
	switch rng.IntN(40) {
	case 0:
		return math.MaxInt64
	case 1:
		return math.MinInt64
	}
	return rng.Int64N(41) - 20
}

func randRecord(rng *rand.Rand, mem memory.Allocator, s *arrow.Schema, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, s)
	defer b.Release()
	for ci, f := range s.Fields() {
		nullP := []float64{0, 0, 0.1, 0.5, 1}[rng.IntN(5)]
		fb := b.Field(ci)
		for r := 0; r < n; r++ {
			if rng.Float64() < nullP {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.Int8Builder:
				fb.Append(int8(randInt(rng)))
			case *array.Int16Builder:
				fb.Append(int16(randInt(rng)))
			case *array.Int32Builder:
				fb.Append(int32(randInt(rng)))
			case *array.Int64Builder:
				fb.Append(randInt(rng))
			case *array.Uint8Builder:
				fb.Append(uint8(rng.IntN(40)))
			case *array.Uint32Builder:
				fb.Append(uint32(rng.IntN(40)))
			case *array.Uint64Builder:
				if rng.IntN(20) == 0 {
					fb.Append(math.MaxUint64 - uint64(rng.IntN(3)))
				} else {
					fb.Append(uint64(rng.IntN(40)))
				}
			case *array.Float32Builder:
				fb.Append(float32(rng.IntN(21)-10) / 4)
			case *array.Float64Builder:
				fb.Append(float64(rng.IntN(21)-10) / 4)
			case *array.BooleanBuilder:
				fb.Append(rng.IntN(2) == 0)
			case *array.StringBuilder:
				fb.Append(genStrings[rng.IntN(len(genStrings))])
			case *array.LargeStringBuilder:
				fb.Append(genStrings[rng.IntN(len(genStrings))])
			case *array.TimestampBuilder:
				t := baseTime.Add(time.Duration(rng.IntN(21)-10) * 500 * time.Millisecond)
				if f.Type.(*arrow.TimestampType).Unit == arrow.Microsecond {
					fb.Append(arrow.Timestamp(t.UnixMicro()))
				} else {
					fb.Append(arrow.Timestamp(t.UnixMilli()))
				}
			case *array.Date32Builder:
				fb.Append(arrow.Date32FromTime(baseTime) + arrow.Date32(rng.IntN(11)-5))
			default:
				panic(fmt.Sprintf("randRecord: %T", fb))
			}
		}
	}
	return b.NewRecordBatch()
}

// ---- random expressions ----

type exprGen struct {
	rng    *rand.Rand
	schema *arrow.Schema
}

func (g *exprGen) cols(pred func(kind) bool) []string {
	var out []string
	for _, f := range g.schema.Fields() {
		if pred(kindOf(f.Type)) {
			out = append(out, f.Name)
		}
	}
	return out
}

func (g *exprGen) pick(names []string) Expr { return Col(names[g.rng.IntN(len(names))]) }

func (g *exprGen) intLit() Expr {
	if g.rng.IntN(15) == 0 {
		return Lit(nil)
	}
	switch g.rng.IntN(12) {
	case 0:
		return Lit(int64(300))
	case 1:
		return Lit(int64(-300))
	case 2:
		return Lit(int64(0))
	}
	return Lit(g.rng.Int64N(41) - 20)
}

func (g *exprGen) floatLit() Expr { return Lit(float64(g.rng.IntN(41)-20) / 8) }

func (g *exprGen) numeric(d int) Expr {
	if d <= 0 || g.rng.IntN(3) == 0 {
		switch g.rng.IntN(4) {
		case 0:
			return g.intLit()
		case 1:
			return g.floatLit()
		}
		return g.pick(g.cols(kind.isNumeric))
	}
	switch g.rng.IntN(8) {
	case 6:
		return g.caseOf(d, g.numeric)
	case 7:
		return g.coalesceOf(d, g.numeric)
	case 0:
		return Neg(g.numeric(d - 1))
	case 1:
		to := []string{"int8", "int16", "int32", "int64", "uint8", "uint64", "float32", "float64"}[g.rng.IntN(8)]
		return Cast(g.numeric(d-1), to)
	case 2:
		if bs := g.cols(func(k kind) bool { return k == kBool }); len(bs) > 0 {
			return Cast(g.pick(bs), "int32")
		}
	case 3:
		return Cast(g.str(d-1), "int64")
	}
	op := []BinaryOp{OpAdd, OpSub, OpMul, OpDiv, OpMod}[g.rng.IntN(5)]
	return bin(op, g.numeric(d-1), g.numeric(d-1))
}

func (g *exprGen) str(d int) Expr {
	switch g.rng.IntN(7) {
	case 5:
		if d > 0 {
			return g.caseOf(d, g.str)
		}
	case 6:
		if d > 0 {
			return g.coalesceOf(d, g.str)
		}
	case 0:
		return Lit(genStrings[g.rng.IntN(len(genStrings))])
	case 1:
		if d > 0 {
			return Cast(g.numeric(d-1), "string")
		}
	}
	return g.pick(g.cols(kind.isString))
}

// caseOf builds a CASE whose values come from val: searched (conditions
// from boolean) or, one time in four, simple (a numeric or string operand
// compared with values of its family); with or without ELSE.
func (g *exprGen) caseOf(d int, val func(int) Expr) Expr {
	r := g.rng
	c := &CaseExpr{}
	simple := r.IntN(4) == 0
	strOperand := r.IntN(2) == 0
	if simple {
		if strOperand {
			c.Operand = g.str(d - 1)
		} else {
			c.Operand = g.numeric(d - 1)
		}
	}
	for i := 1 + r.IntN(3); i > 0; i-- {
		var cond Expr
		switch {
		case !simple:
			cond = g.boolean(d - 1)
		case strOperand:
			cond = g.str(d - 1)
		case r.IntN(2) == 0:
			cond = g.intLit()
		default:
			cond = g.numeric(d - 1)
		}
		c.Whens = append(c.Whens, When{Cond: cond, Then: val(d - 1)})
	}
	if r.IntN(3) > 0 {
		c.Else = val(d - 1)
	}
	return c
}

// timestamp is a timestamp column, a literal (some not whole
// milliseconds), or a CASE or coalesce of those. The schema has a
// timestamp column.
func (g *exprGen) timestamp(d int) Expr {
	r := g.rng
	switch {
	case d > 0 && r.IntN(2) == 0:
		return g.caseOf(d, g.timestamp)
	case d > 0 && r.IntN(2) == 0:
		return g.coalesceOf(d, g.timestamp)
	case r.IntN(3) == 0:
		t := baseTime.Add(time.Duration(r.IntN(41)-20) * 250 * time.Millisecond)
		if r.IntN(3) == 0 {
			t = t.Add(time.Duration(r.IntN(1000)))
		}
		return Lit(t)
	}
	return g.pick(g.cols(func(k kind) bool { return k == kTimestamp }))
}

// coalesceOf builds coalesce of one to four values from val, some NULL.
func (g *exprGen) coalesceOf(d int, val func(int) Expr) Expr {
	args := make([]Expr, 1+g.rng.IntN(4))
	for i := range args {
		if g.rng.IntN(6) == 0 {
			args[i] = Lit(nil)
		} else {
			args[i] = val(d - 1)
		}
	}
	return Coalesce(args...)
}

func (g *exprGen) cmpOp() BinaryOp { return BinaryOp(int(OpEq) + g.rng.IntN(6)) }

func (g *exprGen) boolean(d int) Expr {
	if d <= 0 {
		return g.leafPred()
	}
	switch g.rng.IntN(10) {
	case 8:
		return g.caseOf(d, g.boolean)
	case 9:
		return g.coalesceOf(d, g.boolean)
	case 0, 1:
		return And(g.boolean(d-1), g.boolean(d-1))
	case 2:
		return Or(g.boolean(d-1), g.boolean(d-1))
	case 3:
		return Not(g.boolean(d - 1))
	case 4:
		return bin(g.cmpOp(), g.numeric(d-1), g.numeric(d-1))
	case 5:
		return IsNull(g.numeric(d - 1))
	case 6:
		return Cast(g.numeric(d-1), "bool")
	}
	return g.leafPred()
}

// leafPred is a predicate shape with a Select fast path (or a simple one).
func (g *exprGen) leafPred() Expr {
	r := g.rng
	switch r.IntN(12) {
	case 0, 1, 2:
		c := g.pick(g.cols(kind.isNumeric))
		var l Expr = g.intLit()
		if r.IntN(2) == 0 {
			l = g.floatLit()
		}
		if r.IntN(4) == 0 {
			return bin(g.cmpOp(), l, c)
		}
		return bin(g.cmpOp(), c, l)
	case 3:
		return bin(g.cmpOp(), g.pick(g.cols(kind.isString)), Lit(genStrings[r.IntN(len(genStrings))]))
	case 4:
		lits := make([]any, 1+r.IntN(12))
		for i := range lits {
			switch r.IntN(10) {
			case 0:
				lits[i] = nil
			case 1:
				lits[i] = float64(r.IntN(21)-10) / 4
			default:
				lits[i] = r.Int64N(41) - 20
			}
		}
		return In(g.pick(g.cols(kind.isNumeric)), lits...)
	case 5:
		lits := make([]any, 1+r.IntN(10))
		for i := range lits {
			lits[i] = genStrings[r.IntN(len(genStrings))]
		}
		return In(g.pick(g.cols(kind.isString)), lits...)
	case 6:
		return StartsWith(g.pick(g.cols(kind.isString)), genStrings[r.IntN(len(genStrings))])
	case 7:
		all := g.cols(func(kind) bool { return true })
		if r.IntN(2) == 0 {
			return IsNull(g.pick(all))
		}
		return IsNotNull(g.pick(all))
	case 8:
		if ts := g.cols(func(k kind) bool { return k == kTimestamp }); len(ts) > 0 {
			t := baseTime.Add(time.Duration(r.IntN(41)-20) * 250 * time.Millisecond)
			if r.IntN(3) == 0 {
				t = t.Add(time.Duration(r.IntN(1000)))
			}
			switch r.IntN(3) {
			case 0:
				return bin(g.cmpOp(), g.pick(ts), g.pick(ts))
			case 1:
				// CASE/coalesce over timestamps: units and literals mixed.
				return bin(g.cmpOp(), g.timestamp(2), g.timestamp(1))
			}
			return bin(g.cmpOp(), g.pick(ts), Lit(t))
		}
	case 9:
		if ds := g.cols(func(k kind) bool { return k == kDate32 }); len(ds) > 0 {
			return bin(g.cmpOp(), g.pick(ds), Lit(arrow.Date32FromTime(baseTime)+arrow.Date32(r.IntN(11)-5)))
		}
	case 10:
		if bs := g.cols(func(k kind) bool { return k == kBool }); len(bs) > 0 {
			if r.IntN(2) == 0 {
				return g.pick(bs)
			}
			if r.IntN(2) == 0 {
				return bin(g.cmpOp(), g.pick(bs), g.pick(bs))
			}
			return bin(g.cmpOp(), g.pick(bs), Lit(r.IntN(2) == 0))
		}
	}
	switch r.IntN(3) {
	case 0:
		return bin(g.cmpOp(), g.pick(g.cols(kind.isNumeric)), g.pick(g.cols(kind.isNumeric)))
	case 1:
		return bin(g.cmpOp(), g.pick(g.cols(kind.isString)), g.str(1))
	}
	return []Expr{Lit(true), Lit(false), Lit(nil)}[r.IntN(3)]
}

// ---- the test ----

var selectModes = []struct {
	div     int
	vectors bool
}{{16, false}, {1, false}, {16, true}}

func TestOracle(t *testing.T) {
	sizes := []int{1, 7, 1024, 65536}
	schemas := 12
	exprsPer := 40
	if testing.Short() {
		schemas, exprsPer = 4, 20
	}
	for _, bs := range sizes {
		for si := 0; si < schemas; si++ {
			seed := uint64(bs*1000 + si)
			nexprs := exprsPer
			if bs == 65536 {
				nexprs /= 2 // the row-at-a-time oracle is slow on large batches
			}
			t.Run(fmt.Sprintf("batch=%d/seed=%d", bs, seed), func(t *testing.T) {
				testOracleOnce(t, seed, bs, nexprs)
			})
			if bs == 65536 && si >= 1 {
				break // two schemas suffice for the largest batches
			}
		}
	}
}

func testOracleOnce(t *testing.T, seed uint64, bs, nexprs int) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(seed, 1))
	schema := randSchema(rng)
	n := 2*bs + rng.IntN(bs+1)
	full := randRecord(rng, mem, schema, n)
	defer full.Release()

	rows := make([]row, n)
	for r := range rows {
		rows[r] = make(row, schema.NumFields())
		for c := range rows[r] {
			rows[r][c] = readVal(full.Column(c), r)
		}
	}
	// Batches are slices of one record, so later batches have offsets.
	var batches []arrow.RecordBatch
	for lo := 0; lo < n; lo += bs {
		batches = append(batches, full.NewSlice(int64(lo), int64(min(lo+bs, n))))
	}
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()

	g := &exprGen{rng: rng, schema: schema}
	var sel []int32
	checked := 0
	for ei := 0; ei < nexprs; ei++ {
		var e Expr
		if ei%2 == 0 {
			e = g.boolean(1 + rng.IntN(3))
		} else {
			e = g.numeric(1 + rng.IntN(3))
		}
		b, err := Bind(e, schema)
		if err != nil {
			if strings.Contains(err.Error(), "cast one side") {
				continue
			}
			t.Fatalf("Bind(%s): %v", e, err)
		}
		// The canonical text parses back to the same expression.
		if e2, err := Parse(e.String()); err != nil || e2.String() != e.String() {
			t.Fatalf("round trip of %s: %v, %v", e, e2, err)
		}
		checked++
		// CASE conditions: dense bitmaps, selection vectors as soon as a
		// row is decided, and the default switch point, in turn.
		caseSparseDiv = []int{0, 1, 16}[ei%3]
		base := 0
		for _, batch := range batches {
			got, err := b.Eval(mem, batch)
			if err != nil {
				t.Fatalf("Eval(%s): %v", e, err)
			}
			if got.Len() != int(batch.NumRows()) {
				t.Fatalf("Eval(%s): %d rows, want %d", e, got.Len(), batch.NumRows())
			}
			if !arrow.TypeEqual(got.DataType(), b.Type()) && b.Type().ID() != arrow.NULL {
				t.Fatalf("Eval(%s): type %s, Type() says %s", e, got.DataType(), b.Type())
			}
			var want []int32
			for r := 0; r < got.Len(); r++ {
				w := oracle(e, schema, rows[base+r])
				gv := readVal(got, r)
				if !sameVal(w, gv) {
					t.Fatalf("Eval(%s) row %d (batch offset %d): got %v, want %v\nrow: %v", e, r, base, gv, w, rows[base+r])
				}
				if !w.null && w.k == kBool && w.i != 0 {
					want = append(want, int32(r))
				}
			}
			got.Release()
			if k := kindOf(b.Type()); k == kBool || k == kNull {
				// Every Select strategy: bitmaps, bitmaps switching to
				// selection vectors early, selection vectors only.
				for _, mode := range selectModes {
					sparseDiv, sparseAndOnly = mode.div, mode.vectors
					sel, err = b.Select(batch, sel)
					if err != nil {
						t.Fatalf("Select(%s): %v", e, err)
					}
					if fmt.Sprint(sel) != fmt.Sprint(want) && !(len(sel) == 0 && len(want) == 0) {
						t.Fatalf("Select(%s) %+v batch offset %d: got %v, want %v", e, mode, base, sel, want)
					}
				}
				sparseDiv, sparseAndOnly = 16, false
			}
			base += int(batch.NumRows())
		}
	}
	caseSparseDiv = 16
	if checked < nexprs/2 {
		t.Fatalf("only %d of %d expressions bound", checked, nexprs)
	}
}
