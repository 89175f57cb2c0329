package ml

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

// rendezvous is where the subtasks of one run of a recommend node meet at
// the end of input: each hands in the users of its key groups, the last to
// arrive trains the model on all of them, and every subtask then takes the
// result back for its own key groups.
type rendezvous struct {
	n          int
	registered int // subtasks created (RecommendSpec.New), guarded by the spec's mu

	mu      sync.Mutex
	parts   []*contribution
	arrived int
	done    chan struct{}
	res     *trainResult
	err     error
}

func newRendezvous(n int) *rendezvous {
	return &rendezvous{n: n, parts: make([]*contribution, n), done: make(chan struct{})}
}

// meet hands in part and returns the training result once every subtask
// has handed in its part (the last one runs train).
func (r *rendezvous) meet(ctx context.Context, subtask int, part *contribution, train func([]*contribution) (*trainResult, error)) (*trainResult, error) {
	r.mu.Lock()
	if r.parts[subtask] != nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("ml: recommend: subtask %d finished twice", subtask)
	}
	r.parts[subtask] = part
	r.arrived++
	last := r.arrived == r.n
	r.mu.Unlock()
	if last {
		r.res, r.err = train(r.parts)
		close(r.done)
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// contribution is one subtask's users: their keys, interactions (weight |
// item key) and how many of them the model of the last version saw.
type contribution struct {
	users   []userPart
	version int64
}

type userPart struct {
	key     []byte
	elems   [][]byte
	trained int
}

// trainResult is the model of one version with the ids of its dense rows
// and the top-K lists, shared read-only by the subtasks.
type trainResult struct {
	skip     bool // nothing new since the last version
	version  int64
	model    *Model
	ui       *Interactions
	userKeys [][]byte
	itemKeys [][]byte
	userHash []uint64
	itemHash []uint64
	elems    []int // interactions list length per user (the trained count)
	recItems []int32
	recScore []float32
	recCount []int32
	k        int
	loss     float64
	elapsed  time.Duration
	rows     int64 // interactions (list elements) trained on
	finger   uint64
}

func (o *opBase) badRow(b arrow.RecordBatch, i int, uc, ic, wa arrow.Array, reason string) error {
	w := "1"
	if wa != nil {
		w = valueString(wa, i)
	}
	where := fmt.Sprintf("batch %d, row %d (subtask %d)", o.batches, i, o.t.Subtask)
	if o.dead == nil {
		return fmt.Errorf("ml: recommend: bad input at %s: %s (%s=%s, %s=%s, weight=%s)",
			where, reason, o.s.opts.User, valueString(uc, i), o.s.opts.Item, valueString(ic, i), w)
	}
	rec := map[string]any{"batch": o.batches, "row": i, "subtask": o.t.Subtask, "reason": reason,
		"user": valueString(uc, i), "item": valueString(ic, i), "weight": w}
	return o.dead.write(rec)
}

// deadLetter appends rejected rows to a JSONL file.
type deadLetter struct {
	dir, name string
	f         *os.File
}

func (d *deadLetter) write(rec map[string]any) error {
	if d.f == nil {
		if err := os.MkdirAll(d.dir, 0o755); err != nil {
			return fmt.Errorf("ml: recommend: dead letter: %w", err)
		}
		f, err := os.OpenFile(filepath.Join(d.dir, d.name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("ml: recommend: dead letter: %w", err)
		}
		d.f = f
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := d.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("ml: recommend: dead letter %s: %w", d.f.Name(), err)
	}
	return nil
}

func (d *deadLetter) sync() error {
	if d == nil || d.f == nil {
		return nil
	}
	return d.f.Sync()
}

func (d *deadLetter) close() error {
	if d == nil || d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// collect reads this subtask's users from the state.
func (o *recommendOp) collect() (*contribution, error) {
	trained := map[string]int{}
	if err := o.user.Range(func(e state.Entry, blob []byte) bool {
		n, _ := binary.Uvarint(blob)
		trained[string(e.Key)] = int(n)
		return true
	}); err != nil {
		return nil, fmt.Errorf("ml: recommend: read users: %w", err)
	}
	c := &contribution{version: o.meta.Version}
	if err := o.inter.Range(func(e state.Entry, vals [][]byte) bool {
		u := userPart{key: bytes.Clone(e.Key), elems: make([][]byte, len(vals)), trained: trained[string(e.Key)]}
		for j, v := range vals {
			u.elems[j] = bytes.Clone(v)
		}
		c.users = append(c.users, u)
		return true
	}); err != nil {
		return nil, fmt.Errorf("ml: recommend: read interactions: %w", err)
	}
	return c, nil
}

func (o *recommendOp) Finish(ctx context.Context, out arrowexec.Emitter) error {
	if o.t.Suspended() {
		// A backfill held at its end: the interactions stay in the state
		// (the savepoint) and the job resumed from it trains at its end.
		return nil
	}
	part, err := o.collect()
	if err != nil {
		return err
	}
	res, err := o.rv.meet(ctx, o.t.Subtask, part, func(parts []*contribution) (*trainResult, error) {
		return o.s.train(ctx, parts, o.b, o.log)
	})
	if err != nil {
		return err
	}
	if res.skip {
		return nil
	}
	o.meta.Version = res.version
	if err := o.apply(res); err != nil {
		return err
	}
	return o.emit(ctx, res, out)
}

// owns says whether hash's key group is this subtask's.
func (o *opBase) owns(hash uint64) bool {
	lo, hi := o.t.KeyGroupRange()
	kg := arrowexec.KeyGroupOf(hash, o.t.MaxParallelism)
	return kg >= lo && kg < hi
}

// apply writes the model of res for this subtask's key groups to the
// state: each user's trained count, dense index and factors; each item's
// dense index, factors and interactions.
func (o *recommendOp) apply(res *trainResult) error {
	m := res.model
	var ks state.Keys
	var vals [][]byte
	var buf []byte
	for u, key := range res.userKeys {
		if !o.owns(res.userHash[u]) {
			continue
		}
		start := len(buf)
		buf = binary.AppendUvarint(buf, uint64(res.elems[u]))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(u))
		buf = appendFloats(buf, m.UserVector(u))
		ks.Append(res.userHash[u], key, nil)
		vals = append(vals, buf[start:])
	}
	if ks.Len() > 0 {
		if err := o.user.PutMany(&ks, vals); err != nil {
			return fmt.Errorf("ml: recommend: store user factors: %w", err)
		}
	}
	ks.Reset()
	vals, buf = vals[:0], nil
	iu := res.ui.Transpose()
	var list [][]byte
	for i, key := range res.itemKeys {
		if !o.owns(res.itemHash[i]) {
			continue
		}
		start := len(buf)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(i))
		buf = appendFloats(buf, m.ItemVector(i))
		ks.Append(res.itemHash[i], key, nil)
		vals = append(vals, buf[start:])
		users, ws := iu.Row(i)
		list = list[:0]
		for j, u := range users {
			e := binary.LittleEndian.AppendUint32(nil, math.Float32bits(ws[j]))
			list = append(list, append(e, res.userKeys[u]...))
		}
		if err := o.itemIntr.Update(res.itemHash[i], key, nil, list); err != nil {
			return fmt.Errorf("ml: recommend: store item interactions: %w", err)
		}
	}
	if ks.Len() > 0 {
		if err := o.item.PutMany(&ks, vals); err != nil {
			return fmt.Errorf("ml: recommend: store item factors: %w", err)
		}
	}
	return nil
}

func appendFloats(dst []byte, v []float32) []byte {
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
	}
	return dst
}

const emitBatchRows = 8192

// emit sends the top-K rows of this subtask's users, in user key order.
func (o *opBase) emit(ctx context.Context, res *trainResult, out arrowexec.Emitter) error {
	bb := newRecBuilder(o.t.Mem, o.b.out)
	defer bb.release()
	for u := range res.userKeys {
		if !o.owns(res.userHash[u]) {
			continue
		}
		bb.addUser(res, u)
		if bb.rows >= emitBatchRows {
			if err := out.Emit(ctx, bb.batch()); err != nil {
				return err
			}
		}
	}
	if bb.rows > 0 {
		return out.Emit(ctx, bb.batch())
	}
	return nil
}

// recBuilder builds recommendation batches.
type recBuilder struct {
	schema *arrow.Schema
	b      *array.RecordBuilder
	rows   int
}

func newRecBuilder(mem memory.Allocator, schema *arrow.Schema) *recBuilder {
	return &recBuilder{schema: schema, b: array.NewRecordBuilder(mem, schema)}
}

func appendID(b array.Builder, key []byte) {
	switch bb := b.(type) {
	case *array.Int64Builder:
		bb.Append(keyInt64(key))
	case *array.StringBuilder:
		bb.BinaryBuilder.Append(key)
	}
}

func (r *recBuilder) addUser(res *trainResult, u int) {
	n := int(res.recCount[u])
	for j := 0; j < n; j++ {
		appendID(r.b.Field(0), res.userKeys[u])
		appendID(r.b.Field(1), res.itemKeys[res.recItems[u*res.k+j]])
		r.b.Field(2).(*array.Int32Builder).Append(int32(j + 1))
		r.b.Field(3).(*array.Float32Builder).Append(res.recScore[u*res.k+j])
		r.b.Field(4).(*array.Int64Builder).Append(res.version)
	}
	r.rows += n
}

func (r *recBuilder) batch() arrow.RecordBatch {
	r.rows = 0
	return r.b.NewRecordBatch()
}

func (r *recBuilder) release() { r.b.Release() }

// train builds the model of a new version from every subtask's users
// (coordinator side, run by the last subtask to arrive).
func (s *RecommendSpec) train(ctx context.Context, parts []*contribution, b *bound, log *slog.Logger) (*trainResult, error) {
	start := time.Now()
	var users []userPart
	res := &trainResult{k: s.opts.K}
	dirty := false
	for _, p := range parts {
		users = append(users, p.users...)
		res.version = max(res.version, p.version)
	}
	slices.SortFunc(users, func(a, b userPart) int { return bytes.Compare(a.key, b.key) })
	for j, u := range users {
		if j > 0 && bytes.Equal(users[j-1].key, u.key) {
			return nil, fmt.Errorf("ml: recommend: user %s held by two subtasks", formatKey(b.userKind, u.key))
		}
		dirty = dirty || len(u.elems) != u.trained
	}
	if !dirty && res.version > 0 {
		res.skip = true
		return res, nil
	}
	// Dense indices: users and items in key order, so the model does not
	// depend on the parallelism or the arrival order.
	itemSet := map[string]struct{}{}
	for _, u := range users {
		for _, e := range u.elems {
			itemSet[string(e[4:])] = struct{}{}
		}
	}
	itemKeys := make([][]byte, 0, len(itemSet))
	for k := range itemSet {
		itemKeys = append(itemKeys, []byte(k))
	}
	slices.SortFunc(itemKeys, bytes.Compare)
	itemIdx := make(map[string]int32, len(itemKeys))
	for i, k := range itemKeys {
		itemIdx[string(k)] = int32(i)
	}
	type pair struct {
		item int32
		w    float32
	}
	var us, is []int32
	var ws []float32
	var pairs []pair
	fp := newFingerprint()
	res.userKeys = make([][]byte, len(users))
	res.elems = make([]int, len(users))
	for u, up := range users {
		res.userKeys[u] = up.key
		res.elems[u] = len(up.elems)
		res.rows += int64(len(up.elems))
		pairs = pairs[:0]
		for _, e := range up.elems {
			pairs = append(pairs, pair{itemIdx[string(e[4:])], math.Float32frombits(binary.LittleEndian.Uint32(e))})
		}
		// Sorting the duplicates by weight makes their float sum
		// independent of the order they arrived in.
		slices.SortFunc(pairs, func(a, b pair) int {
			if a.item != b.item {
				return int(a.item) - int(b.item)
			}
			return cmp.Compare(a.w, b.w)
		})
		for _, p := range pairs {
			us, is, ws = append(us, int32(u)), append(is, p.item), append(ws, p.w)
			fp.add(up.key, itemKeys[p.item], p.w)
		}
	}
	res.itemKeys = itemKeys
	res.finger = fp.sum()
	var err error
	if res.userHash, err = hashKeys(b.userKind, res.userKeys); err != nil {
		return nil, err
	}
	if res.itemHash, err = hashKeys(b.itemKind, res.itemKeys); err != nil {
		return nil, err
	}
	cfg := s.opts.Config
	if len(users) > 0 && len(itemKeys) < s.opts.K {
		return nil, fmt.Errorf("ml: recommend: k = %d exceeds the catalogue of %d items", s.opts.K, len(itemKeys))
	}
	ui, err := NewInteractions(len(users), len(itemKeys), us, is, ws)
	if err != nil {
		return nil, fmt.Errorf("ml: recommend: %w", err)
	}
	res.ui = ui
	if len(users) == 0 {
		log.Warn("ml: recommend: no interactions in the input: exporting an empty model")
		res.model = &Model{Factors: cfg.Factors}
	} else {
		m, err := Train(ctx, cfg, ui, nil)
		if err != nil {
			return nil, s.describeTrainError(err, res, b)
		}
		res.model = m
		res.loss = Loss(cfg, ui, m)
	}
	k := s.opts.K
	if err := res.topK(ctx, cfg, b, k); err != nil {
		return nil, err
	}
	res.elapsed = time.Since(start)
	if s.opts.Export != nil {
		v, err := latestVersionOnDisk(s.opts.Export.Path)
		if err != nil {
			return nil, err
		}
		res.version = max(res.version, v)
	}
	res.version++
	if s.opts.Export != nil {
		if err := s.export(ctx, res, b); err != nil {
			return nil, err
		}
	}
	log.Info("ml: recommend: trained", "version", res.version, "users", len(users), "items", len(itemKeys),
		"interactions", ui.NNZ(), "loss", res.loss, "elapsed", res.elapsed)
	return res, nil
}

// topK fills res's lists: each user's k best items it does not have
// (fewer when the catalogue is smaller), a NaN or infinite score an
// error naming the user and item.
func (res *trainResult) topK(ctx context.Context, cfg Config, b *bound, k int) error {
	nu := len(res.userKeys)
	res.recItems = make([]int32, nu*k)
	res.recScore = make([]float32, nu*k)
	res.recCount = make([]int32, nu)
	if nu == 0 || len(res.itemKeys) == 0 {
		return nil
	}
	return res.model.TopK(ctx, nil, min(k, len(res.itemKeys)), res.ui, cfg.Threads, func(u int32, items []int32, scores []float32) error {
		for j, sc := range scores {
			if math.IsNaN(float64(sc)) || math.IsInf(float64(sc), 0) {
				return fmt.Errorf("ml: recommend: %w: score %v of user %s, item %s", ErrNumerical, sc,
					formatKey(b.userKind, res.userKeys[u]), formatKey(b.itemKind, res.itemKeys[items[j]]))
			}
		}
		copy(res.recItems[int(u)*k:], items)
		copy(res.recScore[int(u)*k:], scores)
		res.recCount[u] = int32(len(items))
		return nil
	})
}

// describeTrainError names the user or item of a numerical failure by id.
func (s *RecommendSpec) describeTrainError(err error, res *trainResult, b *bound) error {
	var re *RowError
	if errors.As(err, &re) {
		id := "?"
		switch {
		case re.Side == "user" && re.Row < len(res.userKeys):
			id = formatKey(b.userKind, res.userKeys[re.Row])
		case re.Side == "item" && re.Row < len(res.itemKeys):
			id = formatKey(b.itemKind, res.itemKeys[re.Row])
		}
		return fmt.Errorf("ml: recommend: training failed at %s id %s (nothing exported): %w", re.Side, id, err)
	}
	return fmt.Errorf("ml: recommend: training failed (nothing exported): %w", err)
}

// hashKeys hashes keys as arrowexec.HashColumns hashes the id column they
// came from (the hash exchange's hash, so key groups line up).
func hashKeys(kind idKind, keys [][]byte) ([]uint64, error) {
	mem := memory.NewGoAllocator()
	var a arrow.Array
	if kind == idString {
		bl := array.NewStringBuilder(mem)
		for _, k := range keys {
			bl.BinaryBuilder.Append(k)
		}
		a = bl.NewArray()
		bl.Release()
	} else {
		bl := array.NewInt64Builder(mem)
		for _, k := range keys {
			bl.Append(keyInt64(k))
		}
		a = bl.NewArray()
		bl.Release()
	}
	defer a.Release()
	out := make([]uint64, len(keys))
	if err := arrowexec.HashColumns([]arrow.Array{a}, out); err != nil {
		return nil, fmt.Errorf("ml: recommend: %w", err)
	}
	return out, nil
}

// SnapshotState implements arrowexec.Checkpointer (SnapshotStateAsync,
// completed at once).
func (o *recommendOp) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	complete, err := o.SnapshotStateAsync(ctx, id)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return complete(ctx)
}

// SnapshotStateAsync implements arrowexec.AsyncCheckpointer: at the
// barrier it takes the store's point-in-time view (state.Store.
// BeginSnapshot); complete writes it out while the operator goes on. A
// store on disk (Pebble) in a job with a checkpoint directory is written
// as files into the subtask's directory (opMeta.Files; restored from
// RestoreState.Dirs), anything else becomes one blob per key group.
func (o *recommendOp) SnapshotStateAsync(ctx context.Context, id uint64) (func(context.Context) (arrowexec.SubtaskSnapshot, error), error) {
	return o.snapshotAsync(ctx, id)
}

// snapshotAsync takes the point-in-time view of the keyed state and o.meta
// (see SnapshotStateAsync).
func (o *opBase) snapshotAsync(ctx context.Context, id uint64) (func(context.Context) (arrowexec.SubtaskSnapshot, error), error) {
	if err := o.dead.sync(); err != nil {
		return nil, fmt.Errorf("ml: recommend: dead letter: %w", err)
	}
	p, err := o.store.BeginSnapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("ml: recommend: snapshot %d: %w", id, err)
	}
	meta, t, disk := o.meta, o.t, o.onDisk
	return func(ctx context.Context) (arrowexec.SubtaskSnapshot, error) {
		var snap arrowexec.SubtaskSnapshot
		dir, err := "", errors.New("no checkpoint directory")
		if t.SnapshotDir != nil && disk {
			dir, err = t.SnapshotDir(id)
		}
		if err == nil {
			if _, err := p.Write(ctx, dir); err != nil {
				return snap, fmt.Errorf("ml: recommend: snapshot %d: %w", id, err)
			}
			meta.Files = true
		} else {
			if snap.KeyGroups, err = pendingBlobs(ctx, p); err != nil {
				return snap, fmt.Errorf("ml: recommend: snapshot %d: %w", id, err)
			}
		}
		snap.Operator, err = json.Marshal(meta)
		return snap, err
	}, nil
}

// pendingBlobs writes p to a temporary directory and returns its key
// group files as blobs (the format state.RestoreKeyGroups reads).
func pendingBlobs(ctx context.Context, p state.PendingSnapshot) (map[int][]byte, error) {
	dir, err := os.MkdirTemp("", "riffle-recommend-snap-")
	if err != nil {
		p.Discard()
		return nil, err
	}
	defer os.RemoveAll(dir)
	m, err := p.Write(ctx, dir)
	if err != nil {
		return nil, err
	}
	kgs := make(map[int][]byte, len(m.Files))
	for _, f := range m.Files {
		if kgs[f.KeyGroup], err = os.ReadFile(filepath.Join(dir, f.Name)); err != nil {
			return nil, err
		}
	}
	return kgs, nil
}

var _ arrowexec.AsyncCheckpointer = (*recommendOp)(nil)
var _ arrowexec.Checkpointer = (*recommendOp)(nil)

func (o *opBase) Close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	var errs []error
	if o.store != nil {
		errs = append(errs, o.store.Close())
	}
	errs = append(errs, o.dead.close())
	return errors.Join(errs...)
}
