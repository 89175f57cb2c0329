package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

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
//     its footer, which pqarrow writes at Close and cannot take back. At a
//     barrier the encoder closes its buffered row group (when it holds
//     rows: no empty row group), flushes and fsyncs the file; everything
//     after the leading "PAR1" is then complete column chunks. The snapshot
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
//     there is no per-schema fallback. Costs: a row group cannot span a
//     barrier, so row groups are bounded by the checkpoint interval (file
//     size is not); the footer grows by one row group's metadata per
//     checkpoint (about 80-110 bytes per column), and it is serialized at
//     every barrier. A part whose footer reaches maxCommittedFooter (1 MiB:
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
// discards everything newer, for every previous subtask (previous subtask j
// is recovered by new subtask j mod Parallelism, so a sink may restore at
// another parallelism):
//
//  1. a pending part is published: renamed into place if its in-progress
//     file is still there, left alone if it was already published;
//  2. the open part is truncated to its committed length (the in-progress
//     file, or the published file if the part was closed and published
//     after the checkpoint) and published; an open Parquet part gets its
//     committed footer appended after the cut (fsynced), and a published
//     one is renamed back to its in-progress name before it is cut, so a
//     crash never leaves a published Parquet file without a footer; a file
//     that already is committed length + footer is left as it is;
//  3. every other in-progress file of that subtask, and every published
//     file numbered NextSeq or later, is removed;
//  4. files of subtask numbers the checkpoint does not know (written after
//     it by a run at a higher parallelism) are removed: by the subtask of
//     that number if it exists in this run, else by subtask 0.
//
// Every step checks the state it finds and does nothing when it is already
// done, so recovery may crash and run again. New parts continue the
// numbering after NextSeq, so published names are never reused. The
// snapshot carries the NextSeq of every subtask number ever used forward, so
// a later restore at yet another parallelism still knows them.
//
// A job that ends (Finish) publishes everything, like CommitOnFinish; a
// subtask that fails or is cancelled (Close without Finish) keeps its
// in-progress files for recovery.

// sinkState is the operator state of one subtask in CommitOnCheckpoint mode,
// stored as JSON in the checkpoint.
type sinkState struct {
	Version int           `json:"version"`
	Writers []writerState `json:"writers"`
}

// writerState is what a checkpoint knows of the parts of one subtask
// number.
type writerState struct {
	Subtask int         `json:"subtask"`
	NextSeq int         `json:"next_seq"`
	Pending []partState `json:"pending,omitempty"`
	Open    *partState  `json:"open,omitempty"`
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

// sinkStateVersion 2 adds open Parquet parts (partState.Footer); version 1
// states, which never have one, are still read. A version 1 reader refuses
// version 2, which it would misread.
const sinkStateVersion = 2

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
		if pe, ok := p.enc.(*parquetEncoder); ok {
			length, footer, err := pe.commit()
			switch {
			case errors.Is(err, errFooterNotSelfContained) || err == nil && (length >= s.opts.PartSize || len(footer) >= maxCommittedFooter):
				// Cannot span the barrier, is full (the row group
				// just written counts in full now), or has spanned
				// enough barriers: close the part here.
				if err := s.closePart(); err != nil {
					return arrowexec.SubtaskSnapshot{}, err
				}
			case err != nil:
				return arrowexec.SubtaskSnapshot{}, fmt.Errorf("sinks: write %s: %w", p.tmp, err)
			default:
				if !s.opts.NoSync {
					if err := p.f.Sync(); err != nil {
						return arrowexec.SubtaskSnapshot{}, fmt.Errorf("sinks: fsync %s: %w", p.tmp, err)
					}
				}
				own.Open = &partState{Seq: p.seq, Rows: p.rows, Bytes: length, Footer: footer}
			}
		} else {
			if err := p.enc.(interface{ flush() error }).flush(); err != nil {
				return arrowexec.SubtaskSnapshot{}, fmt.Errorf("sinks: write %s: %w", p.tmp, err)
			}
			if !s.opts.NoSync {
				if err := p.f.Sync(); err != nil {
					return arrowexec.SubtaskSnapshot{}, fmt.Errorf("sinks: fsync %s: %w", p.tmp, err)
				}
			}
			own.Open = &partState{Seq: p.seq, Rows: p.rows, Bytes: p.enc.size()}
		}
	}
	for _, p := range s.pending {
		if p.ckpt == 0 {
			p.ckpt = id
		}
		own.Pending = append(own.Pending, partState{Seq: p.seq, Rows: p.rows, Bytes: p.bytes})
	}
	own.NextSeq = s.seq
	st := sinkState{Version: sinkStateVersion, Writers: append([]writerState{own}, s.inherited...)}
	b, err := json.Marshal(st)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return arrowexec.SubtaskSnapshot{Operator: b}, nil
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

// recover completes the checkpoint the subtask restores from (see above).
func (s *fileSink) recover(rs *arrowexec.RestoreState) error {
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
		if st.Version != sinkStateVersion && st.Version != 1 {
			return fmt.Errorf("sinks: file sink %s: restore state of previous subtask %d: unknown version %d", s.opts.Dir, i, st.Version)
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
	known := map[int]bool{}
	for _, w := range all {
		if known[w.Subtask] {
			return fmt.Errorf("sinks: file sink %s: checkpoint %d holds subtask %d twice", s.opts.Dir, rs.CheckpointID, w.Subtask)
		}
		known[w.Subtask] = true
	}
	names, err := s.fs.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("sinks: list %s: %w", s.opts.Dir, err)
	}
	for _, w := range all {
		if w.Subtask%s.par != s.subtask {
			continue
		}
		if err := s.recoverWriter(w, names, rs.CheckpointID); err != nil {
			return err
		}
		if w.Subtask == s.subtask {
			s.seq = w.NextSeq
		} else {
			s.inherited = append(s.inherited, writerState{Subtask: w.Subtask, NextSeq: w.NextSeq})
		}
	}
	// Files of subtask numbers the checkpoint does not know are newer than
	// it: this subtask removes its own number's; subtask 0 those of numbers
	// no subtask of this run writes. (Never another running subtask's:
	// it may already be writing.)
	for _, n := range names {
		st, _, _, ok := s.parseName(n)
		if !ok || known[st] || !(st == s.subtask || (s.subtask == 0 && st >= s.par)) {
			continue
		}
		if err := s.removeFile(n); err != nil {
			return err
		}
	}
	if !s.opts.NoSync {
		if err := s.fs.SyncDir(s.opts.Dir); err != nil {
			return fmt.Errorf("sinks: fsync dir %s: %w", s.opts.Dir, err)
		}
	}
	return nil
}

// recoverWriter publishes the parts of previous subtask w that checkpoint
// id committed and removes that subtask's newer and in-progress files.
func (s *fileSink) recoverWriter(w writerState, names []string, id uint64) error {
	done := map[int]bool{}
	for _, p := range w.Pending {
		if err := s.publishRecovered(w.Subtask, p, false, id); err != nil {
			return err
		}
		done[p.Seq] = true
	}
	if p := w.Open; p != nil {
		if err := s.publishRecovered(w.Subtask, *p, true, id); err != nil {
			return err
		}
		done[p.Seq] = true
	}
	for _, n := range names {
		st, seq, hidden, ok := s.parseName(n)
		if !ok || st != w.Subtask || done[seq] {
			continue
		}
		if hidden || seq >= w.NextSeq {
			if err := s.removeFile(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// publishRecovered publishes part p of previous subtask st. With truncate
// (an open part), the file is cut to its committed length first, and an
// open Parquet part gets its committed footer.
func (s *fileSink) publishRecovered(st int, p partState, truncate bool, id uint64) error {
	final := filepath.Join(s.opts.Dir, s.nameOf(st, p.Seq))
	tmp := filepath.Join(s.opts.Dir, tmpName(s.nameOf(st, p.Seq)))
	if truncate && s.opts.Format == Parquet {
		if len(p.Footer) == 0 {
			return fmt.Errorf("sinks: recover %s: checkpoint %d has no committed footer for this open Parquet part", final, id)
		}
		if err := s.recoverFooter(tmp, final, p, id); err != nil {
			return err
		}
		s.spec.addPublished(PartInfo{Path: final, Subtask: st, Seq: p.Seq, Rows: p.Rows, Bytes: p.Bytes + int64(len(p.Footer))})
		return nil
	}
	// A closed part is complete as it is (its recorded size is the
	// encoder's estimate); an open text part is cut to its committed
	// length, which the text encoder counts exactly.
	check := func(path string, size int64) error {
		if !truncate {
			return nil
		}
		switch {
		case size < p.Bytes:
			return fmt.Errorf("sinks: recover %s: %d bytes, checkpoint %d committed %d", path, size, id, p.Bytes)
		case size > p.Bytes:
			if err := s.fs.Truncate(path, p.Bytes); err != nil {
				return fmt.Errorf("sinks: recover %s: truncate: %w", path, err)
			}
		}
		return nil
	}
	if fi, err := s.fs.Stat(tmp); err == nil {
		if err := check(tmp, fi.Size()); err != nil {
			return err
		}
		if err := s.fs.Rename(tmp, final); err != nil {
			return fmt.Errorf("sinks: publish %s: %w", final, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sinks: recover %s: %w", tmp, err)
	} else if fi, err := s.fs.Stat(final); err == nil {
		if err := check(final, fi.Size()); err != nil {
			return err
		}
	} else {
		return fmt.Errorf("sinks: recover: part %s of checkpoint %d is lost: neither it nor its in-progress file exists: %w", final, id, err)
	}
	s.spec.addPublished(PartInfo{Path: final, Subtask: st, Seq: p.Seq, Rows: p.Rows, Bytes: p.Bytes})
	return nil
}

// recoverFooter publishes open Parquet part p as of the checkpoint: its
// first p.Bytes bytes (complete row groups) followed by its committed
// footer. The part is found in progress (tmp) or published (final, by an
// earlier recovery, or closed and published after the checkpoint with rows
// it did not commit). A file that already ends at the footer is left as it
// is; any other is cut (a published one is first renamed back to its
// in-progress name, so a crash never leaves a cut published file without
// its footer) and renamed into place. Each step leaves a state the next
// recovery completes.
func (s *fileSink) recoverFooter(tmp, final string, p partState, id uint64) error {
	want := p.Bytes + int64(len(p.Footer))
	fi, err := s.fs.Stat(tmp)
	if errors.Is(err, fs.ErrNotExist) {
		fi, err = s.fs.Stat(final)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sinks: recover: part %s of checkpoint %d is lost: neither it nor its in-progress file exists: %w", final, id, err)
		}
		if err != nil {
			return fmt.Errorf("sinks: recover %s: %w", final, err)
		}
		if fi.Size() < p.Bytes {
			return fmt.Errorf("sinks: recover %s: %d bytes, checkpoint %d committed %d", final, fi.Size(), id, p.Bytes)
		}
		done, err := s.endsWith(final, fi.Size(), want, p.Footer)
		if err != nil || done {
			return err
		}
		if err := s.fs.Rename(final, tmp); err != nil {
			return fmt.Errorf("sinks: recover %s: unpublish: %w", final, err)
		}
	} else if err != nil {
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
		f, err := s.fs.Append(tmp)
		if err != nil {
			return fmt.Errorf("sinks: recover %s: %w", tmp, err)
		}
		_, err = f.Write(p.Footer)
		if err == nil && !s.opts.NoSync {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sinks: recover %s: write footer: %w", tmp, err)
		}
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
