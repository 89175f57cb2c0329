package agg

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec/expr"
)

// Second arguments: quantile's constant q, and the ordering column of
// arg_max, arg_min, first and last (funcInfo.second).

// setArgs sets the arguments of a call of a function described by fi.
func (c *Call) setArgs(fi funcInfo, args []expr.Expr) error {
	c.Arg = args[0]
	switch {
	case c.Func == Median:
		c.Param = 0.5
		if len(args) != 1 {
			return fmt.Errorf("median takes 1 argument, got %d (quantile(x, q) for other quantiles)", len(args))
		}
	case fi.second == secondNone:
		if len(args) != 1 {
			return fmt.Errorf("%s takes 1 argument, got %d", c.Func, len(args))
		}
	case fi.second == secondConst:
		if len(args) != 2 {
			return fmt.Errorf("%s takes 2 arguments (%s(x, q), q a constant in [0, 1]), got %d", c.Func, c.Func, len(args))
		}
		q, ok := constFloat(args[1])
		if !ok {
			return fmt.Errorf("%s: q must be a numeric constant in [0, 1], not %s", c.Func, args[1])
		}
		if !(q >= 0 && q <= 1) {
			return fmt.Errorf("%s: q = %s is outside [0, 1]", c.Func, formatParam(q))
		}
		c.Param = q
	case fi.second == secondColumn && len(args) != 2:
		return fmt.Errorf("%s takes 2 arguments (%s(x, y)), got %d", c.Func, c.Func, len(args))
	case len(args) > 2:
		return fmt.Errorf("%s takes 1 or 2 arguments (%s(x, t)), got %d", c.Func, c.Func, len(args))
	case len(args) == 2:
		c.Arg2 = args[1]
	}
	return nil
}

// constFloat returns the value of a numeric literal (a negated one too).
func constFloat(e expr.Expr) (float64, bool) {
	if l, ok := e.(*expr.Literal); ok {
		switch v := l.Value.(type) {
		case int64:
			return float64(v), true
		case float64:
			return v, true
		}
	}
	if u, ok := e.(*expr.NegExpr); ok {
		if v, ok := constFloat(u.X); ok {
			return -v, true
		}
	}
	return 0, false
}

func formatParam(q float64) string { return strconv.FormatFloat(q, 'g', -1, 64) }

// Column2 returns the second argument's column name when it is a plain
// column reference ("" for none), and false for a computed one.
func (c Call) Column2() (string, bool) {
	if c.Arg2 == nil {
		return "", true
	}
	if col, ok := c.Arg2.(*expr.ColumnRef); ok {
		return col.Name, true
	}
	return "", false
}

// NeedsOrder reports whether c is first or last without its ordering
// column, which the window step supplies (its time column) and the
// aggregate step cannot.
func (c Call) NeedsOrder() bool {
	return (c.Func == First || c.Func == Last) && c.Arg2 == nil
}

// checkSecond checks a's second argument.
func (a Agg) checkSecond(fi funcInfo) error {
	switch fi.second {
	case secondConst:
		if !(a.Param >= 0 && a.Param <= 1) {
			return fmt.Errorf("%s: q = %s is outside [0, 1]", a.Func, formatParam(a.Param))
		}
	case secondColumn:
		if a.Column2 == "" {
			return fmt.Errorf("%s needs two columns: %s(x, y)", a.Func, a.Func)
		}
	case secondNone:
		if a.Column2 != "" {
			return fmt.Errorf("%s takes one column", a.Func)
		}
	}
	return nil
}

// bindSecond resolves and type-checks a's second column: its index, -1
// without one. first and last need it here (the aggregate step).
func bindSecond(in *arrow.Schema, a Agg) (int, error) {
	fi := funcs[a.Func]
	if fi.second == secondOptional && a.Column2 == "" {
		return -1, fmt.Errorf("%s: %s(x) needs the column ordering the rows in the aggregate step: %s(x, t) is x of the row with the %s t", a.Name(), a.Func, a.Func, map[Func]string{First: "least", Last: "greatest"}[a.Func])
	}
	if a.Column2 == "" {
		return -1, nil
	}
	j, err := columnIndex(in, a.Column2)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", a.Name(), err)
	}
	if err := CheckSecondType(a, in.Field(j).Type); err != nil {
		return -1, err
	}
	return j, nil
}

// CheckSecondType type-checks a's second column, of type dt.
func CheckSecondType(a Agg, dt arrow.DataType) error {
	fi := funcs[a.Func]
	if fi.in2 != nil && !fi.in2(dt) {
		return fmt.Errorf("%s: cannot order %s by column %q of type %s: %s needs %s", a.Name(), a.Func, a.Column2, dt, a.Func, fi.want2)
	}
	return nil
}
