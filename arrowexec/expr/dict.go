package expr

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/riffle-dev/riffle/arrowexec"
)

// Expressions over a dictionary-encoded column are evaluated once per
// dictionary entry, then gathered by index, as DuckDB does: a comparison,
// LIKE, regexp_matches or lower over a column of five distinct event types
// costs five evaluations and one gather per row instead of one evaluation
// (and one decoded string) per row.
//
// At bind time every subexpression whose only column is one dictionary
// column (read through a convNode) and that computes something (not the bare
// column) is wrapped in a dictNode. At evaluation the dictNode evaluates
// its subexpression over the batch's dictionary plus one NULL entry (the
// value of the rows whose index is NULL: `col IS NULL` and coalesce see
// them), then gathers the results by index. It does so only where it pays:
// when the dictionary has no more entries than the batch has rows.
// Otherwise, and when the evaluation over the dictionary fails (an entry no
// row uses may not cast), the subexpression is evaluated over the decoded
// batch as before, so errors name only values the rows hold.
//
// Result types are unchanged (a string function's result is a plain
// string): dictionary encoding is a representation of the input only.
type dictNode struct {
	x   node     // the subexpression, reading col through a convNode
	col *colNode // the dictionary column
}

func (n *dictNode) dataType() arrow.DataType { return n.x.dataType() }

// liftDict wraps n in a dictNode when its only column is one dictionary
// column and it is more than the bare column.
func liftDict(n node) node {
	switch n.(type) {
	case *colNode, *constNode, *convNode, *dictNode:
		return n
	}
	var col *colNode
	ok := walkNodes(n, func(x node) error {
		switch v := x.(type) {
		case *colNode:
			if v.t.ID() != arrow.DICTIONARY || convertedType(v.t) == nil || (col != nil && col.idx != v.idx) {
				return errHasCols
			}
			col = v
		case *arithNode, *cmpNode, *logicNode, *notNode, *isNullNode, *inNode, *prefixNode,
			*castNode, *fnNode, *condNode, *convNode, *constNode, *dictNode:
		default:
			return errHasCols // a node kind this pass does not know: leave it alone
		}
		return nil
	}) == nil
	if !ok || col == nil {
		return n
	}
	return &dictNode{x: n, col: col}
}

func (n *dictNode) eval(c *evalCtx) (arrow.Array, error) {
	a, err := n.col.eval(c)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	d, ok := a.(*array.Dictionary)
	if !ok || d.Dictionary().Len() > c.n {
		// Already decoded (an enclosing dictNode evaluates over the
		// dictionary), or a dictionary larger than the batch.
		return n.x.eval(c)
	}
	dict := d.Dictionary()
	dn := dict.Len()
	null := array.MakeArrayOfNull(c.mem, dict.DataType(), 1)
	vals, err := array.Concatenate([]arrow.Array{dict, null}, c.mem)
	null.Release()
	if err != nil {
		return nil, errorf("column %q: dictionary: %v", n.col.name, err)
	}
	defer vals.Release()
	cols := make([]arrow.Array, c.rec.NumCols())
	cols[n.col.idx] = vals
	res, err := n.x.eval(&evalCtx{mem: c.mem, rec: c.rec, n: dn + 1, cols: cols})
	if err != nil {
		// An entry no row uses may fail (a cast, a bad pattern argument):
		// evaluate over the rows, whose errors are the true ones.
		return n.x.eval(c)
	}
	defer res.Release()
	idx, rel := asInt64(c.mem, d.Indices())
	defer rel()
	pos := make([]int32, len(idx))
	for i, k := range idx {
		pos[i] = int32(k)
	}
	if d.NullN() > 0 {
		vb, off := validity(d)
		for i := range pos {
			if !bitutil.BitIsSet(vb, off+i) {
				pos[i] = int32(dn)
			}
		}
	}
	out, err := arrowexec.TakeArray(c.mem, res, pos)
	if err != nil {
		return nil, errorf("column %q: gather by dictionary index: %v", n.col.name, err)
	}
	return out, nil
}
