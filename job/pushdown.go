package job

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/sources/parquet"
)

// pushStringFilters moves string comparisons with constants out of the
// filter steps that read the source directly (the leading ones) into the
// Parquet scan, which evaluates them on dictionary entries and never
// materializes the rows they drop. Pushed conjuncts are removed from their
// step (a step left empty keeps a TRUE predicate, so step numbers and
// messages do not change); a column used only by pushed conjuncts is then
// not projected at all.
//
// Pushed: `col = 'x'`, `col != 'x'`, `col IN ('x', ...)` and
// `NOT (col IN (...))` over a string column, NULL literals excluded; all
// drop NULL values, as the scan does.
func pushStringFilters(steps []Step, full *arrow.Schema) ([]Step, []parquet.StringFilter) {
	var filters []parquet.StringFilter
	out := append([]Step(nil), steps...)
	for i := range out {
		if out[i].Kind != StepFilter {
			break
		}
		var rest []expr.Expr
		for _, c := range conjuncts(out[i].Filter) {
			if f, ok := stringFilter(c, full); ok {
				filters = append(filters, f)
			} else {
				rest = append(rest, c)
			}
		}
		if len(rest) == 0 {
			out[i].Filter = expr.Lit(true)
		} else {
			out[i].Filter = expr.And(rest...)
		}
	}
	return out, filters
}

// conjuncts splits e at its top-level ANDs.
func conjuncts(e expr.Expr) []expr.Expr {
	if b, ok := e.(*expr.BinaryExpr); ok && b.Op == expr.OpAnd {
		return append(conjuncts(b.L), conjuncts(b.R)...)
	}
	return []expr.Expr{e}
}

func stringFilter(e expr.Expr, full *arrow.Schema) (parquet.StringFilter, bool) {
	isString := func(x expr.Expr) (string, bool) {
		ref, ok := x.(*expr.ColumnRef)
		if !ok {
			return "", false
		}
		idx := full.FieldIndices(ref.Name)
		return ref.Name, len(idx) == 1 && full.Field(idx[0]).Type.ID() == arrow.STRING
	}
	lit := func(x expr.Expr) (string, bool) {
		l, ok := x.(*expr.Literal)
		if !ok {
			return "", false
		}
		s, ok := l.Value.(string)
		return s, ok
	}
	switch x := e.(type) {
	case *expr.BinaryExpr:
		if x.Op != expr.OpEq && x.Op != expr.OpNe {
			return parquet.StringFilter{}, false
		}
		col, ok := isString(x.L)
		v, ok2 := lit(x.R)
		if !ok || !ok2 {
			col, ok = isString(x.R)
			v, ok2 = lit(x.L)
		}
		if ok && ok2 {
			return parquet.StringFilter{Column: col, Values: []string{v}, Not: x.Op == expr.OpNe}, true
		}
	case *expr.InExpr:
		return inFilter(x, false, isString, lit)
	case *expr.NotExpr:
		if in, ok := x.X.(*expr.InExpr); ok {
			return inFilter(in, true, isString, lit)
		}
	}
	return parquet.StringFilter{}, false
}

func inFilter(in *expr.InExpr, not bool, isString func(expr.Expr) (string, bool), lit func(expr.Expr) (string, bool)) (parquet.StringFilter, bool) {
	col, ok := isString(in.X)
	if !ok {
		return parquet.StringFilter{}, false
	}
	f := parquet.StringFilter{Column: col, Not: not}
	for _, l := range in.List {
		v, ok := lit(l)
		if !ok {
			return parquet.StringFilter{}, false // NULL or a non-string literal
		}
		f.Values = append(f.Values, v)
	}
	return f, true
}
