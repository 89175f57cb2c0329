package expr

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/arrowexec"
)

// bindHash: hash(x, …) is a uint64 per row from arrowexec.HashColumns, the
// key hash of the engine's exchanges and keyed state: deterministic across
// processes and runs, equal for equal argument tuples. NULL arguments hash
// to a fixed value, so the result is never NULL (as in DuckDB, whose
// values differ: its hash function is its own).
func bindHash(e *CallExpr, args []node) (node, error) {
	for i, a := range args {
		switch k := kindOf(a.dataType()); {
		case k == kLargeString:
			return nil, argError(e, i, a, "large_string is not supported (cast it to string)")
		case k == kDuration:
			return nil, argError(e, i, a, "durations are not supported")
		case k == kNull:
			return nil, argError(e, i, a, "needs a type (cast the NULL)")
		}
	}
	t := arrow.PrimitiveTypes.Uint64
	return &fnNode{name: e.Name, t: t, args: args, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		out := newBufUninit(c.mem, c.n*8)
		if err := arrowexec.HashColumns(in, viewAs[uint64](out.Bytes())); err != nil {
			out.Release()
			return nil, errorf("hash: %v", err)
		}
		return makeArray(t, c.n, nil, out), nil
	}}, nil
}
