package arrowexec

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// output is the Emitter of a subtask: it fans a batch out to every edge of
// the node's main output, and side batches to the edges of their side
// output. Control messages go to every edge of every output.
type output struct {
	routers []*router // main output
	sides   []sideRouters
	metrics *TaskMetrics
	// chained is the subtask chained behind this one (its only consumer),
	// called directly: no routers then.
	chained *subtask
	// clk accounts the time of the subtask's goroutine (its chain's head's
	// clock); put adds backpressure to it.
	clk *clock
}

type sideRouters struct {
	name    string
	routers []*router
}

var _ SideEmitter = (*output)(nil)

// add wires one edge of output name ("" the main one).
func (o *output) add(name string, r *router) {
	if name == "" {
		o.routers = append(o.routers, r)
		return
	}
	for i := range o.sides {
		if o.sides[i].name == name {
			o.sides[i].routers = append(o.sides[i].routers, r)
			return
		}
	}
	o.sides = append(o.sides, sideRouters{name: name, routers: []*router{r}})
}

// Emit implements Emitter. It consumes the caller's reference to b.
func (o *output) Emit(ctx context.Context, b arrow.RecordBatch) error {
	if b.NumRows() == 0 || !o.wired() {
		b.Release()
		return nil
	}
	return o.emit(ctx, b, BatchBytes(b))
}

// wired says whether anything reads the main output.
func (o *output) wired() bool { return o.chained != nil || len(o.routers) > 0 }

// emit is Emit of a non-empty batch of n Arrow bytes.
func (o *output) emit(ctx context.Context, b arrow.RecordBatch, n int64) error {
	o.metrics.RowsOut.Add(b.NumRows())
	o.metrics.BatchesOut.Add(1)
	o.metrics.ArrowBytesOut.Add(n)
	if o.chained != nil {
		return o.chained.deliver(ctx, Message{Kind: KindBatch, Batch: b, bytes: n})
	}
	return fanOut(ctx, o.routers, b, n, o.clk)
}

// EmitSide implements SideEmitter. A side output no edge reads drops b.
func (o *output) EmitSide(ctx context.Context, name string, b arrow.RecordBatch) error {
	for _, s := range o.sides {
		if s.name == name && b.NumRows() > 0 {
			return fanOut(ctx, s.routers, b, BatchBytes(b), o.clk)
		}
	}
	b.Release()
	return nil
}

// SideWired implements SideEmitter.
func (o *output) SideWired(name string) bool {
	for _, s := range o.sides {
		if s.name == name {
			return true
		}
	}
	return false
}

// fanOut sends b to every router, consuming the caller's reference.
func fanOut(ctx context.Context, routers []*router, b arrow.RecordBatch, n int64, clk *clock) error {
	for i, r := range routers {
		if i < len(routers)-1 {
			b.Retain()
		}
		if err := r.send(ctx, b, n, clk); err != nil {
			// send consumed its reference; drop the ones not yet handed out.
			for range routers[i+1:] {
				b.Release()
			}
			return err
		}
	}
	return nil
}

// control sends a control message on every channel of every out edge,
// side edges included.
func (o *output) control(ctx context.Context, m Message) error {
	if o.chained != nil {
		if err := o.chained.deliver(ctx, m); err != nil {
			return err
		}
	}
	for _, r := range o.routers {
		for _, ib := range r.chans {
			if err := put(ctx, ib, m, o.clk); err != nil {
				return err
			}
		}
	}
	for _, s := range o.sides {
		for _, r := range s.routers {
			for _, ib := range r.chans {
				if err := put(ctx, ib, m, o.clk); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// put sends m into inbox ib, blocking while its channel is full
// (backpressure, accounted on clk), then rings the receiving subtask's
// bell, if it has one (see inbox).
func put(ctx context.Context, ib *inbox, m Message, clk *clock) error {
	select {
	case ib.ch <- m:
		ib.ring()
		return nil
	default:
	}
	from := time.Now()
	select {
	case ib.ch <- m:
		clk.backpressure(time.Since(from))
		ib.ring()
		return nil
	case <-ctx.Done():
		clk.backpressure(time.Since(from))
		m.release()
		return context.Cause(ctx)
	}
}

// router distributes one subtask's output over one edge.
type router struct {
	kind  PartitionKind
	chans []*inbox // the downstream inboxes this edge feeds
	next  int      // rebalance cursor
	part  Partitioner
}

// send consumes one reference to b.
func (r *router) send(ctx context.Context, b arrow.RecordBatch, n int64, clk *clock) error {
	switch {
	case len(r.chans) == 1:
		return put(ctx, r.chans[0], Message{Kind: KindBatch, Batch: b, bytes: n}, clk)
	case r.kind == Rebalance:
		ib := r.chans[r.next]
		r.next = (r.next + 1) % len(r.chans)
		return put(ctx, ib, Message{Kind: KindBatch, Batch: b, bytes: n}, clk)
	case r.kind == Broadcast:
		for i, ib := range r.chans {
			if i < len(r.chans)-1 {
				b.Retain()
			}
			if err := put(ctx, ib, Message{Kind: KindBatch, Batch: b, bytes: n}, clk); err != nil {
				for range r.chans[i+1:] {
					b.Release()
				}
				return err
			}
		}
		return nil
	case r.kind == Hash:
		return r.sendHashed(ctx, b, clk)
	}
	b.Release()
	return fmt.Errorf("arrowexec: %v edge with %d channels", r.kind, len(r.chans))
}

func (r *router) sendHashed(ctx context.Context, b arrow.RecordBatch, clk *clock) error {
	defer b.Release()
	parts, err := r.part.Split(b, len(r.chans))
	if err != nil {
		return err
	}
	for t, part := range parts {
		if part == nil {
			continue
		}
		parts[t] = nil
		if err := put(ctx, r.chans[t], Message{Kind: KindBatch, Batch: part, bytes: BatchBytes(part)}, clk); err != nil {
			for _, rest := range parts[t+1:] {
				if rest != nil {
					rest.Release()
				}
			}
			return err
		}
	}
	return nil
}

// Partitioner splits batches by the hash of key columns into one batch per
// target subtask. Its scratch buffers are reused across calls, so a
// partitioner belongs to one goroutine.
type Partitioner struct {
	KeyIdx         []int
	MaxParallelism int
	Mem            memory.Allocator

	hashes []uint64
	counts []int32
	cursor []int32
	idx    []int32
	keys   []arrow.Array
	parts  []arrow.RecordBatch
}

// Split returns, for each of p targets, the rows of b whose key belongs to
// it (nil when none). The returned batches are owned by the caller; the
// slice itself is reused by the next call. b is borrowed.
func (pt *Partitioner) Split(b arrow.RecordBatch, p int) ([]arrow.RecordBatch, error) {
	n := int(b.NumRows())
	pt.hashes = grow(pt.hashes, n)
	pt.idx = grow(pt.idx, n)
	pt.counts = grow(pt.counts, p+1)
	pt.keys = grow(pt.keys, len(pt.KeyIdx))
	pt.parts = grow(pt.parts, p)
	clear(pt.parts)
	for i, k := range pt.KeyIdx {
		pt.keys[i] = b.Column(k)
	}
	if err := HashColumns(pt.keys, pt.hashes); err != nil {
		return nil, err
	}
	// Key group -> target, counted; the hash slot is reused for the target.
	mp := uint64(pt.MaxParallelism)
	clear(pt.counts)
	for i, h := range pt.hashes {
		t := uint64(int(h%mp) * p / pt.MaxParallelism)
		pt.hashes[i] = t
		pt.counts[t+1]++
	}
	for t := 1; t <= p; t++ {
		pt.counts[t] += pt.counts[t-1]
	}
	// Stable counting scatter of row indices.
	pt.cursor = append(pt.cursor[:0], pt.counts[:p]...)
	for i, t := range pt.hashes {
		pt.idx[pt.cursor[t]] = int32(i)
		pt.cursor[t]++
	}
	for t := 0; t < p; t++ {
		lo, hi := int(pt.counts[t]), int(pt.counts[t+1])
		switch {
		case lo == hi:
		case hi-lo == n:
			b.Retain()
			pt.parts[t] = b
		default:
			part, err := TakeRecord(pt.Mem, b, pt.idx[lo:hi])
			if err != nil {
				for _, done := range pt.parts[:t] {
					if done != nil {
						done.Release()
					}
				}
				return nil, err
			}
			pt.parts[t] = part
		}
	}
	return pt.parts, nil
}

// PartitionRecord is Partitioner.Split for one-off use.
func PartitionRecord(mem memory.Allocator, b arrow.RecordBatch, keyIdx []int, maxParallelism, p int, hashes []uint64) ([]arrow.RecordBatch, error) {
	pt := &Partitioner{KeyIdx: keyIdx, MaxParallelism: maxParallelism, Mem: mem, hashes: hashes}
	return pt.Split(b, p)
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
