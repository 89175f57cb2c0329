package expr

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Math functions. Integer results keep the argument's type (abs, round);
// floor, ceil and round of a float keep float32 or float64; sqrt, ln, exp
// and pow compute in float64. Values outside a function's domain (sqrt of a
// negative number, ln of zero or a negative number, abs of the smallest
// integer) are runtime errors, as in DuckDB; overflow to ±Inf is a value.
var mathFunctions = map[string]*function{
	"abs":      {minArgs: 1, maxArgs: 1, bind: bindAbs},
	"round":    {minArgs: 1, maxArgs: 2, bind: bindRound},
	"floor":    {minArgs: 1, maxArgs: 1, bind: bindFloorCeil},
	"ceil":     {minArgs: 1, maxArgs: 1, bind: bindFloorCeil},
	"sqrt":     {minArgs: 1, maxArgs: 1, bind: bindFloatFn},
	"ln":       {minArgs: 1, maxArgs: 1, bind: bindFloatFn},
	"exp":      {minArgs: 1, maxArgs: 1, bind: bindFloatFn},
	"pow":      {minArgs: 2, maxArgs: 2, bind: bindPow},
	"greatest": {minArgs: 1, maxArgs: -1, bind: bindExtreme},
	"least":    {minArgs: 1, maxArgs: -1, bind: bindExtreme},
}

// numArg checks that argument i is a number (or NULL).
func numArg(e *CallExpr, args []node, i int) (kind, error) {
	k := kindOf(args[i].dataType())
	if !k.isNumeric() && k != kNull {
		return k, argError(e, i, args[i], "must be a number")
	}
	return k, nil
}

// unaryNum builds the node of a one-argument numeric function of result
// type t whose kernel fills out (a buffer of rows values of t) from a.
func unaryNum(e *CallExpr, x node, t arrow.DataType, k func(mem memory.Allocator, a arrow.Array, out []byte) error) node {
	if isNullConst(x) || kindOf(x.dataType()) == kNull {
		return nullOf(t)
	}
	width := t.(arrow.FixedWidthDataType).BitWidth() / 8
	return &fnNode{name: e.Name, t: t, args: []node{x}, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		a := in[0]
		out := newBufUninit(c.mem, c.n*width)
		if err := k(c.mem, a, out.Bytes()); err != nil {
			out.Release()
			return nil, err
		}
		return makeArray(t, c.n, andValidity(c.mem, c.n, false, a), out), nil
	}}
}

func bindAbs(e *CallExpr, args []node) (node, error) {
	if kindOf(args[0].dataType()) == kDecimal128 {
		return bindDecAbs(e, args[0]), nil
	}
	k, err := numArg(e, args, 0)
	if err != nil {
		return nil, err
	}
	x := args[0]
	if k.isUnsigned() {
		return x, nil
	}
	return unaryNum(e, x, x.dataType(), func(mem memory.Allocator, a arrow.Array, out []byte) error {
		switch k {
		case kI8:
			return absInt(a, values[int8](a), viewAs[int8](out))
		case kI16:
			return absInt(a, values[int16](a), viewAs[int16](out))
		case kI32:
			return absInt(a, values[int32](a), viewAs[int32](out))
		case kI64:
			return absInt(a, values[int64](a), viewAs[int64](out))
		case kF32:
			absFloat(values[float32](a), viewAs[float32](out))
		case kF64:
			absFloat(values[float64](a), viewAs[float64](out))
		}
		return nil
	}), nil
}

// absInt fails on the smallest value of T, whose absolute value T cannot
// hold (DuckDB: "Overflow on abs"); NULL rows do not count.
func absInt[T int8 | int16 | int32 | int64](a arrow.Array, v, out []T) error {
	var bad T
	bad = 1
	for bad<<1 != 0 {
		bad <<= 1 // the smallest value: only the sign bit
	}
	neg := false
	for i, x := range v {
		m := x >> (bitSize(x) - 1) // 0 or -1
		out[i] = (x ^ m) - m
		neg = neg || x == bad
	}
	if neg {
		for i, x := range v {
			if x == bad && a.IsValid(i) {
				return errorf("abs: overflow on %d at row %d", int64(x), i)
			}
		}
	}
	return nil
}

func bitSize[T int8 | int16 | int32 | int64](T) int {
	var z T
	switch any(z).(type) {
	case int8:
		return 8
	case int16:
		return 16
	case int32:
		return 32
	}
	return 64
}

func absFloat[T float32 | float64](v, out []T) {
	for i, x := range v {
		out[i] = T(math.Abs(float64(x)))
	}
}

// floatResult is float32 for a float32 argument and float64 otherwise.
func floatResult(k kind) arrow.DataType {
	if k == kF32 {
		return arrow.PrimitiveTypes.Float32
	}
	return arrow.PrimitiveTypes.Float64
}

func bindFloorCeil(e *CallExpr, args []node) (node, error) {
	k, err := numArg(e, args, 0)
	if err != nil {
		return nil, err
	}
	f := math.Floor
	if e.Name == "ceil" {
		f = math.Ceil
	}
	return unaryNum(e, args[0], floatResult(k), func(mem memory.Allocator, a arrow.Array, out []byte) error {
		if k == kF32 {
			o := viewAs[float32](out)
			for i, x := range values[float32](a) {
				o[i] = float32(f(float64(x)))
			}
			return nil
		}
		v, rel := asFloat64(mem, a)
		defer rel()
		o := viewAs[float64](out)
		if e.Name == "ceil" {
			for i, x := range v {
				o[i] = math.Ceil(x)
			}
		} else {
			for i, x := range v {
				o[i] = math.Floor(x)
			}
		}
		return nil
	}), nil
}

func bindRound(e *CallExpr, args []node) (node, error) {
	k := kindOf(args[0].dataType())
	if k != kDecimal128 {
		if _, err := numArg(e, args, 0); err != nil {
			return nil, err
		}
	}
	digits := int64(0)
	if len(args) == 2 {
		c, err := constArg(e, args, 1, "integer")
		if err != nil {
			return nil, err
		}
		if c.null {
			return nullOf(args[0].dataType()), nil
		}
		if !c.k.isInt() {
			return nil, argError(e, 1, args[1], "must be an integer")
		}
		digits = c.i
	}
	x := args[0]
	if k == kDecimal128 {
		return bindDecRound(e, x, digits), nil
	}
	if k.isInt() && digits >= 0 {
		return x, nil
	}
	t := x.dataType()
	if k == kNull {
		t = arrow.PrimitiveTypes.Float64
	}
	return unaryNum(e, x, t, func(mem memory.Allocator, a arrow.Array, out []byte) error {
		switch k {
		case kI8:
			roundInt(values[int8](a), viewAs[int8](out), digits)
		case kI16:
			roundInt(values[int16](a), viewAs[int16](out), digits)
		case kI32:
			roundInt(values[int32](a), viewAs[int32](out), digits)
		case kI64:
			roundInt(values[int64](a), viewAs[int64](out), digits)
		case kU8:
			roundInt(values[uint8](a), viewAs[uint8](out), digits)
		case kU16:
			roundInt(values[uint16](a), viewAs[uint16](out), digits)
		case kU32:
			roundInt(values[uint32](a), viewAs[uint32](out), digits)
		case kU64:
			roundInt(values[uint64](a), viewAs[uint64](out), digits)
		case kF32:
			roundFloat(values[float32](a), viewAs[float32](out), digits)
		case kF64:
			roundFloat(values[float64](a), viewAs[float64](out), digits)
		}
		return nil
	}), nil
}

// roundInt rounds to a multiple of 10^-digits (digits < 0), half away from
// zero, wrapping on overflow as integer arithmetic does.
func roundInt[T integer](v, out []T, digits int64) {
	p := uint64(1)
	for d := digits; d < 0 && p != 0; d++ {
		if p > math.MaxUint64/10 {
			p = 0
			break
		}
		p *= 10
	}
	var zero T
	pt := T(p)
	if p == 0 || uint64(pt) != p || pt < zero {
		clear(out) // 10^-digits beyond T: every value rounds to 0
		return
	}
	half := pt / 2
	for i, x := range v {
		if x < zero {
			out[i] = (x - half) / pt * pt
		} else {
			out[i] = (x + half) / pt * pt
		}
	}
}

// roundFloat rounds half away from zero to digits decimal places, as
// DuckDB's round of a DOUBLE does: round(x * 10^d) / 10^d, or x itself when
// that overflows.
func roundFloat[T float32 | float64](v, out []T, digits int64) {
	if digits == 0 {
		for i, x := range v {
			out[i] = T(math.Round(float64(x)))
		}
		return
	}
	if digits > 0 {
		m := math.Pow(10, float64(digits))
		for i, x := range v {
			r := math.Round(float64(x)*m) / m
			if math.IsInf(r, 0) || math.IsNaN(r) {
				r = float64(x)
			}
			out[i] = T(r)
		}
		return
	}
	m := math.Pow(10, float64(-digits))
	for i, x := range v {
		out[i] = T(math.Round(float64(x)/m) * m)
	}
}

func bindFloatFn(e *CallExpr, args []node) (node, error) {
	if _, err := numArg(e, args, 0); err != nil {
		return nil, err
	}
	name := e.Name
	return unaryNum(e, args[0], arrow.PrimitiveTypes.Float64, func(mem memory.Allocator, a arrow.Array, out []byte) error {
		v, rel := asFloat64(mem, a)
		defer rel()
		o := viewAs[float64](out)
		switch name {
		case "sqrt":
			bad := false
			for i, x := range v {
				o[i] = math.Sqrt(x)
				bad = bad || x < 0
			}
			if bad {
				return domainError(a, v, name, "cannot take the square root of a negative number", func(x float64) bool { return x < 0 })
			}
		case "ln":
			bad := false
			for i, x := range v {
				o[i] = math.Log(x)
				bad = bad || x <= 0
			}
			if bad {
				return domainError(a, v, name, "cannot take the logarithm of zero or a negative number", func(x float64) bool { return x <= 0 })
			}
		case "exp":
			for i, x := range v {
				o[i] = math.Exp(x)
			}
		}
		return nil
	}), nil
}

// domainError names the first valid row whose value is outside a
// function's domain; nil when all such rows are NULL.
func domainError(a arrow.Array, v []float64, name, msg string, bad func(float64) bool) error {
	for i, x := range v {
		if bad(x) && a.IsValid(i) {
			return errorf("%s: %s (%g at row %d)", name, msg, x, i)
		}
	}
	return nil
}

func bindPow(e *CallExpr, args []node) (node, error) {
	for i := range args {
		if _, err := numArg(e, args, i); err != nil {
			return nil, err
		}
	}
	t := arrow.PrimitiveTypes.Float64
	if isNullConst(args[0]) || isNullConst(args[1]) {
		return nullOf(t), nil
	}
	return &fnNode{name: e.Name, t: t, args: args, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		x, relx := asFloat64(c.mem, in[0])
		defer relx()
		y, rely := asFloat64(c.mem, in[1])
		defer rely()
		out := newBufUninit(c.mem, c.n*8)
		o := viewAs[float64](out.Bytes())
		for i := range o {
			o[i] = math.Pow(x[i], y[i])
		}
		return makeArray(t, c.n, andValidity(c.mem, c.n, false, in[0], in[1]), out), nil
	}}, nil
}

// bindExtreme binds greatest and least: the largest (smallest) argument
// that is not NULL, NULL when all are. The arguments take one type by the
// rules of CASE; NaN is larger than every other float, as in DuckDB.
func bindExtreme(e *CallExpr, args []node) (node, error) {
	bs := make([]branch, len(args))
	for i, a := range args {
		bs[i] = branch{n: a, e: e.Args[i], label: fmt.Sprintf("argument %d", i+1)}
	}
	t, vals, err := unify(e.Name, bs)
	if err != nil {
		return nil, err
	}
	k := kindOf(t)
	if k == kBool {
		return nil, errorf("%s of booleans is not supported", e.Name)
	}
	if k == kNull {
		return nullOf(t), nil
	}
	var live []node
	for _, v := range vals {
		if !isNullConst(v) {
			live = append(live, v)
		}
	}
	if len(live) == 1 && arrow.TypeEqual(live[0].dataType(), t) {
		return live[0], nil
	}
	least := e.Name == "least"
	return &fnNode{name: e.Name, t: t, args: live, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		return extreme(c.mem, t, c.n, in, least), nil
	}}, nil
}

// extreme computes greatest/least over arrays of one type (strings may mix
// string and large_string): the index of the winning argument per row, then
// a gather of the values.
func extreme(mem memory.Allocator, t arrow.DataType, n int, in []arrow.Array, least bool) arrow.Array {
	valid := newBuf(mem, bitmapBytes(n))
	vb := valid.Bytes()
	k := kindOf(t)
	if k.isString() {
		win := make([]int8, n)
		views := make([]func(int) []byte, len(in))
		for j, a := range in {
			views[j] = strAccessor(a)
		}
		for i := 0; i < n; i++ {
			w := -1
			for j, a := range in {
				if a.IsNull(i) {
					continue
				}
				if w < 0 {
					w = j
					continue
				}
				c := compareBytes(views[j](i), views[w](i))
				if least && c < 0 || !least && c > 0 {
					w = j
				}
			}
			win[i] = int8(w)
			if w >= 0 {
				bitutil.SetBit(vb, i)
			}
		}
		return buildStrings(mem, t, n, valid, func(dst []byte, i int) []byte {
			return append(dst, views[win[i]](i)...)
		})
	}
	width := t.(arrow.FixedWidthDataType).BitWidth() / 8
	out := newBuf(mem, n*width)
	b := out.Bytes()
	for _, a := range in {
		switch k {
		case kI8:
			extremeInto(a, values[int8](a), viewAs[int8](b), vb, least)
		case kI16:
			extremeInto(a, values[int16](a), viewAs[int16](b), vb, least)
		case kI32, kDate32:
			extremeInto(a, values[int32](a), viewAs[int32](b), vb, least)
		case kI64, kTimestamp, kDuration, kTime:
			extremeInto(a, values[int64](a), viewAs[int64](b), vb, least)
		case kU8:
			extremeInto(a, values[uint8](a), viewAs[uint8](b), vb, least)
		case kU16:
			extremeInto(a, values[uint16](a), viewAs[uint16](b), vb, least)
		case kU32:
			extremeInto(a, values[uint32](a), viewAs[uint32](b), vb, least)
		case kU64:
			extremeInto(a, values[uint64](a), viewAs[uint64](b), vb, least)
		case kF32:
			extremeInto(a, values[float32](a), viewAs[float32](b), vb, least)
		case kF64:
			extremeInto(a, values[float64](a), viewAs[float64](b), vb, least)
		}
	}
	return makeArray(t, n, valid, out)
}

// extremeInto folds one argument into the running result out (valid where
// vb is set).
func extremeInto[T numeric](a arrow.Array, v, out []T, vb []byte, least bool) {
	for i, x := range v {
		if a.IsNull(i) {
			continue
		}
		if !bitutil.BitIsSet(vb, i) {
			out[i] = x
			bitutil.SetBit(vb, i)
			continue
		}
		if least && lessNaNLast(x, out[i]) || !least && lessNaNLast(out[i], x) {
			out[i] = x
		}
	}
}

// lessNaNLast orders values with NaN above everything else.
func lessNaNLast[T numeric](a, b T) bool {
	if a != a {
		return false
	}
	if b != b {
		return true
	}
	return a < b
}
