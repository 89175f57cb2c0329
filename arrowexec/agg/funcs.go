package agg

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec/expr"
)

// The aggregate library: the functions the aggregate step (this package)
// and the window step (package windows) compute, their names, arities and
// type rules, in one table; and the parser of aggregate calls, on top of
// the expression parser (expr.ParseAggCall). Both steps bind their
// aggregates through ResultType, so a function and its types are the same
// in both.

// funcInfo describes one aggregate function.
type funcInfo struct {
	// star: the function takes * (count(*)).
	star bool
	// decomposable: Partial and Final modes exist for it.
	decomposable bool
	// in says which argument types the function takes; out gives the
	// result type for an accepted argument type.
	in   func(arrow.DataType) bool
	want string // in, for error messages
	out  func(arrow.DataType) arrow.DataType
	// second says what a second argument is (secondNone: there is none);
	// in2 and want2 check a second column's type.
	second secondArg
	in2    func(arrow.DataType) bool
	want2  string
	// keepsNulls: NULL arguments are values (list), so FILTER cannot be
	// lowered to a NULL argument.
	keepsNulls bool
}

func anyType(arrow.DataType) bool                { return true }
func same(dt arrow.DataType) arrow.DataType      { return dt }
func isNumeric(dt arrow.DataType) bool           { return isInteger(dt) || isFloat(dt) }
func isBool(dt arrow.DataType) bool              { return dt.ID() == arrow.BOOL }
func toInt64(arrow.DataType) arrow.DataType      { return i64 }
func toFloat(arrow.DataType) arrow.DataType      { return arrow.PrimitiveTypes.Float64 }
func toBool(arrow.DataType) arrow.DataType       { return arrow.FixedWidthTypes.Boolean }
func toSumType(dt arrow.DataType) arrow.DataType { return sumType(dt) }

var funcs = map[Func]funcInfo{
	Count:          {star: true, decomposable: true, in: anyType, out: toInt64},
	Sum:            {decomposable: true, in: isSummable, want: "an integer or floating-point (or decimal) column", out: toSumType},
	Avg:            {decomposable: true, in: isSummable, want: "an integer or floating-point (or decimal) column", out: toFloat},
	Min:            {decomposable: true, in: isMinMaxType, want: "a numeric, decimal, boolean, string, binary or temporal column", out: valueOut},
	Max:            {decomposable: true, in: isMinMaxType, want: "a numeric, decimal, boolean, string, binary or temporal column", out: valueOut},
	CountDistinct:  {in: isValueType, want: "a numeric, boolean, string, binary or temporal column", out: toInt64},
	ApproxDistinct: {decomposable: true, in: isKeyType, want: "a numeric, boolean, string, binary or temporal column", out: toInt64},
	VarSamp:        {decomposable: true, in: isNumeric, want: "an integer or floating-point column", out: toFloat},
	VarPop:         {decomposable: true, in: isNumeric, want: "an integer or floating-point column", out: toFloat},
	StddevSamp:     {decomposable: true, in: isNumeric, want: "an integer or floating-point column", out: toFloat},
	StddevPop:      {decomposable: true, in: isNumeric, want: "an integer or floating-point column", out: toFloat},
	BoolAnd:        {decomposable: true, in: isBool, want: "a boolean column", out: toBool},
	BoolOr:         {decomposable: true, in: isBool, want: "a boolean column", out: toBool},
	// collect.go: exact quantiles, arg_max and friends, list.
	Median:   {in: isNumeric, want: "an integer or floating-point column", out: toFloat},
	Quantile: {in: isNumeric, want: "an integer or floating-point column", out: toFloat, second: secondConst},
	ArgMax:   {in: isKeyType, want: keyWant, out: same, second: secondColumn, in2: isKeyType, want2: keyWant},
	ArgMin:   {in: isKeyType, want: keyWant, out: same, second: secondColumn, in2: isKeyType, want2: keyWant},
	First:    {in: isKeyType, want: keyWant, out: same, second: secondOptional, in2: isKeyType, want2: keyWant},
	Last:     {in: isKeyType, want: keyWant, out: same, second: secondOptional, in2: isKeyType, want2: keyWant},
	List:     {in: isKeyType, want: keyWant, out: toList, keepsNulls: true},
}

const keyWant = "a numeric, boolean, string, binary or temporal column"

func toList(dt arrow.DataType) arrow.DataType { return arrow.ListOf(dt) }

// secondArg is the kind of a function's second argument.
type secondArg uint8

const (
	secondNone     secondArg = iota
	secondConst              // a constant in [0, 1]: quantile's q (Agg.Param)
	secondColumn             // a column or expression (Agg.Column2)
	secondOptional           // a column or expression, or none (first, last: the window's time)
)

// aliases are other names of functions (SQL spellings).
var aliases = map[string]Func{"variance": VarSamp, "stddev": StddevSamp, "quantile_cont": Quantile,
	"argmax": ArgMax, "argmin": ArgMin, "max_by": ArgMax, "min_by": ArgMin, "array_agg": List}

func isVariance(f Func) bool {
	return f == VarSamp || f == VarPop || f == StddevSamp || f == StddevPop
}

// lookup returns the function named name (lower case), aliases resolved.
func lookup(name string) (Func, funcInfo, bool) {
	f := Func(name)
	if a, ok := aliases[name]; ok {
		f = a
	}
	fi, ok := funcs[f]
	return f, fi, ok
}

// FuncList names every aggregate function, sorted, for error messages.
func FuncList() string {
	var names []string
	for f := range funcs {
		names = append(names, string(f))
	}
	for a := range aliases {
		names = append(names, a)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Check reports whether a names a known function with the arguments it
// needs (without an input schema).
func (a Agg) Check() error {
	fi, ok := funcs[a.Func]
	if !ok {
		return fmt.Errorf("unknown aggregate function %q (want one of %s)", a.Func, FuncList())
	}
	if a.star() && !fi.star {
		return fmt.Errorf("%s needs a column", a.Func)
	}
	return a.checkSecond(fi)
}

// ResultType type-checks a over an input column of type dt (nil for
// count(*)) and returns the type of its result: the one rule both steps
// use.
func ResultType(a Agg, dt arrow.DataType) (arrow.DataType, error) {
	if err := a.Check(); err != nil {
		return nil, err
	}
	fi := funcs[a.Func]
	if dt == nil {
		return fi.out(nil), nil
	}
	if !fi.in(dt) {
		return nil, fmt.Errorf("%s: cannot take %s of column %q of type %s: %s needs %s", a.Name(), a.Func, a.Column, dt, a.Func, fi.want)
	}
	return fi.out(dt), nil
}

// Call is a parsed aggregate call: Func over the argument expression Arg
// (nil for count(*)), of the rows where Filter is TRUE (nil: all), named As.
type Call struct {
	Func Func
	Arg  expr.Expr
	// Arg2 is the second argument of arg_max, arg_min, first and last (the
	// value ordering the rows); nil for the others, and for first and last
	// in the window step (its time column).
	Arg2 expr.Expr
	// Param is quantile's q (median: 0.5).
	Param  float64
	Filter expr.Expr
	// As is the alias; "" derives the name (Name).
	As string
}

// Name returns the output column name: the alias, else the call's text
// (sum(x), count(*), sum(price * qty), count(*) FILTER (WHERE x > 1)).
func (c Call) Name() string {
	if c.As != "" {
		return c.As
	}
	var sb strings.Builder
	sb.WriteString(string(c.Func))
	sb.WriteByte('(')
	writeArg := func(e expr.Expr) {
		switch col, ok := e.(*expr.ColumnRef); {
		case e == nil:
			sb.WriteByte('*')
		case ok:
			sb.WriteString(col.Name)
		default:
			sb.WriteString(e.String())
		}
	}
	writeArg(c.Arg)
	if c.Arg2 != nil {
		sb.WriteString(", ")
		writeArg(c.Arg2)
	}
	if c.Func == Quantile {
		sb.WriteString(", ")
		sb.WriteString(formatParam(c.Param))
	}
	sb.WriteByte(')')
	if c.Filter != nil {
		sb.WriteString(" FILTER (WHERE ")
		sb.WriteString(c.Filter.String())
		sb.WriteByte(')')
	}
	return sb.String()
}

// Column returns the argument's column name when it is a plain column
// reference ("*" for none), and false for a computed argument.
func (c Call) Column() (string, bool) {
	if c.Arg == nil {
		return "*", true
	}
	if col, ok := c.Arg.(*expr.ColumnRef); ok {
		return col.Name, true
	}
	return "", false
}

// ParseCall parses an aggregate call, e.g. "sum(price * qty) AS revenue",
// "count(*) FILTER (WHERE status = 'ok')" or "approx_distinct(user_id)",
// and checks the function and its arity.
func ParseCall(s string) (Call, error) {
	pc, err := expr.ParseAggCall(s)
	if err != nil {
		return Call{}, fmt.Errorf("aggregate %q: %w", s, err)
	}
	f, fi, ok := lookup(pc.Name)
	if !ok {
		return Call{}, fmt.Errorf("aggregate %q: unknown aggregate function %q (want one of %s)", s, pc.Name, FuncList())
	}
	c := Call{Func: f, Filter: pc.Filter, As: pc.As}
	switch {
	case pc.Star:
		if !fi.star {
			return Call{}, fmt.Errorf("aggregate %q: %s takes a column or expression, not *", s, f)
		}
	case len(pc.Args) == 0:
		return Call{}, fmt.Errorf("aggregate %q: %s needs an argument", s, f)
	default:
		if err := c.setArgs(fi, pc.Args); err != nil {
			return Call{}, fmt.Errorf("aggregate %q: %w", s, err)
		}
	}
	if c.Filter != nil && fi.keepsNulls {
		return Call{}, fmt.Errorf("aggregate %q: %s keeps NULL values, so it takes no FILTER (WHERE …); filter the rows in a filter step before", s, f)
	}
	return c, nil
}

// ParseAgg parses an aggregate of a plain column, "func(column) [AS
// name]" (ParseCall for the general form), e.g. "count(*) AS n".
func ParseAgg(s string) (Agg, error) {
	c, err := ParseCall(s)
	if err != nil {
		return Agg{}, err
	}
	col, ok := c.Column()
	if !ok || c.Filter != nil {
		return Agg{}, fmt.Errorf("aggregate %q: want a plain column argument and no FILTER here", s)
	}
	return Agg{Func: c.Func, Column: col, As: c.As}, nil
}
