package ml

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/state"
)

// Bad-input policies of the recommend operator.
const (
	OnErrorFail       = "fail"        // the first bad row fails the job, naming it
	OnErrorDeadLetter = "dead-letter" // bad rows go to a JSONL file with the reason
)

// RecommendOptions configure the recommend operator (NewRecommend).
type RecommendOptions struct {
	// User and Item name the id columns: integers (kept as int64) or
	// strings (utf8). The operator must run behind a hash exchange on User.
	User, Item string
	// Weight is a numeric expression over the input columns; nil means 1
	// for every row.
	Weight expr.Expr
	// Config holds the iALS hyperparameters.
	Config Config
	// K is the number of recommendations per user (items the user already
	// has are excluded).
	K int
	// Export, when set, writes each trained model as a version directory.
	Export *ExportOptions
	// Backend keeps the keyed state (default: memory).
	Backend state.Backend
	// OnError is OnErrorFail (default) or OnErrorDeadLetter; the latter
	// needs DeadLetterPath, a directory.
	OnError        string
	DeadLetterPath string
	// Log receives warnings (empty input) and the training summary; nil:
	// the task's logger.
	Log *slog.Logger
	// Update, when set, selects the streaming operator, which learns
	// incrementally (package doc, "The streaming recommend operator"); it
	// runs as one subtask.
	Update *UpdateOptions
	// Checkpointed says the job runs with checkpoints: the streaming
	// operator then publishes an export only when the checkpoint that
	// covers it is complete (else at once).
	Checkpointed bool
}

// Validate reports the first bad option.
func (o RecommendOptions) Validate() error {
	switch {
	case o.User == "" || o.Item == "":
		return errors.New("ml: recommend: user and item columns are required")
	case o.User == o.Item:
		return fmt.Errorf("ml: recommend: user and item are the same column %q", o.User)
	case o.K <= 0:
		return fmt.Errorf("ml: recommend: k must be > 0, got %d", o.K)
	}
	if err := o.Config.Validate(); err != nil {
		return err
	}
	switch o.OnError {
	case "", OnErrorFail:
	case OnErrorDeadLetter:
		if o.DeadLetterPath == "" {
			return errors.New("ml: recommend: on_error dead-letter needs a dead_letter_path")
		}
	default:
		return fmt.Errorf("ml: recommend: unknown on_error %q (want fail or dead-letter)", o.OnError)
	}
	if o.Export != nil {
		if err := o.Export.Validate(); err != nil {
			return err
		}
	}
	if o.Update != nil {
		if err := o.Update.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// RecommendSpec is the recommend step as an arrowexec.Spec. See the
// package documentation ("The recommend operator") for its layout.
type RecommendSpec struct {
	opts RecommendOptions

	mu   sync.Mutex
	rv   *rendezvous // the subtasks of the current run meet here at Finish
	live *Live       // the streaming operator's serving copy (Live)
	// published is the newest export version a streaming operator
	// published (ModelVersion).
	published atomic.Int64
}

// ModelVersion returns the newest export version the streaming operator
// published in this run (0: none yet). Safe to call while the job runs.
func (s *RecommendSpec) ModelVersion() int64 { return s.published.Load() }

// notePublished records that version v was published.
func (s *RecommendSpec) notePublished(v int64) {
	for {
		cur := s.published.Load()
		if v <= cur || s.published.CompareAndSwap(cur, v) {
			return
		}
	}
}

var _ arrowexec.Spec = (*RecommendSpec)(nil)

// NewRecommend validates o and returns the operator's Spec.
func NewRecommend(o RecommendOptions) (*RecommendSpec, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.OnError == "" {
		o.OnError = OnErrorFail
	}
	o.Config = o.Config.WithDefaults()
	return &RecommendSpec{opts: o}, nil
}

// Options returns the spec's options (defaults applied).
func (s *RecommendSpec) Options() RecommendOptions { return s.opts }

// Output column names.
const (
	ColUserID       = "user_id"
	ColItemID       = "item_id"
	ColRank         = "rank"
	ColScore        = "score"
	ColModelVersion = "model_version"
)

// idKind is how an id column is kept: int64 or string.
type idKind uint8

const (
	idInt64 idKind = iota + 1
	idString
)

func (k idKind) arrowType() arrow.DataType {
	if k == idString {
		return arrow.BinaryTypes.String
	}
	return arrow.PrimitiveTypes.Int64
}

func (k idKind) String() string {
	if k == idString {
		return "string"
	}
	return "int64"
}

func idKindOf(t arrow.DataType) (idKind, bool) {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32:
		return idInt64, true
	case arrow.STRING:
		return idString, true
	}
	return 0, false
}

// bound is the plan-time view of the input schema.
type bound struct {
	userIdx, itemIdx int
	userKind         idKind
	itemKind         idKind
	weight           *expr.Bound // float64, or nil
	out              *arrow.Schema
}

func (s *RecommendSpec) bind(in *arrow.Schema) (*bound, error) {
	b := &bound{}
	for _, c := range []struct {
		name string
		idx  *int
		kind *idKind
	}{{s.opts.User, &b.userIdx, &b.userKind}, {s.opts.Item, &b.itemIdx, &b.itemKind}} {
		idx := in.FieldIndices(c.name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("ml: recommend: no column %q in the input (have %s)", c.name, fieldList(in))
		}
		k, ok := idKindOf(in.Field(idx[0]).Type)
		if !ok {
			return nil, fmt.Errorf("ml: recommend: column %q is %s: ids must be integers or strings", c.name, in.Field(idx[0]).Type)
		}
		*c.idx, *c.kind = idx[0], k
	}
	if s.opts.Weight != nil {
		w, err := expr.Bind(expr.Cast(s.opts.Weight, "float64"), in)
		if err != nil {
			return nil, fmt.Errorf("ml: recommend: weight: %w", err)
		}
		b.weight = w
	}
	b.out = RecommendSchema(b.userKind.arrowType(), b.itemKind.arrowType())
	return b, nil
}

// RecommendSchema is the schema of the recommendations: user_id, item_id
// (int64 or utf8, as in the input), rank (int32, 1..K), score (float32),
// model_version (int64).
func RecommendSchema(user, item arrow.DataType) *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: ColUserID, Type: user},
		{Name: ColItemID, Type: item},
		{Name: ColRank, Type: arrow.PrimitiveTypes.Int32},
		{Name: ColScore, Type: arrow.PrimitiveTypes.Float32},
		{Name: ColModelVersion, Type: arrow.PrimitiveTypes.Int64},
	}, nil)
}

func fieldList(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// Schema implements arrowexec.Spec.
func (s *RecommendSpec) Schema(inputs []*arrow.Schema) (*arrow.Schema, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("ml: recommend: want 1 input, got %d", len(inputs))
	}
	b, err := s.bind(inputs[0])
	if err != nil {
		return nil, err
	}
	return b.out, nil
}

// New implements arrowexec.Spec.
func (s *RecommendSpec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	if len(t.Inputs) != 1 {
		return nil, fmt.Errorf("ml: recommend: want 1 input, got %d", len(t.Inputs))
	}
	b, err := s.bind(t.Inputs[0])
	if err != nil {
		return nil, err
	}
	log := s.opts.Log
	if log == nil {
		log = t.Log
	}
	if log == nil {
		log = slog.Default()
	}
	base := opBase{s: s, t: t, b: b, log: log.With("node", t.Node, "subtask", t.Subtask)}
	if s.opts.Update != nil {
		if t.Parallelism != 1 {
			return nil, fmt.Errorf("ml: recommend: the streaming operator runs as one subtask, got parallelism %d", t.Parallelism)
		}
		return s.newStream(base), nil
	}
	s.mu.Lock()
	if s.rv == nil || s.rv.registered == s.rv.n || s.rv.n != t.Parallelism {
		s.rv = newRendezvous(t.Parallelism)
	}
	rv := s.rv
	rv.registered++
	s.mu.Unlock()
	return &recommendOp{opBase: base, rv: rv}, nil
}

// State names (see the package documentation).
const (
	stateInteractions     = "recommend/interactions"      // user -> list of (weight, item key)
	stateUser             = "recommend/user"              // user -> trained count, dense index, factors
	stateItem             = "recommend/item"              // item -> dense index, factors
	stateItemInteractions = "recommend/item-interactions" // item -> list of (weight, user key)
)

// opBase is what the batch and the streaming recommend operators share:
// the task, the bound schema, the keyed state, the row checks and the
// snapshots.
type opBase struct {
	s   *RecommendSpec
	t   *arrowexec.Task
	b   *bound
	log *slog.Logger

	store    state.Store
	inter    *state.List[[]byte]
	user     *state.Value[[]byte]
	item     *state.Value[[]byte]
	itemIntr *state.List[[]byte]

	meta    opMeta
	onDisk  bool  // the store is on disk (Pebble): snapshots go to files when the job has a checkpoint directory
	batches int64 // batches processed by this subtask (for messages)
	dead    *deadLetter

	hashes   []uint64
	ukeys    keyColumn
	ikeys    keyColumn
	keys     state.Keys
	kbuf     []byte
	vals     [][]byte
	vbuf     []byte
	voff     []int
	positive bool      // a weight of 0 is a bad row (the streaming operator)
	rows     []int     // the accepted rows of the current batch
	ws       []float32 // their weights
	closed   bool
}

type recommendOp struct {
	opBase
	rv *rendezvous
}

// opMeta is the operator state of a subtask: global facts every subtask
// carries the same copy of.
type opMeta struct {
	Version  int64  `json:"version"` // latest model version trained (0: none)
	UserKind string `json:"user_kind,omitempty"`
	ItemKind string `json:"item_kind,omitempty"`
	// Files says the subtask's state is files in its checkpoint directory
	// (RestoreState.Dirs), not key group blobs.
	Files bool `json:"files,omitempty"`
	// Stream is the streaming operator's model state (nil from the batch
	// operator, which ignores it).
	Stream *streamMeta `json:"stream,omitempty"`
}

func (o *recommendOp) Open(ctx context.Context) error { return o.open(ctx) }

// open opens the keyed state and restores it (the key groups of this
// subtask's range) and the operator state.
func (o *opBase) open(ctx context.Context) error {
	be := o.s.opts.Backend
	if be == nil {
		be = state.NewMemoryBackend(state.Options{})
	}
	_, mem := be.(*state.MemoryBackend)
	o.onDisk = !mem
	st, err := be.Open(ctx, state.StoreOptionsFor(o.t))
	if err != nil {
		return fmt.Errorf("ml: recommend: open state: %w", err)
	}
	o.store = st
	if o.inter, err = state.NewList(st, state.ListDescriptor[[]byte]{Name: stateInteractions, Codec: state.Bytes}); err != nil {
		return err
	}
	if o.user, err = state.NewValue(st, state.ValueDescriptor[[]byte]{Name: stateUser, Codec: state.Bytes}); err != nil {
		return err
	}
	if o.item, err = state.NewValue(st, state.ValueDescriptor[[]byte]{Name: stateItem, Codec: state.Bytes}); err != nil {
		return err
	}
	if o.itemIntr, err = state.NewList(st, state.ListDescriptor[[]byte]{Name: stateItemInteractions, Codec: state.Bytes}); err != nil {
		return err
	}
	o.meta = opMeta{UserKind: o.b.userKind.String(), ItemKind: o.b.itemKind.String()}
	if r := o.t.Restore; r != nil {
		files := false
		for i, blob := range r.Operator {
			if len(blob) == 0 {
				continue
			}
			var m opMeta
			if err := json.Unmarshal(blob, &m); err != nil {
				return fmt.Errorf("ml: recommend: restore: operator state of subtask %d: %w", i, err)
			}
			if m.UserKind != o.meta.UserKind || m.ItemKind != o.meta.ItemKind {
				return fmt.Errorf("ml: recommend: restore: the checkpoint has %s user and %s item ids, the input %s and %s",
					m.UserKind, m.ItemKind, o.meta.UserKind, o.meta.ItemKind)
			}
			o.meta.Version = max(o.meta.Version, m.Version)
			if m.Stream != nil && o.meta.Stream == nil {
				o.meta.Stream = m.Stream
			}
			files = files || m.Files
		}
		if files {
			// Every previous subtask's directory holds the key groups it
			// owned; take those owned now (a subtask without state wrote
			// an empty snapshot, so all of them are files).
			lo, hi := o.t.KeyGroupRange()
			if err := state.Restore(ctx, st, r.Dirs, lo, hi); err != nil {
				return fmt.Errorf("ml: recommend: restore: %w", err)
			}
		} else if err := state.RestoreKeyGroups(ctx, st, r.KeyGroups); err != nil {
			return fmt.Errorf("ml: recommend: restore: %w", err)
		}
	}
	if o.s.opts.OnError == OnErrorDeadLetter {
		o.dead = &deadLetter{dir: o.s.opts.DeadLetterPath, name: fmt.Sprintf("%s-%d.jsonl", o.t.Node, o.t.Subtask)}
	}
	return nil
}

// keyColumn encodes the keys of an id column, one typed pass per batch:
// int64 ids as 8 bytes big endian with the sign bit flipped (so keys sort
// like numbers), strings as their bytes. Integer columns of any width are
// widened to int64 once per batch, so the per-row step is a branch, not a
// type switch.
type keyColumn struct {
	ints []int64
	str  *array.String
}

// reset points k at column c (an integer or string column: bind rejects
// other types).
func (k *keyColumn) reset(c arrow.Array) {
	k.ints, k.str = k.ints[:0], nil
	switch a := c.(type) {
	case *array.String:
		k.str = a
	case *array.Int64:
		k.ints = append(k.ints, a.Int64Values()...)
	case *array.Int32:
		k.ints = widen(k.ints, a.Int32Values())
	case *array.Int16:
		k.ints = widen(k.ints, a.Int16Values())
	case *array.Int8:
		k.ints = widen(k.ints, a.Int8Values())
	case *array.Uint32:
		k.ints = widen(k.ints, a.Uint32Values())
	case *array.Uint16:
		k.ints = widen(k.ints, a.Uint16Values())
	case *array.Uint8:
		k.ints = widen(k.ints, a.Uint8Values())
	default:
		panic(fmt.Sprintf("ml: recommend: id column of type %s", c.DataType())) // bind rejects other types
	}
}

func widen[T int8 | int16 | int32 | uint8 | uint16 | uint32](dst []int64, vals []T) []int64 {
	for _, v := range vals {
		dst = append(dst, int64(v))
	}
	return dst
}

// append appends row i's key to dst.
func (k *keyColumn) append(dst []byte, i int) []byte {
	if k.str != nil {
		return append(dst, k.str.Value(i)...)
	}
	return binary.BigEndian.AppendUint64(dst, uint64(k.ints[i])^(1<<63))
}

// int64Key is the key encoding of an int64 id.
func int64Key(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)^(1<<63)) }

// keyInt64 decodes an int64 key.
func keyInt64(k []byte) int64 { return int64(binary.BigEndian.Uint64(k) ^ (1 << 63)) }

// formatKey renders a key for messages.
func formatKey(kind idKind, k []byte) string {
	if kind == idInt64 && len(k) == 8 {
		return fmt.Sprint(keyInt64(k))
	}
	return fmt.Sprintf("%q", k)
}

func valueString(c arrow.Array, i int) string {
	if c.IsNull(i) {
		return "NULL"
	}
	return c.ValueStr(i)
}

func (o *recommendOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	if err := o.accept(ctx, b); err != nil {
		return err
	}
	return o.appendUserLists()
}

// accept checks the rows of b (ids, weight) and keeps the accepted rows
// and their weights in o.rows and o.ws, the ids' encodings in o.ukeys and
// o.ikeys and the user ids' hashes in o.hashes; a bad row fails the job
// or is dead-lettered (OnError).
func (o *opBase) accept(ctx context.Context, b arrow.RecordBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.batches++
	o.rows, o.ws = o.rows[:0], o.ws[:0]
	n := int(b.NumRows())
	if n == 0 {
		return nil
	}
	uc, ic := b.Column(o.b.userIdx), b.Column(o.b.itemIdx)
	var weights []float64
	var wa arrow.Array
	if o.b.weight != nil {
		var err error
		if wa, err = o.b.weight.Eval(o.t.Mem, b); err != nil {
			return fmt.Errorf("ml: recommend: weight, batch %d: %w", o.batches, err)
		}
		defer wa.Release()
		weights = wa.(*array.Float64).Float64Values()
	}
	if cap(o.hashes) < n {
		o.hashes = make([]uint64, n)
	}
	h := o.hashes[:n]
	if err := arrowexec.HashColumns([]arrow.Array{uc}, h); err != nil {
		return fmt.Errorf("ml: recommend: %w", err)
	}
	o.ukeys.reset(uc)
	o.ikeys.reset(ic)
	for i := 0; i < n; i++ {
		w := 1.0
		reason := ""
		switch {
		case uc.IsNull(i):
			reason = fmt.Sprintf("user id (%s) is NULL", o.s.opts.User)
		case ic.IsNull(i):
			reason = fmt.Sprintf("item id (%s) is NULL", o.s.opts.Item)
		case wa != nil && wa.IsNull(i):
			reason = "weight is NULL"
		default:
			if weights != nil {
				w = weights[i]
			}
			if err := checkWeight(w); err != nil {
				reason = err.Error()
			} else if w > math.MaxFloat32 {
				reason = fmt.Sprintf("weight %v overflows float32", w)
			} else if w == 0 && o.positive {
				reason = "weight is 0 (the streaming model learns from positive weights only)"
			}
		}
		if reason != "" {
			if err := o.badRow(b, i, uc, ic, wa, reason); err != nil {
				return err
			}
			continue
		}
		o.rows = append(o.rows, i)
		o.ws = append(o.ws, float32(w))
	}
	return nil
}

// appendUserLists appends the accepted rows to their users' lists in
// keyed state (weight | item key): one AppendMany, no read.
func (o *opBase) appendUserLists() error {
	if err := o.appendLists(o.inter, o.hashes, &o.ukeys, &o.ikeys); err != nil {
		return fmt.Errorf("ml: recommend: batch %d: %w", o.batches, err)
	}
	return nil
}

// appendLists appends each accepted row to list l under its key (hashes
// by row, encodings keys) as (weight | partner key).
func (o *opBase) appendLists(l *state.List[[]byte], hashes []uint64, keys, partner *keyColumn) error {
	if len(o.rows) == 0 {
		return nil
	}
	o.keys.Reset()
	o.vbuf = o.vbuf[:0]
	o.voff = append(o.voff[:0], 0)
	for j, i := range o.rows {
		o.kbuf = keys.append(o.kbuf[:0], i)
		o.keys.Append(hashes[i], o.kbuf, nil)
		o.vbuf = binary.LittleEndian.AppendUint32(o.vbuf, math.Float32bits(o.ws[j]))
		o.vbuf = partner.append(o.vbuf, i)
		o.voff = append(o.voff, len(o.vbuf))
	}
	o.vals = o.vals[:0]
	for j := 0; j+1 < len(o.voff); j++ {
		o.vals = append(o.vals, o.vbuf[o.voff[j]:o.voff[j+1]])
	}
	return l.AppendMany(&o.keys, o.vals)
}
