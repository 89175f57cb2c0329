package metrics_test

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
)

// The scaffolding the tests of this package share: a job is built from
// exectest sources and sinks, compiled, run, and scraped.

// checkedMem returns an allocator whose leaks fail t after every other
// cleanup of the test has run.
func checkedMem(t *testing.T) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// ownedSource is an exectest source of batches; it takes the caller's
// references to them.
func ownedSource(t *testing.T, schema *arrow.Schema, batches []arrow.RecordBatch) *exectest.Source {
	t.Helper()
	src := exectest.NewSource(schema, batches)
	for _, b := range batches {
		b.Release()
	}
	t.Cleanup(src.Release)
	return src
}

// testSink is an exectest sink released when the test ends.
func testSink(t *testing.T) *exectest.Sink {
	t.Helper()
	sink := exectest.NewSink()
	t.Cleanup(sink.Release)
	return sink
}

// int64Batch is a batch of schema's int64 columns, cols[i] the values of
// column i.
func int64Batch(mem memory.Allocator, schema *arrow.Schema, cols ...[]int64) arrow.RecordBatch {
	arrs := make([]arrow.Array, len(cols))
	for i, vals := range cols {
		b := array.NewInt64Builder(mem)
		b.AppendValues(vals, nil)
		arrs[i] = b.NewArray()
		b.Release()
	}
	rec := array.NewRecordBatch(schema, arrs, int64(len(cols[0])))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

// zeroBatches are batches of one int64 column of zeros, of the given
// sizes.
func zeroBatches(mem memory.Allocator, schema *arrow.Schema, sizes ...int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for _, n := range sizes {
		out = append(out, int64Batch(mem, schema, make([]int64, n)))
	}
	return out
}

func compile(t *testing.T, g *arrowexec.Graph, opts arrowexec.RunOptions) *arrowexec.Job {
	t.Helper()
	j, err := g.Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// runToEnd runs j to its end.
func runToEnd(t *testing.T, j *arrowexec.Job) {
	t.Helper()
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// start runs j in the background; its error arrives on the channel.
func start(j *arrowexec.Job) <-chan error {
	done := make(chan error, 1)
	go func() { done <- j.Run(context.Background()) }()
	return done
}
