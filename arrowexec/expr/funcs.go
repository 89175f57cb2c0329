package expr

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// function is an entry of the function table: how many arguments a call
// takes and how its bound arguments become a node. Parse checks the name and
// the arity; Bind checks them again (for trees built in Go) and then calls
// bind with the call's arguments already bound, in order. A function with
// rewrite is instead bound as the expression rewrite returns (IF and NULLIF
// are CASE expressions).
type function struct {
	minArgs int
	maxArgs int // -1: any number
	bind    func(e *CallExpr, args []node) (node, error)
	rewrite func(e *CallExpr) Expr
}

// functions maps lower-case names to their entries. starts_with is parsed
// to its own node (StartsWithExpr), as its second argument must be a string
// literal; `a || b` is the call "||".
var functions map[string]*function

func init() {
	functions = map[string]*function{
		"coalesce": {minArgs: 1, maxArgs: -1, bind: bindCoalesce},
		"if":       {minArgs: 3, maxArgs: 3, rewrite: rewriteIf},
		"nullif":   {minArgs: 2, maxArgs: 2, rewrite: rewriteNullif},
		"hash":     {minArgs: 1, maxArgs: -1, bind: bindHash},
	}
	for name, f := range mathFunctions {
		functions[name] = f
	}
	for name, f := range stringFunctions {
		functions[name] = f
	}
	for name, f := range timeFunctions {
		functions[name] = f
	}
}

// functionList names every callable function, sorted, for error messages.
func functionList() string {
	names := []string{"starts_with", "extract"}
	for n := range functions {
		if n != "||" && n != "like" && n != "ilike" { // operators
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (f *function) checkArity(n int) error {
	plural := func(k int) string {
		if k == 1 {
			return "1 argument"
		}
		return fmt.Sprintf("%d arguments", k)
	}
	switch {
	case f.maxArgs < 0 && n < f.minArgs:
		return fmt.Errorf("needs at least %s, got %d", plural(f.minArgs), n)
	case f.maxArgs >= 0 && f.minArgs == f.maxArgs && n != f.minArgs:
		return fmt.Errorf("needs %s, got %d", plural(f.minArgs), n)
	case f.maxArgs >= 0 && (n < f.minArgs || n > f.maxArgs):
		return fmt.Errorf("needs %d to %d arguments, got %d", f.minArgs, f.maxArgs, n)
	}
	return nil
}

func (b *binder) bindCall(x *CallExpr) (node, error) {
	f, ok := functions[lower(x.Name)]
	if !ok {
		return nil, errorf("unknown function %q (known: %s)", x.Name, functionList())
	}
	if err := f.checkArity(len(x.Args)); err != nil {
		return nil, errorf("%s %v", lower(x.Name), err)
	}
	for i, a := range x.Args {
		if a == nil {
			return nil, errorf("%s argument %d: nil expression", lower(x.Name), i+1)
		}
	}
	if f.rewrite != nil {
		return b.bind(f.rewrite(x))
	}
	args := make([]node, len(x.Args))
	for i, a := range x.Args {
		n, err := b.bind(a)
		if err != nil {
			return nil, err
		}
		args[i] = n
	}
	return f.bind(x, args)
}

// IF(c, a, b) is CASE WHEN c THEN a ELSE b END.
func rewriteIf(e *CallExpr) Expr {
	return &CaseExpr{Whens: []When{{Cond: e.Args[0], Then: e.Args[1]}}, Else: e.Args[2]}
}

// NULLIF(a, b) is CASE WHEN a = b THEN NULL ELSE a END.
func rewriteNullif(e *CallExpr) Expr {
	return &CaseExpr{Whens: []When{{Cond: Eq(e.Args[0], e.Args[1]), Then: Lit(nil)}}, Else: e.Args[0]}
}

// fnNode is a call of a library function: its array arguments are
// evaluated and handed to run, a kernel chosen at bind time for their
// types (constant arguments a kernel needs as values, such as a regular
// expression or a date_trunc unit, are taken at bind time and are not in
// args). run owns nothing it is given and returns an array of c.n rows.
type fnNode struct {
	name string
	t    arrow.DataType
	args []node
	run  func(c *evalCtx, in []arrow.Array) (arrow.Array, error)
}

func (n *fnNode) dataType() arrow.DataType { return n.t }

func (n *fnNode) eval(c *evalCtx) (arrow.Array, error) {
	in := make([]arrow.Array, 0, len(n.args))
	defer func() {
		for _, a := range in {
			a.Release()
		}
	}()
	for _, a := range n.args {
		arr, err := a.eval(c)
		if err != nil {
			return nil, err
		}
		in = append(in, arr)
	}
	return n.run(c, in)
}

// argError is a bind-time error about argument i (0-based) of a call.
func argError(e *CallExpr, i int, n node, format string, args ...any) error {
	return errorf("%s argument %d (%s): %s", e.Name, i+1, describe(e.Args[i], n.dataType()), fmt.Sprintf(format, args...))
}

// constArg returns argument i when it is a constant (after folding), or an
// error saying that it must be one.
func constArg(e *CallExpr, args []node, i int, what string) (*scalar, error) {
	c, ok := args[i].(*constNode)
	if !ok {
		return nil, argError(e, i, args[i], "must be a constant %s", what)
	}
	return &c.v, nil
}

// constString returns argument i as a constant, non-NULL string.
func constString(e *CallExpr, args []node, i int) (string, bool, error) {
	c, err := constArg(e, args, i, "string")
	if err != nil {
		return "", false, err
	}
	if c.null {
		return "", true, nil
	}
	if !c.k.isString() {
		return "", false, argError(e, i, args[i], "must be a string")
	}
	return c.s, false, nil
}

// nullOf is the NULL constant of type t: the value of a call with a NULL
// constant argument where SQL gives NULL.
func nullOf(t arrow.DataType) node {
	return &constNode{v: scalar{t: t, k: kindOf(t), null: true}}
}
