package arrowexec_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
)

// counter counts rows and snapshots the count; it is slow enough that
// barriers arrive while inputs are unbalanced.
type counter struct{ rows int64 }

func (c *counter) Open(context.Context) error { return nil }
func (c *counter) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	c.rows += b.NumRows()
	time.Sleep(50 * time.Microsecond)
	b.Retain()
	return out.Emit(ctx, b)
}
func (c *counter) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (c *counter) Close() error                                    { return nil }
func (c *counter) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	return arrowexec.SubtaskSnapshot{Operator: []byte(strconv.FormatInt(c.rows, 10))}, nil
}

type counterSpec struct{}

func (counterSpec) Schema(in []*arrow.Schema) (*arrow.Schema, error) { return in[0], nil }
func (counterSpec) New(*arrowexec.Task) (arrowexec.Operator, error)  { return &counter{}, nil }

// TestBarrierAlignment: for every completed checkpoint, the rows the sources
// had emitted before their barrier equal the rows the downstream operators
// had processed before aligning it, at each stage. Without alignment
// (an input processed past its barrier) the sums differ.
func TestBarrierAlignment(t *testing.T) {
	for _, p := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("p=%d", p), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rng := rand.New(rand.NewPCG(7, uint64(p)))
			batches, _ := randomBatches(mem, rng, 30000, 13, 100)
			src := exectest.NewSource(testSchema, batches)
			release(batches)
			defer src.Release()
			sink := exectest.NewSink()
			defer sink.Release()

			var mu sync.Mutex
			sums := map[uint64]map[string]int64{}
			g := arrowexec.NewGraph()
			s := g.AddSource("src", src, p)
			c1 := g.Add("c1", counterSpec{}, p+1, s.HashBy("k"))
			c2 := g.Add("c2", counterSpec{}, p, c1.Rebalance())
			g.Add("sink", sink, 1, c2.Rebalance())
			reports := map[uint64]int{}
			// The sources hold at the end of their input (HoldAtEnd), so
			// every barrier reaches them: the last one, triggered there,
			// completes however fast the job ran before it.
			job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 1, HoldAtEnd: true,
				OnSnapshot: func(node string, subtask int, id uint64, snap arrowexec.SubtaskSnapshot) error {
					if node == "sink" {
						return nil
					}
					n, err := strconv.ParseInt(string(snap.Operator), 10, 64)
					if err != nil {
						return err
					}
					mu.Lock()
					defer mu.Unlock()
					if sums[id] == nil {
						sums[id] = map[string]int64{}
					}
					sums[id][node] += n
					reports[id]++
					return nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			done := make(chan error, 1)
			go func() { done <- job.Run(ctx) }()
			var id uint64
			trigger := func() {
				id++
				if err := job.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: id}); err != nil {
					t.Fatal(err)
				}
			}
		loop:
			for { // checkpoints while the data flows, paced, not timed
				select {
				case err := <-done:
					t.Fatalf("job ended before it was stopped: %v", err)
				case <-job.SourcesAtEnd():
					break loop
				case <-time.After(3 * time.Millisecond):
					trigger()
				}
			}
			trigger()
			last := id
			exectest.WaitFor(t, fmt.Sprintf("checkpoint %d at every subtask", last), func() bool {
				mu.Lock()
				defer mu.Unlock()
				return reports[last] == p+(p+1)+p
			})
			job.Stop(true)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			// Sources never finish before a barrier here: every
			// checkpoint triggered completes, the last at the end.
			for id := uint64(1); id <= last; id++ {
				m := sums[id]
				if reports[id] != p+(p+1)+p {
					t.Errorf("checkpoint %d: %d snapshots, want %d", id, reports[id], p+(p+1)+p)
				}
				if m["src"] != m["c1"] || m["c1"] != m["c2"] {
					t.Errorf("checkpoint %d: rows before barrier: src=%d c1=%d c2=%d", id, m["src"], m["c1"], m["c2"])
				}
			}
			if sums[last]["src"] != 30000 {
				t.Errorf("checkpoint %d at the end: %d rows before it, want 30000", last, sums[last]["src"])
			}
			t.Logf("%d checkpoints complete", last)
		})
	}
}

// TestWatermarkMinimum: an operator with several inputs forwards the minimum
// watermark over its inputs, never goes backwards, and ends at MaxWatermark.
func TestWatermarkMinimum(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// Two sources with different event-time ranges: the slow one holds the
	// watermark back. It stays open (unbounded) after its data until the
	// job is stopped, so every watermark before the final one is held back
	// by it, whatever the fast source does.
	g, sink, cleanup := fastSlowUnion(mem, (*arrowexec.Node).Forward)
	defer cleanup()
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- job.Run(context.Background()) }()
	// The fast source has finished and its end (after its final
	// watermark) reached the union, whose forwarded watermarks are then
	// held back by the slow source alone.
	exectest.WaitFor(t, "the fast source's end at the union", func() bool {
		in := job.Inputs("union")
		return len(in) == 1 && len(in[0]) == 2 && in[0][0].From == "fast" && in[0][0].Ended
	})
	job.Stop(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wms := sink.Watermarks[0]
	if len(wms) == 0 || wms[len(wms)-1] != arrowexec.MaxWatermark {
		t.Fatalf("watermarks %v do not end at MaxWatermark", wms)
	}
	for i, wm := range wms {
		if i > 0 && wm <= wms[i-1] {
			t.Fatalf("watermark went backwards or repeated: %v", wms)
		}
		if wm != arrowexec.MaxWatermark && wm > 199 {
			t.Fatalf("watermark %d passed the slow source's maximum event time 199", wm)
		}
	}
}

// fastSlowUnion is a graph of two sources of 200 rows of event times
// each, "fast" (1000..1199, ends) and "slow" (0..199, then held open until
// the job stops), into "union" (the slow one through slowEdge) and a sink.
// done releases the sources' and the sink's batches.
func fastSlowUnion(mem memory.Allocator, slowEdge func(*arrowexec.Node) arrowexec.Input) (g *arrowexec.Graph, sink *exectest.Sink, done func()) {
	mk := func(base int64) []arrow.RecordBatch {
		var out []arrow.RecordBatch
		for b := 0; b < 20; b++ {
			bld := array.NewInt64Builder(mem)
			for i := 0; i < 10; i++ {
				bld.Append(base + int64(b*10+i))
			}
			col := bld.NewArray()
			bld.Release()
			out = append(out, array.NewRecordBatch(timeSchema, []arrow.Array{col}, 10))
			col.Release()
		}
		return out
	}
	fastB, slowB := mk(1000), mk(0)
	fast := exectest.NewSource(timeSchema, fastB)
	slow := exectest.NewSource(timeSchema, slowB)
	release(fastB)
	release(slowB)
	fast.EventTime, slow.EventTime = 0, 0
	sink = exectest.NewSink()
	g = arrowexec.NewGraph()
	f := g.AddSource("fast", fast, 1)
	s := g.AddSource("slow", heldOpen{slow}, 1)
	u := g.Add("union", exectest.Identity(), 1, f.Forward(), slowEdge(s))
	g.Add("sink", sink, 1, u.Forward())
	return g, sink, func() {
		fast.Release()
		slow.Release()
		sink.Release()
	}
}

var timeSchema = arrow.NewSchema([]arrow.Field{{Name: "t", Type: arrow.PrimitiveTypes.Int64}}, nil)

// heldOpen wraps a bounded source: after its data it stays open, reporting
// nothing new, until the job stops it.
type heldOpen struct{ arrowexec.Source }

func (h heldOpen) Open(ctx context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	r, err := h.Source.Open(ctx, t)
	return &heldOpenReader{SourceReader: r}, err
}

type heldOpenReader struct{ arrowexec.SourceReader }

func (r *heldOpenReader) CurrentWatermark() (int64, bool) {
	return r.SourceReader.(arrowexec.WatermarkSource).CurrentWatermark()
}

func (r *heldOpenReader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	b, err := r.SourceReader.Next(ctx)
	if err == io.EOF {
		time.Sleep(time.Millisecond)
		return nil, nil // unbounded: nothing arrived within the latency bound
	}
	return b, err
}

// endless emits batches of consecutive sequence numbers until stopped.
type endless struct{}

func (endless) Schema() *arrow.Schema { return timeSchema }
func (endless) Open(_ context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	return &endlessReader{mem: t.Mem}, nil
}

type endlessReader struct {
	mem   memory.Allocator
	next  int64
	calls int
}

func (r *endlessReader) Next(context.Context) (arrow.RecordBatch, error) {
	if r.calls++; r.calls%3 == 0 {
		return nil, nil // nothing arrived within the latency bound
	}
	bld := array.NewInt64Builder(r.mem)
	defer bld.Release()
	for i := 0; i < 5; i++ {
		bld.Append(r.next)
		r.next++
	}
	col := bld.NewArray()
	defer col.Release()
	return array.NewRecordBatch(timeSchema, []arrow.Array{col}, 5), nil
}

func (r *endlessReader) CurrentWatermark() (int64, bool) { return r.next - 100, false }

// SnapshotState records how many rows the reader emitted.
func (r *endlessReader) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	return arrowexec.SubtaskSnapshot{Operator: []byte(strconv.FormatInt(r.next, 10))}, nil
}
func (r *endlessReader) Close() error { return nil }

// TestStop: Stop ends an unbounded job cleanly; everything the sources
// emitted reaches the sink (per subtask, a gapless prefix), and drain
// decides whether the final watermark is sent.
func TestStop(t *testing.T) {
	for _, drain := range []bool{false, true} {
		t.Run(fmt.Sprintf("drain=%v", drain), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			sink := exectest.NewSink()
			defer sink.Release()
			g := arrowexec.NewGraph()
			s := g.AddSource("src", endless{}, 2)
			m := g.Add("mid", exectest.Identity(), 2, s.Forward())
			g.Add("sink", sink, 2, m.Forward())
			job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 1})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- job.Run(context.Background()) }()
			for {
				var rows int64
				for _, m := range job.Metrics("sink") {
					rows += m.RowsIn.Load()
				}
				if rows > 1000 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			job.Stop(drain)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for sub := 0; sub < 2; sub++ {
				if !sink.Finished[sub] {
					t.Fatalf("subtask %d not finished", sub)
				}
				var want int64
				for _, b := range sink.Batches[sub] {
					for _, v := range b.Column(0).(*array.Int64).Int64Values() {
						if v != want {
							t.Fatalf("subtask %d: got %d, want %d (gap or duplicate)", sub, v, want)
						}
						want++
					}
				}
				wms := sink.Watermarks[sub]
				final := len(wms) > 0 && wms[len(wms)-1] == arrowexec.MaxWatermark
				if final != drain {
					t.Fatalf("subtask %d: final watermark sent = %v, want %v", sub, final, drain)
				}
			}
		})
	}
}

// listener records the completions it got before Finish.
type listener struct {
	mu       *sync.Mutex
	before   map[uint64]bool
	finished *bool
}

func (l *listener) Open(context.Context) error { return nil }
func (l *listener) Process(context.Context, int, arrow.RecordBatch, arrowexec.Emitter) error {
	return nil
}
func (l *listener) Finish(context.Context, arrowexec.Emitter) error {
	l.mu.Lock()
	*l.finished = true
	l.mu.Unlock()
	return nil
}
func (l *listener) Close() error { return nil }
func (l *listener) NotifyCheckpointComplete(_ context.Context, id uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !*l.finished {
		l.before[id] = true
	}
	return nil
}

type listenerSpec struct{ l *listener }

func (s listenerSpec) Schema([]*arrow.Schema) (*arrow.Schema, error)   { return nil, nil }
func (s listenerSpec) New(*arrowexec.Task) (arrowexec.Operator, error) { return s.l, nil }

// TestStopBarrierCompletionBeforeFinish: after a stop-with-savepoint
// barrier, a CheckpointListener learns that the checkpoint completed before
// it finishes (the coordinator notifies, then stops the job).
func TestStopBarrierCompletionBeforeFinish(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var mu sync.Mutex
	finished := false
	l := &listener{mu: &mu, before: map[uint64]bool{}, finished: &finished}
	var job *arrowexec.Job
	reports := 0
	g := arrowexec.NewGraph()
	s := g.AddSource("src", endless{}, 1)
	g.Add("sink", listenerSpec{l}, 1, s.Forward())
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 1,
		OnSnapshot: func(node string, subtask int, id uint64, _ arrowexec.SubtaskSnapshot) error {
			mu.Lock()
			reports++
			all := reports == 2
			mu.Unlock()
			if all { // every subtask reported: complete, then stop
				go func() {
					job.NotifyCheckpointComplete(id)
					job.Stop(false)
				}()
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- job.Run(context.Background()) }()
	// The savepoint lands mid-stream: the listener has had rows.
	exectest.WaitFor(t, "rows at the listener", func() bool { return job.Metrics("sink")[0].RowsIn.Load() > 0 })
	if err := job.TriggerCheckpoint(context.Background(), arrowexec.Barrier{ID: 7, Savepoint: true, Stop: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("job did not stop")
	}
	mu.Lock()
	defer mu.Unlock()
	if !finished || !l.before[7] {
		t.Fatalf("finished=%v, completion of checkpoint 7 before Finish=%v", finished, l.before[7])
	}
}
