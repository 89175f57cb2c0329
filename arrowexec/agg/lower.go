package agg

import (
	"fmt"

	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/arrowexec/ops"
)

// Key is a group-by item (or a window key): an expression, named As.
type Key struct {
	Expr expr.Expr
	// As is the alias; "" derives the name (Name).
	As string
}

// ParseKey parses a group-by item, `expr [AS name]`, e.g. "item_id" or
// "date_trunc('day', ts) AS day".
func ParseKey(s string) (Key, error) {
	e, as, err := expr.ParseNamed(s)
	if err != nil {
		return Key{}, fmt.Errorf("group by %q: %w", s, err)
	}
	return Key{Expr: e, As: as}, nil
}

// Name returns the key's output column name: the alias, else a column's
// own name, else the expression's text (as DuckDB names it).
func (k Key) Name() string {
	if k.As != "" {
		return k.As
	}
	if c, ok := k.Expr.(*expr.ColumnRef); ok {
		return c.Name
	}
	return k.Expr.String()
}

// Lowered is a step's keys and aggregate calls brought to plain columns:
// Pre, when not nil, are the columns of a projection the planner puts in
// front of the step (computed keys, computed or filtered aggregate
// arguments, and the plain columns the step reads); Keys and Aggs then
// name columns of its output. Without expressions and FILTER, Pre is nil
// and the step reads its input as it is (no projection, no cost).
type Lowered struct {
	Pre  []ops.Column
	Keys []string
	Aggs []Agg
}

// argPrefix names the computed aggregate arguments of a projection; the
// aggregate's output column is named by the call (Call.Name).
const argPrefix = "__agg_arg_"

// Lower brings keys and calls to plain columns; keep names input columns
// the step needs besides them (a window step's event-time column).
//
// A FILTER (WHERE c) becomes the argument CASE WHEN c THEN arg END (for
// count(*): CASE WHEN c THEN 1 END, counted by count), so a row whose
// condition is not TRUE contributes no value, which is SQL's FILTER for
// every function here: they all ignore NULLs.
func Lower(keys []Key, calls []Call, keep []string) (Lowered, error) {
	var l Lowered
	plain := true
	for _, k := range keys {
		if c, ok := k.Expr.(*expr.ColumnRef); !ok || k.As != "" && k.As != c.Name {
			plain = false
		}
	}
	for _, c := range calls {
		if _, ok := c.Column(); !ok || c.Filter != nil {
			plain = false
		}
		if _, ok := c.Column2(); !ok {
			plain = false
		}
	}
	if plain {
		for _, k := range keys {
			l.Keys = append(l.Keys, k.Expr.(*expr.ColumnRef).Name)
		}
		for _, c := range calls {
			col, _ := c.Column()
			col2, _ := c.Column2()
			l.Aggs = append(l.Aggs, Agg{Func: c.Func, Column: col, Column2: col2, Param: c.Param, As: c.As})
		}
		return l, nil
	}
	seen := map[string]expr.Expr{}
	add := func(name string, e expr.Expr) error {
		if prev, ok := seen[name]; ok {
			c1, ok1 := prev.(*expr.ColumnRef)
			c2, ok2 := e.(*expr.ColumnRef)
			if ok1 && ok2 && c1.Name == name && c2.Name == name {
				return nil // the same input column, passed once
			}
			return fmt.Errorf("duplicate column %q (a key's name is also an input column the step reads, or another key's)", name)
		}
		seen[name] = e
		l.Pre = append(l.Pre, ops.Column{Name: name, Expr: e})
		return nil
	}
	for _, k := range keys {
		if err := add(k.Name(), k.Expr); err != nil {
			return l, fmt.Errorf("group by: %w", err)
		}
		l.Keys = append(l.Keys, k.Name())
	}
	for _, n := range keep {
		if err := add(n, expr.Col(n)); err != nil {
			return l, err
		}
	}
	for i, c := range calls {
		col, ok := c.Column()
		col2, ok2 := c.Column2()
		a := Agg{Func: c.Func, Column: col, Column2: col2, Param: c.Param, As: c.As}
		// With a second argument (the ordering value of arg_max, arg_min,
		// first, last), FILTER goes on it: rows without an ordering value
		// are skipped, also where the first argument is NULL.
		filter1 := c.Filter != nil && c.Arg2 == nil
		if !ok || filter1 {
			arg := c.Arg
			if arg == nil {
				arg = expr.Lit(1)
			}
			if filter1 {
				arg = &expr.CaseExpr{Whens: []expr.When{{Cond: c.Filter, Then: arg}}}
			}
			a.Column, a.As = fmt.Sprintf("%s%d", argPrefix, i+1), c.Name()
			if err := add(a.Column, arg); err != nil {
				return l, err
			}
		} else if col != "*" {
			if err := add(col, expr.Col(col)); err != nil {
				return l, err
			}
		}
		if c.Arg2 != nil {
			if !ok2 || c.Filter != nil {
				arg := c.Arg2
				if c.Filter != nil {
					arg = &expr.CaseExpr{Whens: []expr.When{{Cond: c.Filter, Then: arg}}}
				}
				a.Column2, a.As = fmt.Sprintf("%s%d_2", argPrefix, i+1), c.Name()
				if err := add(a.Column2, arg); err != nil {
					return l, err
				}
			} else if err := add(col2, expr.Col(col2)); err != nil {
				return l, err
			}
		}
		l.Aggs = append(l.Aggs, a)
	}
	return l, nil
}

// Columns returns the input columns that keys and calls read.
func Columns(keys []Key, calls []Call) []string {
	var cols []string
	for _, k := range keys {
		cols = append(cols, expr.Columns(k.Expr)...)
	}
	for _, c := range calls {
		if c.Arg != nil {
			cols = append(cols, expr.Columns(c.Arg)...)
		}
		if c.Arg2 != nil {
			cols = append(cols, expr.Columns(c.Arg2)...)
		}
		if c.Filter != nil {
			cols = append(cols, expr.Columns(c.Filter)...)
		}
	}
	return cols
}
