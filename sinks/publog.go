package sinks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/cespare/xxhash/v2"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/arrowtext"
)

// Published output never changes (CommitOnCheckpoint).
//
// A restore may go back further than the newest checkpoint that published
// parts: the coordinator falls back to an older checkpoint when the newest
// is unusable (a corrupt manifest), and a job stopped gracefully may have
// published parts at Finish after its final barrier. Parts published after
// the restored checkpoint C hold rows the replay from C produces again.
// Recovery keeps every published part as it is (a reader may have read
// it) and drops those rows from the replay instead:
//
//   - a published part C does not know (numbered NextSeq or later, or of a
//     subtask number C does not know) is kept whole, and all its rows are
//     "ahead" of C;
//   - the part that was open at C (or whose row group C carried), if it
//     was published later, is kept: its first committed rows are C's, the
//     rest (the carried ones included) are ahead of C;
//   - in-progress files are cut back or removed as before (nobody saw
//     them).
//
// The hashes of the ahead rows form the run's skip set, a multiset shared
// by its subtasks (rows may land in another subtask on replay, at another
// parallelism): a replayed row whose hash is in it is dropped and the
// count decremented, so the replay may come in any order, batching and
// parallelism. A Parquet row hashes as arrowexec.HashColumns over every
// column (read back with pqarrow); a CSV or JSONL row as the xxhash64 of
// its text, as the encoder writes it (read back by splitting the part
// into rows: lines, for CSV outside quotes). The rows C carried are
// written again through the skip set too: when a published part holds
// them, its copies are dropped. So the output ends as committed rows +
// (carried + replayed rows - skip set), which is every row once as long as
// the replay produces every row of the skip set again. Legitimately equal
// rows are no problem (the multiset counts them); a 64-bit hash collision
// between a new row and a kept one would drop the new row (about 2^-64
// per pair).
//
// The skip set is built once per run, by the first subtask that restores,
// before any subtask changes a file (FileSpec.skipOnce). Subtask 0's
// snapshots carry the set the run started with (writerState.Skip) and
// every subtask's the rows it dropped before its barrier
// (writerState.Skipped), which is consistent per subtask: a restore of
// such a checkpoint starts from their difference. Both are about 10 bytes
// per row, for the rows of the parts published after the restored
// checkpoint (typically one checkpoint interval's output), for the life of
// the run. If every subtask finishes with rows of the set never replayed
// (the job is not deterministic, or its input changed), the last one logs
// a warning: those rows are published once, from the earlier run.
//
// The publish log ("_<prefix>-published.log" in the output directory,
// CommitOnCheckpoint only) is appended and fsynced before every publishing
// rename: one line per part, a CRC-32C of the JSON record, then the record
// (file name, rows, bytes, the xxhash64 of the file's content,
// checkpoint). A restore checks every published part it keeps as ahead,
// and the open part found published, against the log (when the log has
// it) and refuses a part whose content changed since it was published,
// naming it; the explicit way to proceed is to move that part out of the
// output directory (its rows are then published again, under a new name).
// A torn last line (a crash while appending, before the rename) is
// ignored. Part numbers of a new run continue after every number in the
// log and in the directory, so a name once published is never reused.

// publishRecord is one line of the publish log.
type publishRecord struct {
	File       string `json:"file"`
	Rows       int64  `json:"rows"`
	Bytes      int64  `json:"bytes"`
	XXH64      string `json:"xxh64"`
	Checkpoint uint64 `json:"checkpoint,omitempty"`
	At         string `json:"at"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// logName is the publish log's file name.
func (o FileOptions) logName() string { return "_" + o.Prefix + "-published.log" }

// IsPublishLog reports whether name (a file name in a sink's directory) is
// a file sink's publish log.
func IsPublishLog(name string) bool {
	return strings.HasPrefix(name, "_") && strings.HasSuffix(name, "-published.log")
}

// openSection opens file path for reading, as a section of its size; the
// caller closes c.
func openSection(fsys FS, path string) (r *io.SectionReader, c io.Closer, err error) {
	fi, err := fsys.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	f, err := fsys.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return io.NewSectionReader(f, 0, fi.Size()), f, nil
}

// appendFile appends data to file path (created first if missing and
// create is set) and, unless noSync, fsyncs it.
func appendFile(fsys FS, path string, data []byte, create, noSync bool) error {
	if !create {
		if _, err := fsys.Stat(path); err != nil {
			return err
		}
	}
	f, err := fsys.Append(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && !noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// fileChecksum returns the size and xxhash64 of file path.
func fileChecksum(fsys FS, path string) (int64, uint64, error) {
	r, c, err := openSection(fsys, path)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	h := xxhash.New()
	if _, err := io.Copy(h, r); err != nil {
		return 0, 0, err
	}
	return r.Size(), h.Sum64(), nil
}

// logPublish appends one record per part to the publish log and makes it
// durable; call it before renaming the parts into place. tmp is the file
// whose content is about to be published.
func (s *FileSpec) logPublish(parts []PartInfo, tmp []string, ckpt uint64) error {
	if len(parts) == 0 {
		return nil
	}
	var buf bytes.Buffer
	now := s.opts.Clock().UTC().Format(time.RFC3339Nano)
	for i, p := range parts {
		size, sum, err := fileChecksum(s.opts.FS, tmp[i])
		if err != nil {
			return fmt.Errorf("sinks: publish log: checksum %s: %w", tmp[i], err)
		}
		rec, err := json.Marshal(publishRecord{File: filepath.Base(p.Path), Rows: p.Rows, Bytes: size,
			XXH64: strconv.FormatUint(sum, 16), Checkpoint: ckpt, At: now})
		if err != nil {
			return err
		}
		fmt.Fprintf(&buf, "%08x %s\n", crc32.Checksum(rec, castagnoli), rec)
	}
	path := filepath.Join(s.opts.Dir, s.opts.logName())
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if err := appendFile(s.opts.FS, path, buf.Bytes(), true, s.opts.NoSync); err != nil {
		return fmt.Errorf("sinks: publish log %s: %w", path, err)
	}
	return nil
}

// readPublishLog returns the newest record of every file in the publish
// log (none when there is no log). Lines whose checksum does not match are
// skipped: only the last one can be torn by a crash, and its part was not
// renamed into place yet.
func readPublishLog(fsys FS, path string) (map[string]publishRecord, error) {
	out := map[string]publishRecord{}
	r, c, err := openSection(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		sum, rec, ok := bytes.Cut(line, []byte{' '})
		if !ok || len(sum) != 8 {
			continue
		}
		want, err := strconv.ParseUint(string(sum), 16, 32)
		if err != nil || uint32(want) != crc32.Checksum(rec, castagnoli) {
			continue
		}
		var r publishRecord
		if json.Unmarshal(rec, &r) != nil {
			continue
		}
		out[r.File] = r
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// aheadPart is a published part kept by recovery that holds rows the
// restored checkpoint does not cover: every row from from on.
type aheadPart struct {
	path string
	from int64
}

// rowSet is a multiset of row hashes: the rows a subtask drops from its
// replay (see above).
type rowSet struct {
	m map[uint64]int32
	n int64
}

func (r *rowSet) add(h uint64) {
	if r.m == nil {
		r.m = map[uint64]int32{}
	}
	r.m[h]++
	r.n++
}

// take removes one h and reports whether there was one.
func (r *rowSet) take(h uint64) bool {
	c := r.m[h]
	if c == 0 {
		return false
	}
	if c == 1 {
		delete(r.m, h)
	} else {
		r.m[h] = c - 1
	}
	r.n--
	return true
}

// encode serializes the set: sorted hashes as uvarint deltas, each
// followed by its count.
func (r *rowSet) encode() []byte {
	if r.n == 0 {
		return nil
	}
	keys := make([]uint64, 0, len(r.m))
	for h := range r.m {
		keys = append(keys, h)
	}
	slices.Sort(keys)
	out := make([]byte, 0, len(keys)*10)
	var prev uint64
	for _, h := range keys {
		out = binary.AppendUvarint(out, h-prev)
		out = binary.AppendUvarint(out, uint64(r.m[h]))
		prev = h
	}
	return out
}

// decodeInto adds the set encode wrote to r.
func (r *rowSet) decodeInto(b []byte) error {
	var prev uint64
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("corrupt skip set")
		}
		b = b[n:]
		c, n := binary.Uvarint(b)
		if n <= 0 || c == 0 || c > 1<<31 {
			return errors.New("corrupt skip set")
		}
		b = b[n:]
		prev += d
		for range c {
			r.add(prev)
		}
	}
	return nil
}

// hashPublished adds the hashes of the rows of part path from row from on
// to set: Parquet rows read back as Arrow, text rows as their bytes.
func (s *fileSink) hashPublished(ctx context.Context, path string, from int64, set *rowSet) error {
	if s.opts.Format != Parquet {
		return s.hashTextRows(path, from, set)
	}
	sr, c, err := openSection(s.fs, path)
	if err != nil {
		return err
	}
	defer c.Close()
	pr, err := file.NewParquetReader(sr, file.WithReadProps(parquet.NewReaderProperties(s.mem)))
	if err != nil {
		return err
	}
	defer pr.Close()
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: 8192}, s.mem)
	if err != nil {
		return err
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer rr.Release()
	var at int64
	var hs []uint64
	for rr.Next() {
		b := rr.RecordBatch()
		n := b.NumRows()
		if at+n <= from {
			at += n
			continue
		}
		hs = slices.Grow(hs[:0], int(n))[:n]
		if err := arrowexec.HashColumns(b.Columns(), hs); err != nil {
			return err
		}
		for i := max(from-at, 0); i < n; i++ {
			set.add(hs[i])
		}
		at += n
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// hashTextRows adds the xxhash64 of every row of CSV or JSONL part path
// from row from on (the CSV header, if written, is not a row) to set. A
// JSONL row is a line; a CSV row ends at a newline outside quotes, that is
// where the quotes (FileOptions.CSV.Quote) seen so far are even in number
// (RFC 4180 doubles a quote inside a quoted field).
func (s *fileSink) hashTextRows(path string, from int64, set *rowSet) error {
	sr, c, err := openSection(s.fs, path)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReaderSize(sr, 1<<16)
	csv := s.opts.Format == CSV
	row := 0
	if csv && !s.opts.CSV.NoHeader {
		row = -1 // the header
	}
	quote := []byte{'"'}
	if s.opts.CSV.Quote != 0 {
		quote[0] = s.opts.CSV.Quote
	}
	var acc []byte
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			acc = append(acc, line...)
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			if len(acc) > 0 {
				return fmt.Errorf("%d bytes after the last row", len(acc))
			}
			return nil
		}
		acc = append(acc, line...)
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("last row has no newline")
		}
		if csv && bytes.Count(acc, quote)%2 != 0 {
			continue // a newline inside a quoted field
		}
		if int64(row) >= from {
			set.add(xxhash.Sum64(acc))
		}
		row++
		acc = acc[:0]
	}
}

// rowHashes computes the hash of every row of b the way hashPublished
// hashes the published rows: every column (Parquet) or the row's text.
func (s *fileSink) rowHashes(b arrow.RecordBatch, out []uint64) error {
	if s.opts.Format == Parquet {
		return arrowexec.HashColumns(b.Columns(), out)
	}
	if s.textHash == nil {
		s.textHash = arrowtext.NewEncoder(textStyle(s.opts.Format), s.schema)
		if s.opts.Format == CSV {
			s.textHash = arrowtext.NewCSVEncoder(s.schema, s.opts.CSV)
		}
	}
	s.textEnds = s.textEnds[:0]
	s.textBuf = s.textHash.AppendRows(s.textBuf[:0], b, &s.textEnds)
	start := 0
	for i, end := range s.textEnds {
		out[i] = xxhash.Sum64(s.textBuf[start:end])
		start = end
	}
	return nil
}

// skipReplayed drops the rows of b whose hashes are in the spec's skip
// set, recording them in the subtask's skipped set. It returns b itself
// (borrowed) when no row is dropped, nil when all are, or a new batch the
// caller releases (owned true).
func (s *fileSink) skipReplayed(b arrow.RecordBatch) (out arrow.RecordBatch, owned bool, err error) {
	n := int(b.NumRows())
	s.hashes = slices.Grow(s.hashes[:0], n)[:n]
	if err := s.rowHashes(b, s.hashes); err != nil {
		return nil, false, fmt.Errorf("sinks: file sink %s: drop rows published after the restored checkpoint: %w", s.opts.Dir, err)
	}
	keep := s.keep[:0]
	sp := s.spec
	sp.skipMu.Lock()
	for i, h := range s.hashes {
		if sp.skip.take(h) {
			s.skipped.add(h)
		} else {
			keep = append(keep, int32(i))
		}
	}
	sp.skipLeft.Store(sp.skip.n)
	sp.skipMu.Unlock()
	s.keep = keep
	switch len(keep) {
	case n:
		return b, false, nil
	case 0:
		return nil, false, nil
	}
	t, err := arrowexec.TakeRecord(s.mem, b, keep)
	if err != nil {
		return nil, false, fmt.Errorf("sinks: file sink %s: drop rows published after the restored checkpoint: %w", s.opts.Dir, err)
	}
	return t, true, nil
}
