package expr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Bound is an expression type-checked against a schema, ready to evaluate
// batches of that schema. A Bound is immutable and safe for concurrent use.
type Bound struct {
	src    Expr
	schema *arrow.Schema
	root   node
}

// Type returns the type of the expression's result.
func (b *Bound) Type() arrow.DataType { return b.root.dataType() }

// String prints the expression that was bound.
func (b *Bound) String() string { return b.src.String() }

// node is a bound, type-checked expression node.
type node interface {
	dataType() arrow.DataType
	// eval returns an array of c.n rows owned by the caller.
	eval(c *evalCtx) (arrow.Array, error)
}

type evalCtx struct {
	mem memory.Allocator
	rec arrow.RecordBatch
	n   int
	// cols, when set, replaces the batch's columns (by index) with arrays of
	// n rows: the rows of rec that a CASE arm gathered (see evalRows).
	cols []arrow.Array
}

// scalar is a constant value of a bound type.
type scalar struct {
	t    arrow.DataType
	k    kind
	null bool
	i    int64   // integers (uint64 as its bit pattern), bool (0/1), timestamp, date
	f    float64 // floats
	s    string  // strings
	// untyped marks an integer literal written in the source, which adapts
	// to the integer column it is compared with.
	untyped bool
}

func (s *scalar) asFloat() float64 {
	switch {
	case s.k == kU64:
		return float64(uint64(s.i))
	case s.k.isInt():
		return float64(s.i)
	}
	return s.f
}

type colNode struct {
	idx  int
	name string
	t    arrow.DataType
}

type constNode struct{ v scalar }

func (n *colNode) dataType() arrow.DataType   { return n.t }
func (n *constNode) dataType() arrow.DataType { return n.v.t }

func (n *colNode) eval(c *evalCtx) (arrow.Array, error) {
	if c.cols != nil {
		a := c.cols[n.idx]
		a.Retain()
		return a, nil
	}
	if n.idx >= int(c.rec.NumCols()) {
		return nil, errorf("column %q: batch has only %d columns", n.name, c.rec.NumCols())
	}
	if f := c.rec.Schema().Field(n.idx); f.Name != n.name {
		return nil, errorf("column %q: batch has %q at position %d; bind to the batch's schema", n.name, f.Name, n.idx)
	}
	a := c.rec.Column(n.idx)
	if !arrow.TypeEqual(a.DataType(), n.t) {
		return nil, errorf("column %q: batch has type %s, bound as %s", n.name, a.DataType(), n.t)
	}
	a.Retain()
	return a, nil
}

func (n *constNode) eval(c *evalCtx) (arrow.Array, error) {
	return materialize(c.mem, &n.v, c.n), nil
}

// Bind type-checks e against schema. Errors name the offending
// subexpression and the types involved.
func Bind(e Expr, schema *arrow.Schema) (*Bound, error) {
	if e == nil {
		return nil, errorf("nil expression")
	}
	b := &binder{schema: schema}
	n, err := b.bind(e)
	if err != nil {
		return nil, err
	}
	return &Bound{src: e, schema: schema, root: n}, nil
}

type binder struct {
	schema *arrow.Schema
}

// describe names a subexpression for error messages: `int64 "a"`,
// `int64 literal 3`, `float64 expression a / 2`.
func describe(e Expr, t arrow.DataType) string {
	switch x := e.(type) {
	case *ColumnRef:
		return fmt.Sprintf("%s %q", typeName(t), x.Name)
	case *Literal:
		switch x.Value.(type) {
		case nil:
			return "NULL"
		case time.Time:
			return "timestamp literal " + x.String()
		}
		return fmt.Sprintf("%s literal %s", typeName(t), x)
	}
	return fmt.Sprintf("%s expression %s", typeName(t), e)
}

func (b *binder) bind(e Expr) (node, error) {
	n, err := b.bind1(e)
	if err != nil {
		return nil, err
	}
	if n, err = foldConst(n); err != nil {
		return nil, err
	}
	return liftDict(n), nil
}

func (b *binder) bind1(e Expr) (node, error) {
	switch x := e.(type) {
	case *ColumnRef:
		idx := b.schema.FieldIndices(x.Name)
		if len(idx) == 0 {
			names := make([]string, b.schema.NumFields())
			for i, f := range b.schema.Fields() {
				names[i] = quoteIdent(f.Name)
			}
			return nil, errorf("unknown column %q (available: %s)", x.Name, strings.Join(names, ", "))
		}
		if len(idx) > 1 {
			return nil, errorf("ambiguous column %q: the schema has %d columns of that name", x.Name, len(idx))
		}
		t := b.schema.Field(idx[0]).Type
		if ct := convertedType(t); ct != nil {
			return &convNode{col: &colNode{idx: idx[0], name: x.Name, t: t}, t: ct}, nil
		}
		if t.ID() == arrow.DECIMAL256 {
			return newDec256Col(&colNode{idx: idx[0], name: x.Name, t: t})
		}
		if d, ok := t.(*arrow.Decimal128Type); ok && d.Scale < 0 {
			return nil, errorf("column %q has type %s: negative decimal scales are not supported", x.Name, t)
		}
		if kindOf(t) == kInvalid || kindOf(t) == kNull {
			return nil, errorf("column %q has unsupported type %s", x.Name, t)
		}
		return &colNode{idx: idx[0], name: x.Name, t: t}, nil
	case *Literal:
		s, err := literalScalar(x)
		if err != nil {
			return nil, err
		}
		return &constNode{v: s}, nil
	case *BinaryExpr:
		return b.bindBinary(x)
	case *NotExpr:
		return b.bindNot(x)
	case *NegExpr:
		xn, err := b.bind(x.X)
		if err != nil {
			return nil, err
		}
		k := kindOf(xn.dataType())
		if k == kDecimal128 {
			return newDecNeg(xn), nil
		}
		if !k.isNumeric() && k != kNull {
			return nil, errorf("cannot negate %s", describe(x.X, xn.dataType()))
		}
		// -x is x * -1: exact for floats (including -0 and NaN) and
		// wrapping for integers.
		m := scalar{t: arrow.PrimitiveTypes.Int64, k: kI64, i: -1, untyped: true}
		return newArith(OpMul, xn, &constNode{v: m}, e)
	case *IsNullExpr:
		xn, err := b.bind(x.X)
		if err != nil {
			return nil, err
		}
		return &isNullNode{x: xn, not: x.Not}, nil
	case *InExpr:
		return b.bindIn(x)
	case *StartsWithExpr:
		xn, err := b.bind(x.X)
		if err != nil {
			return nil, err
		}
		k := kindOf(xn.dataType())
		if !k.isString() && k != kNull {
			return nil, errorf("starts_with needs a string, got %s", describe(x.X, xn.dataType()))
		}
		return &prefixNode{x: xn, prefix: x.Prefix}, nil
	case *CastExpr:
		to, ok := castTypes[lower(x.To)]
		if !ok {
			to, ok = decCastType(lower(x.To))
		}
		if !ok {
			return nil, errorf("unknown type %q in %s (known: %s)", x.To, e, castTypeList)
		}
		xn, err := b.bind(x.X)
		if err != nil {
			return nil, err
		}
		return castTo(xn, to, x)
	case *CaseExpr:
		return b.bindCase(x)
	case *CallExpr:
		return b.bindCall(x)
	case nil:
		return nil, errorf("nil expression")
	}
	return nil, errorf("unsupported expression node %T", e)
}

func literalScalar(l *Literal) (scalar, error) {
	switch v := l.Value.(type) {
	case nil:
		return scalar{t: arrow.Null, k: kNull, null: true}, nil
	case int64:
		return scalar{t: arrow.PrimitiveTypes.Int64, k: kI64, i: v, untyped: true}, nil
	case float64:
		return scalar{t: arrow.PrimitiveTypes.Float64, k: kF64, f: v}, nil
	case string:
		return scalar{t: arrow.BinaryTypes.String, k: kString, s: v}, nil
	case bool:
		s := scalar{t: arrow.FixedWidthTypes.Boolean, k: kBool}
		if v {
			s.i = 1
		}
		return s, nil
	case time.Time:
		if v.Year() < 1678 || v.Year() > 2261 {
			return scalar{}, errorf("timestamp literal %s out of range (years 1678..2261)", l)
		}
		return scalar{t: arrow.FixedWidthTypes.Timestamp_ns, k: kTimestamp, i: v.UnixNano()}, nil
	case arrow.Date32:
		return scalar{t: arrow.FixedWidthTypes.Date32, k: kDate32, i: int64(v)}, nil
	case time.Duration:
		return scalar{}, errorf("%s can only be added to or subtracted from a timestamp", l)
	}
	return scalar{}, errorf("unsupported literal type %T", l.Value)
}

// intervalOf returns the duration of an INTERVAL literal.
func intervalOf(e Expr) (time.Duration, bool) {
	l, ok := e.(*Literal)
	if !ok {
		return 0, false
	}
	d, ok := l.Value.(time.Duration)
	return d, ok
}

func (b *binder) bindBinary(x *BinaryExpr) (node, error) {
	if x.Op == OpAdd || x.Op == OpSub || x.Op.isCmp() {
		if n, ok, err := b.bindInterval(x); ok || err != nil {
			return n, err
		}
	}
	l, err := b.bind(x.L)
	if err != nil {
		return nil, err
	}
	r, err := b.bind(x.R)
	if err != nil {
		return nil, err
	}
	lk, rk := kindOf(l.dataType()), kindOf(r.dataType())
	switch {
	case x.Op == OpSub && lk == kTimestamp && rk == kTimestamp:
		return newTimeDiff(l, r), nil
	case (x.Op == OpAdd || x.Op == OpSub) && lk == kTimestamp && rk == kDuration:
		return newShiftBy(x.Op, l, r), nil
	case x.Op == OpAdd && lk == kDuration && rk == kTimestamp:
		return newShiftBy(x.Op, r, l), nil
	case x.Op.isArith():
		return newArith(x.Op, l, r, x)
	case x.Op.isCmp():
		return newCmp(x.Op, l, r, x.L, x.R)
	default:
		return newLogic(x.Op, l, r, x)
	}
}

// bindInterval binds the binary expressions with an INTERVAL literal
// operand: timestamp ± interval, interval + timestamp, and a duration
// compared with an interval. ok is false when x has no such operand.
func (b *binder) bindInterval(x *BinaryExpr) (n node, ok bool, err error) {
	other, iv, flipped := x.L, x.R, false
	d, isIv := intervalOf(iv)
	if !isIv {
		other, iv, flipped = x.R, x.L, true
		if d, isIv = intervalOf(iv); !isIv {
			return nil, false, nil
		}
	}
	on, err := b.bind(other)
	if err != nil {
		return nil, true, err
	}
	if x.Op.isCmp() {
		t := on.dataType()
		if kindOf(t) != kDuration {
			return nil, true, errorf("cannot compare %s with %s", describe(other, t), iv)
		}
		tick := unitNanos(t.(*arrow.DurationType).Unit)
		if int64(d)%tick != 0 {
			return nil, true, errorf("in %s: the interval is finer than %s", x, typeName(t))
		}
		c := &constNode{v: scalar{t: t, k: kDuration, i: int64(d) / tick}}
		op := x.Op
		if flipped {
			op = op.flip()
		}
		n, err := newCmp(op, on, c, other, iv)
		return n, true, err
	}
	if flipped && x.Op == OpSub {
		return nil, true, errorf("cannot subtract a timestamp from an INTERVAL, in %s", x)
	}
	n, err = newShift(x.Op, on, d, x)
	return n, true, err
}

func (b *binder) bindNot(x *NotExpr) (node, error) {
	// Push NOT down where SQL's three-valued logic allows it, so Select
	// keeps its fast paths: NOT a < b is a >= b, NOT (a AND b) is
	// NOT a OR NOT b, NOT a IS NULL is a IS NOT NULL.
	switch y := x.X.(type) {
	case *NotExpr:
		xn, err := b.bind(y.X)
		if err != nil {
			return nil, err
		}
		if err := wantBool(y.X, xn); err != nil {
			return nil, err
		}
		return xn, nil
	case *BinaryExpr:
		switch {
		case y.Op.isCmp():
			return b.bind(&BinaryExpr{Op: y.Op.negate(), L: y.L, R: y.R})
		case y.Op == OpAnd || y.Op == OpOr:
			op := OpOr
			if y.Op == OpOr {
				op = OpAnd
			}
			return b.bind(&BinaryExpr{Op: op, L: Not(y.L), R: Not(y.R)})
		}
	case *IsNullExpr:
		return b.bind(&IsNullExpr{X: y.X, Not: !y.Not})
	}
	xn, err := b.bind(x.X)
	if err != nil {
		return nil, err
	}
	if err := wantBool(x.X, xn); err != nil {
		return nil, err
	}
	return &notNode{x: xn}, nil
}

func wantBool(e Expr, n node) error {
	if k := kindOf(n.dataType()); k != kBool && k != kNull {
		return errorf("NOT needs a boolean, got %s", describe(e, n.dataType()))
	}
	return nil
}

// children returns the operands of n, in evaluation order.
func children(n node) []node {
	switch x := n.(type) {
	case *arithNode:
		return []node{x.l, x.r}
	case *cmpNode:
		return []node{x.l, x.r}
	case *logicNode:
		return []node{x.l, x.r}
	case *notNode:
		return []node{x.x}
	case *isNullNode:
		return []node{x.x}
	case *inNode:
		return []node{x.x}
	case *prefixNode:
		return []node{x.x}
	case *castNode:
		return []node{x.x}
	case *decCmpNode:
		return []node{x.l, x.r}
	case *decCastNode:
		return []node{x.x}
	case *toDecNode:
		return []node{x.x}
	case *dec256Node:
		return []node{x.col}
	case *decArithNode:
		var out []node
		for _, a := range []node{x.l.n, x.r.n} {
			if a != nil {
				out = append(out, a)
			}
		}
		return out
	case *fnNode:
		return x.args
	case *convNode:
		return []node{x.col}
	case *dictNode:
		return []node{x.x}
	case *condNode:
		out := make([]node, 0, len(x.conds)+len(x.vals))
		for _, c := range x.conds {
			if c != nil {
				out = append(out, c)
			}
		}
		return append(out, x.vals...)
	}
	return nil
}

// walkNodes calls f on n and every node below it, stopping at the first
// error.
func walkNodes(n node, f func(node) error) error {
	if err := f(n); err != nil {
		return err
	}
	for _, c := range children(n) {
		if err := walkNodes(c, f); err != nil {
			return err
		}
	}
	return nil
}

var errHasCols = errors.New("has columns")

// hasCols reports whether n reads any column.
func hasCols(n node) bool {
	return walkNodes(n, func(x node) error {
		if _, ok := x.(*colNode); ok {
			return errHasCols
		}
		return nil
	}) != nil
}

// foldConst evaluates a node without column references to a constant, with
// the same kernels that evaluate batches, so folding cannot change results.
func foldConst(n node) (node, error) {
	if _, ok := n.(*constNode); ok || hasCols(n) || kindOf(n.dataType()) == kDecimal128 {
		// (a scalar holds no decimal: decimal constants stay nodes)
		return n, nil
	}
	c := &evalCtx{mem: memory.DefaultAllocator, n: 1}
	a, err := n.eval(c)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	return &constNode{v: scalarAt(a, 0)}, nil
}

// scalarAt reads row i of a as a scalar.
func scalarAt(a arrow.Array, i int) scalar {
	t := a.DataType()
	s := scalar{t: t, k: kindOf(t)}
	if a.IsNull(i) {
		s.null = true
		return s
	}
	switch s.k {
	case kBool:
		if a.(*array.Boolean).Value(i) {
			s.i = 1
		}
	case kI8:
		s.i = int64(values[int8](a)[i])
	case kI16:
		s.i = int64(values[int16](a)[i])
	case kI32, kDate32:
		s.i = int64(values[int32](a)[i])
	case kI64, kTimestamp, kDuration, kTime:
		s.i = values[int64](a)[i]
	case kU8:
		s.i = int64(values[uint8](a)[i])
	case kU16:
		s.i = int64(values[uint16](a)[i])
	case kU32:
		s.i = int64(values[uint32](a)[i])
	case kU64:
		s.i = int64(values[uint64](a)[i])
	case kF32:
		s.f = float64(values[float32](a)[i])
	case kF64:
		s.f = values[float64](a)[i]
	case kString:
		s.s = a.(*array.String).Value(i)
	case kLargeString:
		s.s = a.(*array.LargeString).Value(i)
	}
	return s
}

// materialize builds an array of n copies of s.
func materialize(mem memory.Allocator, s *scalar, n int) arrow.Array {
	if s.k == kNull {
		return array.MakeArrayOfNull(mem, arrow.Null, n)
	}
	var valid *memory.Buffer
	if s.null {
		valid = newBuf(mem, bitmapBytes(n))
	}
	switch s.k {
	case kBool:
		v := newBuf(mem, bitmapBytes(n))
		if s.i != 0 && !s.null {
			fillBits(v.Bytes(), n)
		}
		return makeArray(s.t, n, valid, v)
	case kString, kLargeString:
		w := 4
		if s.k == kLargeString {
			w = 8
		}
		str := s.s
		if s.null {
			str = ""
		}
		offs := newBuf(mem, (n+1)*w)
		data := newBuf(mem, n*len(str))
		for i := 0; i < n; i++ {
			copy(data.Bytes()[i*len(str):], str)
		}
		if w == 4 {
			o := values32(offs.Bytes())
			for i := range o {
				o[i] = int32(i * len(str))
			}
		} else {
			o := values64(offs.Bytes())
			for i := range o {
				o[i] = int64(i * len(str))
			}
		}
		return makeArray(s.t, n, valid, offs, data)
	}
	width := s.t.(arrow.FixedWidthDataType).BitWidth() / 8
	v := newBuf(mem, n*width)
	if !s.null {
		b := v.Bytes()
		switch s.k {
		case kI8, kU8:
			fill(b, uint8(s.i))
		case kI16, kU16:
			fill(viewAs[uint16](b), uint16(s.i))
		case kI32, kU32, kDate32:
			fill(viewAs[uint32](b), uint32(s.i))
		case kI64, kU64, kTimestamp, kDuration, kTime:
			fill(viewAs[int64](b), s.i)
		case kF32:
			fill(viewAs[float32](b), float32(s.f))
		case kF64:
			fill(viewAs[float64](b), s.f)
		}
	}
	return makeArray(s.t, n, valid, v)
}

func fill[T any](v []T, x T) {
	for i := range v {
		v[i] = x
	}
}

// fillBits sets bits [0, n).
func fillBits(b []byte, n int) {
	for i := 0; i < n/8; i++ {
		b[i] = 0xFF
	}
	for i := n &^ 7; i < n; i++ {
		b[i>>3] |= 1 << (i & 7)
	}
}

// formatScalar prints a scalar for error messages and casts to string.
func formatScalar(s *scalar) string {
	if s.null {
		return "NULL"
	}
	switch s.k {
	case kBool:
		return strconv.FormatBool(s.i != 0)
	case kU64:
		return strconv.FormatUint(uint64(s.i), 10)
	case kF32:
		return strconv.FormatFloat(s.f, 'g', -1, 32)
	case kF64:
		return strconv.FormatFloat(s.f, 'g', -1, 64)
	case kString, kLargeString:
		return s.s
	case kTimestamp:
		return formatTimestamp(tsToTime(s.i, s.t.(*arrow.TimestampType).Unit))
	case kDate32:
		return arrow.Date32(s.i).FormattedString()
	}
	return strconv.FormatInt(s.i, 10)
}

func tsToTime(v int64, u arrow.TimeUnit) time.Time {
	switch u {
	case arrow.Second:
		return time.Unix(v, 0).UTC()
	case arrow.Millisecond:
		return time.UnixMilli(v).UTC()
	case arrow.Microsecond:
		return time.UnixMicro(v).UTC()
	}
	return time.Unix(0, v).UTC()
}

// unitNanos is the number of nanoseconds in one tick of u.
func unitNanos(u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return 1e9
	case arrow.Millisecond:
		return 1e6
	case arrow.Microsecond:
		return 1e3
	}
	return 1
}

// floorDiv divides rounding toward negative infinity.
func floorDiv(a, b int64) (q, r int64) {
	q, r = a/b, a%b
	if r < 0 {
		q--
		r += b
	}
	return q, r
}
