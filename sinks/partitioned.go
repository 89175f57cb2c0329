package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/fsx"
)

// Partitioned output (FileOptions.PartitionBy).
//
// A partitioned sink subtask splits every batch by partition (partition.go)
// and hands each partition's rows, without the partition columns, to a
// writer of that partition's directory: a fileSink whose Dir is the
// partition directory, created when the partition first gets rows. So
// every partition directory is a file sink directory of its own, with the
// same part names (<prefix>-<subtask>-<seq>), commit modes, two-phase
// commit, publish log ("_<prefix>-published.log" in the partition
// directory) and recovery as an unpartitioned sink: exactly-once output
// needs nothing new per part, only that the bookkeeping covers every
// directory:
//
//   - the FileSpec keeps one spec per partition directory, shared by the
//     subtasks (its skip set and publish log lock are per directory);
//   - a snapshot holds, per partition the subtask has written, that
//     writer's state (sinkState, as unpartitioned), keyed by the
//     directory, also for partitions whose parts are all published (their
//     next part numbers say which parts the checkpoint covers);
//   - a restore recovers every partition directory the checkpoint names or
//     the output directory holds (listed once per run, before any subtask
//     writes): the writers of the checkpoint are completed as usual, and
//     in a partition the checkpoint does not know every published part is
//     newer than the checkpoint (its rows go to the skip set) and every
//     in-progress file is removed.
//
// Open partitions are capped (FileOptions.MaxOpenPartitions, per
// subtask): when a row needs a partition whose part is not open and the
// cap is reached, the part of the least recently written partition is
// closed (rolled), as if it were full: it is published like any closed
// part (at the next checkpoint, at Finish, or at once with CommitOnRoll).
// Input that cycles through more partitions than the cap therefore makes
// many small parts: raise the cap, or sort or hash-partition the input by
// the partition columns first. Each open Parquet part buffers its open row
// group in memory.

// partitionedState is the operator state of a partitioned subtask.
type partitionedState struct {
	Version     int              `json:"version"`
	PartitionBy []string         `json:"partition_by"`
	Partitions  []partitionEntry `json:"partitions"`
}

type partitionEntry struct {
	Dir   string          `json:"dir"` // relative, '/'-separated
	State json.RawMessage `json:"state"`
}

const partitionedStateVersion = 1

// partWriter writes one partition directory in one subtask.
type partWriter struct {
	dir  string
	sink *fileSink
	used uint64 // the partitionedSink's tick when last written
}

// partitionedSink is one subtask of a FileSpec with PartitionBy.
type partitionedSink struct {
	spec    *FileSpec
	opts    FileOptions
	schema  *arrow.Schema // input
	fschema *arrow.Schema // of the files
	pt      *partitioner
	mem     memory.Allocator
	subtask int
	par     int
	restore *arrowexec.RestoreState

	writers map[string]*partWriter
	active  []*partWriter // writers that may have a part open
	tick    uint64

	finished bool
	closed   bool
}

var (
	_ arrowexec.Operator           = (*partitionedSink)(nil)
	_ arrowexec.Checkpointer       = (*partitionedSink)(nil)
	_ arrowexec.CheckpointListener = (*partitionedSink)(nil)
)

// partitionSpec returns the spec of partition directory rel, shared by
// the subtasks.
func (s *FileSpec) partitionSpec(rel string) *FileSpec {
	s.partMu.Lock()
	defer s.partMu.Unlock()
	if ps := s.partSpecs[rel]; ps != nil {
		return ps
	}
	if s.partSpecs == nil {
		s.partSpecs = map[string]*FileSpec{}
	}
	o := s.opts
	o.Dir = filepath.Join(s.opts.Dir, filepath.FromSlash(rel))
	o.PartitionBy = nil
	ps := &FileSpec{opts: o, parent: s}
	s.partSpecs[rel] = ps
	return ps
}

// newWriter returns a writer of partition rel; Open it.
func (s *partitionedSink) newWriter(rel string) *partWriter {
	ps := s.spec.partitionSpec(rel)
	return &partWriter{dir: rel, sink: &fileSink{
		spec: ps, opts: ps.opts, fs: ps.opts.FS, schema: s.fschema, mem: s.mem,
		subtask: s.subtask, par: s.par, inPartition: true,
	}}
}

// listPartitionDirs lists the partition directories under the output
// directory: relative paths of len(PartitionBy) segments named
// <column>=..., in order.
func (s *partitionedSink) listPartitionDirs() ([]string, error) {
	dirs := []string{""}
	for _, c := range s.pt.cols {
		var next []string
		for _, d := range dirs {
			abs := filepath.Join(s.opts.Dir, filepath.FromSlash(d))
			ents, err := s.opts.FS.ReadDir(abs)
			if fsx.IsNotExist(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("sinks: list %s: %w", abs, err)
			}
			for _, e := range ents {
				if e.IsDir() && strings.HasPrefix(e.Name(), c.prefix) {
					next = append(next, path.Join(d, e.Name()))
				}
			}
		}
		dirs = next
	}
	return dirs, nil
}

func (s *partitionedSink) Open(ctx context.Context) error {
	if err := fsx.MkdirAllSync(s.opts.FS, s.opts.Dir, 0o755); err != nil {
		return fmt.Errorf("sinks: mkdir %s: %w", s.opts.Dir, err)
	}
	if s.opts.Commit == CommitOnCheckpoint && s.restore != nil {
		return s.recover(ctx, s.restore)
	}
	// A fresh run: this subtask's in-progress files of a crashed run are
	// removed from every partition.
	dirs, err := s.listPartitionDirs()
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := s.newWriter(d).sink.removeStale(); err != nil {
			return err
		}
	}
	return nil
}

// recover restores every partition directory (see above).
func (s *partitionedSink) recover(ctx context.Context, rs *arrowexec.RestoreState) error {
	byDir := map[string][]writerState{}
	empty := 0
	for i, blob := range rs.Operator {
		if len(blob) == 0 {
			empty++
			continue
		}
		var st partitionedState
		if err := json.Unmarshal(blob, &st); err != nil {
			return fmt.Errorf("sinks: file sink %s: restore state of previous subtask %d: %w", s.opts.Dir, i, err)
		}
		if !slices.Equal(st.PartitionBy, s.opts.PartitionBy) {
			return fmt.Errorf("sinks: file sink %s: checkpoint %d was taken with partition_by %v, this sink has %v: restore with the same partition columns, or start without the checkpoint",
				s.opts.Dir, rs.CheckpointID, st.PartitionBy, s.opts.PartitionBy)
		}
		if st.Version < 1 || st.Version > partitionedStateVersion {
			return fmt.Errorf("sinks: file sink %s: restore state of previous subtask %d: unknown partitioned state version %d", s.opts.Dir, i, st.Version)
		}
		for _, p := range st.Partitions {
			var ws sinkState
			if err := json.Unmarshal(p.State, &ws); err != nil {
				return fmt.Errorf("sinks: file sink %s: restore state of previous subtask %d, partition %s: %w", s.opts.Dir, i, p.Dir, err)
			}
			if ws.Version < 1 || ws.Version > sinkStateVersion {
				return fmt.Errorf("sinks: file sink %s: restore state of previous subtask %d, partition %s: unknown version %d", s.opts.Dir, i, p.Dir, ws.Version)
			}
			if !validRel(p.Dir, len(s.pt.cols)) {
				return fmt.Errorf("sinks: file sink %s: restore state of previous subtask %d: bad partition directory %q", s.opts.Dir, i, p.Dir)
			}
			byDir[p.Dir] = append(byDir[p.Dir], ws.Writers...)
		}
	}
	if empty == len(rs.Operator) {
		// Taken in another commit mode: start like a fresh run.
		s.restore = nil
		return s.Open(ctx)
	}
	if empty > 0 {
		return fmt.Errorf("sinks: file sink %s: checkpoint %d has no state for %d previous subtasks", s.opts.Dir, rs.CheckpointID, empty)
	}
	// The directories on disk, listed once per run, before any subtask
	// writes (every subtask restores before it processes a row).
	s.spec.restoreOnce.Do(func() { s.spec.restoreDirs, s.spec.restoreErr = s.listPartitionDirs() })
	if s.spec.restoreErr != nil {
		return s.spec.restoreErr
	}
	dirs := slices.Clone(s.spec.restoreDirs)
	for d := range byDir {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	dirs = slices.Compact(dirs)
	for _, d := range dirs {
		w := s.newWriter(d)
		if err := fsx.MkdirAllSync(s.opts.FS, w.sink.opts.Dir, 0o755); err != nil {
			return fmt.Errorf("sinks: mkdir %s: %w", w.sink.opts.Dir, err)
		}
		if err := w.sink.recoverWriters(ctx, rs.CheckpointID, byDir[d]); err != nil {
			return err
		}
		s.writers[d] = w
		s.active = append(s.active, w)
	}
	return nil
}

// validRel reports whether rel is n '/'-separated partition segments.
func validRel(rel string, n int) bool {
	segs := strings.Split(rel, "/")
	if len(segs) != n {
		return false
	}
	for _, g := range segs {
		if g == "" || g == "." || g == ".." || !strings.Contains(g, "=") {
			return false
		}
	}
	return true
}

func (s *partitionedSink) Process(ctx context.Context, input int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if ok, err := checkBatch(ctx, s.opts.Dir, s.schema, b); !ok {
		return err
	}
	if err := s.pt.split(b); err != nil {
		return fmt.Errorf("sinks: file sink %s: %w", s.opts.Dir, err)
	}
	cols := make([]arrow.Array, len(s.pt.keep))
	for i, c := range s.pt.keep {
		cols[i] = b.Column(c)
	}
	proj := array.NewRecordBatch(s.fschema, cols, b.NumRows())
	defer proj.Release()
	for g, dir := range s.pt.dirs {
		w, err := s.writer(ctx, dir)
		if err != nil {
			return err
		}
		part := proj
		if len(s.pt.dirs) > 1 {
			if part, err = arrowexec.TakeRecord(s.mem, proj, s.pt.rows[g]); err != nil {
				return fmt.Errorf("sinks: file sink %s: split by partition: %w", s.opts.Dir, err)
			}
		}
		err = w.sink.Process(ctx, 0, part, nil)
		if part != proj {
			part.Release()
		}
		if err != nil {
			return err
		}
	}
	if s.opts.Commit == CommitOnRoll && s.opts.RollInterval > 0 {
		// A partition that gets no more rows would keep its part open:
		// roll every due part, not only the written ones.
		for _, w := range s.active {
			if p := w.sink.cur; p != nil && w.sink.rollDue(p) {
				if err := w.sink.roll(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// writer returns the writer of partition dir, created and opened if
// needed, and makes room for its part under MaxOpenPartitions.
func (s *partitionedSink) writer(ctx context.Context, dir string) (*partWriter, error) {
	s.tick++
	w := s.writers[dir]
	if w == nil {
		w = s.newWriter(dir)
		if err := w.sink.Open(ctx); err != nil {
			return nil, err
		}
		s.writers[dir] = w
	}
	w.used = s.tick
	if w.sink.cur != nil {
		return w, nil
	}
	// w opens a part: close the least recently written one if at the cap.
	open := 0
	var lru *partWriter
	act := s.active[:0]
	for _, a := range s.active {
		if a.sink.cur == nil || a == w {
			continue
		}
		act = append(act, a)
		open++
		if lru == nil || a.used < lru.used {
			lru = a
		}
	}
	clear(s.active[len(act):])
	s.active = append(act, w)
	if open >= s.opts.MaxOpenPartitions && lru != nil {
		if err := lru.sink.roll(); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// sortedWriters returns the writers in directory order.
func (s *partitionedSink) sortedWriters() []*partWriter {
	ws := make([]*partWriter, 0, len(s.writers))
	for _, w := range s.writers {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b *partWriter) int { return strings.Compare(a.dir, b.dir) })
	return ws
}

func (s *partitionedSink) Finish(ctx context.Context, out arrowexec.Emitter) error {
	for _, w := range s.sortedWriters() {
		if err := w.sink.Finish(ctx, nil); err != nil {
			return err
		}
	}
	if s.opts.Overwrite {
		// This subtask's published files that this run did not write go,
		// in every partition (also those it did not write).
		dirs, err := s.listPartitionDirs()
		if err != nil {
			return err
		}
		for _, d := range dirs {
			keep := map[string]bool{}
			fs := s.newWriter(d).sink
			if w := s.writers[d]; w != nil {
				for seq := 0; seq < w.sink.seq; seq++ {
					keep[fs.partName(seq)] = true
				}
			}
			if err := fs.removeOwn(false, keep); err != nil {
				return err
			}
		}
	}
	s.spec.finishedOne(s.par)
	s.finished = true
	return nil
}

func (s *partitionedSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, w := range s.sortedWriters() {
		errs = append(errs, w.sink.Close())
	}
	return errors.Join(errs...)
}

// SnapshotState pre-commits every partition (CommitOnCheckpoint).
func (s *partitionedSink) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	if s.opts.Commit != CommitOnCheckpoint {
		return arrowexec.SubtaskSnapshot{}, nil
	}
	st := partitionedState{Version: partitionedStateVersion, PartitionBy: s.opts.PartitionBy, Partitions: []partitionEntry{}}
	for _, w := range s.sortedWriters() {
		if w.sink.stateEmpty() {
			continue
		}
		snap, err := w.sink.SnapshotState(ctx, id)
		if err != nil {
			return arrowexec.SubtaskSnapshot{}, err
		}
		st.Partitions = append(st.Partitions, partitionEntry{Dir: w.dir, State: snap.Operator})
	}
	b, err := json.Marshal(st)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return arrowexec.SubtaskSnapshot{Operator: b}, nil
}

// NotifyCheckpointComplete publishes every partition's parts pre-committed
// at barrier id or earlier.
func (s *partitionedSink) NotifyCheckpointComplete(ctx context.Context, id uint64) error {
	if s.opts.Commit != CommitOnCheckpoint {
		return nil
	}
	for _, w := range s.sortedWriters() {
		if err := w.sink.NotifyCheckpointComplete(ctx, id); err != nil {
			return err
		}
	}
	return nil
}
