package expr

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Columns returns the names of the columns e references, each once, in
// order of first appearance: the projection a scan needs to evaluate e.
func Columns(e Expr) []string {
	var out []string
	seen := map[string]bool{}
	walk(e, func(x Expr) {
		if c, ok := x.(*ColumnRef); ok && !seen[c.Name] {
			seen[c.Name] = true
			out = append(out, c.Name)
		}
	})
	return out
}

func walk(e Expr, f func(Expr)) {
	f(e)
	switch x := e.(type) {
	case *BinaryExpr:
		walk(x.L, f)
		walk(x.R, f)
	case *NotExpr:
		walk(x.X, f)
	case *NegExpr:
		walk(x.X, f)
	case *IsNullExpr:
		walk(x.X, f)
	case *InExpr:
		walk(x.X, f)
	case *StartsWithExpr:
		walk(x.X, f)
	case *CastExpr:
		walk(x.X, f)
	case *CaseExpr:
		if x.Operand != nil {
			walk(x.Operand, f)
		}
		for _, w := range x.Whens {
			walk(w.Cond, f)
			walk(w.Then, f)
		}
		if x.Else != nil {
			walk(x.Else, f)
		}
	case *CallExpr:
		for _, a := range x.Args {
			walk(a, f)
		}
	}
}

// Predicate is a comparison of a column with a constant that a scan can test
// against column statistics (Parquet row-group min/max) to skip data.
type Predicate struct {
	Column string
	// Op is one of "=", "<", "<=", ">", ">=".
	Op string
	// Value is int64, float64, string, bool or time.Time (timestamp
	// literals; date literals as midnight UTC).
	Value any
}

// PushdownPredicates returns the top-level AND conjuncts of e that have the
// form `column op literal` (or `literal op column`, flipped), plus the range
// implied by `starts_with(column, 'p')` and single-element IN lists. It is
// conservative: every returned predicate is implied by e, so rows that fail
// one can be skipped; other conjuncts are left out. A row group whose
// statistics rule out any returned predicate has no row where e is TRUE.
// Values are the literals as written: the caller must compare them with the
// column's statistics under the column's type.
func PushdownPredicates(e Expr) []Predicate {
	var out []Predicate
	var conj func(Expr)
	conj = func(e Expr) {
		switch x := e.(type) {
		case *BinaryExpr:
			if x.Op == OpAnd {
				conj(x.L)
				conj(x.R)
				return
			}
			if !x.Op.isCmp() || x.Op == OpNe {
				return
			}
			col, lc := x.L.(*ColumnRef)
			lit, rl := x.R.(*Literal)
			op := x.Op
			if !lc || !rl {
				col, lc = x.R.(*ColumnRef)
				lit, rl = x.L.(*Literal)
				op = op.flip()
			}
			if !lc || !rl {
				return
			}
			if v, ok := predValue(lit); ok {
				out = append(out, Predicate{Column: col.Name, Op: op.String(), Value: v})
			}
		case *InExpr:
			col, ok := x.X.(*ColumnRef)
			if ok && len(x.List) == 1 {
				if v, ok := predValue(x.List[0]); ok {
					out = append(out, Predicate{Column: col.Name, Op: "=", Value: v})
				}
			}
		case *StartsWithExpr:
			col, ok := x.X.(*ColumnRef)
			if !ok || x.Prefix == "" {
				return
			}
			out = append(out, Predicate{Column: col.Name, Op: ">=", Value: x.Prefix})
			// Every string with the prefix sorts below the prefix with its
			// last byte incremented (bytewise order), when that exists.
			p := []byte(x.Prefix)
			for i := len(p) - 1; i >= 0; i-- {
				if p[i] < 0xFF {
					p[i]++
					out = append(out, Predicate{Column: col.Name, Op: "<", Value: string(p[:i+1])})
					break
				}
			}
		}
	}
	conj(e)
	return out
}

func predValue(l *Literal) (any, bool) {
	switch v := l.Value.(type) {
	case int64, float64, string, bool:
		return v, true
	case time.Time:
		return v, true
	case arrow.Date32:
		return v.ToTime(), true
	}
	return nil, false
}
