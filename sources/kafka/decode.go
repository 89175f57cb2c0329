package kafka

import (
	"bytes"
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/internal/coerce"
	"github.com/riffle-dev/riffle/internal/deadletter"
	"github.com/riffle-dev/riffle/internal/jsonscan"
)

// valKind is the JSON kind of a value (internal/coerce).
type valKind = coerce.Kind

const (
	kindNull   = coerce.Null
	kindFalse  = coerce.False
	kindTrue   = coerce.True
	kindNumber = coerce.Number
	kindString = coerce.Str
	kindObject = coerce.Object
	kindArray  = coerce.Array
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

const literals = coerce.Literal

// decoder turns message values into rows of Arrow builders. A message either
// decodes completely (one row appended to every column) or not at all.
type decoder struct {
	format   Format
	fields   []Field
	byName   map[string]int
	slots    []slot
	errs     []error // per field: why its slot is bad
	gen      uint32
	sc       jsonscan.Scanner
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
				return &classedError{deadletter.MissingField, fmt.Errorf("missing required field %q", d.fields[i].Name)}
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
		src = d.sc.Buf
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
	defer func() { d.sc.Buf = sc.Buf }()
	if err := sc.Reset(v); err != nil {
		return err
	}
	guess := 0
	for sc.Next() {
		idx := -1
		if guess < len(d.fields) && string(sc.Key) == d.fields[guess].Name {
			idx = guess
		} else if i, ok := d.byName[string(sc.Key)]; ok {
			idx = i
		}
		if idx < 0 {
			continue
		}
		guess = idx + 1
		where := inMessage
		if sc.ValInBuf {
			where = inScanBuf
		}
		// A conversion error is kept with the field, not returned: a later
		// duplicate key may replace the value (the last one wins).
		if err := d.set(idx, sc.Kind, sc.Val, sc.IsInt, where, sc.ValOff); err != nil {
			d.slots[idx].bad = true
			d.errs[idx] = err
		}
	}
	if sc.Err != nil {
		return sc.Err
	}
	for i := range d.slots {
		if d.slots[i].gen == d.gen && d.slots[i].bad {
			return &classedError{deadletter.BadValue, d.errs[i]}
		}
	}
	return nil
}

// set converts one value to the field's type (internal/coerce has the
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
	ok := true
	switch f.Type {
	case Int64:
		s.i, ok = coerce.ParseInt(kind, val, isInt)
	case Int32:
		s.i, ok = coerce.ParseInt32(kind, val, isInt)
	case Float64:
		s.f, ok = coerce.ParseFloat(kind, val, isInt)
	case Bool:
		s.b, ok = coerce.ParseBool(kind, val)
	case Timestamp:
		s.i, ok = coerce.ParseMillis(kind, val, isInt)
	case String, Binary:
		switch {
		case !coerce.Text(f.Type, kind):
			ok = false
		case kind == kindTrue:
			s.where, s.off, s.n = inLiteral, 0, 4
		case kind == kindFalse:
			s.where, s.off, s.n = inLiteral, 4, 5
		default:
			s.where, s.off, s.n = where, int32(off), int32(len(val))
		}
	}
	if !ok {
		return coerce.TypeError(f.Name, f.Type, kind, val)
	}
	return nil
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
			return &classedError{deadletter.BadValue, err}
		}
	}
	return nil
}
