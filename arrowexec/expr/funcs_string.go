package expr

import (
	"bytes"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// String functions. Positions and lengths count characters (UTF-8 code
// points), as DuckDB's do; strings are taken as UTF-8 without validation.
// Results are string, except lower and upper, which keep the argument's
// type (large_string stays large_string).
var stringFunctions = map[string]*function{
	"lower":          {minArgs: 1, maxArgs: 1, bind: bindCase1},
	"upper":          {minArgs: 1, maxArgs: 1, bind: bindCase1},
	"length":         {minArgs: 1, maxArgs: 1, bind: bindLength},
	"substr":         {minArgs: 2, maxArgs: 3, bind: bindSubstr},
	"substring":      {minArgs: 2, maxArgs: 3, bind: bindSubstr},
	"trim":           {minArgs: 1, maxArgs: 2, bind: bindTrim},
	"ltrim":          {minArgs: 1, maxArgs: 2, bind: bindTrim},
	"rtrim":          {minArgs: 1, maxArgs: 2, bind: bindTrim},
	"concat":         {minArgs: 1, maxArgs: -1, bind: bindConcat},
	"||":             {minArgs: 2, maxArgs: 2, bind: bindConcat},
	"replace":        {minArgs: 3, maxArgs: 3, bind: bindReplace},
	"split_part":     {minArgs: 3, maxArgs: 3, bind: bindSplitPart},
	"regexp_matches": {minArgs: 2, maxArgs: 3, bind: bindRegexp},
	"like":           {minArgs: 2, maxArgs: 2, bind: bindLike},
	"ilike":          {minArgs: 2, maxArgs: 2, bind: bindLike},
}

// usedBytes returns the bytes the values of a string or large_string array
// occupy, and the offset of the first.
func usedBytes(a arrow.Array) ([]byte, int64) {
	n := a.Len()
	if kindOf(a.DataType()) == kLargeString {
		o, d := stringOffsets64(a)
		return d[o[0]:o[n]], o[0]
	}
	o, d := stringOffsets32(a)
	return d[o[0]:o[n]], int64(o[0])
}

func compareBytes(a, b []byte) int { return bytes.Compare(a, b) }

// buildStrings builds an array of type t (string or large_string) of n
// rows whose validity is valid (taken over; nil: all valid); appendRow
// appends the text of valid row i.
func buildStrings(mem memory.Allocator, t arrow.DataType, n int, valid *memory.Buffer, appendRow func(dst []byte, i int) []byte) arrow.Array {
	var vb []byte
	if valid != nil {
		vb = valid.Bytes()
	}
	large := kindOf(t) == kLargeString
	w := 4
	if large {
		w = 8
	}
	offs := newBuf(mem, (n+1)*w)
	data := make([]byte, 0, n*8)
	o32, o64 := values32(offs.Bytes()), values64(offs.Bytes())
	for i := 0; i < n; i++ {
		if vb == nil || bitutil.BitIsSet(vb, i) {
			data = appendRow(data, i)
		}
		if large {
			o64[i+1] = int64(len(data))
		} else {
			o32[i+1] = int32(len(data))
		}
	}
	db := newBufUninit(mem, len(data))
	copy(db.Bytes(), data)
	return makeArray(t, n, valid, offs, db)
}

// strArg checks that argument i is a string (or NULL).
func strArg(e *CallExpr, args []node, i int) error {
	k := kindOf(args[i].dataType())
	if !k.isString() && k != kNull {
		return argError(e, i, args[i], "must be a string")
	}
	return nil
}

func intArg(e *CallExpr, args []node, i int) error {
	k := kindOf(args[i].dataType())
	if !k.isInt() && k != kNull {
		return argError(e, i, args[i], "must be an integer")
	}
	return nil
}

// anyNullConst reports whether some argument is the NULL constant.
func anyNullConst(args []node) bool {
	for _, a := range args {
		if isNullConst(a) || kindOf(a.dataType()) == kNull {
			return true
		}
	}
	return false
}

// strFn builds a NULL-propagating string function of string result whose
// row i is appended by row(views, ints, dst, i); integer arguments are
// widened to int64.
func strFn(e *CallExpr, args []node, isInt []bool, row func(s []func(int) []byte, n [][]int64, dst []byte, i int) []byte) node {
	t := arrow.BinaryTypes.String
	if anyNullConst(args) {
		return nullOf(t)
	}
	return &fnNode{name: e.Name, t: t, args: args, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		views := make([]func(int) []byte, len(in))
		ints := make([][]int64, len(in))
		for j, a := range in {
			if isInt != nil && isInt[j] {
				v, rel := asInt64(c.mem, a)
				defer rel()
				ints[j] = v
			} else {
				views[j] = strAccessor(a)
			}
		}
		valid := andValidity(c.mem, c.n, false, in...)
		return buildStrings(c.mem, t, c.n, valid, func(dst []byte, i int) []byte {
			return row(views, ints, dst, i)
		}), nil
	}}
}

// isASCII reports whether b holds only ASCII bytes, 8 at a time.
func isASCII(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
			uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
		if w&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= 0x80 {
			return false
		}
	}
	return true
}

var lowerTable, upperTable [256]byte

func init() {
	for i := range 256 {
		lowerTable[i], upperTable[i] = byte(i), byte(i)
		if i >= 'A' && i <= 'Z' {
			lowerTable[i] = byte(i) + 32
		}
		if i >= 'a' && i <= 'z' {
			upperTable[i] = byte(i) - 32
		}
	}
}

// bindCase1 binds lower and upper. ASCII data is mapped a byte at a time
// through a table and keeps the argument's offsets (shared); other data is
// mapped a character at a time (Unicode simple case mapping).
func bindCase1(e *CallExpr, args []node) (node, error) {
	if err := strArg(e, args, 0); err != nil {
		return nil, err
	}
	t := args[0].dataType()
	if kindOf(t) == kNull || isNullConst(args[0]) {
		return nullOf(arrow.BinaryTypes.String), nil
	}
	table, slow := &lowerTable, bytes.ToLower
	if e.Name == "upper" {
		table, slow = &upperTable, bytes.ToUpper
	}
	return &fnNode{name: e.Name, t: t, args: args, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		a := in[0]
		used, start := usedBytes(a)
		if a.Data().Offset() == 0 && start == 0 && isASCII(used) {
			db := newBufUninit(c.mem, len(used))
			out := db.Bytes()
			for i, b := range used {
				out[i] = table[b]
			}
			offs := a.Data().Buffers()[1]
			offs.Retain()
			return makeArray(t, c.n, andValidity(c.mem, c.n, false, a), offs, db), nil
		}
		get := strAccessor(a)
		return buildStrings(c.mem, t, c.n, andValidity(c.mem, c.n, false, a), func(dst []byte, i int) []byte {
			return append(dst, slow(get(i))...)
		}), nil
	}}, nil
}

// bindLength counts characters: the bytes that do not continue a UTF-8
// sequence; for ASCII data, the offsets' differences.
func bindLength(e *CallExpr, args []node) (node, error) {
	if err := strArg(e, args, 0); err != nil {
		return nil, err
	}
	t := arrow.PrimitiveTypes.Int64
	if anyNullConst(args) {
		return nullOf(t), nil
	}
	return &fnNode{name: e.Name, t: t, args: args, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		a := in[0]
		out := newBufUninit(c.mem, c.n*8)
		o := viewAs[int64](out.Bytes())
		used, _ := usedBytes(a)
		switch ascii := isASCII(used); {
		case ascii && kindOf(a.DataType()) == kString:
			offs, _ := stringOffsets32(a)
			for i := range o {
				o[i] = int64(offs[i+1] - offs[i])
			}
		case ascii:
			offs, _ := stringOffsets64(a)
			for i := range o {
				o[i] = offs[i+1] - offs[i]
			}
		default:
			get := strAccessor(a)
			for i := range o {
				o[i] = int64(utf8.RuneCount(get(i)))
			}
		}
		return makeArray(t, c.n, andValidity(c.mem, c.n, false, a), out), nil
	}}, nil
}

// bindSubstr: substr(s, start[, length]), 1-based; a negative start counts
// from the end (-1 is the last character); a negative length takes the
// characters before start. Positions outside the string take nothing.
func bindSubstr(e *CallExpr, args []node) (node, error) {
	if err := strArg(e, args, 0); err != nil {
		return nil, err
	}
	isInt := []bool{false, true, true}
	for i := 1; i < len(args); i++ {
		if err := intArg(e, args, i); err != nil {
			return nil, err
		}
	}
	return strFn(e, args, isInt, func(s []func(int) []byte, n [][]int64, dst []byte, i int) []byte {
		str := s[0](i)
		length := int64(1) << 62
		if len(n) > 2 {
			length = n[2][i]
		}
		return append(dst, substr(str, n[1][i], length)...)
	}), nil
}

func substr(s []byte, start, length int64) []byte {
	ascii := isASCII(s)
	total := int64(len(s))
	if !ascii {
		total = int64(utf8.RuneCount(s))
	}
	if start < 0 {
		start = total + start + 1
	}
	begin, end := start, satAdd(start, length)
	if length < 0 {
		begin, end = end, start
	}
	begin = max(begin, 1)
	end = min(end, total+1)
	if begin >= end {
		return nil
	}
	if ascii {
		return s[begin-1 : end-1]
	}
	return s[runeOffset(s, begin-1):runeOffset(s, end-1)]
}

func satAdd(a, b int64) int64 {
	c := a + b
	if (c > a) != (b > 0) {
		if b > 0 {
			return 1<<63 - 1
		}
		return -1 << 63
	}
	return c
}

// runeOffset is the byte offset of character k (0-based) of s.
func runeOffset(s []byte, k int64) int {
	off := 0
	for ; k > 0 && off < len(s); k-- {
		_, w := utf8.DecodeRune(s[off:])
		off += w
	}
	return off
}

// bindTrim: trim(s[, chars]) removes the characters of chars (a constant;
// default a space) from both ends; ltrim and rtrim from one end.
func bindTrim(e *CallExpr, args []node) (node, error) {
	if err := strArg(e, args, 0); err != nil {
		return nil, err
	}
	chars := " "
	if len(args) == 2 {
		s, null, err := constString(e, args, 1)
		if err != nil {
			return nil, err
		}
		if null {
			return nullOf(arrow.BinaryTypes.String), nil
		}
		chars = s
	}
	left, right := e.Name != "rtrim", e.Name != "ltrim"
	return strFn(e, args[:1], nil, func(s []func(int) []byte, _ [][]int64, dst []byte, i int) []byte {
		v := s[0](i)
		if left {
			v = bytes.TrimLeft(v, chars)
		}
		if right {
			v = bytes.TrimRight(v, chars)
		}
		return append(dst, v...)
	}), nil
}

// bindConcat binds concat (NULL arguments are skipped: never NULL) and ||
// (NULL when either side is). Arguments that are not strings are cast to
// string.
func bindConcat(e *CallExpr, args []node) (node, error) {
	t := arrow.BinaryTypes.String
	skipNulls := e.Name == "concat"
	var live []node
	for i, a := range args {
		k := kindOf(a.dataType())
		if k == kNull || isNullConst(a) {
			if !skipNulls {
				return nullOf(t), nil
			}
			continue
		}
		if !k.isString() {
			n, err := newCast(a, t, &CastExpr{X: e.Args[i], To: "string"})
			if err != nil {
				return nil, argError(e, i, a, "cannot be cast to string")
			}
			a = n
		}
		live = append(live, a)
	}
	if len(live) == 0 {
		return &constNode{v: scalar{t: t, k: kString}}, nil
	}
	return &fnNode{name: e.Name, t: t, args: live, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		var valid *memory.Buffer
		if !skipNulls {
			valid = andValidity(c.mem, c.n, false, in...)
		}
		return concatArrays(c.mem, c.n, in, valid), nil
	}}, nil
}

// concatArrays concatenates the string arrays in row by row into a string
// array with validity valid (taken over; nil: all valid), skipping NULL
// values: one pass over each argument adds up the lengths, a second copies
// the bytes into place.
func concatArrays(mem memory.Allocator, n int, in []arrow.Array, valid *memory.Buffer) arrow.Array {
	var vb []byte
	if valid != nil {
		vb = valid.Bytes()
	}
	offs := newBuf(mem, (n+1)*4)
	o := values32(offs.Bytes())
	for _, a := range in {
		if kindOf(a.DataType()) == kString {
			so, _ := stringOffsets32(a)
			addLens(a, so, o[1:], vb)
		} else {
			so, _ := stringOffsets64(a)
			addLens(a, so, o[1:], vb)
		}
	}
	for i := 1; i <= n; i++ {
		o[i] += o[i-1]
	}
	data := newBufUninit(mem, int(o[n]))
	pos := make([]int32, n)
	copy(pos, o[:n])
	for _, a := range in {
		if kindOf(a.DataType()) == kString {
			so, sd := stringOffsets32(a)
			copyVals(a, so, sd, data.Bytes(), pos, vb)
		} else {
			so, sd := stringOffsets64(a)
			copyVals(a, so, sd, data.Bytes(), pos, vb)
		}
	}
	return makeArray(arrow.BinaryTypes.String, n, valid, offs, data)
}

// addLens adds the length of each value of a (NULL: none) to lens, on the
// rows valid in vb (nil: all).
func addLens[O int32 | int64](a arrow.Array, so []O, lens []int32, vb []byte) {
	av, aoff := validity(a)
	if vb == nil && av == nil {
		so = so[:len(lens)+1]
		for i := range lens {
			lens[i] += int32(so[i+1] - so[i])
		}
		return
	}
	for i := range lens {
		if (vb == nil || bitutil.BitIsSet(vb, i)) && (av == nil || bitutil.BitIsSet(av, aoff+i)) {
			lens[i] += int32(so[i+1] - so[i])
		}
	}
}

// copyVals copies each value of a to pos[i] in dst and advances pos[i].
func copyVals[O int32 | int64](a arrow.Array, so []O, sd, dst []byte, pos []int32, vb []byte) {
	av, aoff := validity(a)
	if vb == nil && av == nil {
		so = so[:len(pos)+1]
		for i, p := range pos {
			pos[i] = p + int32(copy(dst[p:], sd[so[i]:so[i+1]]))
		}
		return
	}
	for i := range pos {
		if (vb == nil || bitutil.BitIsSet(vb, i)) && (av == nil || bitutil.BitIsSet(av, aoff+i)) {
			pos[i] += int32(copy(dst[pos[i]:], sd[so[i]:so[i+1]]))
		}
	}
}

// bindReplace: replace(s, from, to) replaces every occurrence of from; an
// empty from leaves s as it is.
func bindReplace(e *CallExpr, args []node) (node, error) {
	for i := range args {
		if err := strArg(e, args, i); err != nil {
			return nil, err
		}
	}
	return strFn(e, args, nil, func(s []func(int) []byte, _ [][]int64, dst []byte, i int) []byte {
		v, from, to := s[0](i), s[1](i), s[2](i)
		if len(from) == 0 {
			return append(dst, v...)
		}
		for {
			k := bytes.Index(v, from)
			if k < 0 {
				return append(dst, v...)
			}
			dst = append(append(dst, v[:k]...), to...)
			v = v[k+len(from):]
		}
	}), nil
}

// bindSplitPart: split_part(s, delim, k) is the k-th (1-based; negative:
// from the end) field of s split at delim, or ” when there is none; an
// empty delimiter splits into characters.
func bindSplitPart(e *CallExpr, args []node) (node, error) {
	for i := 0; i < 2; i++ {
		if err := strArg(e, args, i); err != nil {
			return nil, err
		}
	}
	if err := intArg(e, args, 2); err != nil {
		return nil, err
	}
	return strFn(e, args, []bool{false, false, true}, func(s []func(int) []byte, n [][]int64, dst []byte, i int) []byte {
		return append(dst, splitPart(s[0](i), s[1](i), n[2][i])...)
	}), nil
}

func splitPart(s, delim []byte, k int64) []byte {
	if k == 0 {
		return nil
	}
	if len(delim) == 0 { // characters
		n := int64(utf8.RuneCount(s))
		if k < 0 {
			k += n + 1
		}
		if k < 1 || k > n {
			return nil
		}
		start := runeOffset(s, k-1)
		_, w := utf8.DecodeRune(s[start:])
		return s[start : start+w]
	}
	if k < 0 {
		k += int64(bytes.Count(s, delim)) + 2
		if k < 1 {
			return nil
		}
	}
	for ; k > 1; k-- {
		i := bytes.Index(s, delim)
		if i < 0 {
			return nil
		}
		s = s[i+len(delim):]
	}
	if i := bytes.Index(s, delim); i >= 0 {
		return s[:i]
	}
	return s
}

// bindRegexp: regexp_matches(s, pattern[, options]) is TRUE when pattern
// (RE2 syntax, a constant compiled at bind time) matches anywhere in s.
// options is a constant of 'i' (case-insensitive) and 'c' (sensitive).
func bindRegexp(e *CallExpr, args []node) (node, error) {
	if err := strArg(e, args, 0); err != nil {
		return nil, err
	}
	t := arrow.FixedWidthTypes.Boolean
	pat, null, err := constString(e, args, 1)
	if err != nil {
		return nil, err
	}
	if null {
		return nullOf(t), nil
	}
	if len(args) == 3 {
		opts, null, err := constString(e, args, 2)
		if err != nil {
			return nil, err
		}
		if null {
			return nullOf(t), nil
		}
		for _, o := range opts {
			switch o {
			case 'i':
				pat = "(?i)" + strings.TrimPrefix(pat, "(?i)")
			case 'c':
				pat = strings.TrimPrefix(pat, "(?i)")
			default:
				return nil, argError(e, 2, args[2], "unknown option %q (known: i, c)", o)
			}
		}
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return nil, argError(e, 1, args[1], "invalid regular expression: %v", err)
	}
	return boolFn(e, args[0], func(s []byte) bool { return re.Match(s) }), nil
}

// boolFn builds a NULL-propagating predicate over a string argument.
func boolFn(e *CallExpr, x node, pred func([]byte) bool) node {
	t := arrow.FixedWidthTypes.Boolean
	if isNullConst(x) || kindOf(x.dataType()) == kNull {
		return nullOf(t)
	}
	return &fnNode{name: e.Name, t: t, args: []node{x}, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		a := in[0]
		out := newBuf(c.mem, bitmapBytes(c.n))
		if kindOf(a.DataType()) == kString {
			o, d := stringOffsets32(a)
			predBits(o, d, pred, viewAs[uint64](out.Bytes()), c.n)
		} else {
			o, d := stringOffsets64(a)
			predBits(o, d, pred, viewAs[uint64](out.Bytes()), c.n)
		}
		return makeArray(t, c.n, andValidity(c.mem, c.n, false, a), out), nil
	}}
}

// predBits sets bit i of out where pred holds for value i, a word at a
// time.
func predBits[O int32 | int64](offs []O, data []byte, pred func([]byte) bool, out []uint64, n int) {
	var w uint64
	for i := 0; i < n; i++ {
		w |= uint64(b2u(pred(data[offs[i]:offs[i+1]]))) << (i & 63)
		if i&63 == 63 {
			out[i>>6] = w
			w = 0
		}
	}
	if n&63 != 0 {
		out[n>>6] = w
	}
}

// bindLike binds x LIKE 'pattern' and x ILIKE 'pattern' (calls "like" and
// "ilike"): % matches any run of characters, _ one character, a backslash
// escapes the next character. The pattern is a constant compiled at bind
// time into the pieces between its %s, matched left to right (pieces
// without _ by byte search).
func bindLike(e *CallExpr, args []node) (node, error) {
	if err := strArg(e, args, 0); err != nil {
		return nil, err
	}
	pat, null, err := constString(e, args, 1)
	if err != nil {
		return nil, err
	}
	if null {
		return nullOf(arrow.FixedWidthTypes.Boolean), nil
	}
	fold := e.Name == "ilike"
	if fold {
		pat = strings.ToLower(pat)
	}
	m := compileLike(pat)
	if !fold {
		return boolFn(e, args[0], m.pred()), nil
	}
	return ilikeFn(e, args[0], m), nil
}

// ilikeFn matches lower-cased values against the lower-cased pattern: ASCII
// data is lowered a batch at a time through the table (as lower does) and
// matched with the pattern's specialized test; other data a value at a
// time.
func ilikeFn(e *CallExpr, x node, m *likeMatcher) node {
	t := arrow.FixedWidthTypes.Boolean
	if isNullConst(x) || kindOf(x.dataType()) == kNull {
		return nullOf(t)
	}
	pred := m.pred()
	return &fnNode{name: e.Name, t: t, args: []node{x}, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		a := in[0]
		out := newBuf(c.mem, bitmapBytes(c.n))
		ow := viewAs[uint64](out.Bytes())
		used, start := usedBytes(a)
		if isASCII(used) {
			low := make([]byte, len(used))
			for i, b := range used {
				low[i] = lowerTable[b]
			}
			if kindOf(a.DataType()) == kString {
				o, _ := stringOffsets32(a)
				predBits(rebase(o, int32(start)), low, pred, ow, c.n)
			} else {
				o, _ := stringOffsets64(a)
				predBits(rebase(o, start), low, pred, ow, c.n)
			}
		} else {
			get := strAccessor(a)
			for i := 0; i < c.n; i++ {
				ow[i>>6] |= uint64(b2u(m.match(bytes.ToLower(get(i))))) << (i & 63)
			}
		}
		return makeArray(t, c.n, andValidity(c.mem, c.n, false, a), out), nil
	}}
}

// rebase returns offsets shifted down by start (a copy unless start is 0).
func rebase[O int32 | int64](o []O, start O) []O {
	if start == 0 {
		return o
	}
	r := make([]O, len(o))
	for i, x := range o {
		r[i] = x - start
	}
	return r
}

// likePiece is a run of a LIKE pattern between two %: literal bytes with
// '_' positions (any one character) marked in any.
type likePiece struct {
	lit  []byte
	any  []bool // nil when the piece has no _
	plen int
}

// likeMatcher is a compiled pattern: the pieces between its %s. The first
// piece is anchored at the start and the last at the end (either may be
// empty: a pattern that begins or ends with %).
type likeMatcher struct {
	pieces []likePiece
}

func compileLike(pat string) *likeMatcher {
	m := &likeMatcher{}
	cur := likePiece{}
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch {
		case c == '\\' && i+1 < len(pat):
			i++
			cur.lit = append(cur.lit, pat[i])
			if cur.any != nil {
				cur.any = append(cur.any, false)
			}
		case c == '%':
			m.pieces = append(m.pieces, cur)
			cur = likePiece{}
		case c == '_':
			if cur.any == nil {
				cur.any = make([]bool, len(cur.lit))
			}
			cur.lit = append(cur.lit, '_')
			cur.any = append(cur.any, true)
		default:
			cur.lit = append(cur.lit, c)
			if cur.any != nil {
				cur.any = append(cur.any, false)
			}
		}
	}
	m.pieces = append(m.pieces, cur)
	return m
}

// matchAt reports whether piece p matches s at its start and returns the
// number of bytes it took.
func (p *likePiece) matchAt(s []byte) (int, bool) {
	if p.any == nil {
		if bytes.HasPrefix(s, p.lit) {
			return len(p.lit), true
		}
		return 0, false
	}
	off := 0
	for k, b := range p.lit {
		if off >= len(s) {
			return 0, false
		}
		if p.any[k] {
			_, w := utf8.DecodeRune(s[off:])
			off += w
			continue
		}
		if s[off] != b {
			return 0, false
		}
		off++
	}
	return off, true
}

// find returns the end of the leftmost match of p in s, or -1.
func (p *likePiece) find(s []byte) int {
	if p.any == nil {
		k := bytes.Index(s, p.lit)
		if k < 0 {
			return -1
		}
		return k + len(p.lit)
	}
	for start := 0; start <= len(s); start++ {
		if w, ok := p.matchAt(s[start:]); ok {
			return start + w
		}
	}
	return -1
}

// pred returns the matcher's test, specialized for the common shapes
// 'abc%', '%abc', '%abc%' (no _).
func (m *likeMatcher) pred() func([]byte) bool {
	ps := m.pieces
	if len(ps) == 2 && ps[0].any == nil && ps[1].any == nil {
		pre, suf := ps[0].lit, ps[1].lit
		switch {
		case len(suf) == 0:
			return func(s []byte) bool { return bytes.HasPrefix(s, pre) }
		case len(pre) == 0:
			return func(s []byte) bool { return bytes.HasSuffix(s, suf) }
		}
	}
	if len(ps) == 3 && len(ps[0].lit) == 0 && len(ps[2].lit) == 0 && ps[1].any == nil {
		mid := ps[1].lit
		return func(s []byte) bool { return bytes.Contains(s, mid) }
	}
	return m.match
}

func (m *likeMatcher) match(s []byte) bool {
	ps := m.pieces
	if len(ps) == 1 { // no %
		w, ok := ps[0].matchAt(s)
		return ok && w == len(s)
	}
	first, last := &ps[0], &ps[len(ps)-1]
	w, ok := first.matchAt(s)
	if !ok {
		return false
	}
	s = s[w:]
	for k := 1; k < len(ps)-1; k++ {
		e := ps[k].find(s)
		if e < 0 {
			return false
		}
		s = s[e:]
	}
	// The last piece matches at the end: try its possible starts from the
	// right (its byte length varies only with _ over multibyte characters).
	if last.any == nil {
		return bytes.HasSuffix(s, last.lit)
	}
	for start := len(s); start >= 0; start-- {
		if w, ok := last.matchAt(s[start:]); ok && start+w == len(s) {
			return true
		}
	}
	return false
}
