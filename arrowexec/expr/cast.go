package expr

import (
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// castNode converts x to type t. Conversions that cannot represent a value
// (a float out of the target integer range or NaN, a string that does not
// parse) give NULL; integer narrowing wraps, as Go conversions do.
type castNode struct {
	x  node
	t  arrow.DataType
	fk kind
	tk kind
}

func (n *castNode) dataType() arrow.DataType { return n.t }

func canCast(from, to kind) bool {
	switch {
	case from == kNull || from == to:
		return true
	case from == kDuration || to == kDuration:
		return false
	case to == kString || from.isString():
		return true
	case from.isNumeric() && to.isNumeric():
		return true
	case from == kBool && to.isNumeric(), from.isNumeric() && to == kBool:
		return true
	case from == kTimestamp && (to == kTimestamp || to == kDate32 || to.isInt()):
		return true
	case from == kDate32 && (to == kTimestamp || to.isInt()):
		return true
	case from == kTimestamp && to == kTime:
		return true
	case from.isInt() && (to == kTimestamp || to == kDate32):
		return true
	}
	return false
}

func newCast(x node, to arrow.DataType, e *CastExpr) (node, error) {
	from := x.dataType()
	if arrow.TypeEqual(from, to) {
		return x, nil
	}
	fk, tk := kindOf(from), kindOf(to)
	if !canCast(fk, tk) {
		return nil, errorf("cannot cast %s to %s", describe(e.X, from), e.To)
	}
	if fk == kNull || isNullConst(x) {
		return &constNode{v: scalar{t: to, k: tk, null: true}}, nil
	}
	return &castNode{x: x, t: to, fk: fk, tk: tk}, nil
}

func (n *castNode) eval(c *evalCtx) (arrow.Array, error) {
	a, err := n.x.eval(c)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	rows := c.n
	mem := c.mem
	switch {
	case n.tk == kString:
		return castToString(mem, a, rows), nil
	case n.fk.isString():
		return castFromString(mem, a, n.t, rows), nil
	case n.tk == kBool:
		out := newBuf(mem, bitmapBytes(rows))
		if n.fk.isFloat() {
			cmpFloatVS(OpNe, n.fk, a, 0, rows, out.Bytes())
		} else {
			cmpNativeVS(OpNe, n.fk, a, &scalar{}, rows, out.Bytes())
		}
		return makeArray(n.t, rows, andValidity(mem, rows, false, a), out), nil
	}
	width := n.t.(arrow.FixedWidthDataType).BitWidth() / 8
	out := newBuf(mem, rows*width)
	b := out.Bytes()
	src := a
	if n.fk == kBool {
		// Booleans become 0/1 through an int8 view.
		tmp := newBuf(mem, rows)
		v := viewAs[int8](tmp.Bytes())
		d := a.Data()
		for i := range v {
			if bitutil.BitIsSet(d.Buffers()[1].Bytes(), d.Offset()+i) {
				v[i] = 1
			}
		}
		src = makeArray(arrow.PrimitiveTypes.Int8, rows, nil, tmp)
		defer src.Release()
	}
	floatToInt := n.fk.isFloat() && n.tk.isInt()
	valid := andValidity(mem, rows, floatToInt || n.fk == kTimestamp && n.tk == kDate32, a)
	switch n.tk {
	case kI8:
		convertTo(src, viewAs[int8](b))
	case kI16:
		convertTo(src, viewAs[int16](b))
	case kI32:
		convertTo(src, viewAs[int32](b))
	case kI64:
		convertTo(src, viewAs[int64](b))
	case kU8:
		convertTo(src, viewAs[uint8](b))
	case kU16:
		convertTo(src, viewAs[uint16](b))
	case kU32:
		convertTo(src, viewAs[uint32](b))
	case kU64:
		convertTo(src, viewAs[uint64](b))
	case kF32:
		convertTo(src, viewAs[float32](b))
	case kF64:
		convertTo(src, viewAs[float64](b))
	case kDate32:
		v := viewAs[int32](b)
		if n.fk == kTimestamp {
			per := 86400e9 / unitNanos(a.DataType().(*arrow.TimestampType).Unit)
			for i, x := range values[int64](a) {
				q, _ := floorDiv(x, per)
				v[i] = int32(q)
			}
		} else {
			convertTo(src, v)
		}
	case kTime: // from a timestamp
		v, u := viewAs[int64](b), a.DataType().(*arrow.TimestampType).Unit
		for i, x := range values[int64](a) {
			v[i] = timeOfDay(x, u)
		}
	case kTimestamp:
		v := viewAs[int64](b)
		switch n.fk {
		case kTimestamp:
			fu := unitNanos(a.DataType().(*arrow.TimestampType).Unit)
			tu := unitNanos(n.t.(*arrow.TimestampType).Unit)
			for i, x := range values[int64](a) {
				if fu >= tu {
					v[i] = x * (fu / tu)
				} else {
					v[i], _ = floorDiv(x, tu/fu)
				}
			}
		case kDate32:
			per := 86400e9 / unitNanos(n.t.(*arrow.TimestampType).Unit)
			for i, x := range values[int32](a) {
				v[i] = int64(x) * per
			}
		default:
			convertTo(src, v)
		}
	}
	if floatToInt {
		lo, hi := intRange(n.tk)
		flo, fhi := float64(lo), float64(hi)+1 // exact powers of two for 64-bit types
		if n.tk == kU64 {
			fhi = 18446744073709551616.0
		} else if n.tk == kI64 {
			fhi = 9223372036854775808.0
		}
		if valid == nil {
			valid = newBuf(mem, bitmapBytes(rows))
			fillBits(valid.Bytes(), rows)
		}
		if n.fk == kF32 {
			nullOutOfRange(values[float32](a), flo, fhi, valid.Bytes())
		} else {
			nullOutOfRange(values[float64](a), flo, fhi, valid.Bytes())
		}
	}
	return makeArray(n.t, rows, valid, out), nil
}

func nullOutOfRange[S float32 | float64](v []S, lo, hi float64, valid []byte) {
	for i, x := range v {
		f := float64(x)
		if !(f >= lo && f < hi) {
			bitutil.ClearBit(valid, i)
		}
	}
}

// stringsOut builds a string array row by row through appendRow, which
// appends row i's text to dst (it is called only for valid rows).
func stringsOut(mem memory.Allocator, a arrow.Array, rows int, appendRow func(dst []byte, i int) []byte) arrow.Array {
	return buildStrings(mem, arrow.BinaryTypes.String, rows, andValidity(mem, rows, false, a), appendRow)
}

func castToString(mem memory.Allocator, a arrow.Array, rows int) arrow.Array {
	switch k := kindOf(a.DataType()); k {
	case kBool:
		d := a.Data()
		return stringsOut(mem, a, rows, func(dst []byte, i int) []byte {
			return strconv.AppendBool(dst, bitutil.BitIsSet(d.Buffers()[1].Bytes(), d.Offset()+i))
		})
	case kI8:
		return intStrings(mem, a, rows, values[int8](a))
	case kI16:
		return intStrings(mem, a, rows, values[int16](a))
	case kI32:
		return intStrings(mem, a, rows, values[int32](a))
	case kI64:
		return intStrings(mem, a, rows, values[int64](a))
	case kU8:
		return uintStrings(mem, a, rows, values[uint8](a))
	case kU16:
		return uintStrings(mem, a, rows, values[uint16](a))
	case kU32:
		return uintStrings(mem, a, rows, values[uint32](a))
	case kU64:
		return uintStrings(mem, a, rows, values[uint64](a))
	case kF32:
		v := values[float32](a)
		return stringsOut(mem, a, rows, func(dst []byte, i int) []byte {
			return strconv.AppendFloat(dst, float64(v[i]), 'g', -1, 32)
		})
	case kF64:
		v := values[float64](a)
		return stringsOut(mem, a, rows, func(dst []byte, i int) []byte {
			return strconv.AppendFloat(dst, v[i], 'g', -1, 64)
		})
	case kTimestamp:
		v, u := values[int64](a), a.DataType().(*arrow.TimestampType).Unit
		return stringsOut(mem, a, rows, func(dst []byte, i int) []byte {
			return tsToTime(v[i], u).AppendFormat(dst, "2006-01-02 15:04:05.999999999")
		})
	case kDate32:
		v := values[int32](a)
		return stringsOut(mem, a, rows, func(dst []byte, i int) []byte {
			return arrow.Date32(v[i]).ToTime().AppendFormat(dst, "2006-01-02")
		})
	case kTime:
		v := values[int64](a)
		return stringsOut(mem, a, rows, func(dst []byte, i int) []byte { return appendTimeOfDay(dst, v[i]) })
	default: // large_string
		get := strAccessor(a)
		return stringsOut(mem, a, rows, func(dst []byte, i int) []byte { return append(dst, get(i)...) })
	}
}

func intStrings[T int8 | int16 | int32 | int64](mem memory.Allocator, a arrow.Array, rows int, v []T) arrow.Array {
	return stringsOut(mem, a, rows, func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(v[i]), 10) })
}

func uintStrings[T uint8 | uint16 | uint32 | uint64](mem memory.Allocator, a arrow.Array, rows int, v []T) arrow.Array {
	return stringsOut(mem, a, rows, func(dst []byte, i int) []byte { return strconv.AppendUint(dst, uint64(v[i]), 10) })
}

// castFromString parses every valid row; rows that do not parse are NULL.
func castFromString(mem memory.Allocator, a arrow.Array, t arrow.DataType, rows int) arrow.Array {
	tk := kindOf(t)
	get := strAccessor(a)
	valid := newBuf(mem, bitmapBytes(rows))
	vb := valid.Bytes()
	if tk.isString() {
		valid.Release()
		return stringsOut(mem, a, rows, func(dst []byte, i int) []byte { return append(dst, get(i)...) })
	}
	var out *memory.Buffer
	if tk == kBool {
		out = newBuf(mem, bitmapBytes(rows))
	} else {
		out = newBuf(mem, rows*t.(arrow.FixedWidthDataType).BitWidth()/8)
	}
	b := out.Bytes()
	for i := 0; i < rows; i++ {
		if !a.IsValid(i) {
			continue
		}
		s := string(get(i))
		ok := true
		switch {
		case tk.isSigned():
			bits := t.(arrow.FixedWidthDataType).BitWidth()
			x, err := strconv.ParseInt(s, 10, bits)
			ok = err == nil
			switch bits {
			case 8:
				viewAs[int8](b)[i] = int8(x)
			case 16:
				viewAs[int16](b)[i] = int16(x)
			case 32:
				viewAs[int32](b)[i] = int32(x)
			default:
				viewAs[int64](b)[i] = x
			}
		case tk.isUnsigned():
			bits := t.(arrow.FixedWidthDataType).BitWidth()
			x, err := strconv.ParseUint(s, 10, bits)
			ok = err == nil
			switch bits {
			case 8:
				viewAs[uint8](b)[i] = uint8(x)
			case 16:
				viewAs[uint16](b)[i] = uint16(x)
			case 32:
				viewAs[uint32](b)[i] = uint32(x)
			default:
				viewAs[uint64](b)[i] = x
			}
		case tk == kF32:
			x, err := strconv.ParseFloat(s, 32)
			ok = err == nil
			viewAs[float32](b)[i] = float32(x)
		case tk == kF64:
			x, err := strconv.ParseFloat(s, 64)
			ok = err == nil
			viewAs[float64](b)[i] = x
		case tk == kBool:
			x, err := strconv.ParseBool(s)
			ok = err == nil
			if x {
				bitutil.SetBit(b, i)
			}
		case tk == kTime:
			viewAs[int64](b)[i], ok = parseTimeOfDay(s)
		case tk == kDate32:
			d, err := time.Parse("2006-01-02", s)
			ok = err == nil
			viewAs[int32](b)[i] = int32(arrow.Date32FromTime(d))
		case tk == kTimestamp:
			ts, good := parseTimestamp(s)
			ok = good
			u := t.(*arrow.TimestampType).Unit
			switch u {
			case arrow.Second:
				viewAs[int64](b)[i] = ts.Unix()
			case arrow.Millisecond:
				viewAs[int64](b)[i] = ts.UnixMilli()
			case arrow.Microsecond:
				viewAs[int64](b)[i] = ts.UnixMicro()
			default:
				viewAs[int64](b)[i] = ts.UnixNano()
			}
		}
		if ok {
			bitutil.SetBit(vb, i)
		}
	}
	return makeArray(t, rows, valid, out)
}
