package sinks

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Hive-style partition directories (FileOptions.PartitionBy).
//
// A row goes to the directory <col>=<value>/... of its partition columns'
// values, in PartitionBy order. Values are written the way DuckDB's COPY
// ... (PARTITION_BY ...) writes them, which DuckDB (hive_partitioning) and
// pyarrow datasets (partitioning="hive") both read back: every byte but
// the URI-unreserved ones (A-Z a-z 0-9 - . _ ~) is %XX (uppercase hex; so
// '/', '=', '%', spaces, control and non-ASCII bytes are escaped), an
// empty string is an empty value ("col="), and NULL is
// __HIVE_DEFAULT_PARTITION__. A string value equal to that marker is
// refused (DuckDB would read it back as the string, pyarrow as NULL, also
// when escaped). Integers are decimal, dates YYYY-MM-DD, booleans
// true/false. Column names are escaped the same way.

// HiveNull is the directory value of a NULL partition value.
const HiveNull = "__HIVE_DEFAULT_PARTITION__"

// hiveEscape appends v to dst with every byte outside A-Z a-z 0-9 - . _ ~
// written as %XX.
func hiveEscape(dst []byte, v string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			dst = append(dst, c)
		default:
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

// PartitionTypeOK reports whether a column of type dt can be a partition
// column: strings (also dictionary-encoded), integers, dates and booleans.
func PartitionTypeOK(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.STRING, arrow.LARGE_STRING,
		arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.DATE32, arrow.DATE64, arrow.BOOL:
		return true
	case arrow.DICTIONARY:
		// Dictionary-encoded strings (pandas categoricals).
		switch dt.(*arrow.DictionaryType).ValueType.ID() {
		case arrow.STRING, arrow.LARGE_STRING:
			return true
		}
	}
	return false
}

// partCol is one partition column.
type partCol struct {
	idx    int    // in the input schema
	prefix string // escaped name and "="
}

// partitioner splits batches by the values of the partition columns,
// column at a time: every column's values get small codes (typed maps, no
// per-value interface call), codes of several columns are combined, and
// every distinct partition's directory is spelled once per batch.
type partitioner struct {
	cols []partCol
	keep []int // the other columns, written to the files

	// Per batch: the partition of every row, and per partition its
	// directory (relative, '/'-separated) and rows.
	codes   []int32
	colCode []int32
	segs    []string
	dirs    []string
	rows    [][]int32
	combine map[uint64]int32
	buf     []byte
}

// newPartitioner checks the partition columns by against schema and
// returns the partitioner and the schema of the files (the other columns).
func newPartitioner(schema *arrow.Schema, by []string) (*partitioner, *arrow.Schema, error) {
	p := &partitioner{}
	used := map[int]bool{}
	for _, name := range by {
		idx := schema.FieldIndices(name)
		switch {
		case len(idx) == 0:
			return nil, nil, fmt.Errorf("partition_by: no column %q (have %s)", name, fieldNames(schema))
		case len(idx) > 1:
			return nil, nil, fmt.Errorf("partition_by: column %q is ambiguous (%d columns have that name)", name, len(idx))
		case used[idx[0]]:
			return nil, nil, fmt.Errorf("partition_by: column %q given twice", name)
		}
		f := schema.Field(idx[0])
		if !PartitionTypeOK(f.Type) {
			return nil, nil, fmt.Errorf("partition_by: column %q has type %s; partition columns are strings (also dictionary-encoded), integers, dates or booleans (cast it, e.g. with a project step)", name, f.Type)
		}
		used[idx[0]] = true
		p.cols = append(p.cols, partCol{idx: idx[0], prefix: string(hiveEscape(nil, name)) + "="})
	}
	var fields []arrow.Field
	for i, f := range schema.Fields() {
		if !used[i] {
			p.keep = append(p.keep, i)
			fields = append(fields, f)
		}
	}
	if len(fields) == 0 {
		return nil, nil, fmt.Errorf("partition_by: takes every column (%s): the files would have none left", fieldNames(schema))
	}
	md := schema.Metadata()
	return p, arrow.NewSchema(fields, &md), nil
}

func fieldNames(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// split groups the rows of b by partition: on return p.dirs[g] is the
// directory of partition g and p.rows[g] its rows, in input order.
func (p *partitioner) split(b arrow.RecordBatch) error {
	n := int(b.NumRows())
	p.codes = slices.Grow(p.codes[:0], n)[:n]
	p.colCode = slices.Grow(p.colCode[:0], n)[:n]
	p.dirs = p.dirs[:0]
	for c, pc := range p.cols {
		dst := p.codes
		if c > 0 {
			dst = p.colCode
		}
		p.segs = p.segs[:0]
		if err := p.codeColumn(b.Column(pc.idx), pc.prefix, dst); err != nil {
			return fmt.Errorf("partition column %s: %w", b.ColumnName(pc.idx), err)
		}
		if c == 0 {
			p.dirs = append(p.dirs, p.segs...)
			continue
		}
		// Combine: the pair (partition so far, this column's code).
		if p.combine == nil {
			p.combine = map[uint64]int32{}
		}
		clear(p.combine)
		prev := p.dirs
		var dirs []string
		for i := range n {
			k := uint64(p.codes[i])<<32 | uint64(p.colCode[i])
			g, ok := p.combine[k]
			if !ok {
				g = int32(len(dirs))
				p.combine[k] = g
				dirs = append(dirs, prev[p.codes[i]]+"/"+p.segs[p.colCode[i]])
			}
			p.codes[i] = g
		}
		p.dirs = dirs
	}
	for len(p.rows) < len(p.dirs) {
		p.rows = append(p.rows, nil)
	}
	p.rows = p.rows[:len(p.dirs)]
	for g := range p.rows {
		p.rows[g] = p.rows[g][:0]
	}
	if len(p.dirs) > 1 {
		for i, g := range p.codes[:n] {
			p.rows[g] = append(p.rows[g], int32(i))
		}
	}
	return nil
}

// codeColumn sets out[i] to the code of row i's value of a and appends
// the directory segment of every new code to p.segs.
func (p *partitioner) codeColumn(a arrow.Array, prefix string, out []int32) error {
	nullCode := int32(-1)
	null := func() int32 {
		if nullCode < 0 {
			nullCode = int32(len(p.segs))
			p.segs = append(p.segs, prefix+HiveNull)
		}
		return nullCode
	}
	switch a := a.(type) {
	case *array.String:
		return codeStrings(p, a, prefix, out, null)
	case *array.LargeString:
		return codeStrings(p, a, prefix, out, null)
	case *array.Int8:
		codeInts(p, a, a.Int8Values(), prefix, out, null, formatInt)
	case *array.Int16:
		codeInts(p, a, a.Int16Values(), prefix, out, null, formatInt)
	case *array.Int32:
		codeInts(p, a, a.Int32Values(), prefix, out, null, formatInt)
	case *array.Int64:
		codeInts(p, a, a.Int64Values(), prefix, out, null, formatInt)
	case *array.Uint8:
		codeInts(p, a, a.Uint8Values(), prefix, out, null, formatUint)
	case *array.Uint16:
		codeInts(p, a, a.Uint16Values(), prefix, out, null, formatUint)
	case *array.Uint32:
		codeInts(p, a, a.Uint32Values(), prefix, out, null, formatUint)
	case *array.Uint64:
		codeInts(p, a, a.Uint64Values(), prefix, out, null, formatUint)
	case *array.Date32:
		codeInts(p, a, a.Date32Values(), prefix, out, null, func(v arrow.Date32) string {
			return time.Unix(int64(v)*86400, 0).UTC().Format(time.DateOnly)
		})
	case *array.Date64:
		codeInts(p, a, a.Date64Values(), prefix, out, null, func(v arrow.Date64) string {
			return time.UnixMilli(int64(v)).UTC().Format(time.DateOnly)
		})
	case *array.Boolean:
		codes := [2]int32{-1, -1}
		for i := range out {
			if a.IsNull(i) {
				out[i] = null()
				continue
			}
			v := 0
			if a.Value(i) {
				v = 1
			}
			if codes[v] < 0 {
				codes[v] = int32(len(p.segs))
				p.segs = append(p.segs, prefix+strconv.FormatBool(v == 1))
			}
			out[i] = codes[v]
		}
	case *array.Dictionary:
		return p.codeDictionary(a, prefix, out, null)
	default:
		return fmt.Errorf("type %s cannot partition", a.DataType())
	}
	return nil
}

// codeDictionary codes dictionary-encoded strings: one segment per
// dictionary entry used (entries with equal strings share it).
func (p *partitioner) codeDictionary(a *array.Dictionary, prefix string, out []int32, null func() int32) error {
	dict, ok := a.Dictionary().(stringArray)
	if !ok {
		return fmt.Errorf("type %s cannot partition", a.DataType())
	}
	byIndex := map[int]int32{}
	byValue := map[string]int32{}
	for i := range out {
		if a.IsNull(i) {
			out[i] = null()
			continue
		}
		x := a.GetValueIndex(i)
		c, ok := byIndex[x]
		if !ok {
			switch {
			case dict.IsNull(x):
				c = null()
			default:
				v := dict.Value(x)
				if c, ok = byValue[v]; !ok {
					var err error
					if c, err = p.addString(prefix, v); err != nil {
						return err
					}
					byValue[strings.Clone(v)] = c
				}
			}
			byIndex[x] = c
		}
		out[i] = c
	}
	return nil
}

func formatInt[T int8 | int16 | int32 | int64](v T) string { return strconv.FormatInt(int64(v), 10) }
func formatUint[T uint8 | uint16 | uint32 | uint64](v T) string {
	return strconv.FormatUint(uint64(v), 10)
}

// codeInts codes fixed-width values (integers, dates); format spells one.
func codeInts[T comparable](p *partitioner, a arrow.Array, vals []T, prefix string, out []int32, null func() int32, format func(T) string) {
	m := map[T]int32{}
	noNulls := a.NullN() == 0
	for i, v := range vals[:len(out)] {
		if !noNulls && a.IsNull(i) {
			out[i] = null()
			continue
		}
		c, ok := m[v]
		if !ok {
			c = int32(len(p.segs))
			m[v] = c
			p.segs = append(p.segs, prefix+format(v))
		}
		out[i] = c
	}
}

type stringArray interface {
	arrow.Array
	Value(i int) string
}

func codeStrings[A stringArray](p *partitioner, a A, prefix string, out []int32, null func() int32) error {
	m := map[string]int32{}
	noNulls := a.NullN() == 0
	for i := range out {
		if !noNulls && a.IsNull(i) {
			out[i] = null()
			continue
		}
		v := a.Value(i)
		c, ok := m[v]
		if !ok {
			var err error
			if c, err = p.addString(prefix, v); err != nil {
				return err
			}
			m[strings.Clone(v)] = c
		}
		out[i] = c
	}
	return nil
}

// addString adds the segment of string value v and returns its code.
func (p *partitioner) addString(prefix, v string) (int32, error) {
	if v == HiveNull {
		return 0, fmt.Errorf("value %q is the NULL marker of Hive partition directories: it cannot be written as a string", v)
	}
	p.buf = hiveEscape(append(p.buf[:0], prefix...), v)
	p.segs = append(p.segs, string(p.buf))
	return int32(len(p.segs) - 1), nil
}
