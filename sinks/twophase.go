package sinks

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/riffle-dev/riffle/arrowexec"
)

// Two-phase commit (CommitOnCheckpoint).
//
// Phase one happens at a checkpoint barrier (SnapshotState): everything the
// subtask received before the barrier is made durable and recorded in the
// snapshot's operator state; phase two happens when the checkpoint is
// complete (NotifyCheckpointComplete): the parts it covers are published.
//
// At a barrier the open part stays open, whatever the format, so part size
// follows PartSize, not the checkpoint interval: with checkpoints every
// second a part still grows to PartSize over many checkpoints.
//
//   - CSV and JSONL: the encoder's buffer is written out and the file
//     fsynced, and the snapshot records the open part's committed length
//     and row count. Text is a sequence of rows, so the first
//     committed-length bytes are exactly the rows before the barrier.
//   - Parquet ("committed footers"): a Parquet file is only readable with
//     its footer, which pqarrow writes at Close and cannot take back. The
//     file holds complete row groups only (pqarrow buffers the open one in
//     memory). At a barrier, when the open row group's rows fit maxCarry
//     (1 MiB of Arrow buffers; the encoder keeps the batches that hold
//     them, retained, and lets them go past the bound), the row group
//     stays open and the snapshot carries its rows (writerState.Carry,
//     Arrow IPC with LZ4); otherwise the encoder closes it (when it holds
//     rows: no empty row group). Either way it flushes and fsyncs the file;
//     everything after the leading "PAR1" is then complete column chunks. The snapshot
//     records the committed length and row count and the committed footer:
//     pqarrow's metadata snapshot (what Close would write now) without the
//     open, empty row group, serialized as parquet/file writes a footer
//     (thrift FileMetaData, its uint32 length, "PAR1"). The footer is not
//     written into the file, which pqarrow goes on appending row groups to;
//     committed length + footer is a complete Parquet file holding exactly
//     the rows before the barrier. The footer is checked not to refer past
//     the committed length (page indexes and bloom filters are written only
//     at Close; the sink enables neither); if it did, the part would be
//     closed at the barrier instead, as before committed footers. A part
//     that has reached PartSize once the barrier wrote its row group is
//     closed at the barrier too (the next write would close it: a buffered
//     row group counts only its flushed pages towards the part's size). Every
//     Arrow type pqarrow writes goes through this path (committed footers
//     hold only the closed row groups' metadata, whatever the types), so
//     there is no per-schema fallback. Costs: a row group larger than
//     maxCarry at a barrier is cut there; the footer grows by one row
//     group's metadata per cut (about 80-110 bytes per column), and it is
//     serialized at every barrier; carried rows are serialized at every
//     barrier and held in the checkpoint (up to maxCarry per subtask,
//     before compression). A part none of whose row groups is closed yet
//     is not recorded as open (the carry, with the part's number, holds
//     all its rows). Recovery writes the carried rows again, and cuts the
//     part back to its committed row groups or, with none, removes it;
//     except when the part was finished and published right after the
//     barrier (a stop after a final checkpoint), which the part's row
//     count tells (committed plus carried): it is kept as it is, and the
//     carried rows are not written again, so published output never
//     changes. A part whose footer reaches maxCommittedFooter (1 MiB:
//     about a thousand checkpoints for ten columns) is closed at the
//     barrier, which keeps the barrier's cost and the state size bounded.
//
//     The footer is kept in the operator state (JSON, base64), not in a
//     side file: it is then atomic with the rest of the checkpoint (no
//     footer file without its checkpoint or the other way round), goes
//     wherever the state goes (restore at another parallelism, another
//     machine), and needs no extra fsync, listing or clean-up of side files
//     at every barrier. The price is state size: up to maxCommittedFooter
//     (and a third more for base64) per subtask.
//
// Parts closed between two barriers (rolled at PartSize) are pending and
// belong to the next barrier. The snapshot lists, per subtask, the pending
// parts (sequence, rows, bytes), the open part (sequence, committed rows
// and bytes, and for Parquet the committed footer) and NextSeq: every part
// of this subtask numbered below NextSeq is committed by the checkpoint,
// every part from NextSeq on is newer than it. NotifyCheckpointComplete(id) publishes the pending parts
// that were pending at barrier id or earlier; an open part is published
// once it is closed (at PartSize) and a later checkpoint completes (or at
// Finish).
//
// Recovery (Open with Task.Restore) completes the restored checkpoint and
// discards every in-progress file newer than it, for every previous
// subtask (previous subtask j is recovered by new subtask j mod
// Parallelism, so a sink may restore at another parallelism) in the steps
// below, then writes the rows the checkpoint carried into the recovering
// subtask's first new part, as if they were input. Published parts are
// never changed nor removed: those published after the checkpoint (an
// older checkpoint restored, or parts Finish published after the last
// barrier) are kept, and the replay's copies of their rows are dropped
// (publog.go). The steps:
//
//  0. (once per run, before any subtask changes a file) the skip set is
//     built from the published parts the checkpoint does not cover;
//  1. a pending part is published: renamed into place if its in-progress
//     file is still there, left alone if it was already published;
//  2. the open part, if still in progress, is truncated to its committed
//     length and published; an open Parquet part gets its committed footer
//     appended after the cut (fsynced); a file that already is committed
//     length + footer is not cut again. An open part found published is
//     kept as it is;
//  3. every other in-progress file of that subtask is removed;
//  4. in-progress files of subtask numbers the checkpoint does not know
//     (written after it by a run at a higher parallelism) are removed: by
//     the subtask of that number if it exists in this run, else by
//     subtask 0.
//
// Every step checks the state it finds and does nothing when it is already
// done, so recovery may crash and run again. New parts continue the
// numbering after NextSeq and after every part found published or named in
// the publish log, so published names are never reused. The snapshot
// carries the NextSeq of every subtask number ever used forward, so a
// later restore at yet another parallelism still knows them.
//
// A job that ends (Finish) publishes everything, like CommitOnFinish; a
// subtask that fails or is cancelled (Close without Finish) keeps its
// in-progress files for recovery.

// sinkState is the operator state of one subtask in CommitOnCheckpoint mode,
// stored as JSON in the checkpoint.
type sinkState struct {
	Version int           `json:"version"`
	Writers []writerState `json:"writers"`
	// PartitionBy is set in a partitioned sink's state only
	// (partitionedState), so that a sink without partitions refuses it.
	PartitionBy []string `json:"partition_by,omitempty"`
}

// writerState is what a checkpoint knows of the parts of one subtask
// number.
type writerState struct {
	Subtask int         `json:"subtask"`
	NextSeq int         `json:"next_seq"`
	Pending []partState `json:"pending,omitempty"`
	Open    *partState  `json:"open,omitempty"`
	// Carry holds the CarryRows rows of the open row group of open
	// Parquet part CarrySeq (Arrow IPC stream, LZ4; base64 in the JSON):
	// written to no file the checkpoint commits, so recovery writes them
	// out again, unless the part was finished and published right after
	// the barrier (see keepPublished).
	Carry     []byte `json:"carry,omitempty"`
	CarrySeq  int    `json:"carry_seq,omitempty"`
	CarryRows int64  `json:"carry_rows,omitempty"`
	// Skip is the skip set the run started with (publog.go: hashes of
	// rows published after an older checkpoint, to drop from the replay),
	// in subtask 0's state; Skipped the rows this subtask dropped since.
	Skip    []byte `json:"skip,omitempty"`
	Skipped []byte `json:"skipped,omitempty"`
}

type partState struct {
	Seq   int   `json:"seq"`
	Rows  int64 `json:"rows"`
	Bytes int64 `json:"bytes"`
	// Footer is the committed footer of an open Parquet part (base64 in
	// the JSON): Bytes bytes of the file followed by Footer are the part
	// as of the checkpoint.
	Footer []byte `json:"footer,omitempty"`
}

// maxCommittedFooter bounds the committed footer of an open Parquet part:
// a part whose footer reaches it at a barrier is closed there. The footer
// grows by a row group's metadata at every checkpoint, and it is
// serialized at every barrier and stored in every snapshot; the bound keeps
// that cost and the state size flat. A var for tests.
var maxCommittedFooter = 1 << 20

// maxCarry bounds the rows a barrier carries in the checkpoint instead of
// cutting the open Parquet row group (bytes of Arrow buffers): below it a
// row group spans barriers, so small row groups do not follow the
// checkpoint interval; above it the barrier cuts the row group. Every
// barrier serializes all carried rows again, so the bound is also the
// barrier's cost: at 1 MiB a barrier costs about what cutting does
// (BenchmarkCheckpointBarrier: 2.6-2.8 ms, 2.3 ms cutting), and row groups
// of at least about 1 MiB are what readers need. A var for tests.
var maxCarry int64 = 1 << 20

// sinkStateVersion 2 adds open Parquet parts (partState.Footer), version 3
// carried rows (writerState.Carry), version 4 skip sets (writerState.Skip);
// older states, which have none of them, are still read. An older reader
// refuses a newer version, which it would misread.
const sinkStateVersion = 4

var (
	_ arrowexec.Checkpointer       = (*fileSink)(nil)
	_ arrowexec.CheckpointListener = (*fileSink)(nil)
)

// SnapshotState pre-commits what the subtask received before barrier id
// (CommitOnCheckpoint; other modes keep no state).
func (s *fileSink) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	if s.opts.Commit != CommitOnCheckpoint {
		return arrowexec.SubtaskSnapshot{}, nil
	}
	own := writerState{Subtask: s.subtask}
	if p := s.cur; p != nil {
		p.barriers++
		if s.rollDue(p) || s.opts.RollCheckpoints > 0 && p.barriers >= s.opts.RollCheckpoints {
			// Rolled at the barrier: pending at checkpoint id, published
			// when it completes; no carry, no committed footer.
			if err := s.closePart(); err != nil {
				return arrowexec.SubtaskSnapshot{}, err
			}
		}
	}
	if err := s.commitOpen(&own); err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	for _, p := range s.pending {
		if p.ckpt == 0 {
			p.ckpt = id
		}
		own.Pending = append(own.Pending, partState{Seq: p.seq, Rows: p.rows, Bytes: p.bytes})
	}
	// The parts the snapshot names were created since the last sync of
	// the directory, maybe: an fsynced file whose directory entry is not
	// durable can vanish in a crash, and recovery would find the part of
	// a completed checkpoint lost.
	if !s.opts.NoSync && (own.Open != nil || len(own.Pending) > 0) {
		if err := s.fs.SyncDir(s.opts.Dir); err != nil {
			return arrowexec.SubtaskSnapshot{}, fmt.Errorf("sinks: fsync %s: %w", s.opts.Dir, err)
		}
	}
	own.NextSeq = s.seq
	if s.subtask == 0 {
		own.Skip = s.spec.skipOrigin
	}
	own.Skipped = s.skipped.encode()
	st := sinkState{Version: sinkStateVersion, Writers: append([]writerState{own}, s.inherited...)}
	b, err := json.Marshal(st)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return arrowexec.SubtaskSnapshot{Operator: b}, nil
}

// commitOpen pre-commits the open part, if any, into own: its committed
// bytes are made durable and recorded, or it is closed (then pending).
func (s *fileSink) commitOpen(own *writerState) error {
	p := s.cur
	if p == nil {
		return nil
	}
	pe, isParquet := p.enc.(*parquetEncoder)
	if !isParquet {
		if err := p.enc.(interface{ flush() error }).flush(); err != nil {
			return fmt.Errorf("sinks: write %s: %w", p.tmp, err)
		}
		if err := s.sync(p); err != nil {
			return err
		}
		own.Open = &partState{Seq: p.seq, Rows: p.rows, Bytes: p.enc.size()}
		return nil
	}
	var (
		length  int64
		footer  []byte
		carried []arrow.RecordBatch
		ok      bool
		err     error
	)
	// A part that may be full once its open row group is written (the
	// row group's Arrow size bounds its encoded size from above, roughly)
	// has the row group cut, so that it is closed here if it is full.
	if pe.cw.n+pe.tailBytes < s.opts.PartSize {
		length, footer, carried, ok, err = pe.commitCarry()
		if ok {
			defer releaseBatches(carried)
		}
	}
	if err == nil && !ok {
		length, footer, err = pe.commit()
	}
	switch {
	case errors.Is(err, errFooterNotSelfContained) || err == nil && len(footer) >= maxCommittedFooter || err == nil && !ok && length >= s.opts.PartSize:
		// Cannot span the barrier, has spanned enough barriers, or is
		// full (the row group just cut counts in full now): close the
		// part here.
		return s.closePart()
	case err != nil:
		return fmt.Errorf("sinks: write %s: %w", p.tmp, err)
	}
	if ok {
		if own.Carry, err = encodeCarry(s.schema, s.mem, carried); err != nil {
			return fmt.Errorf("sinks: file sink %s: carry the open row group of %s: %w", s.opts.Dir, p.tmp, err)
		}
		own.CarrySeq = p.seq
		for _, b := range carried {
			own.CarryRows += b.NumRows()
		}
		if length == 0 {
			// No row group closed yet: nothing of the file is
			// committed; the carry holds it all.
			return nil
		}
	}
	if err := s.sync(p); err != nil {
		return err
	}
	own.Open = &partState{Seq: p.seq, Rows: int64(pe.fw.NumRows()), Bytes: length, Footer: footer}
	return nil
}

func (s *fileSink) sync(p *part) error {
	if s.opts.NoSync {
		return nil
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("sinks: fsync %s: %w", p.tmp, err)
	}
	return nil
}

func releaseBatches(bs []arrow.RecordBatch) {
	for _, b := range bs {
		b.Release()
	}
}

// encodeCarry serializes the carried rows of an open row group as an Arrow
// IPC stream, LZ4-compressed: zstd made the state a third smaller but
// took 70% of a barrier's time (BenchmarkCheckpointBarrier: 5.6 ms per
// barrier against 2.6 ms).
func encodeCarry(schema *arrow.Schema, mem memory.Allocator, bs []arrow.RecordBatch) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(mem), ipc.WithLZ4())
	for _, b := range bs {
		if err := w.Write(b); err != nil {
			_ = w.Close()
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeCarry writes rows a checkpoint carried (encodeCarry) into this
// subtask's output, as if they had just arrived.
func (s *fileSink) writeCarry(ctx context.Context, carry []byte, prev int, id uint64) error {
	r, err := ipc.NewReader(bytes.NewReader(carry), ipc.WithAllocator(s.mem))
	if err != nil {
		return fmt.Errorf("sinks: file sink %s: checkpoint %d: carried rows of subtask %d: %w", s.opts.Dir, id, prev, err)
	}
	defer r.Release()
	for r.Next() {
		// Through the skip set, like replayed rows: a part published
		// after the checkpoint may hold them already (keepPublished).
		if err := s.Process(ctx, 0, r.RecordBatch(), nil); err != nil {
			return fmt.Errorf("sinks: file sink %s: checkpoint %d: carried rows of subtask %d: %w", s.opts.Dir, id, prev, err)
		}
	}
	if err := r.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("sinks: file sink %s: checkpoint %d: carried rows of subtask %d: %w", s.opts.Dir, id, prev, err)
	}
	return nil
}

// NotifyCheckpointComplete publishes the parts pre-committed at barrier id
// or earlier.
func (s *fileSink) NotifyCheckpointComplete(ctx context.Context, id uint64) error {
	if s.opts.Commit != CommitOnCheckpoint {
		return nil
	}
	n := 0
	for n < len(s.pending) && s.pending[n].ckpt != 0 && s.pending[n].ckpt <= id {
		n++
	}
	return s.publish(n)
}

// recover completes the checkpoint the subtask restores from (see above
// and publog.go).
func (s *fileSink) recover(ctx context.Context, rs *arrowexec.RestoreState) error {
	var all []writerState
	empty := 0
	for i, blob := range rs.Operator {
		if len(blob) == 0 {
			empty++
			continue
		}
		var st sinkState
		if err := json.Unmarshal(blob, &st); err != nil {
			return fmt.Errorf("sinks: file sink %s: restore state of previous subtask %d: %w", s.opts.Dir, i, err)
		}
		if st.Version < 1 || st.Version > sinkStateVersion {
			return fmt.Errorf("sinks: file sink %s: restore state of previous subtask %d: unknown version %d", s.opts.Dir, i, st.Version)
		}
		if st.PartitionBy != nil {
			return fmt.Errorf("sinks: file sink %s: checkpoint %d was taken with partition_by %v, this sink has none: restore with the same partition columns, or start without the checkpoint", s.opts.Dir, rs.CheckpointID, st.PartitionBy)
		}
		all = append(all, st.Writers...)
	}
	if len(all) == 0 {
		// The checkpoint was taken in another commit mode: nothing to
		// complete; start like a fresh run.
		return s.removeStale()
	}
	if empty > 0 {
		return fmt.Errorf("sinks: file sink %s: checkpoint %d has no state for %d previous subtasks", s.opts.Dir, rs.CheckpointID, empty)
	}
	return s.recoverWriters(ctx, rs.CheckpointID, all)
}

// recoverWriters completes checkpoint id for the writers all of the
// previous run (those of every previous subtask; none for a partition
// directory the checkpoint does not know).
func (s *fileSink) recoverWriters(ctx context.Context, id uint64, all []writerState) error {
	var carries []writerState
	known := map[int]bool{}
	for _, w := range all {
		if known[w.Subtask] {
			return fmt.Errorf("sinks: file sink %s: checkpoint %d holds subtask %d twice", s.opts.Dir, id, w.Subtask)
		}
		known[w.Subtask] = true
	}
	// Before any subtask changes a file: the rows published after the
	// checkpoint, which every subtask drops from its replay.
	s.spec.skipOnce.Do(func() { s.spec.skipErr = s.prepareSkip(ctx, id, all, known) })
	if s.spec.skipErr != nil {
		return s.spec.skipErr
	}
	// handles: the subtask numbers whose files this subtask recovers.
	handles := func(st int) bool {
		if known[st] {
			return st%s.par == s.subtask
		}
		return st == s.subtask || (s.subtask == 0 && st >= s.par)
	}
	names, err := readDirNames(s.fs, s.opts.Dir)
	if err != nil {
		return fmt.Errorf("sinks: list %s: %w", s.opts.Dir, err)
	}
	// next: the first part number no file, published or logged, uses, so
	// that a published name is never reused.
	next := map[int]int{}
	bump := func(name string) {
		if st, seq, _, ok := s.parseName(name); ok && handles(st) {
			next[st] = max(next[st], seq+1)
		}
	}
	for _, n := range names {
		bump(n)
	}
	for _, n := range s.spec.loggedNames {
		bump(n)
	}
	for _, w := range all {
		if !handles(w.Subtask) {
			continue
		}
		if err := s.recoverWriter(w, names, id); err != nil {
			return err
		}
		if len(w.Carry) > 0 {
			carries = append(carries, w)
		}
		next[w.Subtask] = max(next[w.Subtask], w.NextSeq)
	}
	// Files of subtask numbers the checkpoint does not know are newer than
	// it: this subtask handles its own number's; subtask 0 those of
	// numbers no subtask of this run writes. (Never another running
	// subtask's: it may already be writing.) In-progress ones are removed;
	// published ones are kept (prepareSkip took their rows).
	for _, n := range names {
		st, _, hidden, ok := s.parseName(n)
		if !ok || known[st] || !handles(st) || !hidden {
			continue
		}
		if err := s.removeFile(n); err != nil {
			return err
		}
	}
	for st, n := range next {
		if st == s.subtask {
			s.seq = n
		} else {
			s.inherited = append(s.inherited, writerState{Subtask: st, NextSeq: n})
		}
	}
	slices.SortFunc(s.inherited, func(a, b writerState) int { return a.Subtask - b.Subtask })
	if !s.opts.NoSync {
		if err := s.fs.SyncDir(s.opts.Dir); err != nil {
			return fmt.Errorf("sinks: fsync dir %s: %w", s.opts.Dir, err)
		}
	}
	// Rows the checkpoint carried in open row groups go into this run's
	// first part, after the files are back to the checkpoint.
	for _, w := range carries {
		if err := s.writeCarry(ctx, w.Carry, w.Subtask, id); err != nil {
			return err
		}
	}
	return nil
}

// prepareSkip sets up the spec's skip set for a run restored from checkpoint id,
// before any subtask changes a file: what the checkpoint's own skip sets
// left, plus the rows of the published parts the checkpoint does not
// cover (publog.go), checked against the publish log.
func (s *fileSink) prepareSkip(ctx context.Context, id uint64, all []writerState, known map[int]bool) error {
	var set, done rowSet
	for _, w := range all {
		if err := set.decodeInto(w.Skip); err != nil {
			return fmt.Errorf("sinks: file sink %s: checkpoint %d: subtask %d: %w", s.opts.Dir, id, w.Subtask, err)
		}
		if err := done.decodeInto(w.Skipped); err != nil {
			return fmt.Errorf("sinks: file sink %s: checkpoint %d: subtask %d: %w", s.opts.Dir, id, w.Subtask, err)
		}
	}
	for h, c := range done.m {
		for range c {
			if !set.take(h) {
				return fmt.Errorf("sinks: file sink %s: checkpoint %d: a subtask skipped a row its skip set does not hold", s.opts.Dir, id)
			}
		}
	}
	names, err := readDirNames(s.fs, s.opts.Dir)
	if err != nil {
		return fmt.Errorf("sinks: list %s: %w", s.opts.Dir, err)
	}
	logPath := filepath.Join(s.opts.Dir, s.opts.logName())
	logged, err := readPublishLog(s.fs, logPath)
	if err != nil {
		return fmt.Errorf("sinks: file sink %s: read publish log %s: %w", s.opts.Dir, logPath, err)
	}
	for n := range logged {
		s.spec.loggedNames = append(s.spec.loggedNames, n)
	}
	// checkLogged refuses a published part whose content is not what the
	// publish log says was published.
	checkLogged := func(path string) error {
		rec, ok := logged[filepath.Base(path)]
		if !ok {
			return nil // published before the log existed
		}
		size, sum, err := fileChecksum(s.fs, path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sinks: recover %s: %w", path, err)
		}
		if size != rec.Bytes || strconv.FormatUint(sum, 16) != rec.XXH64 {
			return fmt.Errorf("sinks: recover %s: the part changed since it was published (publish log %s: %d bytes, xxh64 %s; now %d bytes, xxh64 %x): put the published content back, or move the part out of %s (its rows are then published again, under a new name), and restart",
				path, logPath, rec.Bytes, rec.XXH64, size, sum, s.opts.Dir)
		}
		return nil
	}
	var ahead []aheadPart
	for _, w := range all {
		x, hasOpen := w.openSeq()
		if hasOpen {
			if err := checkLogged(filepath.Join(s.opts.Dir, s.nameOf(w.Subtask, x))); err != nil {
				return err
			}
			kept, a, err := s.keepPublished(w, x, id)
			if err != nil {
				return err
			}
			if kept {
				ahead = append(ahead, a...)
			}
		}
		for _, n := range names {
			if st, seq, hidden, ok := s.parseName(n); ok && !hidden && st == w.Subtask && seq >= w.NextSeq && !(hasOpen && seq == x) {
				ahead = append(ahead, aheadPart{path: filepath.Join(s.opts.Dir, n)})
			}
		}
	}
	for _, n := range names {
		if st, _, hidden, ok := s.parseName(n); ok && !hidden && !known[st] {
			ahead = append(ahead, aheadPart{path: filepath.Join(s.opts.Dir, n)})
		}
	}
	if len(ahead) > 0 {
		before := set.n
		var paths []string
		for _, a := range ahead {
			if err := checkLogged(a.path); err != nil {
				return err
			}
			if err := s.hashPublished(ctx, a.path, a.from, &set); err != nil {
				return fmt.Errorf("sinks: recover %s: read the rows published after checkpoint %d: %w", a.path, id, err)
			}
			paths = append(paths, filepath.Base(a.path))
		}
		s.opts.Logger.Info("sinks: restored a checkpoint older than published parts: they stay as they are, and the replay's copies of their rows are dropped",
			"dir", s.opts.Dir, "checkpoint", id, "parts", paths, "rows", set.n-before)
	}
	s.spec.skipMu.Lock()
	s.spec.skip = set
	s.spec.skipLeft.Store(set.n)
	s.spec.skipOrigin = set.encode()
	s.spec.skipMu.Unlock()
	return nil
}

// recoverWriter publishes the parts of previous subtask w that checkpoint
// id committed and removes that subtask's in-progress files. Published
// parts are kept as they are (prepareSkip took the rows they hold after
// the checkpoint).
func (s *fileSink) recoverWriter(w writerState, names []string, id uint64) error {
	done := map[int]bool{}
	for _, p := range w.Pending {
		if err := s.publishRecovered(w.Subtask, p, false, id); err != nil {
			return err
		}
		done[p.Seq] = true
	}
	if x, ok := w.openSeq(); ok {
		done[x] = true
		kept, _, err := s.keepPublished(w, x, id)
		switch {
		case err != nil:
			return err
		case kept:
			// A leftover in-progress copy is never published.
			if err := s.removeFile(tmpName(s.nameOf(w.Subtask, x))); err != nil {
				return err
			}
		case w.Open != nil:
			if err := s.publishRecovered(w.Subtask, *w.Open, true, id); err != nil {
				return err
			}
		default:
			// No row group committed: the carry holds all its rows.
			if err := s.removeFile(tmpName(s.nameOf(w.Subtask, x))); err != nil {
				return err
			}
		}
	}
	for _, n := range names {
		st, seq, hidden, ok := s.parseName(n)
		if ok && hidden && st == w.Subtask && !done[seq] {
			if err := s.removeFile(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// openSeq is the part open at the checkpoint (committed row groups or
// text, or carried rows), if any.
func (w writerState) openSeq() (int, bool) {
	switch {
	case w.Open != nil:
		return w.Open.Seq, true
	case len(w.Carry) > 0:
		return w.CarrySeq, true
	}
	return 0, false
}

// keepPublished tells what to do with part x, open at checkpoint id, when
// it was published after the checkpoint (closed and published by a later
// checkpoint, or by Finish at a stop right after the barrier, or by an
// earlier recovery from this checkpoint): it is kept as it is. Its first
// committed rows are the checkpoint's; the rows after those, the carried
// ones included, are ahead (the carry, written again through the skip
// set, then drops its copies). kept is false when the part is not
// published. It changes no file.
func (s *fileSink) keepPublished(w writerState, x int, id uint64) (kept bool, ahead []aheadPart, err error) {
	if w.Open != nil && len(w.Carry) > 0 && w.Open.Seq != w.CarrySeq {
		return false, nil, fmt.Errorf("sinks: file sink %s: checkpoint %d: subtask %d carries rows of part %d but has part %d open", s.opts.Dir, id, w.Subtask, w.CarrySeq, w.Open.Seq)
	}
	final := filepath.Join(s.opts.Dir, s.nameOf(w.Subtask, x))
	fi, err := s.fs.Stat(final)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("sinks: recover %s: %w", final, err)
	}
	var committed int64
	if w.Open != nil {
		committed = w.Open.Rows
	}
	if s.opts.Format != Parquet {
		switch {
		case w.Open == nil:
			return false, nil, fmt.Errorf("sinks: recover %s: checkpoint %d has no open text part", final, id)
		case fi.Size() < w.Open.Bytes:
			return false, nil, fmt.Errorf("sinks: recover %s: %d bytes, checkpoint %d committed %d", final, fi.Size(), id, w.Open.Bytes)
		case fi.Size() > w.Open.Bytes:
			ahead = []aheadPart{{path: final, from: committed}}
		}
		return true, ahead, nil
	}
	rows, err := s.parquetRows(final)
	if err != nil {
		return false, nil, fmt.Errorf("sinks: recover %s: %w", final, err)
	}
	switch {
	case rows < committed:
		return false, nil, fmt.Errorf("sinks: recover %s: published with %d rows, checkpoint %d committed %d", final, rows, id, committed)
	case rows > committed:
		ahead = []aheadPart{{path: final, from: committed}}
	}
	return true, ahead, nil
}

// parquetRows reads the row count from the footer of Parquet file path.
func (s *fileSink) parquetRows(path string) (int64, error) {
	f, c, err := openSection(s.fs, path)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	size := f.Size()
	var tail [8]byte
	if size < 12 {
		return 0, fmt.Errorf("%d bytes: not a Parquet file", size)
	}
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return 0, err
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if string(tail[4:]) != "PAR1" || n > size-12 {
		return 0, fmt.Errorf("no Parquet footer")
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-8-n); err != nil {
		return 0, err
	}
	md, err := metadata.NewFileMetaData(buf, nil)
	if err != nil {
		return 0, err
	}
	return md.NumRows, nil
}

// publishRecovered publishes part p of previous subtask st. With truncate
// (an open part, still in progress: keepPublished handles a published
// one), the file is cut to its committed length first, and an open Parquet
// part gets its committed footer. A part already published is left as it
// is.
func (s *fileSink) publishRecovered(st int, p partState, truncate bool, id uint64) error {
	final := filepath.Join(s.opts.Dir, s.nameOf(st, p.Seq))
	tmp := filepath.Join(s.opts.Dir, tmpName(s.nameOf(st, p.Seq)))
	info := PartInfo{Path: final, Subtask: st, Seq: p.Seq, Rows: p.Rows, Bytes: p.Bytes}
	if truncate && s.opts.Format == Parquet {
		if len(p.Footer) == 0 {
			return fmt.Errorf("sinks: recover %s: checkpoint %d has no committed footer for this open Parquet part", final, id)
		}
		if err := s.recoverFooter(tmp, final, p, id); err != nil {
			return err
		}
		info.Bytes += int64(len(p.Footer))
		s.published(info)
		return nil
	}
	fi, err := s.fs.Stat(tmp)
	switch {
	case err == nil:
		// A closed part is complete as it is (its recorded size is the
		// encoder's estimate); an open text part is cut to its committed
		// length, which the text encoder counts exactly.
		if truncate {
			switch {
			case fi.Size() < p.Bytes:
				return fmt.Errorf("sinks: recover %s: %d bytes, checkpoint %d committed %d", tmp, fi.Size(), id, p.Bytes)
			case fi.Size() > p.Bytes:
				if err := s.fs.Truncate(tmp, p.Bytes); err != nil {
					return fmt.Errorf("sinks: recover %s: truncate: %w", tmp, err)
				}
			}
		}
		if err := s.spec.logPublish([]PartInfo{info}, []string{tmp}, id); err != nil {
			return err
		}
		if err := s.fs.Rename(tmp, final); err != nil {
			return fmt.Errorf("sinks: publish %s: %w", final, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("sinks: recover %s: %w", tmp, err)
	default:
		if _, err := s.fs.Stat(final); err != nil {
			return fmt.Errorf("sinks: recover: part %s of checkpoint %d is lost: neither it nor its in-progress file exists: %w", final, id, err)
		}
	}
	s.published(info)
	return nil
}

// recoverFooter publishes open Parquet part p, in progress (tmp), as of
// the checkpoint: its first p.Bytes bytes (complete row groups) followed
// by its committed footer. A file that already ends at the footer (an
// earlier recovery wrote it) is not cut again. Each step leaves a state
// the next recovery completes.
func (s *fileSink) recoverFooter(tmp, final string, p partState, id uint64) error {
	want := p.Bytes + int64(len(p.Footer))
	fi, err := s.fs.Stat(tmp)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sinks: recover: part %s of checkpoint %d is lost: neither it nor its in-progress file exists: %w", final, id, err)
	}
	if err != nil {
		return fmt.Errorf("sinks: recover %s: %w", tmp, err)
	}
	if fi.Size() < p.Bytes {
		return fmt.Errorf("sinks: recover %s: %d bytes, checkpoint %d committed %d", tmp, fi.Size(), id, p.Bytes)
	}
	done, err := s.endsWith(tmp, fi.Size(), want, p.Footer)
	if err != nil {
		return err
	}
	if !done {
		if err := s.fs.Truncate(tmp, p.Bytes); err != nil {
			return fmt.Errorf("sinks: recover %s: truncate: %w", tmp, err)
		}
		if err := appendFile(s.fs, tmp, p.Footer, false, s.opts.NoSync); err != nil {
			return fmt.Errorf("sinks: recover %s: write footer: %w", tmp, err)
		}
	}
	info := PartInfo{Path: final, Seq: p.Seq, Rows: p.Rows, Bytes: want}
	if err := s.spec.logPublish([]PartInfo{info}, []string{tmp}, id); err != nil {
		return err
	}
	if err := s.fs.Rename(tmp, final); err != nil {
		return fmt.Errorf("sinks: publish %s: %w", final, err)
	}
	return nil
}

// endsWith reports whether file path, of size bytes, is want bytes long
// and ends with tail.
func (s *fileSink) endsWith(path string, size, want int64, tail []byte) (bool, error) {
	if size != want {
		return false, nil
	}
	f, err := s.fs.Open(path)
	if err != nil {
		return false, fmt.Errorf("sinks: recover %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, len(tail))
	if _, err := f.ReadAt(buf, want-int64(len(tail))); err != nil {
		return false, fmt.Errorf("sinks: recover %s: %w", path, err)
	}
	return bytes.Equal(buf, tail), nil
}

func (s *fileSink) removeFile(name string) error {
	p := filepath.Join(s.opts.Dir, name)
	if err := s.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sinks: remove %s: %w", p, err)
	}
	return nil
}

// nameOf is the final file name of part seq of subtask st.
func (s *fileSink) nameOf(st, seq int) string {
	return fmt.Sprintf("%s-%05d-%05d.%s", s.opts.Prefix, st, seq, s.opts.Format.Ext())
}

// parseName parses the name of one of this sink's files, published or in
// progress (hidden).
func (s *fileSink) parseName(name string) (st, seq int, hidden, ok bool) {
	if strings.HasPrefix(name, ".") && strings.HasSuffix(name, inProgressSuffix) {
		hidden = true
		name = strings.TrimSuffix(name[1:], inProgressSuffix)
	}
	rest, found := strings.CutPrefix(name, s.opts.Prefix+"-")
	if !found {
		return 0, 0, false, false
	}
	var ext string
	if n, err := fmt.Sscanf(rest, "%05d-%05d.%s", &st, &seq, &ext); n != 3 || err != nil || ext != s.opts.Format.Ext() {
		return 0, 0, false, false
	}
	if rest != fmt.Sprintf("%05d-%05d.%s", st, seq, ext) {
		return 0, 0, false, false
	}
	return st, seq, hidden, true
}
