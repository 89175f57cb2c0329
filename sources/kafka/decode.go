package kafka

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// slot holds one decoded field of the current message until the whole
// message decoded cleanly and is appended to the builders.
// Strings are kept as positions (no pointers, so no GC write barriers on
// the hot path): where says which buffer, off and n the bytes in it.
type slot struct {
	gen   uint32 // == decoder.gen when set in this message
	null  bool
	bad   bool // the value could not be converted (reason in decoder.errs)
	b     bool
	where uint8
	off   int32
	n     int32
	i     int64
	f     float64
}

const (
	inMessage uint8 = iota // the message value
	inScanBuf              // the scanner's unescape buffer
	inCSVBuf               // the CSV unquote buffer
	inLiteral              // literals "truefalse"
)

const literals = "truefalse"

// decoder turns message values into rows of Arrow builders. A message either
// decodes completely (one row appended to every column) or not at all.
type decoder struct {
	format   Format
	fields   []Field
	byName   map[string]int
	slots    []slot
	errs     []error // per field: why its slot is bad
	gen      uint32
	sc       scanner
	msg      []byte // value of the message being decoded
	csvVals  [][]byte
	csvOffs  []int // start of each value: in the message, or -1-start in csvBuf
	csvBuf   []byte
	schema   *arrow.Schema
	builders []array.Builder // declared (or "value") then metadata
	meta     []string
	nDecl    int
}

func newDecoder(o Options, schema *arrow.Schema, mem memory.Allocator) *decoder {
	d := &decoder{format: o.Format, fields: o.Fields, byName: map[string]int{}, schema: schema, meta: o.Metadata}
	for i, f := range o.Fields {
		d.byName[f.Name] = i
	}
	d.slots = make([]slot, len(o.Fields))
	d.errs = make([]error, len(o.Fields))
	d.builders = make([]array.Builder, schema.NumFields())
	for i := range d.builders {
		d.builders[i] = array.NewBuilder(mem, schema.Field(i).Type)
	}
	d.nDecl = len(d.builders) - len(o.Metadata)
	return d
}

func (d *decoder) release() {
	for _, b := range d.builders {
		b.Release()
	}
	d.builders = nil
}

func (d *decoder) reserve(n int) {
	for _, b := range d.builders {
		b.Reserve(n)
	}
}

// finish returns the rows appended so far as a batch.
func (d *decoder) finish() arrow.RecordBatch {
	cols := make([]arrow.Array, len(d.builders))
	for i, b := range d.builders {
		cols[i] = b.NewArray()
	}
	n := int64(cols[0].Len())
	rec := array.NewRecordBatch(d.schema, cols, n)
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// record is one fetched Kafka message.
type record struct {
	offset int64
	ts     int64 // milliseconds
	key    []byte
	value  []byte
}

// add decodes m into one row, or returns the reason it cannot.
func (d *decoder) add(m *record, topic string, partition int) error {
	switch d.format {
	case FormatRaw:
		vb := d.builders[0].(*array.BinaryBuilder)
		if m.value == nil {
			vb.AppendNull()
		} else {
			vb.Append(m.value)
		}
	default:
		d.gen++
		if d.gen == 0 { // wrapped: clear stale marks
			for i := range d.slots {
				d.slots[i].gen = 0
			}
			d.gen = 1
		}
		d.msg = m.value
		var err error
		if d.format == FormatJSON {
			err = d.parseJSON(m.value)
		} else {
			err = d.parseCSV(m.value)
		}
		if err != nil {
			return err
		}
		for i := range d.fields {
			if d.fields[i].Required && (d.slots[i].gen != d.gen || d.slots[i].null) {
				return fmt.Errorf("missing required field %q", d.fields[i].Name)
			}
		}
		for i := range d.fields {
			d.appendSlot(i)
		}
	}
	d.appendMeta(m, topic, partition)
	return nil
}

func (d *decoder) appendMeta(m *record, topic string, partition int) {
	for j, name := range d.meta {
		b := d.builders[d.nDecl+j]
		switch name {
		case MetaKey:
			kb := b.(*array.BinaryBuilder)
			if m.key == nil {
				kb.AppendNull()
			} else {
				kb.Append(m.key)
			}
		case MetaTimestamp:
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(m.ts))
		case MetaPartition:
			b.(*array.Int32Builder).Append(int32(partition))
		case MetaOffset:
			b.(*array.Int64Builder).Append(m.offset)
		case MetaTopic:
			b.(*array.StringBuilder).Append(topic)
		}
	}
}

func (d *decoder) appendSlot(i int) {
	s := &d.slots[i]
	b := d.builders[i]
	if s.gen != d.gen || s.null {
		b.AppendNull()
		return
	}
	switch d.fields[i].Type {
	case Int64:
		b.(*array.Int64Builder).Append(s.i)
	case Int32:
		b.(*array.Int32Builder).Append(int32(s.i))
	case Float64:
		b.(*array.Float64Builder).Append(s.f)
	case Bool:
		b.(*array.BooleanBuilder).Append(s.b)
	case Timestamp:
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(s.i))
	case String:
		b.(*array.StringBuilder).BinaryBuilder.Append(d.bytesOf(s))
	case Binary:
		b.(*array.BinaryBuilder).Append(d.bytesOf(s))
	}
}

func (d *decoder) bytesOf(s *slot) []byte {
	var src []byte
	switch s.where {
	case inMessage:
		src = d.msg
	case inScanBuf:
		src = d.sc.buf
	case inCSVBuf:
		src = d.csvBuf
	default:
		return unsafe.Slice(unsafe.StringData(literals[s.off:]), s.n)
	}
	return src[s.off : s.off+s.n : s.off+s.n]
}

func (d *decoder) parseJSON(v []byte) error {
	// The scanner runs as a local copy (on the stack: no write barriers
	// for its slices); its buffer is handed back at the end.
	sc := d.sc
	defer func() { d.sc.buf = sc.buf }()
	if err := sc.reset(v); err != nil {
		return err
	}
	guess := 0
	for sc.next() {
		idx := -1
		if guess < len(d.fields) && string(sc.key) == d.fields[guess].Name {
			idx = guess
		} else if i, ok := d.byName[string(sc.key)]; ok {
			idx = i
		}
		if idx < 0 {
			continue
		}
		guess = idx + 1
		where := inMessage
		if sc.valInBuf {
			where = inScanBuf
		}
		// A conversion error is kept with the field, not returned: a later
		// duplicate key may replace the value (the last one wins).
		if err := d.set(idx, sc.kind, sc.val, sc.isInt, where, sc.valOff); err != nil {
			d.slots[idx].bad = true
			d.errs[idx] = err
		}
	}
	if sc.err != nil {
		return sc.err
	}
	for i := range d.slots {
		if d.slots[i].gen == d.gen && d.slots[i].bad {
			return d.errs[i]
		}
	}
	return nil
}

// set converts one value to the field's type (see the package doc for the
// coercions).
func (d *decoder) set(idx int, kind valKind, val []byte, isInt bool, where uint8, off int) error {
	s := &d.slots[idx]
	s.gen = d.gen
	s.null, s.bad = false, false
	f := &d.fields[idx]
	if kind == kindNull {
		s.null = true
		return nil
	}
	switch f.Type {
	case Int64, Int32:
		var ok bool
		switch kind {
		case kindNumber:
			s.i, ok = parseIntNumber(val, isInt)
		case kindString:
			s.i, ok = parseIntString(val)
		}
		if ok && f.Type == Int32 && (s.i < math.MinInt32 || s.i > math.MaxInt32) {
			ok = false
		}
		if !ok {
			return typeErr(f, kind, val)
		}
	case Float64:
		var err error
		switch kind {
		case kindNumber, kindString:
			if kind == kindNumber && isInt && len(val) < 16 {
				n, _ := parseIntNumber(val, true)
				s.f = float64(n)
			} else {
				s.f, err = strconv.ParseFloat(unsafeString(bytes.TrimSpace(val)), 64)
				if err != nil && !isRangeErr(err) {
					return typeErr(f, kind, val)
				}
			}
		default:
			return typeErr(f, kind, val)
		}
	case Bool:
		switch kind {
		case kindTrue:
			s.b = true
		case kindFalse:
			s.b = false
		case kindString:
			switch string(val) {
			case "true":
				s.b = true
			case "false":
				s.b = false
			default:
				return typeErr(f, kind, val)
			}
		default:
			return typeErr(f, kind, val)
		}
	case Timestamp:
		var ok bool
		switch kind {
		case kindNumber:
			s.i, ok = parseMillis(val, isInt)
		case kindString:
			if s.i, ok = parseIntString(val); !ok {
				s.i, ok = parseRFC3339(val)
			}
		}
		if !ok {
			return typeErr(f, kind, val)
		}
	case String:
		switch kind {
		case kindString, kindNumber:
			s.where, s.off, s.n = where, int32(off), int32(len(val))
		case kindTrue:
			s.where, s.off, s.n = inLiteral, 0, 4
		case kindFalse:
			s.where, s.off, s.n = inLiteral, 4, 5
		default:
			return typeErr(f, kind, val)
		}
	case Binary:
		if kind != kindString {
			return typeErr(f, kind, val)
		}
		s.where, s.off, s.n = where, int32(off), int32(len(val))
	}
	return nil
}

func typeErr(f *Field, kind valKind, val []byte) error {
	switch kind {
	case kindString:
		return fmt.Errorf("field %q: cannot convert string %s to %s", f.Name, quoteTrunc(val), f.Type)
	case kindNumber:
		return fmt.Errorf("field %q: cannot convert number %s to %s", f.Name, trunc(val), f.Type)
	}
	return fmt.Errorf("field %q: cannot convert %s to %s", f.Name, kind, f.Type)
}

func trunc(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

func quoteTrunc(b []byte) string { return strconv.Quote(trunc(b)) }

func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// parseIntNumber converts a JSON number to int64: integers exactly, other
// forms (1.0, 1e3) when they hold an integral value in range.
func parseIntNumber(v []byte, isInt bool) (int64, bool) {
	if isInt {
		neg := v[0] == '-'
		digits := v
		if neg {
			digits = v[1:]
		}
		if len(digits) <= 18 {
			var n int64
			for _, c := range digits {
				n = n*10 + int64(c-'0')
			}
			if neg {
				n = -n
			}
			return n, true
		}
		n, err := strconv.ParseInt(unsafeString(v), 10, 64)
		return n, err == nil
	}
	f, err := strconv.ParseFloat(unsafeString(v), 64)
	if err != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

// parseIntString accepts a string holding an optionally signed decimal
// integer, surrounding spaces allowed.
func parseIntString(v []byte) (int64, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(unsafeString(v), 10, 64)
	return n, err == nil
}

// parseMillis converts a JSON number of epoch milliseconds (fractions are
// floored).
func parseMillis(v []byte, isInt bool) (int64, bool) {
	if n, ok := parseIntNumber(v, isInt); ok {
		return n, true
	}
	f, err := strconv.ParseFloat(unsafeString(v), 64)
	if err != nil || math.IsNaN(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(math.Floor(f)), true
}

func parseRFC3339(v []byte) (int64, bool) {
	t, err := time.Parse(time.RFC3339Nano, unsafeString(v))
	if err != nil {
		return 0, false
	}
	return t.UnixMilli(), true
}

// parseCSV splits one CSV record (RFC 4180 quoting, ',' separator, optional
// trailing newline) into the declared fields, in order. Empty unquoted
// values are null.
func (d *decoder) parseCSV(v []byte) error {
	if n := len(v); n > 0 && v[n-1] == '\n' {
		v = v[:n-1]
		if n := len(v); n > 0 && v[n-1] == '\r' {
			v = v[:n-1]
		}
	}
	d.csvVals = d.csvVals[:0]
	d.csvOffs = d.csvOffs[:0]
	d.csvBuf = d.csvBuf[:0]
	if cap(d.csvBuf) < len(v) {
		d.csvBuf = make([]byte, 0, len(v)) // unquoted text is never longer: no moves
	}
	for i := 0; ; {
		if i < len(v) && v[i] == '"' {
			o := len(d.csvBuf)
			i++
			closed := false
			for i < len(v) {
				if v[i] == '"' {
					if i+1 < len(v) && v[i+1] == '"' {
						d.csvBuf = append(d.csvBuf, '"')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				d.csvBuf = append(d.csvBuf, v[i])
				i++
			}
			if !closed {
				return fmt.Errorf("invalid CSV: unterminated quoted field %d", len(d.csvVals)+1)
			}
			if i < len(v) && v[i] != ',' {
				return fmt.Errorf("invalid CSV: text after quoted field %d", len(d.csvVals)+1)
			}
			val := d.csvBuf[o:len(d.csvBuf):len(d.csvBuf)]
			if len(val) == 0 {
				val = []byte{}
			}
			d.csvVals = append(d.csvVals, val)
			d.csvOffs = append(d.csvOffs, -1-o)
		} else {
			j := bytes.IndexByte(v[i:], ',')
			if j < 0 {
				j = len(v) - i
			}
			f := v[i : i+j]
			if bytes.IndexByte(f, '"') >= 0 {
				return fmt.Errorf("invalid CSV: quote inside unquoted field %d", len(d.csvVals)+1)
			}
			if len(f) == 0 {
				f = nil
			}
			d.csvVals = append(d.csvVals, f)
			d.csvOffs = append(d.csvOffs, i)
			i += j
		}
		if i >= len(v) {
			break
		}
		i++ // the comma
		if i == len(v) {
			d.csvVals = append(d.csvVals, nil)
			d.csvOffs = append(d.csvOffs, i)
			break
		}
	}
	if len(d.csvVals) != len(d.fields) {
		return fmt.Errorf("CSV record has %d fields, want %d", len(d.csvVals), len(d.fields))
	}
	for i, val := range d.csvVals {
		if val == nil {
			d.slots[i].gen, d.slots[i].null = d.gen, true
			continue
		}
		where, off := inMessage, d.csvOffs[i]
		if off < 0 {
			where, off = inCSVBuf, -1-off
		}
		if err := d.set(i, kindString, val, false, where, off); err != nil {
			return err
		}
	}
	return nil
}
