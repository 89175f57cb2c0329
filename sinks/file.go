package sinks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/arrowtext"
	"github.com/riffle-dev/riffle/internal/fsx"
)

// FileSpec is a file sink node. It is safe for concurrent use by the
// subtasks it creates.
type FileSpec struct {
	opts FileOptions

	mu        sync.Mutex
	published []PartInfo
	// logMu serializes the subtasks' appends to the publish log.
	logMu sync.Mutex

	// The skip set (publog.go), set up once by the first subtask that
	// restores; skipLeft is skip.n, read without the lock; skipOrigin is
	// the set when this run started (subtask 0 snapshots it); finishedN
	// counts the subtasks that finished.
	skipOnce   sync.Once
	skipErr    error
	skipMu     sync.Mutex
	skip       rowSet
	skipLeft   atomic.Int64
	skipOrigin []byte
	finishedN  int
	// loggedNames: the files the publish log names (read by skipOnce).
	loggedNames []string

	// Partitioned sinks (partitioned.go): the spec of every partition
	// directory (parent is the partitioned spec), and the partition
	// directories on disk when a restore started.
	parent      *FileSpec
	partMu      sync.Mutex
	partSpecs   map[string]*FileSpec
	restoreOnce sync.Once
	restoreDirs []string
	restoreErr  error
}

var _ arrowexec.Spec = (*FileSpec)(nil)

// PartInfo describes one published file.
type PartInfo struct {
	Path    string
	Subtask int
	Seq     int
	Rows    int64
	Bytes   int64
}

// NewFile returns a file sink writing with opts (defaults applied).
func NewFile(opts FileOptions) (*FileSpec, error) {
	opts = opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &FileSpec{opts: opts}, nil
}

// Options returns the options in effect, defaults applied.
func (s *FileSpec) Options() FileOptions { return s.opts }

// Published returns the files published so far by every subtask, in
// publication order.
func (s *FileSpec) Published() []PartInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PartInfo(nil), s.published...)
}

// Schema checks that there is one input whose types the format can write. A
// sink has no output: it returns nil.
func (s *FileSpec) Schema(inputs []*arrow.Schema) (*arrow.Schema, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("sinks: file sink %s wants 1 input, got %d", s.opts.Dir, len(inputs))
	}
	schema := inputs[0]
	if len(s.opts.PartitionBy) > 0 && schema != nil {
		_, fschema, err := newPartitioner(schema, s.opts.PartitionBy)
		if err != nil {
			return nil, fmt.Errorf("sinks: file sink %s: %w", s.opts.Dir, &PartitionError{Err: err})
		}
		schema = fschema
	}
	if err := checkSchema(s.opts, schema); err != nil {
		return nil, fmt.Errorf("sinks: file sink %s: %w", s.opts.Dir, err)
	}
	return nil, nil
}

// PartitionError is a plan-time error in FileOptions.PartitionBy: a
// missing column or one whose type cannot partition.
type PartitionError struct{ Err error }

func (e *PartitionError) Error() string { return e.Err.Error() }
func (e *PartitionError) Unwrap() error { return e.Err }

// New creates the operator of subtask t.Subtask.
func (s *FileSpec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	if len(t.Inputs) != 1 || t.Inputs[0] == nil {
		return nil, fmt.Errorf("sinks: file sink %s: task has %d inputs, want 1", s.opts.Dir, len(t.Inputs))
	}
	mem := t.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	if s.opts.FileName != "" && t.Parallelism > 1 {
		return nil, fmt.Errorf("sinks: file sink %s: FileName %s writes one file: run the sink at parallelism 1, not %d", s.opts.Dir, s.opts.FileName, t.Parallelism)
	}
	if len(s.opts.PartitionBy) > 0 {
		pt, fschema, err := newPartitioner(t.Inputs[0], s.opts.PartitionBy)
		if err != nil {
			return nil, fmt.Errorf("sinks: file sink %s: %w", s.opts.Dir, &PartitionError{Err: err})
		}
		return &partitionedSink{spec: s, opts: s.opts, schema: t.Inputs[0], fschema: fschema, pt: pt, mem: mem,
			subtask: t.Subtask, par: max(t.Parallelism, 1), restore: t.Restore, writers: map[string]*partWriter{}}, nil
	}
	return &fileSink{
		spec:    s,
		opts:    s.opts,
		fs:      s.opts.FS,
		schema:  t.Inputs[0],
		mem:     mem,
		subtask: t.Subtask,
		par:     max(t.Parallelism, 1),
		restore: t.Restore,
	}, nil
}

func (s *FileSpec) addPublished(p PartInfo) {
	if s.parent != nil {
		s.parent.addPublished(p)
		return
	}
	s.mu.Lock()
	s.published = append(s.published, p)
	s.mu.Unlock()
}

// published records and logs a part this subtask published (or found
// published when it recovered).
func (s *fileSink) published(p PartInfo) {
	s.spec.addPublished(p)
	s.opts.Logger.Info("sinks: published part", "path", p.Path, "rows", p.Rows, "bytes", p.Bytes, "subtask", p.Subtask)
}

// part is a file being written or waiting to be published.
type part struct {
	seq   int
	tmp   string // hidden in-progress path
	final string // published path
	f     File
	enc   encoder
	rows  int64
	bytes int64 // size when closed
	// ckpt is the checkpoint whose barrier found the part pending
	// (CommitOnCheckpoint); 0 while no barrier did.
	ckpt uint64
	// opened is when the part was created (FileOptions.Clock), barriers
	// how many checkpoint barriers found it open: what RollInterval and
	// RollCheckpoints measure.
	opened   time.Time
	barriers int
}

// fileSink is one subtask of a FileSpec.
type fileSink struct {
	spec    *FileSpec
	opts    FileOptions
	fs      FS
	schema  *arrow.Schema
	mem     memory.Allocator
	subtask int
	par     int

	seq     int     // sequence number of the next part
	cur     *part   // open part, or nil
	pending []*part // closed, not yet published
	restore *arrowexec.RestoreState
	// inherited: the other subtask numbers this subtask recovered
	// (CommitOnCheckpoint), carried forward in its snapshots.
	inherited []writerState
	// skipped: the rows this subtask dropped from the replay since the
	// run started (publog.go); the rest is scratch for skipReplayed.
	skipped  rowSet
	hashes   []uint64
	keep     []int32
	textHash *arrowtext.Encoder
	textBuf  []byte
	textEnds []int
	sawRows  bool
	finished bool
	closed   bool
	// inPartition: a partition directory's writer of a partitionedSink,
	// which accounts for Finish across partitions.
	inPartition bool
}

var _ arrowexec.Operator = (*fileSink)(nil)

// stateEmpty reports whether a snapshot of s would say nothing: no part
// ever numbered, none open or pending, nothing inherited or skipped.
func (s *fileSink) stateEmpty() bool {
	return s.seq == 0 && s.cur == nil && len(s.pending) == 0 && len(s.inherited) == 0 &&
		s.skipped.n == 0 && (s.subtask != 0 || len(s.spec.skipOrigin) == 0)
}

// partName returns the final file name of part seq.
func (s *fileSink) partName(seq int) string {
	if s.opts.FileName != "" {
		return s.opts.FileName
	}
	return fmt.Sprintf("%s-%05d-%05d.%s", s.opts.Prefix, s.subtask, seq, s.opts.Format.Ext())
}

const inProgressSuffix = ".inprogress"

func tmpName(final string) string { return "." + final + inProgressSuffix }

func (s *fileSink) Open(ctx context.Context) error {
	if err := fsx.MkdirAllSync(s.fs, s.opts.Dir, 0o755); err != nil {
		return fmt.Errorf("sinks: mkdir %s: %w", s.opts.Dir, err)
	}
	if s.opts.Commit == CommitOnCheckpoint && s.restore != nil {
		return s.recover(ctx, s.restore)
	}
	return s.removeStale()
}

// ownName reports whether name is one of this subtask's files: published
// (hidden false) or in progress (hidden true). Subtask 0 also owns the files
// of subtasks >= Parallelism, which no subtask of this run writes.
func (s *fileSink) ownName(name string, hidden bool) bool {
	if hidden {
		if !strings.HasPrefix(name, ".") || !strings.HasSuffix(name, inProgressSuffix) {
			return false
		}
		name = strings.TrimSuffix(name[1:], inProgressSuffix)
	}
	if s.opts.FileName != "" {
		return name == s.opts.FileName
	}
	var st, seq int
	var ext string
	rest, ok := strings.CutPrefix(name, s.opts.Prefix+"-")
	if !ok {
		return false
	}
	// <subtask 5 digits>-<seq 5 digits>.<ext>
	if n, err := fmt.Sscanf(rest, "%05d-%05d.%s", &st, &seq, &ext); n != 3 || err != nil || ext != s.opts.Format.Ext() {
		return false
	}
	if rest != fmt.Sprintf("%05d-%05d.%s", st, seq, ext) {
		return false
	}
	return st == s.subtask || (s.subtask == 0 && st >= s.par)
}

// removeStale removes in-progress files of this subtask left by a crashed run.
func (s *fileSink) removeStale() error {
	return s.removeOwn(true, nil)
}

// removeOwn removes this subtask's hidden or published files, except keep.
func (s *fileSink) removeOwn(hidden bool, keep map[string]bool) error {
	names, err := readDirNames(s.fs, s.opts.Dir)
	if err != nil {
		return fmt.Errorf("sinks: list %s: %w", s.opts.Dir, err)
	}
	for _, n := range names {
		if !s.ownName(n, hidden) || keep[n] {
			continue
		}
		p := filepath.Join(s.opts.Dir, n)
		if err := s.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sinks: remove stale %s: %w", p, err)
		}
	}
	return nil
}

// checkBatch checks b against the input schema of the sink writing dir:
// write reports whether it has rows to write.
func checkBatch(ctx context.Context, dir string, schema *arrow.Schema, b arrow.RecordBatch) (write bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if bs := b.Schema(); bs != schema && !bs.Equal(schema) {
		return false, fmt.Errorf("sinks: file sink %s: batch schema %s differs from the input schema %s", dir, bs, schema)
	}
	return b.NumRows() > 0, nil
}

func (s *fileSink) Process(ctx context.Context, input int, b arrow.RecordBatch, out arrowexec.Emitter) error {
	if ok, err := checkBatch(ctx, s.opts.Dir, s.schema, b); !ok {
		return err
	}
	if s.spec.skipLeft.Load() > 0 {
		kept, owned, err := s.skipReplayed(b)
		if err != nil || kept == nil {
			return err
		}
		if owned {
			defer kept.Release()
		}
		b = kept
	}
	return s.write(b)
}

// write appends b (rows, borrowed) to the open part, opening one first if
// needed, and rolls the part when it is due.
func (s *fileSink) write(b arrow.RecordBatch) error {
	s.sawRows = true
	if s.cur == nil {
		if err := s.openPart(); err != nil {
			return err
		}
	}
	p := s.cur
	if err := p.enc.write(b); err != nil {
		return fmt.Errorf("sinks: write %s: %w", p.final, err)
	}
	p.rows += b.NumRows()
	if s.opts.FileName != "" {
		return nil // one file: never rolled
	}
	if p.enc.size() >= s.opts.PartSize || s.opts.Commit != CommitOnCheckpoint && s.rollDue(p) {
		return s.roll()
	}
	return nil
}

// rollDue reports whether part p has been open for RollInterval. With
// CommitOnCheckpoint it is asked at barriers only (SnapshotState), so that
// a part rolled on time is exactly what one checkpoint covers.
func (s *fileSink) rollDue(p *part) bool {
	return s.opts.RollInterval > 0 && s.opts.Clock().Sub(p.opened) >= s.opts.RollInterval
}

// roll closes the open part and, in CommitOnRoll mode, publishes it.
func (s *fileSink) roll() error {
	if err := s.closePart(); err != nil {
		return err
	}
	if s.opts.Commit == CommitOnRoll {
		return s.publishPending()
	}
	return nil
}

func (s *fileSink) Finish(ctx context.Context, out arrowexec.Emitter) error {
	if !s.inPartition {
		s.spec.finishedOne(s.par)
	}
	if !s.sawRows && (s.opts.EmptyFile || s.opts.FileName != "") {
		if err := s.openPart(); err != nil {
			return err
		}
	}
	if s.cur != nil {
		if err := s.closePart(); err != nil {
			return err
		}
	}
	if err := s.publishPending(); err != nil {
		return err
	}
	if s.opts.Overwrite {
		keep := map[string]bool{}
		for seq := 0; seq < s.seq; seq++ {
			keep[s.partName(seq)] = true
		}
		if err := s.removeOwn(false, keep); err != nil {
			return err
		}
	}
	s.finished = true
	return nil
}

// Close aborts what Finish did not publish: the open part and pending parts
// are removed. Safe to call twice.
func (s *fileSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.opts.Commit == CommitOnCheckpoint && !s.finished {
		// A failed or cancelled subtask keeps its in-progress files: a
		// checkpoint may have pre-committed them, and recovery decides.
		if p := s.cur; p != nil {
			if p.enc != nil {
				p.enc.abort()
				p.enc = nil
			}
			if p.f != nil {
				if err := p.f.Close(); err != nil {
					errs = append(errs, fmt.Errorf("sinks: close %s: %w", p.tmp, err))
				}
				p.f = nil
			}
			s.cur = nil
		}
		s.pending = nil
		return errors.Join(errs...)
	}
	if s.cur != nil {
		errs = append(errs, s.abort(s.cur))
		s.cur = nil
	}
	for _, p := range s.pending {
		errs = append(errs, s.abort(p))
	}
	s.pending = nil
	return errors.Join(errs...)
}

// finishedOne counts a subtask of par that finished; the last one warns
// when rows of the skip set (of every partition) were never replayed.
func (s *FileSpec) finishedOne(par int) {
	s.skipMu.Lock()
	s.finishedN++
	last := s.finishedN == par
	s.skipMu.Unlock()
	if !last {
		return
	}
	left := s.skipLeft.Load()
	s.partMu.Lock()
	for _, ps := range s.partSpecs {
		left += ps.skipLeft.Load()
	}
	s.partMu.Unlock()
	if left > 0 {
		s.opts.Logger.Warn("sinks: every subtask finished before the replay produced every row published after the restored checkpoint (a job whose output is not deterministic, or changed input): those published rows have no replayed copy",
			"dir", s.opts.Dir, "rows", left)
	}
}

// openPart creates the next part under its hidden name.
func (s *fileSink) openPart() error {
	final := s.partName(s.seq)
	p := &part{
		seq:    s.seq,
		final:  filepath.Join(s.opts.Dir, final),
		tmp:    filepath.Join(s.opts.Dir, tmpName(final)),
		opened: s.opts.Clock(),
	}
	f, err := s.fs.Create(p.tmp)
	if err != nil {
		return fmt.Errorf("sinks: create %s: %w", p.tmp, err)
	}
	p.f = f
	enc, err := newEncoder(s.opts, s.schema, s.mem, f)
	if err != nil {
		_ = f.Close()
		_ = s.fs.Remove(p.tmp)
		return fmt.Errorf("sinks: create %s: %w", p.tmp, err)
	}
	if pe, ok := enc.(*parquetEncoder); ok && s.opts.Commit == CommitOnCheckpoint {
		pe.carryLimit = maxCarry
	}
	p.enc = enc
	s.cur = p
	s.seq++
	return nil
}

// closePart finishes the open part: footer, flush, fsync, close. The part
// becomes pending under its hidden name (the pre-commit of two-phase commit).
func (s *fileSink) closePart() error {
	p := s.cur
	s.cur = nil
	if err := p.enc.close(); err != nil {
		p.enc = nil
		_ = s.abort(p)
		return fmt.Errorf("sinks: close %s: %w", p.tmp, err)
	}
	p.bytes = p.enc.size()
	p.enc = nil
	if !s.opts.NoSync {
		if err := p.f.Sync(); err != nil {
			_ = s.abort(p)
			return fmt.Errorf("sinks: fsync %s: %w", p.tmp, err)
		}
	}
	err := p.f.Close()
	p.f = nil
	if err != nil {
		_ = s.abort(p)
		return fmt.Errorf("sinks: close %s: %w", p.tmp, err)
	}
	s.pending = append(s.pending, p)
	return nil
}

// publishPending renames every pending part into place, in order, then makes
// the renames durable.
func (s *fileSink) publishPending() error { return s.publish(len(s.pending)) }

// publish renames the first n pending parts into place, in order, then
// makes the renames durable.
func (s *fileSink) publish(n int) error {
	if n == 0 {
		return nil
	}
	if s.opts.Commit == CommitOnCheckpoint {
		infos := make([]PartInfo, n)
		tmps := make([]string, n)
		for i, p := range s.pending[:n] {
			infos[i] = PartInfo{Path: p.final, Subtask: s.subtask, Seq: p.seq, Rows: p.rows, Bytes: p.bytes}
			tmps[i] = p.tmp
		}
		if err := s.spec.logPublish(infos, tmps, s.pending[n-1].ckpt); err != nil {
			return err
		}
	}
	for ; n > 0; n-- {
		p := s.pending[0]
		if err := s.fs.Rename(p.tmp, p.final); err != nil {
			return fmt.Errorf("sinks: publish %s: %w", p.final, err)
		}
		s.pending = s.pending[1:]
		s.published(PartInfo{Path: p.final, Subtask: s.subtask, Seq: p.seq, Rows: p.rows, Bytes: p.bytes})
	}
	if len(s.pending) == 0 {
		s.pending = nil
	}
	if !s.opts.NoSync {
		if err := s.fs.SyncDir(s.opts.Dir); err != nil {
			return fmt.Errorf("sinks: fsync dir %s: %w", s.opts.Dir, err)
		}
	}
	return nil
}

// abort releases p's encoder and file and removes its hidden file.
func (s *fileSink) abort(p *part) error {
	var errs []error
	if p.enc != nil {
		p.enc.abort()
		p.enc = nil
	}
	if p.f != nil {
		if err := p.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sinks: close %s: %w", p.tmp, err))
		}
		p.f = nil
	}
	if err := s.fs.Remove(p.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("sinks: remove %s: %w", p.tmp, err))
	}
	return errors.Join(errs...)
}

// MetricDescs are the series a file sink reports
// (arrowexec.MetricsReporter).
var MetricDescs = []*arrowexec.MetricDesc{partsDesc, partRowsDesc, partBytesDesc}

var (
	partsDesc = &arrowexec.MetricDesc{Name: "riffle_sink_parts_published_total",
		Help: "Part files a file sink published (Published).", Kind: arrowexec.Counter}
	partRowsDesc = &arrowexec.MetricDesc{Name: "riffle_sink_published_rows_total",
		Help: "Rows in the part files a file sink published.", Kind: arrowexec.Counter}
	partBytesDesc = &arrowexec.MetricDesc{Name: "riffle_sink_published_bytes_total",
		Help: "Bytes of the part files a file sink published.", Kind: arrowexec.Counter}
)

var _ arrowexec.MetricsReporter = (*FileSpec)(nil)

// ReportMetrics implements arrowexec.MetricsReporter: the parts
// published, their rows and bytes.
func (s *FileSpec) ReportMetrics(emit func(arrowexec.Metric)) {
	s.mu.Lock()
	n := len(s.published)
	var rows, bytes int64
	for _, p := range s.published {
		rows += p.Rows
		bytes += p.Bytes
	}
	s.mu.Unlock()
	emit(arrowexec.Metric{Desc: partsDesc, Value: float64(n)})
	emit(arrowexec.Metric{Desc: partRowsDesc, Value: float64(rows)})
	emit(arrowexec.Metric{Desc: partBytesDesc, Value: float64(bytes)})
}
