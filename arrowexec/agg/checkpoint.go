package agg

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/riffle-dev/riffle/arrowexec"
)

// Checkpoints (see the package documentation, "Checkpoints"): the state of
// a set of groups is an Arrow IPC stream of state records: the key columns,
// then the state columns of every aggregate (state.go), at most
// snapshotBatch groups per record.

var _ arrowexec.Checkpointer = (*operator)(nil)

// finishedMarker is the operator state of a global aggregate that emitted
// its row (no Arrow IPC stream starts like this).
const finishedMarker = "riffle.agg: finished"

// snapshotBatch is the most groups per state record.
const snapshotBatch = MaxBatchSize

// stateVersion is recorded in the metadata of every state stream.
const stateVersion = "1"

// groupsKey is the schema metadata key of the number of groups of a stream.
const groupsKey = "riffle.agg.groups"

// stateSchema returns the schema of the state records of o: the key
// columns under their names, then the state columns of every aggregate,
// named after it ("sum(x)#0"). It is made on first use: operators of jobs
// without checkpoints never need it.
func (o *operator) stateSchema() *arrow.Schema {
	if o.schema == nil {
		o.schema = stateSchemaOf(o.p, o.accs)
	}
	return o.schema
}

func stateSchemaOf(p *plan, accs []accumulator) *arrow.Schema {
	var fields []arrow.Field
	for _, k := range p.keyIdx {
		f := p.in.Field(k)
		fields = append(fields, arrow.Field{Name: f.Name, Type: f.Type, Nullable: true})
	}
	for i, acc := range accs {
		for j, dt := range acc.stateTypes() {
			fields = append(fields, arrow.Field{Name: fmt.Sprintf("%s#%d", p.aggs[i].Name(), j), Type: dt, Nullable: true})
		}
	}
	md := arrow.NewMetadata([]string{"riffle.agg.state", "riffle.agg.mode"}, []string{stateVersion, p.opts.Mode.String()})
	return arrow.NewSchema(fields, &md)
}

// byKeyGroup reports whether o snapshots its groups per key group (keyed
// Single and Final operators, behind a hash exchange) rather than as one
// operator blob (Partial operators and global aggregates).
func (o *operator) byKeyGroup() bool {
	return o.grouper != nil && o.p.opts.Mode != Partial
}

func (o *operator) maxParallelism() int {
	if o.task != nil && o.task.MaxParallelism > 0 {
		return o.task.MaxParallelism
	}
	return arrowexec.DefaultMaxParallelism
}

// SnapshotState implements arrowexec.Checkpointer. Keyed Single and Final
// operators return one state stream per key group that holds groups;
// Partial operators and global aggregates one stream of all their groups
// as operator state. It runs synchronously (export and encode, nothing
// else) and leaves the operator's state as it is.
func (o *operator) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	if o.closed {
		return arrowexec.SubtaskSnapshot{}, ErrClosed
	}
	if !o.finished || o.suspended {
		o.publishSize(o.numGroups(), true)
	}
	if o.finished && !o.suspended {
		// Finish emitted every group: nothing is left, but a global
		// aggregate must not emit its row again after a restore.
		if len(o.p.keyIdx) == 0 {
			return arrowexec.SubtaskSnapshot{Operator: []byte(finishedMarker)}, nil
		}
		return arrowexec.SubtaskSnapshot{}, nil
	}
	ng := o.numGroups()
	if ng == 0 {
		return arrowexec.SubtaskSnapshot{}, nil
	}
	for _, acc := range o.accs {
		acc.resize(ng)
	}
	if !o.byKeyGroup() {
		blob, err := o.encode(ctx, o.export(identity(ng)), 0, ng)
		if err != nil {
			return arrowexec.SubtaskSnapshot{}, fmt.Errorf("agg: snapshot %d: %w", id, err)
		}
		return arrowexec.SubtaskSnapshot{Operator: blob}, nil
	}
	kgs, err := o.keyGroups(ctx)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, fmt.Errorf("agg: snapshot %d: %w", id, err)
	}
	// The snapshot order: by key group (a counting sort), then in order
	// of appearance.
	maxPar := o.maxParallelism()
	if err := o.checkKeyGroups(kgs, maxPar); err != nil {
		return arrowexec.SubtaskSnapshot{}, fmt.Errorf("agg: snapshot %d: %w", id, err)
	}
	start := make([]int, maxPar+1)
	for _, kg := range kgs {
		start[kg+1]++
	}
	for kg := range maxPar {
		start[kg+1] += start[kg]
	}
	dest := make([]uint32, ng)
	pos := slices.Clone(start[:maxPar])
	for g, kg := range kgs {
		dest[g] = uint32(pos[kg])
		pos[kg]++
	}
	cols := o.export(dest)
	snap := arrowexec.SubtaskSnapshot{KeyGroups: map[int][]byte{}}
	for kg := range maxPar {
		if start[kg] == start[kg+1] {
			continue
		}
		blob, err := o.encode(ctx, cols, start[kg], start[kg+1])
		if err != nil {
			return arrowexec.SubtaskSnapshot{}, fmt.Errorf("agg: snapshot %d: key group %d: %w", id, kg, err)
		}
		snap.KeyGroups[kg] = blob
	}
	return snap, nil
}

// export returns the state columns of every group (keys, then every
// aggregate's), group g at row dest[g].
func (o *operator) export(dest []uint32) []stateCol {
	var cols []stateCol
	if o.grouper != nil {
		cols = o.grouper.exportKeys(dest)
	}
	for _, acc := range o.accs {
		cols = append(cols, acc.exportState(dest)...)
	}
	return cols
}

// keyGroups returns the key group of every group: arrowexec.KeyGroupOf of
// arrowexec.HashColumns over its keys, as the hash exchange computes it.
func (o *operator) keyGroups(ctx context.Context) ([]uint16, error) {
	ng := o.numGroups()
	maxPar := o.maxParallelism()
	if maxPar > 1<<16 {
		return nil, fmt.Errorf("max parallelism %d above %d", maxPar, 1<<16)
	}
	kgs := make([]uint16, ng)
	// Groupers with a hash table keep the hash of every group (but the
	// null group of a single key), unless tests masked the hashes.
	var known []uint64
	skip := int64(-1)
	if t, ok := o.grouper.(interface{ hashTable() *table }); ok && o.hashMask == ^uint64(0) {
		known, skip = t.hashTable().hashes, t.hashTable().skip
	}
	var cols []arrow.Array
	for lo := 0; lo < ng; lo += snapshotBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+snapshotBatch, ng)
		var hashes []uint64
		if known != nil {
			hashes = known[lo:hi]
		} else {
			var err error
			if hashes, err = o.hashGroups(lo, hi, cols[:0]); err != nil {
				return nil, err
			}
		}
		for i, h := range hashes {
			kgs[lo+i] = uint16(arrowexec.KeyGroupOf(h, maxPar))
		}
	}
	if skip >= 0 {
		hashes, err := o.hashGroups(int(skip), int(skip)+1, nil)
		if err != nil {
			return nil, err
		}
		kgs[skip] = uint16(arrowexec.KeyGroupOf(hashes[0], maxPar))
	}
	return kgs, nil
}

// checkKeyGroups makes sure every group belongs to the key groups of this
// subtask, as it does behind a hash exchange by the group-by columns: a
// key group held by two subtasks would be checkpointed twice, and the
// checkpoint keeps one blob per key group.
func (o *operator) checkKeyGroups(kgs []uint16, maxPar int) error {
	if o.task == nil || o.task.Parallelism <= 1 {
		return nil
	}
	lo, hi := arrowexec.KeyGroupRange(maxPar, o.task.Parallelism, o.task.Subtask)
	for _, kg := range kgs {
		if int(kg) < lo || int(kg) >= hi {
			return fmt.Errorf("a group of key group %d, outside the key groups [%d, %d) of subtask %d: "+
				"a keyed %s aggregate must run behind a hash exchange by its group-by columns %v, in that order",
				kg, lo, hi, o.task.Subtask, o.p.opts.Mode, o.p.opts.GroupBy)
		}
	}
	return nil
}

// hashGroups returns arrowexec.HashColumns over the keys of groups
// [lo, hi) (in o.hashes).
func (o *operator) hashGroups(lo, hi int, cols []arrow.Array) ([]uint64, error) {
	cols, err := o.grouper.build(o.mem, lo, hi, cols)
	if err == nil {
		o.hashes = grow(o.hashes, hi-lo)
		err = arrowexec.HashColumns(cols, o.hashes)
	}
	for _, c := range cols {
		c.Release()
	}
	return o.hashes[:hi-lo], err
}

// encode writes rows [lo, hi) of the exported columns as an Arrow IPC
// stream, in records of at most snapshotBatch rows.
func (o *operator) encode(ctx context.Context, cols []stateCol, lo, hi int) ([]byte, error) {
	size := 1024 + 512*((hi-lo)/snapshotBatch+1)
	for _, c := range cols {
		size += c.size(lo, hi) + 64
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	// The stream's schema also records its number of groups (restores
	// size the hash table with it).
	sc := o.stateSchema()
	md := sc.Metadata()
	md = arrow.NewMetadata(append(md.Keys(), groupsKey), append(md.Values(), strconv.Itoa(hi-lo)))
	w := ipc.NewWriter(buf, ipc.WithSchema(arrow.NewSchema(sc.Fields(), &md)), ipc.WithAllocator(o.mem))
	for r := lo; r < hi; r += snapshotBatch {
		if err := ctx.Err(); err != nil {
			w.Close()
			return nil, err
		}
		rec, err := o.stateRecord(cols, r, min(r+snapshotBatch, hi))
		if err != nil {
			w.Close()
			return nil, err
		}
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			w.Close()
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// stateRecord returns rows [lo, hi) of the exported columns as a record.
func (o *operator) stateRecord(cols []stateCol, lo, hi int) (arrow.RecordBatch, error) {
	arrs := make([]arrow.Array, 0, len(cols))
	defer func() {
		for _, a := range arrs {
			a.Release()
		}
	}()
	for _, c := range cols {
		a, err := c.slice(o.mem, lo, hi)
		if err != nil {
			return nil, err
		}
		arrs = append(arrs, a)
	}
	return array.NewRecordBatch(o.stateSchema(), arrs, int64(hi-lo)), nil
}

// restore merges the state o restores from (Open calls it): keyed Single
// and Final operators the key groups they own now; Partial operators and
// global aggregates the operator blobs of the old subtasks j with
// j % Parallelism == Subtask, so that every old subtask's state is restored
// exactly once, whatever the old and new parallelism.
func (o *operator) restore(ctx context.Context, rs *arrowexec.RestoreState) error {
	type stream struct {
		blob []byte
		kg   int    // the key group of every group in it, or -1
		what string // for errors
	}
	var streams []stream
	if o.byKeyGroup() {
		kgs := make([]int, 0, len(rs.KeyGroups))
		for kg := range rs.KeyGroups {
			kgs = append(kgs, kg)
		}
		slices.Sort(kgs) // a deterministic group order
		for _, kg := range kgs {
			streams = append(streams, stream{rs.KeyGroups[kg], kg, fmt.Sprintf("key group %d", kg)})
		}
	} else {
		par, sub := 1, 0
		if o.task != nil && o.task.Parallelism > 0 {
			par, sub = o.task.Parallelism, o.task.Subtask
		}
		finished := false
		for j := sub; j < len(rs.Operator); j += par {
			switch blob := rs.Operator[j]; {
			case len(blob) == 0:
			case string(blob) == finishedMarker:
				finished = true
			default:
				streams = append(streams, stream{blob, -1, fmt.Sprintf("state of subtask %d", j)})
			}
		}
		// A global aggregate restored only from finished ones has emitted.
		o.emitted = finished && len(streams) == 0 && len(o.p.keyIdx) == 0
	}
	if o.grouper != nil {
		// Size the hash table once for every group that comes (an upper
		// bound: streams of Partial subtasks can share keys).
		n := 0
		for _, s := range streams {
			n += o.streamGroups(s.blob)
		}
		o.grouper.reserve(n)
	}
	for _, s := range streams {
		if err := o.decode(ctx, s.blob, s.kg); err != nil {
			return fmt.Errorf("agg: restore from checkpoint %d: %s: %w", rs.CheckpointID, s.what, err)
		}
	}
	return nil
}

// streamGroups returns the number of groups of a state stream, as its
// schema records it (0 if it cannot tell: decode reports the error).
func (o *operator) streamGroups(blob []byte) int {
	r, err := ipc.NewReader(bytes.NewReader(blob), ipc.WithAllocator(o.mem))
	if err != nil {
		return 0
	}
	defer r.Release()
	v, _ := r.Schema().Metadata().GetValue(groupsKey)
	n, _ := strconv.Atoi(v)
	return max(n, 0)
}

// decode merges a state stream into o. kg >= 0 is the key group every
// group of the stream must belong to.
func (o *operator) decode(ctx context.Context, blob []byte, kg int) error {
	r, err := ipc.NewReader(bytes.NewReader(blob), ipc.WithAllocator(o.mem))
	if err != nil {
		return err
	}
	defer r.Release()
	if err := sameFields(r.Schema(), o.stateSchema()); err != nil {
		return err
	}
	for r.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := o.merge(r.RecordBatch(), kg); err != nil {
			return err
		}
	}
	return r.Err()
}

// sameFields checks that a state stream was written by an aggregate with
// the same keys, functions and types.
func sameFields(got, want *arrow.Schema) error {
	ok := got.NumFields() == want.NumFields()
	for i := 0; ok && i < got.NumFields(); i++ {
		g, w := got.Field(i), want.Field(i)
		ok = g.Name == w.Name && arrow.TypeEqual(g.Type, w.Type)
	}
	if !ok {
		return fmt.Errorf("the checkpointed state (%s) does not match this aggregate (%s): were the group-by columns or aggregates changed?", got, want)
	}
	v, _ := got.Metadata().GetValue("riffle.agg.state")
	if v != stateVersion {
		return fmt.Errorf("state format version %q, want %q", v, stateVersion)
	}
	return nil
}

// merge merges one state record into o: its keys are grouped like input
// keys, then every accumulator merges its state columns by group id.
func (o *operator) merge(rec arrow.RecordBatch, kg int) error {
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	var gids []uint32
	nk := 0
	if o.grouper == nil {
		o.zeros = zeros(o.zeros, n)
		gids = o.zeros
	} else {
		nk = len(o.p.keyIdx)
		for i := range nk {
			o.keyCols[i] = rec.Column(i)
		}
		var check func([]uint64) error
		if kg >= 0 {
			maxPar := o.maxParallelism()
			check = func(hashes []uint64) error {
				for _, h := range hashes {
					if got := arrowexec.KeyGroupOf(h, maxPar); got != kg {
						return fmt.Errorf("a group of key group %d holds a key of key group %d (max parallelism %d)", kg, got, maxPar)
					}
				}
				return nil
			}
		}
		var err error
		if gids, err = o.groupRows(n, check); err != nil {
			return err
		}
	}
	ng := o.numGroups()
	col := nk
	for i, acc := range o.accs {
		k := len(acc.stateTypes())
		acc.resize(ng)
		acc.mergeState(rec.Columns()[col:col+k], gids)
		col += k
		if err := o.failed(i); err != nil {
			return err
		}
	}
	return nil
}
