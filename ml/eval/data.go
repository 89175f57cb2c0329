package eval

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec/expr"
)

// IDs are the distinct user or item ids of a Dataset in ascending order
// (numeric for integer columns, bytewise for strings): dense index d stands
// for id d. Exactly one of Ints and Strs is set.
type IDs struct {
	Ints []int64
	Strs []string
}

// Len is the number of ids.
func (x IDs) Len() int {
	if x.Strs != nil {
		return len(x.Strs)
	}
	return len(x.Ints)
}

// String renders id d.
func (x IDs) String(d int32) string {
	if x.Strs != nil {
		return x.Strs[d]
	}
	return strconv.FormatInt(x.Ints[d], 10)
}

// Dataset is an interaction log with dense ids, in input row order: row r
// is user Users[r] acting on item Items[r] with weight Weights[r] at time
// Times[r].
type Dataset struct {
	Users, Items     []int32
	Weights          []float32
	Times            []int64
	UserIDs, ItemIDs IDs
}

// Len is the number of rows.
func (d *Dataset) Len() int { return len(d.Users) }

// Columns names the columns Load reads.
type Columns struct {
	// User and Item are integer or string columns.
	User string `json:"user"`
	Item string `json:"item"`
	// Weight is a column or an expression (package arrowexec/expr) giving
	// a number per row; empty means 1 for every row.
	Weight string `json:"weight"`
	// Time is an integer, timestamp or date column.
	Time string `json:"time"`
}

// Validate reports missing column names.
func (c Columns) Validate() error {
	var errs []error
	if c.User == "" {
		errs = append(errs, errors.New("no user column"))
	}
	if c.Item == "" {
		errs = append(errs, errors.New("no item column"))
	}
	if c.Time == "" {
		errs = append(errs, errors.New("no time column"))
	}
	return errors.Join(errs...)
}

// loader accumulates batches into raw columns.
type loader struct {
	cols                 Columns
	weight               *expr.Bound
	userInts, itemInts   []int64
	userStrs, itemStrs   []string
	userIsStr, itemIsStr bool
	weights              []float32
	times                []int64
	schema               *arrow.Schema
}

// Load reads every batch of batches into a Dataset. where names the input
// in errors (a file path); row numbers in errors count from 1 over all
// batches. Null ids or times, and weights that are null, negative, NaN or
// infinite, are errors.
func Load(ctx context.Context, where string, cols Columns, batches iter.Seq2[arrow.RecordBatch, error]) (*Dataset, error) {
	if err := cols.Validate(); err != nil {
		return nil, fmt.Errorf("eval: %s: %w", where, err)
	}
	l := &loader{cols: cols}
	var row int64
	for rec, err := range batches {
		if err != nil {
			return nil, fmt.Errorf("eval: %s: %w", where, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := l.add(rec, row); err != nil {
			return nil, fmt.Errorf("eval: %s: %w", where, err)
		}
		row += rec.NumRows()
	}
	if row > math.MaxInt32 {
		return nil, fmt.Errorf("eval: %s: %d rows, at most %d supported", where, row, math.MaxInt32)
	}
	return l.finish(), nil
}

func (l *loader) bind(s *arrow.Schema) error {
	if l.schema != nil {
		if !l.schema.Equal(s) {
			return fmt.Errorf("schema changed between batches: %v then %v", l.schema, s)
		}
		return nil
	}
	l.schema = s
	for _, c := range []struct {
		name  string
		isStr *bool
	}{{l.cols.User, &l.userIsStr}, {l.cols.Item, &l.itemIsStr}} {
		f, ok := s.FieldsByName(c.name)
		if !ok {
			return fmt.Errorf("no column %q (have %s)", c.name, fieldNames(s))
		}
		switch {
		case arrow.IsInteger(f[0].Type.ID()):
		case f[0].Type.ID() == arrow.STRING || f[0].Type.ID() == arrow.LARGE_STRING:
			*c.isStr = true
		default:
			return fmt.Errorf("column %q: ids must be integers or strings, not %s", c.name, f[0].Type)
		}
	}
	f, ok := s.FieldsByName(l.cols.Time)
	if !ok {
		return fmt.Errorf("no column %q (have %s)", l.cols.Time, fieldNames(s))
	}
	switch id := f[0].Type.ID(); {
	case arrow.IsInteger(id), id == arrow.TIMESTAMP, id == arrow.DATE32, id == arrow.DATE64:
	default:
		return fmt.Errorf("column %q: time must be an integer, timestamp or date, not %s", l.cols.Time, f[0].Type)
	}
	if l.cols.Weight != "" {
		e, err := expr.Parse(l.cols.Weight)
		if err != nil {
			return fmt.Errorf("weight %q: %w", l.cols.Weight, err)
		}
		b, err := expr.Bind(expr.Cast(e, "float64"), s)
		if err != nil {
			return fmt.Errorf("weight %q: %w", l.cols.Weight, err)
		}
		l.weight = b
	}
	return nil
}

func fieldNames(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return fmt.Sprint(names)
}

func column(rec arrow.RecordBatch, name string) arrow.Array {
	return rec.Column(rec.Schema().FieldIndices(name)[0])
}

func (l *loader) add(rec arrow.RecordBatch, base int64) error {
	if err := l.bind(rec.Schema()); err != nil {
		return err
	}
	n := int(rec.NumRows())
	var err error
	if l.userIsStr {
		l.userStrs, err = appendStrs(l.userStrs, column(rec, l.cols.User), base)
	} else {
		l.userInts, err = appendInts(l.userInts, column(rec, l.cols.User), base)
	}
	if err != nil {
		return fmt.Errorf("column %q: %w", l.cols.User, err)
	}
	if l.itemIsStr {
		l.itemStrs, err = appendStrs(l.itemStrs, column(rec, l.cols.Item), base)
	} else {
		l.itemInts, err = appendInts(l.itemInts, column(rec, l.cols.Item), base)
	}
	if err != nil {
		return fmt.Errorf("column %q: %w", l.cols.Item, err)
	}
	if l.times, err = appendInts(l.times, column(rec, l.cols.Time), base); err != nil {
		return fmt.Errorf("column %q: %w", l.cols.Time, err)
	}
	if l.weight == nil {
		for range n {
			l.weights = append(l.weights, 1)
		}
		return nil
	}
	w, err := l.weight.Eval(memory.DefaultAllocator, rec)
	if err != nil {
		return fmt.Errorf("weight %q: %w", l.cols.Weight, err)
	}
	defer w.Release()
	f := w.(*array.Float64)
	for i, v := range f.Float64Values() {
		if f.IsNull(i) || !(v >= 0) || math.IsInf(v, 1) {
			what := strconv.FormatFloat(v, 'g', -1, 64)
			if f.IsNull(i) {
				what = "NULL"
			}
			return fmt.Errorf("row %d: weight %q is %s: weights must be finite and non-negative", base+int64(i)+1, l.cols.Weight, what)
		}
		l.weights = append(l.weights, float32(v))
	}
	return nil
}

// appendInts appends an integer, timestamp or date column as int64.
func appendInts(dst []int64, a arrow.Array, base int64) ([]int64, error) {
	if a.NullN() > 0 {
		for i := range a.Len() {
			if a.IsNull(i) {
				return dst, fmt.Errorf("row %d: NULL", base+int64(i)+1)
			}
		}
	}
	switch x := a.(type) {
	case *array.Int64:
		return append(dst, x.Int64Values()...), nil
	case *array.Timestamp:
		for _, v := range x.TimestampValues() {
			dst = append(dst, int64(v))
		}
		return dst, nil
	case *array.Date32:
		for _, v := range x.Date32Values() {
			dst = append(dst, int64(v))
		}
		return dst, nil
	case *array.Date64:
		for _, v := range x.Date64Values() {
			dst = append(dst, int64(v))
		}
		return dst, nil
	case *array.Uint64:
		for i, v := range x.Uint64Values() {
			if v > math.MaxInt64 {
				return dst, fmt.Errorf("row %d: %d does not fit int64", base+int64(i)+1, v)
			}
			dst = append(dst, int64(v))
		}
		return dst, nil
	}
	c, err := compute.CastArray(context.Background(), a, compute.SafeCastOptions(arrow.PrimitiveTypes.Int64))
	if err != nil {
		return dst, err
	}
	defer c.Release()
	return append(dst, c.(*array.Int64).Int64Values()...), nil
}

func appendStrs(dst []string, a arrow.Array, base int64) ([]string, error) {
	type strs interface {
		arrow.Array
		Value(int) string
	}
	s := a.(strs)
	for i := range a.Len() {
		if a.IsNull(i) {
			return dst, fmt.Errorf("row %d: NULL", base+int64(i)+1)
		}
		dst = append(dst, s.Value(i))
	}
	return dst, nil
}

func (l *loader) finish() *Dataset {
	// Weight 0 means no interaction (package ml's convention): drop.
	if slices.Contains(l.weights, 0) {
		keep := 0
		for r, w := range l.weights {
			if w == 0 {
				continue
			}
			l.weights[keep], l.times[keep] = w, l.times[r]
			if l.userIsStr {
				l.userStrs[keep] = l.userStrs[r]
			} else {
				l.userInts[keep] = l.userInts[r]
			}
			if l.itemIsStr {
				l.itemStrs[keep] = l.itemStrs[r]
			} else {
				l.itemInts[keep] = l.itemInts[r]
			}
			keep++
		}
		l.weights, l.times = l.weights[:keep], l.times[:keep]
		if l.userIsStr {
			l.userStrs = l.userStrs[:keep]
		} else {
			l.userInts = l.userInts[:keep]
		}
		if l.itemIsStr {
			l.itemStrs = l.itemStrs[:keep]
		} else {
			l.itemInts = l.itemInts[:keep]
		}
	}
	d := &Dataset{Weights: l.weights, Times: l.times}
	if l.userIsStr {
		d.Users, d.UserIDs.Strs = dense(l.userStrs)
	} else {
		d.Users, d.UserIDs.Ints = dense(l.userInts)
	}
	if l.itemIsStr {
		d.Items, d.ItemIDs.Strs = dense(l.itemStrs)
	} else {
		d.Items, d.ItemIDs.Ints = dense(l.itemInts)
	}
	if d.Times == nil {
		d.Times = []int64{}
	}
	return d
}

// dense maps raw ids to their rank among the sorted distinct ids.
func dense[T cmp.Ordered](raw []T) ([]int32, []T) {
	ids := slices.Clone(raw)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if ids == nil {
		ids = []T{}
	}
	idx := make([]int32, len(raw))
	for r, v := range raw {
		i, _ := slices.BinarySearch(ids, v)
		idx[r] = int32(i)
	}
	return idx, ids
}

// NewDataset builds a Dataset from integer ids, for tests and the Go API.
// weights may be nil (all 1).
func NewDataset(users, items []int64, weights []float32, times []int64) (*Dataset, error) {
	if len(items) != len(users) || len(times) != len(users) || (weights != nil && len(weights) != len(users)) {
		return nil, fmt.Errorf("eval: NewDataset: lengths differ: %d users, %d items, %d weights, %d times", len(users), len(items), len(weights), len(times))
	}
	if weights == nil {
		weights = make([]float32, len(users))
		for i := range weights {
			weights[i] = 1
		}
	}
	for i, w := range weights {
		if !(w >= 0) || math.IsInf(float64(w), 1) {
			return nil, fmt.Errorf("eval: NewDataset: row %d: weight %v must be finite and non-negative", i+1, w)
		}
	}
	l := &loader{userInts: slices.Clone(users), itemInts: slices.Clone(items), weights: slices.Clone(weights), times: slices.Clone(times)}
	return l.finish(), nil
}
