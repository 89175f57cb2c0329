package parquet

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

// Dictionary output (Options.Dictionary). The parquet-go decoder copies the
// indices of dictionary-encoded pages and shares one Arrow copy of the
// column chunk's dictionary page among the chunk's batches. A batch that
// also holds rows of a plain-encoded page (the writer fell back from
// dictionary encoding when the dictionary grew too large) is decoded and
// carries its values as its own dictionary, indices 0..n-1: still valid,
// one entry per row. The arrow decoder and conformed files (unify.go) give
// such identity-encoded batches too (encodeDicts).

// dictType is the type of a dictionary-encoded column of value type t.
func dictType(t arrow.DataType) *arrow.DictionaryType {
	return &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: t}
}

// identityDict wraps values (taking over the reference) as a dictionary
// array whose indices are 0..n-1, NULL where values is.
func identityDict(mem memory.Allocator, values arrow.Array) arrow.Array {
	defer values.Release()
	n := values.Len()
	idx := memory.NewResizableBuffer(mem)
	idx.Resize(n * 4)
	defer idx.Release()
	ix := arrow.Int32Traits.CastFromBytes(idx.Bytes())
	for i := range ix {
		ix[i] = int32(i)
	}
	var valid *memory.Buffer
	if values.NullN() > 0 {
		valid = memory.NewResizableBuffer(mem)
		valid.Resize(int(bitutil.BytesForBits(int64(n))))
		defer valid.Release()
		vd := values.Data()
		bitutil.CopyBitmap(vd.Buffers()[0].Bytes(), vd.Offset(), n, valid.Bytes(), 0)
	}
	d := array.NewData(dictType(values.DataType()), n, []*memory.Buffer{valid, idx}, nil, values.NullN(), 0)
	defer d.Release()
	d.SetDictionary(values.Data())
	return array.MakeFromData(d)
}

// encodeDicts makes the dictionary columns of cols (in projection order)
// dictionary arrays, in place, where a decoder gave plain values.
func (s *Source) encodeDicts(mem memory.Allocator, cols []arrow.Array) {
	for j, c := range s.columns {
		if c.dict && cols[j].DataType().ID() != arrow.DICTIONARY {
			cols[j] = identityDict(mem, cols[j])
		}
	}
}

// nextDict is next for a dictionary-encoded output column.
func (c *goColumn) nextDict(mem memory.Allocator, n int) (arrow.Array, error) {
	var validBuf, idxBuf, offsBuf *memory.Buffer
	defer func() {
		for _, b := range []*memory.Buffer{validBuf, idxBuf, offsBuf, c.data} {
			if b != nil {
				b.Release()
			}
		}
		c.data = nil
	}()
	validBuf = c.beginValidity(mem, n)
	idxBuf = memory.NewResizableBuffer(mem)
	idxBuf.Resize(n * 4)
	ix := arrow.Int32Traits.CastFromBytes(idxBuf.Bytes())
	var dict arrow.Array // c.dictArr while every row so far came from its pages
	plain := false
	for filled := 0; filled < n; {
		if err := c.advance(); err != nil {
			return nil, err
		}
		k := min(n-filled, c.pageRows-c.row)
		var defs []byte
		if c.defs != nil {
			defs = c.defs[c.row : c.row+k]
		}
		var nv int
		pd := c.page.Dictionary()
		if !plain && c.idx != nil && (dict == nil || pd == c.dictSrc) {
			if pd != c.dictSrc {
				c.buildDict(mem, pd)
			}
			dict = c.dictArr
			nv = copyNum(ix, c.idx, nil, c.val, filled, k, defs, c.plan.maxDef)
		} else {
			if !plain {
				offsBuf = c.startPlain(mem, n, ix[:filled], dict)
				plain = true
			}
			nv = c.copyBytes(filled, k, defs)
		}
		if c.valid != nil {
			if defs == nil {
				bitutil.SetBitsTo(c.valid, int64(filled), int64(k), true)
			} else {
				for i, d := range defs {
					if d == c.plan.maxDef {
						bitutil.SetBit(c.valid, filled+i)
					}
				}
			}
		}
		c.nulls += k - nv
		c.row += k
		c.val += nv
		filled += k
	}
	if c.nulls == 0 && validBuf != nil {
		validBuf.Release()
		validBuf = nil
	}
	if plain {
		c.data.ResizeNoShrink(c.dlen)
		vd := array.NewData(c.typ, n, []*memory.Buffer{validBuf, offsBuf, c.data}, nil, c.nulls, 0)
		vals := array.MakeFromData(vd)
		vd.Release()
		return identityDict(mem, vals), nil
	}
	d := array.NewData(dictType(c.typ), n, []*memory.Buffer{validBuf, idxBuf}, nil, c.nulls, 0)
	defer d.Release()
	d.SetDictionary(dict.Data())
	return array.MakeFromData(d), nil
}

// buildDict copies the dictionary page pd (whose values the current page's
// typed views hold) into c.dictArr.
func (c *goColumn) buildDict(mem memory.Allocator, pd parquet.Dictionary) {
	if c.dictArr != nil {
		c.dictArr.Release()
	}
	base, end := c.boffs[0], c.boffs[c.dictLen]
	offs := memory.NewResizableBuffer(mem)
	offs.Resize((c.dictLen + 1) * 4)
	o := arrow.Int32Traits.CastFromBytes(offs.Bytes())
	for i, v := range c.boffs[:c.dictLen+1] {
		o[i] = int32(v - base)
	}
	data := memory.NewResizableBuffer(mem)
	data.Resize(int(end - base))
	copy(data.Bytes(), c.bdata[base:end])
	d := array.NewData(c.typ, c.dictLen, []*memory.Buffer{nil, offs, data}, nil, 0, 0)
	offs.Release()
	data.Release()
	c.dictArr = array.MakeFromData(d)
	d.Release()
	c.dictSrc = pd
}

// startPlain switches a batch to decoded values: it sets up the byte
// buffers (as next does) and decodes the rows already read as indices ix
// into dict (nil when there are none), keeping their validity.
func (c *goColumn) startPlain(mem memory.Allocator, n int, ix []int32, dict arrow.Array) *memory.Buffer {
	offsBuf := memory.NewResizableBuffer(mem)
	offsBuf.Resize((n + 1) * 4)
	c.offs = arrow.Int32Traits.CastFromBytes(offsBuf.Bytes())
	c.offs[0] = 0
	c.data = memory.NewResizableBuffer(mem)
	c.data.Reserve(n * 8)
	c.dlen = 0
	if len(ix) == 0 {
		return offsBuf
	}
	dd := dict.Data()
	doffs := arrow.Int32Traits.CastFromBytes(dd.Buffers()[1].Bytes())
	dbytes := dd.Buffers()[2].Bytes()
	for i, k := range ix {
		if c.valid == nil || bitutil.BitIsSet(c.valid, i) {
			v := dbytes[doffs[k]:doffs[k+1]]
			if c.dlen+len(v) > c.data.Cap() {
				c.data.Reserve(max(c.dlen+len(v), 2*c.data.Cap()))
			}
			c.dlen += copy(c.data.Buf()[c.dlen:], v)
		}
		c.offs[i+1] = int32(c.dlen)
	}
	return offsBuf
}
