package sinks

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/riffle-dev/riffle/internal/arrowtext"
)

// CSVOptions configure CSV parts (FileOptions.CSV): internal/arrowtext's,
// the one text encoder's.
type CSVOptions = arrowtext.CSVOptions

// Format is a file format.
type Format string

// Formats written by the file sink.
const (
	Parquet Format = "parquet"
	CSV     Format = "csv"
	JSONL   Format = "jsonl"
)

// Ext returns the file name extension of the format, without the dot.
func (f Format) Ext() string { return string(f) }

// CommitMode says when closed parts become visible.
type CommitMode int

const (
	// CommitOnFinish publishes a subtask's parts at Finish: a job that fails
	// or is cancelled leaves no output of that subtask. The default.
	CommitOnFinish CommitMode = iota
	// CommitOnRoll publishes each part as soon as it is closed, for
	// unbounded jobs that run without checkpoints.
	CommitOnRoll
	// CommitOnCheckpoint is two-phase commit with checkpoints, for
	// exactly-once output: at a checkpoint barrier the subtask's output so
	// far is made durable and recorded in the checkpoint (pre-commit); its
	// parts are published when the checkpoint is complete; a restore
	// publishes what the restored checkpoint committed and removes
	// everything newer. See the package documentation.
	CommitOnCheckpoint
)

func (m CommitMode) String() string {
	switch m {
	case CommitOnFinish:
		return "on-finish"
	case CommitOnRoll:
		return "on-roll"
	case CommitOnCheckpoint:
		return "on-checkpoint"
	}
	return fmt.Sprintf("CommitMode(%d)", int(m))
}

// Defaults of FileOptions.
const (
	DefaultPrefix            = "part"
	DefaultPartSize          = 128 << 20
	DefaultCodec             = "zstd"
	DefaultRowGroupRows      = 1 << 20
	DefaultRowGroupBytes     = 128 << 20
	DefaultTextBufferSize    = 1 << 20
	DefaultParquetBufferSize = 1 << 20
	// DefaultMaxOpenPartitions is FileOptions.MaxOpenPartitions' default.
	DefaultMaxOpenPartitions = 64
	// DefaultRollInterval is the roll interval job files give the file
	// sinks of unbounded jobs (FileOptions.RollInterval itself defaults to
	// 0): a user watching the output directory sees new parts about once
	// a minute.
	DefaultRollInterval = time.Minute
)

// FileOptions configure a file sink. The zero value of every field but Dir
// selects its default.
type FileOptions struct {
	// Dir is the target directory, created if missing. Required.
	Dir string
	// Format of the files; default Parquet.
	Format Format
	// Prefix starts every file name; default "part". It must not contain a
	// path separator nor start with '.' or '_' (those mark hidden files).
	Prefix string
	// PartSize is the size in bytes at which a part is closed and the next
	// one started; default 128 MiB. The size of a Parquet part counts the
	// compressed bytes of its open row group.
	PartSize int64
	// RollInterval closes ("rolls") a part once it has been open this
	// long, so that an unbounded job's output becomes visible within a
	// bounded time: with CommitOnCheckpoint the part is closed at the
	// first checkpoint barrier after it is due and published when that
	// checkpoint completes (rows are visible at most RollInterval plus one
	// checkpoint after they reached the sink); with CommitOnRoll it is
	// closed and published by the first batch that arrives when it is due
	// (a quiet input keeps its last part open until more rows come or the
	// job stops). 0 (the default here; job files default to
	// DefaultRollInterval for unbounded jobs) rolls on PartSize only.
	RollInterval time.Duration
	// RollCheckpoints closes a part at the barrier of the Nth checkpoint
	// it has been open across (CommitOnCheckpoint only): 1 publishes
	// everything a checkpoint covers when it completes. 0 (the default)
	// leaves rolling to PartSize and RollInterval.
	RollCheckpoints int
	// Clock returns the time RollInterval is measured with; default
	// time.Now. Tests set a fake clock.
	Clock func() time.Time
	// Logger receives one Info line per published part (path, rows,
	// bytes); default slog.Default().
	Logger *slog.Logger
	// Commit says when closed parts become visible; default CommitOnFinish.
	Commit CommitMode
	// Parquet configures the Parquet encoder.
	Parquet ParquetOptions
	// CSV configures CSV text (Format CSV only): delimiter, quote, the
	// text of a NULL and whether to write a header line. The zero value
	// is RFC 4180 with a header, a NULL an empty unquoted field (an empty
	// string is written "").
	CSV CSVOptions
	// Overwrite makes Finish remove the published files with this sink's
	// prefix and extension that this run did not write: a rerun into the
	// same directory then leaves only its own output. Subtask 0 also
	// removes those of subtasks >= Parallelism. Off by default: files of
	// earlier runs with other names are left alone (same names are
	// replaced).
	Overwrite bool
	// EmptyFile makes a subtask that saw no rows publish one empty part at
	// Finish (Parquet with its schema, CSV with its header, JSONL empty), so
	// that a glob over the output finds a file even when a job wrote
	// nothing. Off by default: then a subtask without rows writes nothing.
	// With PartitionBy there is no partition to write it in: no file.
	EmptyFile bool
	// NoSync skips fsync of files and the directory. Only for tests and
	// benchmarks: a crash may then leave published files empty or missing.
	NoSync bool
	// PartitionBy writes Hive-style partition directories: a row goes to
	// Dir/<col>=<value>/... of its values of these columns, in order
	// (DuckDB's COPY ... PARTITION_BY layout, which DuckDB's
	// hive_partitioning and pyarrow datasets read back; values escaped
	// and NULL written as HiveNull, see partition.go). The partition
	// columns are left out of the files. Columns must be strings,
	// integers, dates or booleans. Every partition directory is written
	// like an unpartitioned Dir (part names, commit modes, exactly-once
	// recovery); see partitioned.go.
	PartitionBy []string
	// MaxOpenPartitions caps the partitions with an open part per
	// subtask (PartitionBy only); at the cap the least recently written
	// partition's part is closed (and published as its commit mode
	// says) to make room. Default DefaultMaxOpenPartitions.
	MaxOpenPartitions int
	// FileName makes the sink write exactly one file, Dir/FileName, never
	// rolled (PartSize and RollInterval do not apply), also when no row
	// came (an empty file with the schema or header): single-file output.
	// The sink must run at parallelism 1 with CommitOnFinish; the file is
	// published by one rename at Finish. Not with PartitionBy.
	FileName string
	// FS performs all file I/O; default the operating system's.
	FS FS
}

// ParquetOptions configure the Parquet encoder.
type ParquetOptions struct {
	// Codec is the compression codec: "zstd" (default), "snappy", "gzip",
	// "lz4raw" (alias "lz4"), "brotli" or "none" (alias "uncompressed").
	Codec string
	// Level is the codec's compression level; 0 is the codec's default.
	Level int
	// RowGroupRows caps the rows of a row group; default 1Mi.
	RowGroupRows int64
	// RowGroupBytes closes a row group once its compressed size reaches it;
	// default 128 MiB. Row groups are buffered in memory until closed.
	RowGroupBytes int64
	// NoDictionary disables dictionary encoding (on by default).
	NoDictionary bool
	// NoStoreSchema leaves out the serialized Arrow schema that lets Arrow
	// readers restore types Parquet does not carry (stored by default).
	NoStoreSchema bool
}

var codecs = map[string]compress.Compression{
	"zstd":   compress.Codecs.Zstd,
	"snappy": compress.Codecs.Snappy,
	"gzip":   compress.Codecs.Gzip,
	"lz4raw": compress.Codecs.Lz4Raw,
	"brotli": compress.Codecs.Brotli,
	"none":   compress.Codecs.Uncompressed,
	// Aliases: the names pyarrow and DuckDB use.
	"uncompressed": compress.Codecs.Uncompressed,
	"lz4":          compress.Codecs.Lz4Raw,
}

// EnsureDefaults returns a copy of o with every unset field set to its default.
func (o FileOptions) EnsureDefaults() FileOptions {
	if o.Format == "" {
		o.Format = Parquet
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Parquet.Codec == "" {
		o.Parquet.Codec = DefaultCodec
	}
	if o.Parquet.RowGroupRows == 0 {
		o.Parquet.RowGroupRows = DefaultRowGroupRows
	}
	if o.Parquet.RowGroupBytes == 0 {
		o.Parquet.RowGroupBytes = DefaultRowGroupBytes
	}
	if o.FS == nil {
		o.FS = OSFS
	}
	if o.MaxOpenPartitions == 0 {
		o.MaxOpenPartitions = DefaultMaxOpenPartitions
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate reports the first invalid field. Call it on EnsureDefaults' result;
// NewFile does both.
func (o FileOptions) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("Dir is required"))
	}
	switch o.Format {
	case Parquet, CSV, JSONL:
	default:
		errs = append(errs, fmt.Errorf("unknown Format %q (want parquet, csv or jsonl)", o.Format))
	}
	if o.Prefix == "" || strings.ContainsAny(o.Prefix, `/\`) || o.Prefix[0] == '.' || o.Prefix[0] == '_' {
		errs = append(errs, fmt.Errorf("invalid Prefix %q: must be non-empty, without path separators, not starting with '.' or '_'", o.Prefix))
	}
	if o.CSV != (CSVOptions{}) {
		if o.Format != CSV {
			errs = append(errs, fmt.Errorf("CSV options given for Format %s", o.Format))
		} else if err := o.CSV.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if o.PartSize <= 0 {
		errs = append(errs, fmt.Errorf("PartSize %d must be positive", o.PartSize))
	}
	if o.RollInterval < 0 {
		errs = append(errs, fmt.Errorf("RollInterval %v must not be negative", o.RollInterval))
	}
	if o.RollCheckpoints < 0 {
		errs = append(errs, fmt.Errorf("RollCheckpoints %d must not be negative", o.RollCheckpoints))
	}
	if o.Clock == nil {
		errs = append(errs, errors.New("Clock is nil"))
	}
	if o.Logger == nil {
		errs = append(errs, errors.New("Logger is nil"))
	}
	switch o.Commit {
	case CommitOnFinish, CommitOnRoll, CommitOnCheckpoint:
	default:
		errs = append(errs, fmt.Errorf("unknown Commit %v", o.Commit))
	}
	if _, ok := codecs[o.Parquet.Codec]; !ok {
		errs = append(errs, fmt.Errorf("unknown Parquet.Codec %q", o.Parquet.Codec))
	}
	if o.Parquet.RowGroupRows <= 0 {
		errs = append(errs, fmt.Errorf("Parquet.RowGroupRows %d must be positive", o.Parquet.RowGroupRows))
	}
	if o.Parquet.RowGroupBytes <= 0 {
		errs = append(errs, fmt.Errorf("Parquet.RowGroupBytes %d must be positive", o.Parquet.RowGroupBytes))
	}
	if o.FS == nil {
		errs = append(errs, errors.New("FS is nil"))
	}
	if o.MaxOpenPartitions <= 0 {
		errs = append(errs, fmt.Errorf("MaxOpenPartitions %d must be positive", o.MaxOpenPartitions))
	}
	seen := map[string]bool{}
	for _, c := range o.PartitionBy {
		if c == "" || seen[c] {
			errs = append(errs, fmt.Errorf("PartitionBy %q: empty or repeated column", o.PartitionBy))
			break
		}
		seen[c] = true
	}
	if o.FileName != "" {
		if strings.ContainsAny(o.FileName, `/\`) || o.FileName[0] == '.' || o.FileName[0] == '_' {
			errs = append(errs, fmt.Errorf("invalid FileName %q: must be without path separators, not starting with '.' or '_'", o.FileName))
		}
		if o.Commit != CommitOnFinish {
			errs = append(errs, fmt.Errorf("FileName %q (one file) needs Commit %v, not %v", o.FileName, CommitOnFinish, o.Commit))
		}
		if len(o.PartitionBy) > 0 {
			errs = append(errs, fmt.Errorf("FileName %q (one file) and PartitionBy exclude each other", o.FileName))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sinks: invalid FileOptions: %w", err)
	}
	return nil
}
