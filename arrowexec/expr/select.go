package expr

import (
	"math/bits"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Select evaluates a boolean expression and appends to sel[:0] the indices
// of the rows where it is TRUE (NULL counts as false), in ascending order.
// Pass the previous result back as sel to reuse its memory.
//
// Select works on "is TRUE" bitmaps, 64 rows per word: a comparison with a
// literal, IN, starts_with and IS [NOT] NULL write their bitmap straight
// from the typed value buffers and AND in the validity bitmap; AND and OR
// combine words. When the conjuncts evaluated so far leave few rows, the
// remaining conjuncts switch to selection vectors and test only those rows.
// No boolean arrays are built on these paths; other predicates are
// evaluated with Eval.
func (b *Bound) Select(rec arrow.RecordBatch, sel []int32) ([]int32, error) {
	if k := kindOf(b.Type()); k != kBool && k != kNull {
		return nil, errorf("Select needs a boolean expression, %s has type %s", b.src, typeName(b.Type()))
	}
	n := int(rec.NumRows())
	if cap(sel) < n {
		sel = make([]int32, 0, n)
	}
	c := &evalCtx{mem: memory.DefaultAllocator, rec: rec, n: n}
	if sparseAndOnly {
		return selectNode(c, b.root, sel[:0], true)
	}
	conj := conjuncts(b.root, nil)
	w := getWords(n)
	defer putWords(w)
	if err := trueBits(c, conj[0], *w); err != nil {
		return nil, err
	}
	for i, x := range conj[1:] {
		if popcount(*w) < n/sparseDiv {
			// Few rows left: test the remaining conjuncts on those rows only.
			sel = extract(*w, sel[:0])
			for _, y := range conj[1+i:] {
				var err error
				if sel, err = selectNode(c, y, sel, false); err != nil || len(sel) == 0 {
					return sel, err
				}
			}
			return sel, nil
		}
		t := getWords(n)
		err := trueBits(c, x, *t)
		for j, v := range *t {
			(*w)[j] &= v
		}
		putWords(t)
		if err != nil {
			return nil, err
		}
	}
	return extract(*w, sel[:0]), nil
}

// sparseDiv sets when Select switches from bitmaps to selection vectors:
// when fewer than n/sparseDiv rows remain. sparseAndOnly forces selection
// vectors throughout. Both are variables so tests can drive every path.
var (
	sparseDiv     = 16
	sparseAndOnly = false
)

// conjuncts flattens a tree of ANDs.
func conjuncts(n node, out []node) []node {
	if l, ok := n.(*logicNode); ok && l.op == OpAnd {
		return conjuncts(l.r, conjuncts(l.l, out))
	}
	return append(out, n)
}

var wordPool sync.Pool

// getWords returns a zeroed scratch bitmap for n rows.
func getWords(n int) *[]uint64 {
	nw := (n + 63) / 64
	if p, ok := wordPool.Get().(*[]uint64); ok && cap(*p) >= nw {
		*p = (*p)[:nw]
		clear(*p)
		return p
	}
	w := make([]uint64, nw)
	return &w
}

func putWords(p *[]uint64) { wordPool.Put(p) }

func popcount(w []uint64) int {
	c := 0
	for _, x := range w {
		c += bits.OnesCount64(x)
	}
	return c
}

// extract appends the indices of the set bits.
func extract(w []uint64, sel []int32) []int32 {
	for i, x := range w {
		base := int32(i * 64)
		for x != 0 {
			sel = append(sel, base+int32(bits.TrailingZeros64(x)))
			x &= x - 1
		}
	}
	return sel
}

// wordBytes views a bitmap as bytes for the byte-oriented kernels.
func wordBytes(w []uint64) []byte { return asBytes(w) }

// andValid clears the bits of rows where a is NULL.
func andValid(dst []uint64, a arrow.Array, n int) {
	if a.NullN() == 0 {
		return
	}
	vb, off := validity(a)
	b := wordBytes(dst)
	bitutil.BitmapAnd(b, vb, 0, int64(off), b, 0, int64(n))
}

// trueBits sets in dst (zeroed, one bit per row) the rows where nd is TRUE.
func trueBits(c *evalCtx, nd node, dst []uint64) error {
	n := c.n
	out := wordBytes(dst)
	switch x := nd.(type) {
	case *constNode:
		if !x.v.null && x.v.i != 0 {
			fillBits(out, n)
		}
		return nil
	case *logicNode:
		if err := trueBits(c, x.l, dst); err != nil {
			return err
		}
		t := getWords(n)
		defer putWords(t)
		if err := trueBits(c, x.r, *t); err != nil {
			return err
		}
		if x.op == OpAnd {
			for i, v := range *t {
				dst[i] &= v
			}
		} else {
			for i, v := range *t {
				dst[i] |= v
			}
		}
		return nil
	case *cmpNode:
		if !x.rconst {
			break
		}
		a, err := x.l.eval(c)
		if err != nil {
			return err
		}
		defer a.Release()
		switch x.mode {
		case cmConst:
			if x.constRes {
				fillBits(out, n)
			}
		case cmNative:
			cmpNativeVS(x.op, x.k, a, &x.c, n, out)
		case cmFloat:
			cmpFloatVS(x.op, x.k, a, x.c.f, n, out)
		}
		andValid(dst, a, n)
		return nil
	case *inNode:
		a, err := x.x.eval(c)
		if err != nil {
			return err
		}
		defer a.Release()
		x.m.match(a, n, out)
		andValid(dst, a, n)
		return nil
	case *prefixNode:
		a, err := x.x.eval(c)
		if err != nil {
			return err
		}
		defer a.Release()
		if kindOf(a.DataType()) == kString {
			prefixBits(stringOffsets32(a))([]byte(x.prefix), n, out)
		} else {
			prefixBits(stringOffsets64(a))([]byte(x.prefix), n, out)
		}
		andValid(dst, a, n)
		return nil
	case *isNullNode:
		a, err := x.x.eval(c)
		if err != nil {
			return err
		}
		defer a.Release()
		fillBits(out, n)
		andValid(dst, a, n) // dst = IS NOT NULL
		if !x.not {
			for i := range dst {
				dst[i] = ^dst[i]
			}
			clearTail(out, n)
		}
		return nil
	}
	// Fallback: evaluate, then TRUE = value AND valid.
	a, err := nd.eval(c)
	if err != nil {
		return err
	}
	defer a.Release()
	if kindOf(a.DataType()) == kNull {
		return nil
	}
	d := a.Data()
	bitutil.CopyBitmap(d.Buffers()[1].Bytes(), d.Offset(), n, out, 0)
	andValid(dst, a, n)
	return nil
}
