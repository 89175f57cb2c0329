package expr

import (
	"fmt"
	"sort"
	"strings"
)

// function is an entry of the function table: how many arguments a call
// takes and how its bound arguments become a node. Parse checks the name and
// the arity; Bind checks them again (for trees built in Go) and then calls
// bind with the call's arguments already bound, in order.
type function struct {
	minArgs int
	maxArgs int // -1: any number
	bind    func(e *CallExpr, args []node) (node, error)
}

// functions maps lower-case names to their entries. starts_with is parsed
// to its own node (StartsWithExpr), as its second argument must be a string
// literal.
var functions = map[string]*function{
	"coalesce": {minArgs: 1, maxArgs: -1, bind: bindCoalesce},
}

// functionList names every callable function, sorted, for error messages.
func functionList() string {
	names := []string{"starts_with"}
	for n := range functions {
		names = append(names, n)
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
