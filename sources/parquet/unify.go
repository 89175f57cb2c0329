package parquet

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Schema unification across the files of one input, by column name, as
// DuckDB's read_parquet(union_by_name=true): the unified schema holds the
// columns of the first file in its order, then every column a later file
// adds, in the order they first appear. A column a file lacks reads as NULL
// there. Types unify when they differ only in representation or width (see
// unifyType); anything else is an error naming both files and the column.

// unifySchemas returns the union-by-name schema of the files' schemas and
// whether it differs from any of them (false: every file has that schema).
func unifySchemas(paths []string, schemas []*arrow.Schema) (*arrow.Schema, bool, error) {
	var fields []arrow.Field
	from := map[string]int{}  // column name -> index into fields
	first := map[string]int{} // column name -> file it was first seen in
	for fi, sc := range schemas {
		for _, f := range sc.Fields() {
			ft := narrowType(f.Type)
			j, ok := from[f.Name]
			if !ok {
				from[f.Name] = len(fields)
				first[f.Name] = fi
				fields = append(fields, arrow.Field{Name: f.Name, Type: ft, Nullable: f.Nullable || fi > 0})
				continue
			}
			t, ok := unifyType(fields[j].Type, ft)
			if !ok {
				return nil, false, fmt.Errorf("parquet: column %q is %s in file %s but %s in file %s: the types do not unify",
					f.Name, fields[j].Type, paths[first[f.Name]], f.Type, paths[fi])
			}
			fields[j].Type = t
			fields[j].Nullable = fields[j].Nullable || f.Nullable
		}
		// A column earlier files have and this one lacks is NULL here.
		for j := range fields {
			if len(sc.FieldIndices(fields[j].Name)) == 0 {
				fields[j].Nullable = true
			}
		}
	}
	out := arrow.NewSchema(fields, nil)
	differ := false
	for _, sc := range schemas {
		differ = differ || !sc.Equal(out)
	}
	return out, differ, nil
}

// narrowType is the type a column of type t is read as: a dictionary as
// its value type (decoded: pandas categoricals; group keys, hash exchanges
// and sinks take plain columns), large_utf8 as utf8 and large_binary as
// binary, so that one string type flows through the engine whatever the
// writer chose (pandas' string[pyarrow] is large_utf8; DuckDB has one
// VARCHAR). A batch holds at most BatchSize rows, far from the 2 GiB of
// data a 32-bit offset limits it to; a batch beyond it is an error naming
// the file and column, never a wrong value.
func narrowType(t arrow.DataType) arrow.DataType {
	switch t = valueType(t); t.ID() {
	case arrow.LARGE_STRING:
		return arrow.BinaryTypes.String
	case arrow.LARGE_BINARY:
		return arrow.BinaryTypes.Binary
	}
	return t
}

// unifyType returns the type that holds the values of both a and b (after
// narrowType), if there is one: signed integers with signed integers and unsigned with
// unsigned (the wider wins), float32 with float64. Other differences,
// including integer with float and timestamps of different units or zones,
// do not unify.
func unifyType(a, b arrow.DataType) (arrow.DataType, bool) {
	if arrow.TypeEqual(a, b) {
		return a, true
	}
	a, b = valueType(a), valueType(b)
	if arrow.TypeEqual(a, b) {
		return a, true
	}
	ra, rb := rank(a), rank(b)
	if ra.family == 0 || ra.family != rb.family {
		return nil, false
	}
	if ra.width >= rb.width {
		return a, true
	}
	return b, true
}

func valueType(t arrow.DataType) arrow.DataType {
	if d, ok := t.(*arrow.DictionaryType); ok {
		return d.ValueType
	}
	return t
}

type typeRank struct{ family, width int }

// ranks places the types that widen into each other: a family (signed,
// unsigned, float) and a width within it.
var ranks = map[arrow.Type]typeRank{
	arrow.INT8: {3, 1}, arrow.INT16: {3, 2}, arrow.INT32: {3, 3}, arrow.INT64: {3, 4},
	arrow.UINT8: {4, 1}, arrow.UINT16: {4, 2}, arrow.UINT32: {4, 3}, arrow.UINT64: {4, 4},
	arrow.FLOAT32: {5, 1}, arrow.FLOAT64: {5, 2},
}

func rank(t arrow.DataType) typeRank { return ranks[t.ID()] }

// fileLayout says how the decoded columns of one file become a batch of the
// unified schema.
type fileLayout struct {
	cols []column // projected columns the file has, in projection order, resolved in the file
	out  []int    // out[j]: index into cols of output column j, or -1 (NULL)
}

// layoutFor resolves the projection in file fi. Only used when the files'
// schemas differ.
func (s *Source) layoutFor(fi int) (fileLayout, error) {
	f := s.files[fi]
	l := fileLayout{out: make([]int, len(s.columns))}
	for j, c := range s.columns {
		idx := f.schema.FieldIndices(c.name)
		if len(idx) == 0 {
			l.out[j] = -1
			continue
		}
		fc := column{name: c.name, index: idx[0], field: f.schema.Field(idx[0]), dict: c.dict}
		if fc.leaf, fc.leaves = resolveLeaf(f.meta, fc.field); fc.leaf < 0 {
			return l, fmt.Errorf("parquet: file %s: column %q: no leaf column", f.path, c.name)
		}
		l.out[j] = len(l.cols)
		l.cols = append(l.cols, fc)
	}
	return l, nil
}

// columnsOf returns the columns to decode from file fi, resolved in it.
func (s *Source) columnsOf(fi int) []column {
	if s.layouts == nil {
		return s.columns
	}
	return s.layouts[fi].cols
}

// conform turns the decoded columns of file fi into the columns of the
// unified schema: missing columns become NULL arrays, other representations
// are cast (dictionary decoded, utf8 widened to large_utf8, ...). It takes
// ownership of cols and returns arrays the caller owns.
func (s *Source) conform(ctx context.Context, mem memory.Allocator, fi int, cols []arrow.Array, rows int) ([]arrow.Array, error) {
	if s.layouts == nil {
		return cols, nil
	}
	defer releaseAll(cols)
	l := s.layouts[fi]
	out := make([]arrow.Array, len(s.columns))
	cctx := compute.WithAllocator(ctx, mem)
	for j, c := range s.columns {
		k := l.out[j]
		if k < 0 {
			out[j] = array.MakeArrayOfNull(mem, c.field.Type, rows)
			continue
		}
		a := cols[k]
		if arrow.TypeEqual(a.DataType(), c.field.Type) {
			a.Retain()
			out[j] = a
			continue
		}
		conv, err := compute.CastArray(cctx, a, compute.SafeCastOptions(c.field.Type))
		if err != nil {
			releaseAll(out[:j])
			return nil, wrapErr(s.files[fi].path, -1, c.name, fmt.Errorf("unify %s to %s: %w", a.DataType(), c.field.Type, err))
		}
		out[j] = conv
	}
	return out, nil
}

// schemaDiff describes the first way a file's schema differs from the
// unified one, for error messages.
func (s *Source) schemaDiff() string {
	for _, f := range s.files {
		for _, u := range s.full.Fields() {
			idx := f.schema.FieldIndices(u.Name)
			switch {
			case len(idx) == 0:
				return fmt.Sprintf("file %s has no column %q", f.path, u.Name)
			case !arrow.TypeEqual(f.schema.Field(idx[0]).Type, u.Type):
				return fmt.Sprintf("column %q is %s in file %s", u.Name, f.schema.Field(idx[0]).Type, f.path)
			}
		}
	}
	return "nullability"
}
