package agg

import (
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec"
)

// Func names an aggregate function.
type Func string

// The aggregate functions.
const (
	Count         Func = "count"
	Sum           Func = "sum"
	Min           Func = "min"
	Max           Func = "max"
	Avg           Func = "avg"
	CountDistinct Func = "count_distinct"
	// ApproxDistinct estimates the number of distinct values with a
	// HyperLogLog sketch (hll.go).
	ApproxDistinct Func = "approx_distinct"
	// The variance functions (variance.go); variance and stddev are
	// aliases of the sample ones.
	VarSamp    Func = "var_samp"
	VarPop     Func = "var_pop"
	StddevSamp Func = "stddev_samp"
	StddevPop  Func = "stddev_pop"
	// BoolAnd and BoolOr are TRUE when every (some) non-null value is.
	BoolAnd Func = "bool_and"
	BoolOr  Func = "bool_or"
	// The collecting functions (collect.go): exact quantiles (as DuckDB's
	// quantile_cont), arg_max, arg_min, first and last by an ordering
	// column, and list.
	Median   Func = "median"
	Quantile Func = "quantile"
	ArgMax   Func = "arg_max"
	ArgMin   Func = "arg_min"
	First    Func = "first"
	Last     Func = "last"
	List     Func = "list"
)

// Agg is one aggregate of the output: Func over Column, named As.
type Agg struct {
	Func Func
	// Column is the input column; "" or "*" with Count means count(*).
	Column string
	// Column2 is the second input column of arg_max, arg_min, first and
	// last: the value ordering the rows ("" for first and last in the
	// window step: its time column).
	Column2 string
	// Param is quantile's q in [0, 1] (median: 0.5).
	Param float64
	// As is the output column name. Default: "func(column)", e.g. "sum(x)"
	// or "count(*)".
	As string
}

func (a Agg) star() bool { return a.Column == "" || a.Column == "*" }

// Star reports whether a has no input column (count(*)).
func (a Agg) Star() bool { return a.star() }

// Name returns the output column name of the aggregate.
func (a Agg) Name() string {
	if a.As != "" {
		return a.As
	}
	if a.star() {
		return string(a.Func) + "(*)"
	}
	switch {
	case a.Column2 != "":
		return string(a.Func) + "(" + a.Column + ", " + a.Column2 + ")"
	case a.Func == Quantile:
		return string(a.Func) + "(" + a.Column + ", " + formatParam(a.Param) + ")"
	}
	return string(a.Func) + "(" + a.Column + ")"
}

// Mode selects the phase of a two-phase aggregation.
type Mode int

const (
	// Single aggregates rows into final results.
	Single Mode = iota
	// Partial aggregates rows into state columns (see Options.Mode).
	Partial
	// Final merges the state columns of Partial operators by key into final
	// results.
	Final
)

func (m Mode) String() string {
	switch m {
	case Single:
		return "single"
	case Partial:
		return "partial"
	case Final:
		return "final"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// MaxBatchSize is the largest output batch the aggregate emits.
const MaxBatchSize = 65536

// Options configures a hash aggregate. The zero value of every field but
// Aggs works.
type Options struct {
	// GroupBy names the key columns. Empty: one global group (which exists,
	// as in SQL, even when the input is empty).
	GroupBy []string
	// Aggs are the aggregates, in output order.
	Aggs []Agg
	// Mode: Single (default), Partial or Final. A Partial operator emits,
	// after its keys, the state columns of every aggregate: count -> the
	// count (int64, named As); sum -> the sum (int64 or float64, NULL when
	// the group had no value, named As); min, max -> the extreme (input
	// type, named As); avg -> As+".sum" (int64 or float64) and As+".count"
	// (int64). A Final operator is given the same GroupBy and Aggs and
	// expects exactly that schema. count_distinct is not decomposable and
	// only allowed in Single mode.
	Mode Mode
	// BatchSize is the maximum number of rows per output batch. Default and
	// maximum: MaxBatchSize.
	BatchSize int
}

// Validate checks the options without an input schema.
func (o *Options) Validate() error {
	if o.Mode < Single || o.Mode > Final {
		return fmt.Errorf("agg: invalid mode %d", int(o.Mode))
	}
	if o.BatchSize < 0 || o.BatchSize > MaxBatchSize {
		return fmt.Errorf("agg: BatchSize %d out of range [1, %d]", o.BatchSize, MaxBatchSize)
	}
	seen := map[string]bool{}
	for _, k := range o.GroupBy {
		if k == "" {
			return errors.New("agg: empty group-by column name")
		}
		if seen[k] {
			return fmt.Errorf("agg: duplicate output column %q", k)
		}
		seen[k] = true
	}
	for _, a := range o.Aggs {
		if err := a.Check(); err != nil {
			return fmt.Errorf("agg: %w", err)
		}
		if !funcs[a.Func].decomposable && o.Mode != Single {
			return fmt.Errorf("agg: %s is not decomposable and cannot run in %s mode; exchange rows by key and aggregate in single mode", a.Name(), o.Mode)
		}
		for _, n := range stateNames(a, o.Mode) {
			if seen[n] {
				return fmt.Errorf("agg: duplicate output column %q", n)
			}
			seen[n] = true
		}
	}
	return nil
}

// stateNames lists the columns an aggregate contributes to the output of mode.
func stateNames(a Agg, m Mode) []string {
	if m == Partial && a.Func == Avg {
		return []string{a.Name() + ".sum", a.Name() + ".count"}
	}
	if m == Partial && isVariance(a.Func) {
		return []string{a.Name() + ".n", a.Name() + ".mean", a.Name() + ".m2"}
	}
	return []string{a.Name()}
}

// Decomposable reports whether aggs can be computed in two phases (Partial
// before a hash exchange, Final after it). count_distinct cannot: the planner
// must exchange rows by key first and aggregate in Single mode.
func Decomposable(aggs []Agg) bool {
	for _, a := range aggs {
		if !funcs[a.Func].decomposable {
			return false
		}
	}
	return true
}

// Spec is the arrowexec.Spec of a hash aggregate over one bounded input.
type Spec struct {
	opts Options
}

var _ arrowexec.Spec = (*Spec)(nil)

// New validates opts and returns the aggregate's Spec.
func New(opts Options) (*Spec, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = MaxBatchSize
	}
	opts.GroupBy = append([]string(nil), opts.GroupBy...)
	opts.Aggs = append([]Agg(nil), opts.Aggs...)
	return &Spec{opts: opts}, nil
}

// Options returns the validated options with defaults filled in.
func (s *Spec) Options() Options { return s.opts }

// Schema type-checks the aggregate against its one input and returns the
// output schema: the key columns, then the aggregate (or, for Partial, state)
// columns.
func (s *Spec) Schema(inputs []*arrow.Schema) (*arrow.Schema, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("agg: want 1 input, got %d", len(inputs))
	}
	p, err := s.bind(inputs[0])
	if err != nil {
		return nil, err
	}
	return p.out, nil
}

// New creates the operator of one subtask.
func (s *Spec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	if len(t.Inputs) != 1 {
		return nil, fmt.Errorf("agg: want 1 input, got %d", len(t.Inputs))
	}
	p, err := s.bind(t.Inputs[0])
	if err != nil {
		return nil, err
	}
	o, err := newOperator(p, t.Mem)
	if err != nil {
		return nil, err
	}
	o.task = t
	return o, nil
}

// plan is an aggregate bound to its input schema.
type plan struct {
	opts   Options
	in     *arrow.Schema
	keyIdx []int
	aggs   []boundAgg
	out    *arrow.Schema
	used   []int // every input column read: keys and aggregate inputs
}

// boundAgg is one aggregate with resolved input columns and types.
type boundAgg struct {
	Agg
	cols []int          // input columns: none for count(*), 2 for Final avg
	typ  arrow.DataType // type of the value column (Single/Partial) or of the state (Final)
	typ2 arrow.DataType // type of the second column (arg_max, first, ...), if any
	out  []arrow.Field  // output fields of this aggregate in plan's mode
}

// columnIndex finds a column by name; its errors are wrapped by callers.
func columnIndex(sc *arrow.Schema, name string) (int, error) {
	idx := sc.FieldIndices(name)
	if len(idx) == 0 {
		names := make([]string, sc.NumFields())
		for i, f := range sc.Fields() {
			names[i] = f.Name
		}
		return -1, fmt.Errorf("unknown column %q (available: %s)", name, strings.Join(names, ", "))
	}
	if len(idx) > 1 {
		return -1, fmt.Errorf("ambiguous column %q (%d columns have that name)", name, len(idx))
	}
	return idx[0], nil
}

func isInteger(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return true
	}
	return false
}

func isFloat(dt arrow.DataType) bool {
	return dt.ID() == arrow.FLOAT32 || dt.ID() == arrow.FLOAT64
}

// isKeyType reports whether dt can be a group-by key or a count_distinct input.
func isKeyType(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.BOOL, arrow.STRING, arrow.BINARY, arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64:
		return true
	}
	return isInteger(dt) || isFloat(dt)
}

// sumType is the type of sum (and of avg's running sum) over dt.
func sumType(dt arrow.DataType) arrow.DataType {
	if isDecimal(dt) {
		return decSumType(dt)
	}
	if isFloat(dt) {
		return arrow.PrimitiveTypes.Float64
	}
	return arrow.PrimitiveTypes.Int64
}

func (s *Spec) bind(in *arrow.Schema) (*plan, error) {
	if in == nil {
		return nil, errors.New("agg: nil input schema")
	}
	p := &plan{opts: s.opts, in: in}
	var fields []arrow.Field
	for _, k := range s.opts.GroupBy {
		i, err := columnIndex(in, k)
		if err != nil {
			return nil, fmt.Errorf("agg: group by: %w", err)
		}
		f := in.Field(i)
		if !isKeyType(f.Type) {
			return nil, fmt.Errorf("agg: cannot group by column %q of type %s", k, f.Type)
		}
		p.keyIdx = append(p.keyIdx, i)
		fields = append(fields, arrow.Field{Name: f.Name, Type: f.Type, Nullable: f.Nullable})
	}
	for _, a := range s.opts.Aggs {
		var (
			ba  boundAgg
			err error
		)
		if s.opts.Mode == Final {
			ba, err = bindFinal(in, a)
		} else {
			ba, err = bindInput(in, a, s.opts.Mode)
		}
		if err != nil {
			return nil, err
		}
		p.aggs = append(p.aggs, ba)
		fields = append(fields, ba.out...)
	}
	p.out = arrow.NewSchema(fields, nil)
	p.used = append(p.used, p.keyIdx...)
	for _, a := range p.aggs {
		p.used = append(p.used, a.cols...)
	}
	return p, nil
}

// bindInput binds an aggregate over raw input rows (Single, Partial).
func bindInput(in *arrow.Schema, a Agg, m Mode) (boundAgg, error) {
	ba := boundAgg{Agg: a}
	name := a.Name()
	if a.Func == Count && a.star() {
		ba.out = []arrow.Field{{Name: name, Type: arrow.PrimitiveTypes.Int64}}
		return ba, nil
	}
	i, err := columnIndex(in, a.Column)
	if err != nil {
		return ba, fmt.Errorf("agg: %s: %w", name, err)
	}
	ba.cols = []int{i}
	dt := in.Field(i).Type
	ba.typ = dt
	out, err := ResultType(a, dt)
	if err != nil {
		return ba, fmt.Errorf("agg: %w", err)
	}
	if j, err := bindSecond(in, a); err != nil {
		return ba, fmt.Errorf("agg: %w", err)
	} else if j >= 0 {
		ba.cols, ba.typ2 = append(ba.cols, j), in.Field(j).Type
	}
	ba.out = []arrow.Field{{Name: name, Type: out, Nullable: a.Func != Count && a.Func != CountDistinct && a.Func != ApproxDistinct}}
	if m == Partial {
		switch a.Func {
		case Avg:
			ba.out = []arrow.Field{
				{Name: name + ".sum", Type: sumType(dt)},
				{Name: name + ".count", Type: arrow.PrimitiveTypes.Int64},
			}
		case ApproxDistinct:
			ba.out = []arrow.Field{{Name: name, Type: arrow.BinaryTypes.Binary}}
		case VarSamp, VarPop, StddevSamp, StddevPop:
			ba.out = []arrow.Field{
				{Name: name + ".n", Type: arrow.PrimitiveTypes.Int64},
				{Name: name + ".mean", Type: arrow.PrimitiveTypes.Float64},
				{Name: name + ".m2", Type: arrow.PrimitiveTypes.Float64},
			}
		}
	}
	return ba, nil
}

// bindFinal binds an aggregate over the state columns of Partial operators.
func bindFinal(in *arrow.Schema, a Agg) (boundAgg, error) {
	ba := boundAgg{Agg: a}
	name := a.Name()
	state := func(col string, ok func(arrow.DataType) bool, want string) (int, arrow.DataType, error) {
		i, err := columnIndex(in, col)
		if err != nil {
			return -1, nil, fmt.Errorf("agg: final %s: partial state: %w", name, err)
		}
		dt := in.Field(i).Type
		if !ok(dt) {
			return -1, nil, fmt.Errorf("agg: final %s: partial state column %q has type %s, want %s", name, col, dt, want)
		}
		return i, dt, nil
	}
	isI64 := func(dt arrow.DataType) bool { return dt.ID() == arrow.INT64 }
	isSum := func(dt arrow.DataType) bool {
		return dt.ID() == arrow.INT64 || dt.ID() == arrow.FLOAT64 || isDecimal(dt)
	}
	switch a.Func {
	case Count:
		i, _, err := state(name, isI64, "int64")
		if err != nil {
			return ba, err
		}
		ba.cols, ba.typ = []int{i}, arrow.PrimitiveTypes.Int64
		ba.out = []arrow.Field{{Name: name, Type: arrow.PrimitiveTypes.Int64}}
	case Sum:
		i, dt, err := state(name, isSum, "int64, float64 or decimal")
		if err != nil {
			return ba, err
		}
		ba.cols, ba.typ = []int{i}, dt
		ba.out = []arrow.Field{{Name: name, Type: dt, Nullable: true}}
	case VarSamp, VarPop, StddevSamp, StddevPop:
		isF64 := func(dt arrow.DataType) bool { return dt.ID() == arrow.FLOAT64 }
		i, _, err := state(name+".n", isI64, "int64")
		if err != nil {
			return ba, err
		}
		j, _, err := state(name+".mean", isF64, "float64")
		if err != nil {
			return ba, err
		}
		k, _, err := state(name+".m2", isF64, "float64")
		if err != nil {
			return ba, err
		}
		ba.cols, ba.typ = []int{i, j, k}, arrow.PrimitiveTypes.Float64
		ba.out = []arrow.Field{{Name: name, Type: arrow.PrimitiveTypes.Float64, Nullable: true}}
	case BoolAnd, BoolOr:
		i, dt, err := state(name, isBool, "bool")
		if err != nil {
			return ba, err
		}
		ba.cols, ba.typ = []int{i}, dt
		ba.out = []arrow.Field{{Name: name, Type: dt, Nullable: true}}
	case Min, Max:
		i, dt, err := state(name, isMinMaxType, "a numeric, decimal, boolean, string, binary or temporal type")
		if err != nil {
			return ba, err
		}
		ba.cols, ba.typ = []int{i}, dt
		ba.out = []arrow.Field{{Name: name, Type: dt, Nullable: true}}
	case Avg:
		i, dt, err := state(name+".sum", isSum, "int64, float64 or decimal")
		if err != nil {
			return ba, err
		}
		j, _, err := state(name+".count", isI64, "int64")
		if err != nil {
			return ba, err
		}
		ba.cols, ba.typ = []int{i, j}, dt
		ba.out = []arrow.Field{{Name: name, Type: arrow.PrimitiveTypes.Float64, Nullable: true}}
	case ApproxDistinct:
		isBin := func(dt arrow.DataType) bool { return dt.ID() == arrow.BINARY }
		i, dt, err := state(name, isBin, "binary (sketches)")
		if err != nil {
			return ba, err
		}
		ba.cols, ba.typ = []int{i}, dt
		ba.out = []arrow.Field{{Name: name, Type: arrow.PrimitiveTypes.Int64}}
	default:
		return ba, fmt.Errorf("agg: %s cannot run in final mode", name)
	}
	return ba, nil
}
