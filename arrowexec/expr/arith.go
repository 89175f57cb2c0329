package expr

import (
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// arithNode computes l op r in the int64 domain (integer operands; wrapping)
// or the float64 domain (any float operand, and always for /).
type arithNode struct {
	op    BinaryOp
	l, r  node
	float bool // float64 domain
	t     arrow.DataType
}

func (n *arithNode) dataType() arrow.DataType { return n.t }

func newArith(op BinaryOp, l, r node, e Expr) (node, error) {
	lk, rk := kindOf(l.dataType()), kindOf(r.dataType())
	if !(lk.isNumeric() || lk == kNull) || !(rk.isNumeric() || rk == kNull) {
		if lk == kDecimal128 || rk == kDecimal128 {
			return newDecArith(op, l, r, e)
		}
		be, _ := e.(*BinaryExpr)
		if be == nil {
			return nil, errorf("cannot apply arithmetic to %s", describe(e, l.dataType()))
		}
		return nil, errorf("cannot apply %s to %s and %s", op, describe(be.L, l.dataType()), describe(be.R, r.dataType()))
	}
	float := op == OpDiv || lk.isFloat() || rk.isFloat()
	t := arrow.DataType(arrow.PrimitiveTypes.Int64)
	if float {
		t = arrow.PrimitiveTypes.Float64
	}
	if lk == kNull || rk == kNull || isNullConst(l) || isNullConst(r) {
		return &constNode{v: scalar{t: t, k: kindOf(t), null: true}}, nil
	}
	return &arithNode{op: op, l: l, r: r, float: float, t: t}, nil
}

// operand is an evaluated child: an array or a constant.
type operand struct {
	arr arrow.Array
	c   *scalar
}

func (o operand) release() {
	if o.arr != nil {
		o.arr.Release()
	}
}

func evalOperand(c *evalCtx, n node) (operand, error) {
	if k, ok := n.(*constNode); ok {
		return operand{c: &k.v}, nil
	}
	a, err := n.eval(c)
	return operand{arr: a}, err
}

// evalOperands evaluates both children; when both are constants (constant
// folding) the left one is materialized, so kernels always see an array.
func evalOperands(c *evalCtx, l, r node) (lo, ro operand, err error) {
	if lo, err = evalOperand(c, l); err != nil {
		return
	}
	if ro, err = evalOperand(c, r); err != nil {
		lo.release()
		return
	}
	if lo.c != nil && ro.c != nil {
		lo = operand{arr: materialize(c.mem, lo.c, c.n)}
	}
	return
}

// asInt64 returns the values of an integer array widened to int64 (uint64
// reinterpreted), and a function releasing any scratch buffer.
func asInt64(mem memory.Allocator, a arrow.Array) ([]int64, func()) {
	switch kindOf(a.DataType()) {
	case kI64, kU64, kTimestamp, kDuration, kTime:
		return values[int64](a), func() {}
	}
	buf := newBufUninit(mem, a.Len()*8)
	out := viewAs[int64](buf.Bytes())
	convertTo(a, out)
	return out, buf.Release
}

// asFloat64 returns the values of a numeric array as float64.
func asFloat64(mem memory.Allocator, a arrow.Array) ([]float64, func()) {
	if kindOf(a.DataType()) == kF64 {
		return values[float64](a), func() {}
	}
	buf := newBufUninit(mem, a.Len()*8)
	out := viewAs[float64](buf.Bytes())
	convertTo(a, out)
	return out, buf.Release
}

// convertTo converts the values of a numeric (or temporal) array into out
// with Go conversion semantics.
func convertTo[D numeric](a arrow.Array, out []D) {
	switch kindOf(a.DataType()) {
	case kI8:
		conv(values[int8](a), out)
	case kI16:
		conv(values[int16](a), out)
	case kI32, kDate32:
		conv(values[int32](a), out)
	case kI64, kTimestamp, kDuration, kTime:
		conv(values[int64](a), out)
	case kU8:
		conv(values[uint8](a), out)
	case kU16:
		conv(values[uint16](a), out)
	case kU32:
		conv(values[uint32](a), out)
	case kU64:
		conv(values[uint64](a), out)
	case kF32:
		conv(values[float32](a), out)
	case kF64:
		conv(values[float64](a), out)
	}
}

func conv[S, D numeric](src []S, out []D) {
	out = out[:len(src)]
	for i, v := range src {
		out[i] = D(v)
	}
}

// andValidity returns the validity bitmap of n rows that is the AND of the
// validity of the given arrays (nil entries ignored), or nil when no array
// has nulls. With exactly one nullable input at offset 0 its buffer is
// shared (retained) unless writable is set.
func andValidity(mem memory.Allocator, n int, writable bool, arrs ...arrow.Array) *memory.Buffer {
	var out *memory.Buffer
	var first arrow.Array
	for _, a := range arrs {
		if a == nil || a.NullN() == 0 {
			continue
		}
		if first == nil {
			first = a
			continue
		}
		if out == nil {
			out = newBuf(mem, bitmapBytes(n))
			fb, fo := validity(first)
			bitutil.CopyBitmap(fb, fo, n, out.Bytes(), 0)
		}
		ab, ao := validity(a)
		bitutil.BitmapAnd(out.Bytes(), ab, 0, int64(ao), out.Bytes(), 0, int64(n))
	}
	if out != nil || first == nil {
		return out
	}
	fb, fo := validity(first)
	if fo == 0 && !writable && len(fb) >= bitmapBytes(n) {
		b := first.Data().Buffers()[0]
		b.Retain()
		return b
	}
	out = newBuf(mem, bitmapBytes(n))
	bitutil.CopyBitmap(fb, fo, n, out.Bytes(), 0)
	return out
}

func (n *arithNode) eval(c *evalCtx) (arrow.Array, error) {
	lo, ro, err := evalOperands(c, n.l, n.r)
	if err != nil {
		return nil, err
	}
	defer lo.release()
	defer ro.release()
	rows := c.n
	divides := n.op == OpDiv || n.op == OpMod
	valid := andValidity(c.mem, rows, divides, lo.arr, ro.arr)
	var out *memory.Buffer
	if divides {
		out = newBuf(c.mem, rows*8) // rows divided by zero stay 0
	} else {
		out = newBufUninit(c.mem, rows*8) // every row is written
	}
	if n.float && lo.arr != nil && ro.arr != nil && !divides {
		// Mixed int64/float64 operands: convert inside the loop instead of
		// through a scratch column.
		res := viewAs[float64](out.Bytes())
		switch lk, rk := kindOf(lo.arr.DataType()), kindOf(ro.arr.DataType()); {
		case lk == kI64 && rk == kF64:
			arithMixed(n.op, values[int64](lo.arr), values[float64](ro.arr), res)
			return makeArray(n.t, rows, valid, out), nil
		case lk == kF64 && rk == kI64:
			arithMixed(n.op, values[float64](lo.arr), values[int64](ro.arr), res)
			return makeArray(n.t, rows, valid, out), nil
		}
	}
	if n.float {
		res := viewAs[float64](out.Bytes())
		var a, b []float64
		var ac, bc float64
		if lo.c != nil {
			ac = lo.c.asFloat()
		} else {
			v, rel := asFloat64(c.mem, lo.arr)
			defer rel()
			a = v
		}
		if ro.c != nil {
			bc = ro.c.asFloat()
		} else {
			v, rel := asFloat64(c.mem, ro.arr)
			defer rel()
			b = v
		}
		arithFloat(n.op, a, b, ac, bc, res)
		if divides {
			valid = nullOnZero(c.mem, valid, rows, b, bc, ro.c != nil)
		}
	} else {
		res := viewAs[int64](out.Bytes())
		var a, b []int64
		var ac, bc int64
		if lo.c != nil {
			ac = lo.c.i
		} else {
			v, rel := asInt64(c.mem, lo.arr)
			defer rel()
			a = v
		}
		if ro.c != nil {
			bc = ro.c.i
		} else {
			v, rel := asInt64(c.mem, ro.arr)
			defer rel()
			b = v
		}
		arithInt(n.op, a, b, ac, bc, res)
		if divides {
			valid = nullOnZero(c.mem, valid, rows, b, bc, ro.c != nil)
		}
	}
	return makeArray(n.t, rows, valid, out), nil
}

// nullOnZero clears the validity of rows whose divisor is zero. valid is
// writable (or nil).
func nullOnZero[T int64 | float64](mem memory.Allocator, valid *memory.Buffer, n int, b []T, bc T, isConst bool) *memory.Buffer {
	if isConst {
		if bc != 0 {
			return valid
		}
		if valid == nil {
			valid = newBuf(mem, bitmapBytes(n))
		}
		clear(valid.Bytes())
		return valid
	}
	for i, v := range b[:n] {
		if v == 0 {
			if valid == nil {
				valid = newBuf(mem, bitmapBytes(n))
				fillBits(valid.Bytes(), n)
			}
			bitutil.ClearBit(valid.Bytes(), i)
		}
	}
	return valid
}

// arithInt computes out = a op b; a nil slice means the constant ac (bc).
// Division by zero yields 0 here; the caller nulls those rows.
func arithInt(op BinaryOp, a, b []int64, ac, bc int64, out []int64) {
	switch {
	case a != nil && b != nil:
		b = b[:len(a)]
		out = out[:len(a)]
		switch op {
		case OpAdd:
			for i := range out {
				out[i] = a[i] + b[i]
			}
		case OpSub:
			for i := range out {
				out[i] = a[i] - b[i]
			}
		case OpMul:
			for i := range out {
				out[i] = a[i] * b[i]
			}
		case OpMod:
			for i := range out {
				if b[i] != 0 {
					out[i] = a[i] % b[i]
				}
			}
		}
	case a != nil:
		out = out[:len(a)]
		switch op {
		case OpAdd:
			for i := range out {
				out[i] = a[i] + bc
			}
		case OpSub:
			for i := range out {
				out[i] = a[i] - bc
			}
		case OpMul:
			for i := range out {
				out[i] = a[i] * bc
			}
		case OpMod:
			if bc != 0 {
				for i := range out {
					out[i] = a[i] % bc
				}
			}
		}
	default:
		out = out[:len(b)]
		switch op {
		case OpAdd:
			for i := range out {
				out[i] = ac + b[i]
			}
		case OpSub:
			for i := range out {
				out[i] = ac - b[i]
			}
		case OpMul:
			for i := range out {
				out[i] = ac * b[i]
			}
		case OpMod:
			for i := range out {
				if b[i] != 0 {
					out[i] = ac % b[i]
				}
			}
		}
	}
}

// arithFloat is arithInt for float64; / and % by zero yield 0 here.
func arithFloat(op BinaryOp, a, b []float64, ac, bc float64, out []float64) {
	switch {
	case a != nil && b != nil:
		b = b[:len(a)]
		out = out[:len(a)]
		switch op {
		case OpAdd:
			for i := range out {
				out[i] = a[i] + b[i]
			}
		case OpSub:
			for i := range out {
				out[i] = a[i] - b[i]
			}
		case OpMul:
			for i := range out {
				out[i] = a[i] * b[i]
			}
		case OpDiv:
			for i := range out {
				if b[i] != 0 {
					out[i] = a[i] / b[i]
				}
			}
		case OpMod:
			for i := range out {
				if b[i] != 0 {
					out[i] = math.Mod(a[i], b[i])
				}
			}
		}
	case a != nil:
		out = out[:len(a)]
		switch op {
		case OpAdd:
			for i := range out {
				out[i] = a[i] + bc
			}
		case OpSub:
			for i := range out {
				out[i] = a[i] - bc
			}
		case OpMul:
			for i := range out {
				out[i] = a[i] * bc
			}
		case OpDiv:
			if bc != 0 {
				for i := range out {
					out[i] = a[i] / bc
				}
			}
		case OpMod:
			if bc != 0 {
				for i := range out {
					out[i] = math.Mod(a[i], bc)
				}
			}
		}
	default:
		out = out[:len(b)]
		switch op {
		case OpAdd:
			for i := range out {
				out[i] = ac + b[i]
			}
		case OpSub:
			for i := range out {
				out[i] = ac - b[i]
			}
		case OpMul:
			for i := range out {
				out[i] = ac * b[i]
			}
		case OpDiv:
			for i := range out {
				if b[i] != 0 {
					out[i] = ac / b[i]
				}
			}
		case OpMod:
			for i := range out {
				if b[i] != 0 {
					out[i] = math.Mod(ac, b[i])
				}
			}
		}
	}
}

// arithMixed computes out = float64(a) op float64(b) for +, - and *.
func arithMixed[A, B int64 | float64](op BinaryOp, a []A, b []B, out []float64) {
	b = b[:len(a)]
	out = out[:len(a)]
	switch op {
	case OpAdd:
		for i := range out {
			out[i] = float64(a[i]) + float64(b[i])
		}
	case OpSub:
		for i := range out {
			out[i] = float64(a[i]) - float64(b[i])
		}
	case OpMul:
		for i := range out {
			out[i] = float64(a[i]) * float64(b[i])
		}
	}
}
