package expr

import (
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

// inNode is X IN (literals). The literals are converted to X's physical type
// at bind time; literals that can never equal a value of that type (out of
// range, between timestamp ticks) are dropped. A NULL in the list makes
// non-matching rows NULL, as in SQL.
type inNode struct {
	x       node
	k       kind
	m       inMatcher
	hasNull bool
}

func (n *inNode) dataType() arrow.DataType { return boolType }

// inMatcher tests membership for a whole array, or refines a selection.
type inMatcher interface {
	match(a arrow.Array, n int, out []byte)
	sel(a arrow.Array, n int, sel []int32, all bool) []int32
}

// inSet is a set of T: a short list is scanned, a longer one hashed.
type inSet[T comparable] struct {
	list []T
	m    map[T]struct{}
}

const inListLinearMax = 8

func newInSet[T comparable](vs []T) *inSet[T] {
	s := &inSet[T]{}
	seen := map[T]struct{}{}
	for _, v := range vs {
		if _, ok := seen[v]; !ok {
			seen[v] = struct{}{}
			s.list = append(s.list, v)
		}
	}
	if len(s.list) > inListLinearMax {
		s.m = seen
	}
	return s
}

func (s *inSet[T]) has(v T) bool {
	if s.m != nil {
		_, ok := s.m[v]
		return ok
	}
	for _, x := range s.list {
		if x == v {
			return true
		}
	}
	return false
}

// inNum matches a numeric column of type T natively. (Integer sets that
// span a small range use inDense instead: a bitset over [lo, lo+span), so a
// lookup is a subtraction, a compare and a bit test.)
type inNum[T numeric] struct{ s *inSet[T] }

type denseSet struct {
	lo   int64
	span uint64
	bits []uint64
}

const denseMaxSpan = 1 << 16

// newDense returns a bitset for the set when its values span at most
// denseMaxSpan, or nil. Values must be int64 bit patterns of an integer
// type; uint64 values above MaxInt64 disable it.
func newDense(vs []int64, unsigned bool) *denseSet {
	if len(vs) == 0 {
		return nil
	}
	lo, hi := vs[0], vs[0]
	for _, v := range vs {
		if unsigned && v < 0 {
			return nil
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	if uint64(hi-lo) >= denseMaxSpan || hi-lo < 0 {
		return nil
	}
	d := &denseSet{lo: lo, span: uint64(hi-lo) + 1}
	// One spare zero bit at position span: out-of-range values are clamped
	// onto it, so lookups need no branch.
	d.bits = make([]uint64, (d.span+64)/64)
	for _, v := range vs {
		o := uint64(v - lo)
		d.bits[o>>6] |= 1 << (o & 63)
	}
	return d
}

func denseMatch[T integer](v []T, d *denseSet, out []byte) {
	lo, span, bits := d.lo, d.span, d.bits
	ow := viewAs[uint64](out)
	var cur uint64
	for i, e := range v {
		o := min(uint64(int64(e)-lo), span)
		cur |= (bits[o>>6] >> (o & 63) & 1) << (i & 63)
		if i&63 == 63 {
			ow[i>>6] = cur
			cur = 0
		}
	}
	if len(v)&63 != 0 {
		ow[len(v)>>6] = cur
	}
}

func denseSel[T integer](v []T, d *denseSet, n int, sel []int32, all bool) []int32 {
	lo, span, bits := d.lo, d.span, d.bits
	k := 0
	if all {
		sel = sel[:n]
		for i, e := range v[:n] {
			o := min(uint64(int64(e)-lo), span)
			sel[k] = int32(i)
			k += int(bits[o>>6] >> (o & 63) & 1)
		}
		return sel[:k]
	}
	for _, i := range sel {
		o := min(uint64(int64(v[i])-lo), span)
		sel[k] = i
		k += int(bits[o>>6] >> (o & 63) & 1)
	}
	return sel[:k]
}

// inDense matches an integer column through a denseSet.
type inDense[T integer] struct{ d *denseSet }

func (m inDense[T]) match(a arrow.Array, n int, out []byte) {
	denseMatch(values[T](a)[:n], m.d, out)
}

func (m inDense[T]) sel(a arrow.Array, n int, sel []int32, all bool) []int32 {
	return denseSel(values[T](a), m.d, n, sel, all)
}

func (m inNum[T]) match(a arrow.Array, n int, out []byte) {
	v := values[T](a)[:n]
	if m.s.m == nil && len(m.s.list) <= 2 {
		var x, y T
		switch len(m.s.list) {
		case 0:
			return
		case 1:
			x, y = m.s.list[0], m.s.list[0]
		default:
			x, y = m.s.list[0], m.s.list[1]
		}
		for i, e := range v {
			out[i>>3] |= b2u(e == x || e == y) << (i & 7)
		}
		return
	}
	ow := viewAs[uint64](out)
	var cur uint64
	for i, e := range v {
		cur |= uint64(b2u(m.s.has(e))) << (i & 63)
		if i&63 == 63 {
			ow[i>>6] = cur
			cur = 0
		}
	}
	if len(v)&63 != 0 {
		ow[len(v)>>6] = cur
	}
}

func (m inNum[T]) sel(a arrow.Array, n int, sel []int32, all bool) []int32 {
	v := values[T](a)[:n]
	k := 0
	if all {
		sel = sel[:n]
		for i, e := range v {
			sel[k] = int32(i)
			k += int(b2u(m.s.has(e)))
		}
		return sel[:k]
	}
	for _, i := range sel {
		sel[k] = i
		k += int(b2u(m.s.has(v[i])))
	}
	return sel[:k]
}

// inFloat matches a numeric column promoted to float64.
type inFloat[T numeric] struct{ s *inSet[float64] }

func (m inFloat[T]) match(a arrow.Array, n int, out []byte) {
	ow := viewAs[uint64](out)
	var cur uint64
	for i, e := range values[T](a)[:n] {
		cur |= uint64(b2u(m.s.has(float64(e)))) << (i & 63)
		if i&63 == 63 {
			ow[i>>6] = cur
			cur = 0
		}
	}
	if n&63 != 0 {
		ow[n>>6] = cur
	}
}

func (m inFloat[T]) sel(a arrow.Array, n int, sel []int32, all bool) []int32 {
	v := values[T](a)[:n]
	k := 0
	if all {
		sel = sel[:n]
		for i, e := range v {
			sel[k] = int32(i)
			k += int(b2u(m.s.has(float64(e))))
		}
		return sel[:k]
	}
	for _, i := range sel {
		sel[k] = i
		k += int(b2u(m.s.has(float64(v[i]))))
	}
	return sel[:k]
}

// inStr matches strings. lens has bit min(len, 63) set for the length of
// every string in the set, so most non-members are rejected without
// hashing.
type inStr struct {
	s    *inSet[string]
	lens uint64
}

func newInStr(ss []string) inStr {
	m := inStr{s: newInSet(ss)}
	for _, s := range ss {
		m.lens |= 1 << min(len(s), 63)
	}
	return m
}

func (m inStr) match(a arrow.Array, n int, out []byte) {
	if kindOf(a.DataType()) == kString {
		o, d := stringOffsets32(a)
		inStrMatch(o, d, m, n, out)
	} else {
		o, d := stringOffsets64(a)
		inStrMatch(o, d, m, n, out)
	}
}

func (m inStr) sel(a arrow.Array, n int, sel []int32, all bool) []int32 {
	if kindOf(a.DataType()) == kString {
		o, d := stringOffsets32(a)
		return inStrSel(o, d, m, n, sel, all)
	}
	o, d := stringOffsets64(a)
	return inStrSel(o, d, m, n, sel, all)
}

func (m inStr) has(b []byte) bool {
	// The lookup only reads the key, so it may alias the Arrow buffer
	// (string(b) would copy strings longer than 32 bytes to the heap).
	return m.lens>>min(len(b), 63)&1 != 0 && m.s.has(unsafe.String(unsafe.SliceData(b), len(b)))
}

func inStrMatch[O int32 | int64](offs []O, data []byte, m inStr, n int, out []byte) {
	ow := viewAs[uint64](out)
	var cur uint64
	for i := 0; i < n; i++ {
		cur |= uint64(b2u(m.has(data[offs[i]:offs[i+1]]))) << (i & 63)
		if i&63 == 63 {
			ow[i>>6] = cur
			cur = 0
		}
	}
	if n&63 != 0 {
		ow[n>>6] = cur
	}
}

func inStrSel[O int32 | int64](offs []O, data []byte, m inStr, n int, sel []int32, all bool) []int32 {
	k := 0
	if all {
		sel = sel[:n]
		for i := 0; i < n; i++ {
			sel[k] = int32(i)
			k += int(b2u(m.has(data[offs[i]:offs[i+1]])))
		}
		return sel[:k]
	}
	for _, i := range sel {
		sel[k] = i
		k += int(b2u(m.has(data[offs[i]:offs[i+1]])))
	}
	return sel[:k]
}

type inBool struct{ t, f bool }

func (m inBool) match(a arrow.Array, n int, out []byte) {
	d := a.Data()
	vb := d.Buffers()[1].Bytes()
	for i := 0; i < n; i++ {
		if bitutil.BitIsSet(vb, d.Offset()+i) {
			if m.t {
				out[i>>3] |= 1 << (i & 7)
			}
		} else if m.f {
			out[i>>3] |= 1 << (i & 7)
		}
	}
}

func (m inBool) sel(a arrow.Array, n int, sel []int32, all bool) []int32 {
	d := a.Data()
	vb := d.Buffers()[1].Bytes()
	k := 0
	if all {
		sel = sel[:n]
		for i := 0; i < n; i++ {
			sel[k] = int32(i)
			v := bitutil.BitIsSet(vb, d.Offset()+i)
			k += int(b2u(v && m.t || !v && m.f))
		}
		return sel[:k]
	}
	for _, i := range sel {
		sel[k] = i
		v := bitutil.BitIsSet(vb, d.Offset()+int(i))
		k += int(b2u(v && m.t || !v && m.f))
	}
	return sel[:k]
}

func (b *binder) bindIn(x *InExpr) (node, error) {
	xn, err := b.bind(x.X)
	if err != nil {
		return nil, err
	}
	xt := xn.dataType()
	k := kindOf(xt)
	n := &inNode{x: xn, k: k}
	var lits []scalar
	float := k.isFloat()
	for _, l := range x.List {
		s, err := literalScalar(l)
		if err != nil {
			return nil, err
		}
		if !canCompare(k, s.k) {
			return nil, errorf("cannot compare %s with %s in IN list", describe(x.X, xt), describe(l, s.t))
		}
		if s.null {
			n.hasNull = true
			continue
		}
		if s.k.isFloat() {
			float = true
		}
		lits = append(lits, s)
	}
	if k == kNull {
		return nullBool(), nil
	}
	if len(x.List) == 0 {
		return nil, errorf("empty IN list in %s", x)
	}
	// Convert literals through the comparison binder so IN agrees with =.
	var conv []cmpNode
	for _, s := range lits {
		c := cmpNode{op: OpEq, l: xn, k: k, c: s, rconst: true}
		c.bindConst()
		if c.mode == cmConst && !c.constRes {
			continue // can never match
		}
		conv = append(conv, c)
	}
	switch {
	case k.isNumeric() && float:
		fs := make([]float64, len(conv))
		for i, c := range conv {
			fs[i] = c.c.asFloat()
			if c.c.k.isFloat() {
				fs[i] = c.c.f
			}
		}
		n.m = inFloatFor(k, newInSet(fs))
	case k.isInt() || k == kTimestamp || k == kDate32:
		is := make([]int64, len(conv))
		for i, c := range conv {
			is[i] = c.c.i
		}
		n.m = inIntFor(k, is)
	case k.isString():
		ss := make([]string, len(conv))
		for i, c := range conv {
			ss[i] = c.c.s
		}
		n.m = newInStr(ss)
	case k == kBool:
		var m inBool
		for _, c := range conv {
			if c.c.i != 0 {
				m.t = true
			} else {
				m.f = true
			}
		}
		n.m = m
	default:
		return nil, errorf("IN does not support %s", describe(x.X, xt))
	}
	return n, nil
}

func inFloatFor(k kind, s *inSet[float64]) inMatcher {
	switch k {
	case kI8:
		return inFloat[int8]{s}
	case kI16:
		return inFloat[int16]{s}
	case kI32:
		return inFloat[int32]{s}
	case kI64:
		return inFloat[int64]{s}
	case kU8:
		return inFloat[uint8]{s}
	case kU16:
		return inFloat[uint16]{s}
	case kU32:
		return inFloat[uint32]{s}
	case kU64:
		return inFloat[uint64]{s}
	case kF32:
		return inFloat[float32]{s}
	}
	return inNum[float64]{s}
}

func convSlice[T numeric](is []int64) []T {
	out := make([]T, len(is))
	for i, v := range is {
		out[i] = T(v)
	}
	return out
}

func inIntFor(k kind, is []int64) inMatcher {
	if d := newDense(is, k == kU64); d != nil {
		switch k {
		case kI8:
			return inDense[int8]{d}
		case kI16:
			return inDense[int16]{d}
		case kI32, kDate32:
			return inDense[int32]{d}
		case kU8:
			return inDense[uint8]{d}
		case kU16:
			return inDense[uint16]{d}
		case kU32:
			return inDense[uint32]{d}
		case kU64:
			return inDense[uint64]{d}
		}
		return inDense[int64]{d}
	}
	switch k {
	case kI8:
		return inNum[int8]{newInSet(convSlice[int8](is))}
	case kI16:
		return inNum[int16]{newInSet(convSlice[int16](is))}
	case kI32, kDate32:
		return inNum[int32]{newInSet(convSlice[int32](is))}
	case kU8:
		return inNum[uint8]{newInSet(convSlice[uint8](is))}
	case kU16:
		return inNum[uint16]{newInSet(convSlice[uint16](is))}
	case kU32:
		return inNum[uint32]{newInSet(convSlice[uint32](is))}
	case kU64:
		return inNum[uint64]{newInSet(convSlice[uint64](is))}
	}
	return inNum[int64]{newInSet(is)}
}

func (n *inNode) eval(c *evalCtx) (arrow.Array, error) {
	a, err := n.x.eval(c)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	rows := c.n
	out := newBuf(c.mem, bitmapBytes(rows))
	n.m.match(a, rows, out.Bytes())
	valid := andValidity(c.mem, rows, n.hasNull, a)
	if n.hasNull {
		// Rows that matched are TRUE; the others are NULL.
		if valid == nil {
			valid = newBuf(c.mem, bitmapBytes(rows))
			fillBits(valid.Bytes(), rows)
		}
		vw, ow := viewAs[uint64](valid.Bytes()), viewAs[uint64](out.Bytes())
		for i := range vw {
			vw[i] &= ow[i]
		}
	}
	return makeArray(boolType, rows, valid, out), nil
}
