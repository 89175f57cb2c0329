package joins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

// Table is the table side of a lookup join: read whole by every subtask
// (a broadcast), and read again when its version changes.
type Table interface {
	// Schema is the schema of the table's batches.
	Schema() *arrow.Schema
	// Version identifies the table's current contents (for files: their
	// names, sizes and modification times).
	Version(ctx context.Context) (string, error)
	// Load reads the whole table; the caller owns the batches.
	Load(ctx context.Context, mem memory.Allocator) ([]arrow.RecordBatch, error)
}

// LookupOptions configures a lookup join: every input row joined with the
// table rows whose TableKeys equal its Keys (inner).
type LookupOptions struct {
	Keys, TableKeys []string
	Table           Table
	// Check is how often, in processing time, the table's Version is
	// asked (before a batch); a new version is loaded before the batch is
	// joined. Default DefaultLookupCheck; negative: never.
	Check time.Duration
	// Clock is the processing-time clock; default time.Now.
	Clock func() time.Time
	// BatchSize bounds output batches; default 65536.
	BatchSize int
}

// DefaultLookupCheck is how often a lookup join asks whether its table
// changed by default.
const DefaultLookupCheck = 10 * time.Second

// LookupSpec is the arrowexec.Spec of a lookup join: one input, no
// exchange needed (every subtask holds the whole table).
type LookupSpec struct {
	opts LookupOptions
}

var _ arrowexec.Spec = (*LookupSpec)(nil)

// NewLookup validates o and returns the Spec.
func NewLookup(o LookupOptions) (*LookupSpec, error) {
	if len(o.Keys) == 0 || len(o.Keys) != len(o.TableKeys) {
		return nil, fmt.Errorf("joins: lookup: want the same positive number of input and table key columns, have %d and %d", len(o.Keys), len(o.TableKeys))
	}
	if o.Table == nil {
		return nil, errors.New("joins: lookup: no table")
	}
	if o.BatchSize < 0 {
		return nil, errors.New("joins: lookup: negative batch size")
	}
	if o.Check == 0 {
		o.Check = DefaultLookupCheck
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	o.Keys, o.TableKeys = slices.Clone(o.Keys), slices.Clone(o.TableKeys)
	return &LookupSpec{opts: o}, nil
}

// Schema implements arrowexec.Spec: the input's columns, then the
// table's (RightPrefix added to a name already taken, as for Spec).
func (s *LookupSpec) Schema(in []*arrow.Schema) (*arrow.Schema, error) {
	_, _, out, err := s.bind(in)
	return out, err
}

func (s *LookupSpec) bind(in []*arrow.Schema) (keys, tkeys []int, out *arrow.Schema, err error) {
	if len(in) != 1 {
		return nil, nil, nil, fmt.Errorf("joins: lookup: reads one input, has %d", len(in))
	}
	ts := s.opts.Table.Schema()
	for i := range s.opts.Keys {
		k, tk := in[0].FieldIndices(s.opts.Keys[i]), ts.FieldIndices(s.opts.TableKeys[i])
		if len(k) != 1 {
			return nil, nil, nil, fmt.Errorf("joins: lookup: input has no key column %q (have %s)", s.opts.Keys[i], fieldNames(in[0]))
		}
		if len(tk) != 1 {
			return nil, nil, nil, fmt.Errorf("joins: lookup: table has no key column %q (have %s)", s.opts.TableKeys[i], fieldNames(ts))
		}
		if a, b := in[0].Field(k[0]).Type, ts.Field(tk[0]).Type; !arrow.TypeEqual(a, b) {
			return nil, nil, nil, fmt.Errorf("joins: lookup: key %s = %s: the columns have different types (%s and %s); cast one in a project step", s.opts.Keys[i], s.opts.TableKeys[i], a, b)
		}
		keys, tkeys = append(keys, k[0]), append(tkeys, tk[0])
	}
	names, err := OutputNames(Options{Type: Regular}, in[0], ts)
	if err != nil {
		return nil, nil, nil, err
	}
	fields := append(slices.Clone(in[0].Fields()), ts.Fields()...)
	for i := range fields {
		fields[i].Name = names[i]
	}
	return keys, tkeys, arrow.NewSchema(fields, nil), nil
}

// New implements arrowexec.Spec.
func (s *LookupSpec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	keys, tkeys, out, err := s.bind(t.Inputs)
	if err != nil {
		return nil, err
	}
	mem := t.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return &lookupOp{s: s, t: t, mem: mem, keys: keys, tkeys: tkeys, out: out}, nil
}

// lookupOp holds the table as one batch and a hash index of its keys:
// head[key] is the first row of the key, next[row] the following one (-1
// ends the chain).
type lookupOp struct {
	s           *LookupSpec
	t           *arrowexec.Task
	mem         memory.Allocator
	keys, tkeys []int
	out         *arrow.Schema

	table     arrow.RecordBatch
	version   string
	checked   time.Time
	head      map[string]int32
	next      []int32
	ks        state.Keys
	in, match []int32
}

func (o *lookupOp) Open(ctx context.Context) error { return o.reload(ctx, true) }

// reload loads the table when its version changed (always with force).
func (o *lookupOp) reload(ctx context.Context, force bool) error {
	tbl := o.s.opts.Table
	o.checked = o.s.opts.Clock()
	v, err := tbl.Version(ctx)
	if err != nil {
		return fmt.Errorf("joins: lookup %s: table: %w", o.t.Node, err)
	}
	if !force && v == o.version {
		return nil
	}
	bs, err := tbl.Load(ctx, o.mem)
	if err != nil {
		return fmt.Errorf("joins: lookup %s: load table: %w", o.t.Node, err)
	}
	defer func() {
		for _, b := range bs {
			b.Release()
		}
	}()
	rec, err := concat(o.mem, tbl.Schema(), bs)
	if err != nil {
		return fmt.Errorf("joins: lookup %s: table: %w", o.t.Node, err)
	}
	var cols []arrow.Array
	for _, k := range o.tkeys {
		cols = append(cols, rec.Column(k))
	}
	n := int(rec.NumRows())
	head := make(map[string]int32, n)
	next := make([]int32, n)
	if n > 0 {
		if err := state.EncodeKeys(cols, &o.ks); err != nil {
			rec.Release()
			return fmt.Errorf("joins: lookup %s: table: %w", o.t.Node, err)
		}
	}
	valid := nonNullRows(cols, n)
	// Backwards, so each chain runs in table order.
	for i := n - 1; i >= 0; i-- {
		next[i] = -1
		if !valid[i] {
			continue
		}
		k := string(o.ks.Key(i))
		if h, ok := head[k]; ok {
			next[i] = h
		}
		head[k] = int32(i)
	}
	if o.table != nil {
		o.table.Release()
	}
	o.table, o.head, o.next, o.version = rec, head, next, v
	log := o.t.Log
	if log == nil {
		log = slog.Default()
	}
	log.Info("joins: lookup table loaded", "node", o.t.Node, "subtask", o.t.Subtask, "rows", n, "version", v)
	return nil
}

// nonNullRows says which rows have no null key.
func nonNullRows(cols []arrow.Array, n int) []bool {
	ok := make([]bool, n)
	for i := range ok {
		ok[i] = true
	}
	for _, c := range cols {
		if c.NullN() == 0 {
			continue
		}
		for i := range ok {
			if c.IsNull(i) {
				ok[i] = false
			}
		}
	}
	return ok
}

// concat makes one batch of bs (owned by the caller).
func concat(mem memory.Allocator, schema *arrow.Schema, bs []arrow.RecordBatch) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, schema.NumFields())
	var n int64
	for _, b := range bs {
		n += b.NumRows()
	}
	for c := range cols {
		parts := make([]arrow.Array, len(bs))
		for i, b := range bs {
			parts[i] = b.Column(c)
		}
		var err error
		if len(parts) == 0 {
			cols[c] = array.MakeArrayOfNull(mem, schema.Field(c).Type, 0)
		} else if cols[c], err = array.Concatenate(parts, mem); err != nil {
			releaseAll(cols[:c])
			return nil, err
		}
	}
	rec := array.NewRecordBatch(schema, cols, n)
	releaseAll(cols)
	return rec, nil
}

func (o *lookupOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c := o.s.opts.Check; c > 0 && o.s.opts.Clock().Sub(o.checked) >= c {
		if err := o.reload(ctx, false); err != nil {
			return err
		}
	}
	n := int(b.NumRows())
	if n == 0 || len(o.head) == 0 {
		return nil
	}
	var cols []arrow.Array
	for _, k := range o.keys {
		cols = append(cols, b.Column(k))
	}
	if err := state.EncodeKeys(cols, &o.ks); err != nil {
		return fmt.Errorf("joins: lookup %s: %w", o.t.Node, err)
	}
	valid := nonNullRows(cols, n)
	o.in, o.match = o.in[:0], o.match[:0]
	for i := 0; i < n; i++ {
		if !valid[i] {
			continue
		}
		r, ok := o.head[string(o.ks.Key(i))]
		if !ok {
			continue
		}
		for ; r >= 0; r = o.next[r] {
			o.in = append(o.in, int32(i))
			o.match = append(o.match, r)
			if len(o.in) >= o.s.opts.BatchSize {
				if err := o.emit(ctx, b, out); err != nil {
					return err
				}
			}
		}
	}
	return o.emit(ctx, b, out)
}

func (o *lookupOp) emit(ctx context.Context, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if len(o.in) == 0 {
		return nil
	}
	left, err := arrowexec.TakeRecord(o.mem, b, o.in)
	if err != nil {
		return err
	}
	defer left.Release()
	right, err := arrowexec.TakeRecord(o.mem, o.table, o.match)
	if err != nil {
		return err
	}
	defer right.Release()
	cols := append(slices.Clone(left.Columns()), right.Columns()...)
	rec := array.NewRecordBatch(o.out, cols, int64(len(o.in)))
	o.in, o.match = o.in[:0], o.match[:0]
	return out.Emit(ctx, rec)
}

func (o *lookupOp) Finish(context.Context, arrowexec.Emitter) error { return nil }

func (o *lookupOp) Close() error {
	if o.table != nil {
		o.table.Release()
		o.table = nil
	}
	return nil
}
