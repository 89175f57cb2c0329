package agg

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// approxAcc is approx_distinct: one HyperLogLog sketch per group in the
// format of hll.go (sparse until it pays to be dense), the same sketches
// the window step keeps in its blobs. Values are hashed with
// arrowexec.HashColumns, as the window step hashes them, so both steps
// estimate the same for the same values. Partial emits the sketches (a
// binary column), Final merges them; the checkpoint state is that column.
type approxAcc struct {
	sk      [][]byte // per group; nil: empty
	partial bool
	merge   bool
	hashes  []uint64
	ents    []uint64
	run     []uint32
	cols    []arrow.Array
	err     error
}

func (a *approxAcc) failed() error { return a.err }

func (a *approxAcc) resize(n int) { a.sk = extend(a.sk, n) }

func (a *approxAcc) bytes() int {
	n := 24 * cap(a.sk)
	for _, s := range a.sk {
		n += cap(s)
	}
	return n
}

func (a *approxAcc) update(cols []arrow.Array, gids []uint32) {
	if a.merge {
		a.mergeState(cols, gids)
		return
	}
	c := cols[0]
	a.hashes = grow(a.hashes, c.Len())
	a.cols = append(a.cols[:0], c)
	if err := arrowexec.HashColumns(a.cols, a.hashes); err != nil {
		a.err = err
		return
	}
	vv := validityOf(c)
	ents := a.ents[:0]
	for i, g := range gids {
		if vv.bits != nil && !vv.valid(i) {
			continue
		}
		ents = append(ents, SketchEntry(g, a.hashes[i]))
	}
	a.ents = ents
	a.run = SketchRuns(ents, a.run, func(g uint32, run []uint32) {
		a.sk[g] = SketchUpdate(a.sketch(g), run)
	})
}

// sketch returns group g's sketch, empty if it has none.
func (a *approxAcc) sketch(g uint32) []byte {
	if a.sk[g] == nil {
		return AppendEmptySketch(nil)
	}
	return a.sk[g]
}

func (a *approxAcc) build(mem memory.Allocator, lo, hi int, out []arrow.Array) ([]arrow.Array, error) {
	if a.partial {
		total := 0
		for g := lo; g < hi; g++ {
			total += len(a.sketch(uint32(g)))
		}
		arr, err := binaryArray(mem, arrow.BinaryTypes.Binary, hi-lo, func(i int) []byte { return a.sketch(uint32(lo + i)) }, total, nil)
		if err != nil {
			return out, err
		}
		return append(out, arr), nil
	}
	est := make([]int64, hi-lo)
	for g := lo; g < hi; g++ {
		if a.sk[g] != nil {
			est[g-lo] = SketchEstimate(a.sk[g])
		}
	}
	return append(out, fixedArray(mem, arrow.PrimitiveTypes.Int64, est, nil)), nil
}

func (a *approxAcc) stateTypes() []arrow.DataType {
	return []arrow.DataType{arrow.BinaryTypes.Binary}
}

func (a *approxAcc) exportState(dest []uint32) []stateCol {
	return []stateCol{newBinaryCol(arrow.BinaryTypes.Binary, func(g int) []byte { return a.sketch(uint32(g)) }, nil, dest)}
}

// mergeState merges sketches (a binary column, NULL: empty) into groups.
func (a *approxAcc) mergeState(cols []arrow.Array, gids []uint32) {
	offs, data := binaryView(cols[0])
	vv := validityOf(cols[0])
	for i, g := range gids {
		if vv.bits != nil && !vv.valid(i) || offs[i] == offs[i+1] {
			continue
		}
		src := data[offs[i]:offs[i+1]]
		if !validSketch(src) {
			a.err = errCorruptSketch
			return
		}
		a.sk[g] = SketchMerge(a.sketch(g), src)
	}
}
