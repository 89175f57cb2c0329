package checkpoint_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/state"
)

var kvSchema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.BinaryTypes.String},
	{Name: "v", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// seqSource emits, per subtask s, batches 0..Batches-1 whose content is a
// pure function of (s, batch): Rows rows with keys "k<n>" for n random in
// [0, Keys). Its operator state is JSON {"subtask": s, "next": batch}; it
// restores from the state of its own subtask (same parallelism).
type seqSource struct {
	Batches, Rows, Keys int
	// GateAt, with Gate open (not closed), makes every subtask idle at
	// batch GateAt until Gate is closed; Unbounded idles after the last
	// batch instead of ending.
	GateAt    int
	Gate      chan struct{}
	Unbounded bool
	// Delay per batch, so checkpoints happen mid-stream.
	Delay time.Duration
}

type seqPos struct {
	Subtask int `json:"subtask"`
	Next    int `json:"next"`
}

func (s *seqSource) Schema() *arrow.Schema { return kvSchema }

func (s *seqSource) Open(ctx context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	r := &seqReader{s: s, sub: t.Subtask, mem: t.Mem}
	if rs := t.Restore; rs != nil {
		if len(rs.Operator) != t.Parallelism || len(rs.Operator[t.Subtask]) == 0 {
			return nil, fmt.Errorf("seqSource: restore needs the same parallelism: %d states for %d subtasks", len(rs.Operator), t.Parallelism)
		}
		var p seqPos
		if err := json.Unmarshal(rs.Operator[t.Subtask], &p); err != nil {
			return nil, err
		}
		if p.Subtask != t.Subtask {
			return nil, fmt.Errorf("seqSource: state of subtask %d given to %d", p.Subtask, t.Subtask)
		}
		r.next = p.Next
	}
	return r, nil
}

// batchKeys returns the keys of batch b of subtask sub.
func (s *seqSource) batchKeys(sub, b int) []string {
	rng := rand.New(rand.NewPCG(uint64(sub), uint64(b)))
	keys := make([]string, s.Rows)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(rng.IntN(s.Keys))
	}
	return keys
}

// expected returns the count of every key over the whole input, keyed by
// its state encoding (state.EncodeKeys).
func (s *seqSource) expected(t testing.TB, parallelism int) map[string]int64 {
	out := map[string]int64{}
	mem := memory.NewGoAllocator()
	var ks state.Keys
	for sub := 0; sub < parallelism; sub++ {
		for b := 0; b < s.Batches; b++ {
			bld := array.NewStringBuilder(mem)
			bld.AppendValues(s.batchKeys(sub, b), nil)
			col := bld.NewArray()
			bld.Release()
			if err := state.EncodeKeys([]arrow.Array{col}, &ks); err != nil {
				t.Fatal(err)
			}
			col.Release()
			for i := 0; i < ks.Len(); i++ {
				out[string(ks.Key(i))]++
			}
		}
	}
	return out
}

// rowID is the v of row i (counted over the subtask's batches) of subtask
// sub.
func rowID(sub, i int) int64 { return int64(sub)<<32 | int64(i) }

type seqReader struct {
	s    *seqSource
	sub  int
	mem  memory.Allocator
	next int
}

func (r *seqReader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	s := r.s
	if s.Gate != nil && r.next >= s.GateAt {
		select {
		case <-s.Gate:
		default:
			time.Sleep(200 * time.Microsecond)
			return nil, nil
		}
	}
	if r.next >= s.Batches {
		if s.Unbounded {
			time.Sleep(200 * time.Microsecond)
			return nil, nil
		}
		return nil, io.EOF
	}
	if s.Delay > 0 {
		time.Sleep(s.Delay)
	}
	keys := s.batchKeys(r.sub, r.next)
	kb := array.NewStringBuilder(r.mem)
	kb.AppendValues(keys, nil)
	kc := kb.NewArray()
	kb.Release()
	// v is unique over the whole input: subtask, batch, row.
	vb := array.NewInt64Builder(r.mem)
	for i := range keys {
		vb.Append(rowID(r.sub, r.next*s.Rows+i))
	}
	vc := vb.NewArray()
	vb.Release()
	r.next++
	b := array.NewRecordBatch(kvSchema, []arrow.Array{kc, vc}, int64(len(keys)))
	kc.Release()
	vc.Release()
	return b, nil
}

func (r *seqReader) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	b, err := json.Marshal(seqPos{Subtask: r.sub, Next: r.next})
	return arrowexec.SubtaskSnapshot{Operator: b}, err
}

func (r *seqReader) Close() error { return nil }

// results collects the final counts of keyed counters, per node.
type results struct {
	mu     sync.Mutex
	counts map[string]map[string]int64
	dup    []string
}

func newResults() *results { return &results{counts: map[string]map[string]int64{}} }

func (r *results) add(node, key string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.counts[node]
	if m == nil {
		m = map[string]int64{}
		r.counts[node] = m
	}
	if _, ok := m[key]; ok {
		r.dup = append(r.dup, node+":"+key)
	}
	m[key] = n
}

func (r *results) check(t testing.TB, node string, want map[string]int64) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.dup) > 0 {
		t.Fatalf("keys held by two subtasks: %v", r.dup)
	}
	got := r.counts[node]
	bad := 0
	for k, w := range want {
		if got[k] != w {
			if bad < 5 {
				t.Errorf("%s: key %q: count %d, want %d", node, k, got[k], w)
			}
			bad++
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected key %q", node, k)
		}
	}
	if bad > 0 || len(got) != len(want) {
		t.Fatalf("%s: %d of %d keys wrong, %d keys found", node, bad, len(want), len(got))
	}
}

// pebbleCount counts rows per key in Pebble keyed state, snapshots it to
// files in Task.SnapshotDir and restores from RestoreState.Dirs. It
// forwards its input unless sink is set; at Finish it records its counts.
type pebbleCount struct {
	backend state.Backend
	res     *results
	sink    bool
}

func (s *pebbleCount) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if s.sink {
		return nil, nil
	}
	return in[0], nil
}

func (s *pebbleCount) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	return &pebbleCountOp{spec: s, t: t}, nil
}

type pebbleCountOp struct {
	spec  *pebbleCount
	t     *arrowexec.Task
	store state.Store
	count *state.Value[int64]
	ks    state.Keys
	one   state.Keys
}

func (o *pebbleCountOp) Open(ctx context.Context) error {
	var err error
	if o.store, err = o.spec.backend.Open(ctx, state.StoreOptionsFor(o.t)); err != nil {
		return err
	}
	if o.count, err = state.NewValue(o.store, state.ValueDescriptor[int64]{Name: "count", Codec: state.Int64}); err != nil {
		return err
	}
	if rs := o.t.Restore; rs != nil {
		lo, hi := o.t.KeyGroupRange()
		return state.Restore(ctx, o.store, rs.Dirs, lo, hi)
	}
	return nil
}

func (o *pebbleCountOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if err := state.EncodeKeys([]arrow.Array{b.Column(0)}, &o.ks); err != nil {
		return err
	}
	// Sum within the batch first: a key may occur several times.
	type acc struct {
		hash uint64
		n    int64
	}
	sums := map[string]*acc{}
	for i := 0; i < o.ks.Len(); i++ {
		k := string(o.ks.Key(i))
		a := sums[k]
		if a == nil {
			a = &acc{hash: o.ks.Hashes[i]}
			sums[k] = a
		}
		a.n++
	}
	o.one.Reset()
	var adds []int64
	for k, a := range sums {
		o.one.Append(a.hash, []byte(k), nil)
		adds = append(adds, a.n)
	}
	vals := make([]int64, o.one.Len())
	found := make([]bool, o.one.Len())
	if err := o.count.GetMany(&o.one, vals, found); err != nil {
		return err
	}
	for i := range vals {
		vals[i] += adds[i]
	}
	if err := o.count.PutMany(&o.one, vals); err != nil {
		return err
	}
	if o.spec.sink {
		return nil
	}
	b.Retain()
	return out.Emit(ctx, b)
}

func (o *pebbleCountOp) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	dir, err := o.t.SnapshotDir(id)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	_, err = o.store.Snapshot(ctx, dir)
	return arrowexec.SubtaskSnapshot{}, err
}

func (o *pebbleCountOp) Finish(context.Context, arrowexec.Emitter) error {
	if o.spec.res == nil {
		return nil
	}
	return o.count.Range(func(e state.Entry, n int64) bool {
		o.spec.res.add(o.t.Node, string(e.Key), n)
		return true
	})
}

func (o *pebbleCountOp) Close() error {
	if o.store != nil {
		return o.store.Close()
	}
	return nil
}

// memCount counts rows per key in Go maps, one per key group, and snapshots
// them as in-memory key group blobs (SubtaskSnapshot.KeyGroups).
type memCount struct {
	res  *results
	sink bool
}

func (s *memCount) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if s.sink {
		return nil, nil
	}
	return in[0], nil
}

func (s *memCount) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	return &memCountOp{spec: s, t: t, groups: map[int]map[string]int64{}}, nil
}

type memCountOp struct {
	spec   *memCount
	t      *arrowexec.Task
	groups map[int]map[string]int64
	ks     state.Keys
}

func (o *memCountOp) Open(context.Context) error {
	rs := o.t.Restore
	if rs == nil {
		return nil
	}
	lo, hi := o.t.KeyGroupRange()
	for kg, blob := range rs.KeyGroups {
		if kg < lo || kg >= hi {
			return fmt.Errorf("restored key group %d outside [%d, %d)", kg, lo, hi)
		}
		m := map[string]int64{}
		for len(blob) > 0 {
			l, w := binary.Uvarint(blob)
			if w <= 0 || uint64(len(blob)-w) < l {
				return errors.New("bad key group blob")
			}
			k := string(blob[w : w+int(l)])
			blob = blob[w+int(l):]
			n, w := binary.Varint(blob)
			if w <= 0 {
				return errors.New("bad key group blob")
			}
			blob = blob[w:]
			m[k] = n
		}
		o.groups[kg] = m
	}
	return nil
}

func (o *memCountOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if err := state.EncodeKeys([]arrow.Array{b.Column(0)}, &o.ks); err != nil {
		return err
	}
	lo, hi := o.t.KeyGroupRange()
	for i := 0; i < o.ks.Len(); i++ {
		kg := arrowexec.KeyGroupOf(o.ks.Hashes[i], o.t.MaxParallelism)
		if kg < lo || kg >= hi {
			return fmt.Errorf("key group %d routed to subtask owning [%d, %d)", kg, lo, hi)
		}
		m := o.groups[kg]
		if m == nil {
			m = map[string]int64{}
			o.groups[kg] = m
		}
		m[string(o.ks.Key(i))]++
	}
	if o.spec.sink {
		return nil
	}
	b.Retain()
	return out.Emit(ctx, b)
}

func (o *memCountOp) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	snap := arrowexec.SubtaskSnapshot{KeyGroups: map[int][]byte{}}
	for kg, m := range o.groups {
		var b []byte
		for k, n := range m {
			b = binary.AppendUvarint(b, uint64(len(k)))
			b = append(b, k...)
			b = binary.AppendVarint(b, n)
		}
		snap.KeyGroups[kg] = b
	}
	return snap, nil
}

func (o *memCountOp) Finish(context.Context, arrowexec.Emitter) error {
	if o.spec.res == nil {
		return nil
	}
	for _, m := range o.groups {
		for k, n := range m {
			o.spec.res.add(o.t.Node, k, n)
		}
	}
	return nil
}

func (o *memCountOp) Close() error { return nil }

// rowCounter counts rows and snapshots the count as its operator state
// (decimal), like arrowexec's TestBarrierAlignment.
type rowCounter struct{ sink bool }

func (s rowCounter) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	if s.sink {
		return nil, nil
	}
	return in[0], nil
}
func (s rowCounter) New(*arrowexec.Task) (arrowexec.Operator, error) {
	return &rowCounterOp{sink: s.sink}, nil
}

type rowCounterOp struct {
	rows int64
	sink bool
}

func (c *rowCounterOp) Open(context.Context) error { return nil }
func (c *rowCounterOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	c.rows += b.NumRows()
	if c.sink {
		return nil
	}
	b.Retain()
	return out.Emit(ctx, b)
}
func (c *rowCounterOp) Finish(context.Context, arrowexec.Emitter) error { return nil }
func (c *rowCounterOp) Close() error                                    { return nil }
func (c *rowCounterOp) SnapshotState(context.Context, uint64) (arrowexec.SubtaskSnapshot, error) {
	return arrowexec.SubtaskSnapshot{Operator: []byte(strconv.FormatInt(c.rows, 10))}, nil
}

// running is a job and its coordinator, started by start.
type running struct {
	c         *checkpoint.Coordinator
	job       *arrowexec.Job
	jobDone   chan error
	coordDone chan error
	cancelJob context.CancelFunc
	stopCoord context.CancelFunc
}

// start compiles g with a coordinator (restoring from `from`) and runs
// both.
func start(t testing.TB, g *arrowexec.Graph, from *checkpoint.Checkpoint, opts checkpoint.Options, mem memory.Allocator) *running {
	t.Helper()
	r, err := tryStart(g, from, opts, mem)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryStart is start returning the error of setting up instead of failing.
func tryStart(g *arrowexec.Graph, from *checkpoint.Checkpoint, opts checkpoint.Options, mem memory.Allocator) (*running, error) {
	c, err := checkpoint.NewCoordinator(opts)
	if err != nil {
		return nil, err
	}
	ro, err := c.RunOptions(g, from, arrowexec.RunOptions{Mem: mem, QueueDepth: 2, Log: opts.Log})
	if err != nil {
		return nil, err
	}
	job, err := g.Compile(ro)
	if err != nil {
		return nil, err
	}
	r := &running{c: c, job: job, jobDone: make(chan error, 1), coordDone: make(chan error, 1)}
	jctx, cancelJob := context.WithCancel(context.Background())
	cctx, stopCoord := context.WithCancel(context.Background())
	r.cancelJob, r.stopCoord = cancelJob, stopCoord
	go func() {
		err := c.Run(cctx, job)
		if err != nil {
			cancelJob()
		}
		r.coordDone <- err
	}()
	go func() { r.jobDone <- job.Run(jctx) }()
	return r, nil
}

// crash cancels the job and the coordinator without any further checkpoint.
func (r *running) crash() {
	r.cancelJob()
	<-r.jobDone
	r.stopCoord()
	<-r.coordDone
}

// wait waits for the job to end, then stops the coordinator; it returns
// the job's and the coordinator's errors.
func (r *running) wait(t testing.TB) (jobErr, coordErr error) {
	t.Helper()
	select {
	case jobErr = <-r.jobDone:
	case <-time.After(60 * time.Second):
		r.cancelJob()
		jobErr = <-r.jobDone
		t.Errorf("job did not end")
	}
	r.stopCoord()
	coordErr = <-r.coordDone
	return jobErr, coordErr
}

// waitCompleted waits until the coordinator completed n checkpoints.
func (r *running) waitCompleted(t testing.TB, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.c.Stats().Completed < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d checkpoints completed, want %d (stats %+v)", r.c.Stats().Completed, n, r.c.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// logBuffer is a slog text handler into a buffer, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLog() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

func newPebble(t testing.TB) state.Backend {
	b, err := state.NewPebbleBackend(state.PebbleOptions{Dir: t.TempDir(), CacheSize: 4 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// copyDir copies the tree src to dst.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dirNames lists the names in dir.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
