package windows

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// idleSource: subtask 0 delivers 10 events every 10 ms (event times rising
// by 5 ms), subtask 1 a single event at 0 and then nothing; both stay open
// (unbounded) until stop is closed. Each tracks its watermark with
// arrowexec.Watermarks.
type idleSource struct {
	mem      memory.Allocator
	strategy arrowexec.WatermarkStrategy
	stop     chan struct{}
}

func (s *idleSource) Schema() *arrow.Schema { return evSchema }

func (s *idleSource) Open(_ context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	r := &idleReader{s: s, wm: arrowexec.NewWatermarks(s.strategy, nil), active: t.Subtask == 0}
	r.wm.AddSplit(0)
	if !r.active {
		r.batches = toBatches(s.mem, []ev{{k: "b", t: 0, v: 1}}, 1)
	}
	return r, nil
}

type idleReader struct {
	s       *idleSource
	wm      *arrowexec.Watermarks
	batches []arrow.RecordBatch
	active  bool
	next    int64
}

func (r *idleReader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if r.active {
		select {
		case <-r.s.stop:
			return nil, io.EOF
		case <-time.After(10 * time.Millisecond):
		}
		var evs []ev
		for i := 0; i < 10; i++ {
			evs = append(evs, ev{k: "a", t: r.next, v: 1, u: r.next % 7})
			r.next += 5
		}
		r.batches = toBatches(r.s.mem, evs, 10)
	}
	if len(r.batches) > 0 {
		b := r.batches[0]
		r.batches = r.batches[1:]
		if err := r.wm.Observe(0, b.Column(1)); err != nil {
			b.Release()
			return nil, err
		}
		return b, nil
	}
	select {
	case <-r.s.stop:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(5 * time.Millisecond):
		return nil, nil
	}
}

func (r *idleReader) CurrentWatermark() (int64, bool) { return r.wm.Current() }

func (r *idleReader) Close() error {
	releaseBatches(r.batches)
	r.batches = nil
	return nil
}

// watchSink records results and signals the first one.
type watchSink struct {
	mu    sync.Mutex
	out   collected
	first chan struct{}
	once  sync.Once
}

func (s *watchSink) Schema([]*arrow.Schema) (*arrow.Schema, error)   { return nil, nil }
func (s *watchSink) New(*arrowexec.Task) (arrowexec.Operator, error) { return &watchOp{s}, nil }

type watchOp struct{ s *watchSink }

func (o *watchOp) Open(context.Context) error { return nil }
func (o *watchOp) Process(_ context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	o.s.mu.Lock()
	o.s.out.read(b)
	o.s.mu.Unlock()
	o.s.once.Do(func() { close(o.s.first) })
	return nil
}
func (o *watchOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (o *watchOp) Close() error                                    { return nil }

// TestIdleSplitDoesNotStallWindows: one source subtask goes quiet after a
// single event. With an idle timeout its split turns idle, the window
// operator's watermark follows the active subtask alone and windows fire
// while the job is still running; without one, nothing fires until the end.
func TestIdleSplitDoesNotStallWindows(t *testing.T) {
	for _, idle := range []time.Duration{100 * time.Millisecond, 0} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		src := &idleSource{mem: mem, stop: make(chan struct{}), strategy: arrowexec.WatermarkStrategy{Column: "t", IdleTimeout: idle}}
		spec, err := New(Options{Kind: Tumbling, Size: 100 * time.Millisecond, Keys: []string{"k"}, Time: "t", Aggs: testAggs})
		if err != nil {
			t.Fatal(err)
		}
		sink := &watchSink{first: make(chan struct{})}
		g := arrowexec.NewGraph()
		s := g.AddSource("src", src, 2)
		w := g.Add("window", spec, 2, s.HashBy("k"))
		g.Add("sink", sink, 1, w.Rebalance())
		job, err := g.Compile(arrowexec.RunOptions{Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- job.Run(context.Background()) }()
		fired := false
		select {
		case <-sink.first:
			fired = true
		case <-time.After(map[bool]time.Duration{true: 10 * time.Second, false: 400 * time.Millisecond}[idle > 0]):
		}
		close(src.stop)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if idle > 0 && !fired {
			t.Fatalf("idle timeout %v: no window fired while a split was idle", idle)
		}
		if idle == 0 && fired {
			t.Fatalf("without an idle timeout a window fired before the quiet split ended")
		}
		// In the end every window is there, complete.
		final := sink.out.final()
		if r, ok := final[winKey{"b", 0, 100}]; !ok || r.n != 1 {
			t.Fatalf("idle %v: window of b: %v", idle, r)
		}
		last := int64(0)
		for w := range final {
			last = max(last, w.start)
		}
		for w, r := range final {
			if w.k == "a" && w.start < last && r.n != 20 {
				t.Fatalf("idle %v: %s has %d rows, want 20", idle, w, r.n)
			}
		}
		mem.AssertSize(t, 0)
	}
}
