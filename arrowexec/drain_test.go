package arrowexec_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
)

var seqSchema = arrow.NewSchema([]arrow.Field{{Name: "seq", Type: arrow.PrimitiveTypes.Int64}}, nil)

// failingSource: subtask 0 emits failAfter one-row batches, then fails
// with err; the other subtasks emit a one-row batch per call, forever.
type failingSource struct {
	failAfter int
	err       error
	emitted   atomic.Int64
}

func (s *failingSource) Schema() *arrow.Schema { return seqSchema }

func (s *failingSource) Open(_ context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	return &failingReader{s: s, t: t}, nil
}

type failingReader struct {
	s *failingSource
	t *arrowexec.Task
	n int
}

func (r *failingReader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if r.t.Subtask == 0 && r.n == r.s.failAfter {
		return nil, r.s.err
	}
	if r.t.Subtask != 0 {
		time.Sleep(time.Millisecond) // a stream: not as fast as it can
	}
	r.n++
	b := array.NewInt64Builder(r.t.Mem)
	defer b.Release()
	b.Append(int64(r.n))
	col := b.NewArray()
	defer col.Release()
	r.s.emitted.Add(1)
	return array.NewRecordBatch(seqSchema, []arrow.Array{col}, 1), nil
}

func (r *failingReader) Close() error { return nil }

// TestDrainOnSourceError: with RunOptions.DrainOnSourceError a source
// error ends the job like Job.Stop(true) (every row emitted reaches the
// sink, the final watermark comes, the sink finishes) and Run returns the
// error; without it the job is cancelled and the sink never finishes.
func TestDrainOnSourceError(t *testing.T) {
	for _, drain := range []bool{true, false} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		boom := errors.New("broker gone")
		src := &failingSource{failAfter: 3, err: boom}
		sink := exectest.NewSink()
		g := arrowexec.NewGraph()
		s := g.AddSource("src", src, 2)
		f := g.Add("map", exectest.Identity(), 2, s.Forward())
		g.Add("sink", sink, 1, f.Rebalance())
		job, err := g.Compile(arrowexec.RunOptions{Mem: mem, DrainOnSourceError: drain})
		if err != nil {
			t.Fatal(err)
		}
		err = job.Run(context.Background())
		var te *arrowexec.TaskError
		if !errors.As(err, &te) || te.Node != "src" || te.Subtask != 0 || !errors.Is(err, boom) {
			t.Fatalf("drain %v: err = %v, want the source's error from src/0", drain, err)
		}
		var rows int64
		for _, b := range sink.All() {
			rows += b.NumRows()
		}
		if drain {
			if !sink.Finished[0] || sink.LastWatermark(0) != arrowexec.MaxWatermark {
				t.Fatalf("drained: sink finished %v, last watermark %d; want finished with the final watermark", sink.Finished[0], sink.LastWatermark(0))
			}
			if rows != src.emitted.Load() || rows < 3 {
				t.Fatalf("drained: sink got %d rows, the sources emitted %d", rows, src.emitted.Load())
			}
		} else if sink.Finished[0] {
			t.Fatal("without drain the sink finished")
		}
		sink.Release()
		mem.AssertSize(t, 0)
	}
}
