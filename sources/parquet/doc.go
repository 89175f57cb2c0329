// Package parquet is riffle's Parquet source: it reads files, globs or
// directories of Parquet files as Arrow record batches, splitting the work by
// row group across the subtasks of a source node.
//
// # Inputs and schema
//
// Options.Paths holds files, globs and directories, resolved by
// internal/filelist (shared with the CSV and JSONL sources). Directories are walked
// recursively and keep files ending in ".parquet"; directory walks and globs
// skip every file or directory whose name starts with '.' or '_' (_SUCCESS,
// _temporary, .crc, ...). A glob keeps the other files it matches whatever
// their extension, and a file named explicitly is always read.
// The resolved list is sorted and deduplicated, so the plan does not depend
// on directory order.
//
// New reads every footer and converts each Parquet schema to Arrow
// (honouring an ARROW:schema stored by Arrow writers). Files whose schemas
// differ are unified by column name, as DuckDB's
// read_parquet(union_by_name=true) (unify.go): the columns of the first
// file in its order, then each column a later file adds; a column a file
// lacks reads as NULL there; in every file, dictionary-encoded columns
// (pandas categoricals) are decoded and large_utf8 and large_binary read
// as utf8 and binary (one string type flows through the engine, as DuckDB
// has one VARCHAR); integers of one signedness and floats unify with the
// wider type. Options.Dictionary asks for string columns the other way:
// read as dictionary<int32, utf8>, the chunk's dictionary page shared by
// its batches and only indices copied per row (dict.go), whatever each
// file's encoding (plain pages and conformed files give batches whose
// dictionary is their own values).
// Other differences (an integer and a string, timestamps of different units
// or zones) fail New naming the column and both files, where DuckDB would
// fall back to VARCHAR. When a file's schema differs from the unified one
// (including a single file with a dictionary or large type), the arrow decoder is used, each
// batch is conformed to the unified schema after decoding (a cast per
// column whose representation differs, a NULL array per missing column),
// predicates prune row groups only when all files have one schema, and
// string filters are not accepted (the
// job layer pushes them only to the parquet-go decoder). Flat columns and
// lists (list, large_list, fixed_size_list: read by the arrow decoder and
// passed through as they are) are read; other nested columns (struct, map)
// are an error unless left out by projection. Batches carry the projected
// columns in Options.Columns order, or every column in file order.
//
// # Splits
//
// The unit of work is a row group. After pruning, row groups are assigned to
// subtasks greedily, largest first, each to the subtask with the fewest rows
// so far (ties broken by position, so the assignment depends only on the
// files, the options and the parallelism). Subtask loads therefore differ by
// at most one row group. A subtask reads its row groups in (file, row group)
// order; a batch holds at most Options.BatchSize rows and never spans two row
// groups.
//
// # Batch ownership and memory
//
// Reader.Next returns a batch the caller owns (one reference), as
// arrowexec's ownership rules require, allocated from Task.Mem. Decoder
// scratch space (compressed page buffers, decoded pages) lives on the Go heap
// and never escapes into a batch. Next checks the context once per batch.
//
// # Pushdown
//
// Projection: only the column chunks of projected columns are read and
// decoded.
//
// Predicates (AND-ed `column op value`) skip whole row groups and nothing
// else; the engine still filters rows. A row group is skipped when its column
// chunk statistics prove that no row can match: every value is null (a
// comparison never matches null), or the chunk's [min, max] lies outside the
// predicate. Pruning is conservative: missing statistics, statistics
// arrow-go distrusts (old writers), NaN bounds, unsigned and other
// unordered types, and values that cannot be represented exactly in the
// column's unit (a time.Time with microseconds on a millisecond column, a
// date that is not midnight UTC) never skip anything. Float comparisons
// follow IEEE semantics (NaN matches nothing). time.Time values are compared
// as instants (for timestamps without time zone, as the UTC wall clock).
// Value types: int64 or int for integer columns (float64 compares as a
// float), float64 or int64 for float columns, string for string and binary
// columns, bool, and time.Time for timestamp and date columns; other
// combinations are an error in New.
//
// String filters (Options.StringFilters, AND-ed `col IN (...)` / `NOT IN`,
// which covers = and !=) do filter rows, inside the scan and before rows
// become Arrow batches (parquet-go decoder only). Each filter column gets a
// page reader of its own; on a dictionary-encoded page the filter is
// evaluated once per dictionary entry and rows are kept by looking up their
// index, on a plain page by comparing the bytes. The projected columns are
// decoded and the passing rows gathered, so a batch may hold fewer rows than
// BatchSize (an empty one is never emitted), and a filter column that is not
// projected is never materialized. NULLs fail every string filter, as in
// SQL. Positions and progress count consumed rows, passing or not.
//
// # Progress and checkpoints
//
// Source.Stats reports the total work; Reader.Next adds to
// Task.Metrics.BytesIn the compressed bytes (of projected column chunks) of
// the rows it emitted, pro rata within a row group, so the subtasks' BytesIn
// sum to the bytes of Stats when they finish.
//
// Reader.Position is how far a reader got (file, row group, rows emitted of
// it); Reader.Seek resumes a fresh reader from such a position. Reader
// implements arrowexec.Checkpointer: its snapshot lists the work the subtask
// has left, as positions. Open with Task.Restore unions the work left by
// every subtask of the previous run and splits it again, so a job resumes
// exactly where its checkpoint was, even with a different parallelism.
// Files that appeared after the checkpoint are not read by a restored job;
// a row group of a snapshot that the source no longer has is an error.
//
// # Event time
//
// Options.Watermark names an event-time column and a bounded
// out-of-orderness. A reader reports watermarks only when its row groups
// are in event-time order (by their statistics, within the bound); the
// watermark is then the larger of the exact one from the statistics (the
// smallest event time of the row groups not finished, minus one) and the
// bounded out-of-orderness watermark of the rows read, capped by the row
// groups not started. Otherwise, the default for unsorted files, the
// reader reports none and the runtime's final watermark at the end of
// input, which is exact, fires every window exactly once. A backfill that
// hands over to a stream (arrowexec.RunOptions.HoldAtEnd) does not send
// that final watermark; the reader's SuspendWatermark, the bounded
// out-of-orderness watermark of every row it read, ordered or not, is
// carried into the savepoint instead. See watermark.go.
//
// # Errors
//
// Every error starts with "parquet: " and names the file, and the row group
// and column when known (*Error). Missing, unreadable, non-Parquet, truncated
// and corrupt files are errors, never panics: a panic inside either decoding
// library is recovered and returned as an error naming the file, row group
// and column. Corruption a library would not survive is checked first: the
// Arrow schema a file stores (ARROW:schema) has its vector lengths bounded
// by its size before arrow-go decodes it (a corrupt length there made
// arrow-go allocate hundreds of GiB and kill the process; see
// arrowschema.go). IsCorruption classifies errors caused by file contents. Pages
// carry no checksum in most files, so a flipped bit inside a plain-encoded
// value can decode to a wrong value without error; anything that breaks the
// structure (headers, lengths, dictionary indexes, compression) is detected.
//
// # Decoders
//
// Two decoders turn column chunks into Arrow arrays:
//
//   - "arrow": arrow-go's pqarrow. One pqarrow ColumnReader per projected
//     column, restricted to the current row group (GetFieldReader), read
//     n rows at a time with NextBatch.
//   - "parquet-go": github.com/parquet-go/parquet-go reads and decompresses
//     the pages of each column chunk; this package copies each page's
//     decoded values (Page.Data: a typed slice, or dictionary indexes plus
//     the dictionary page) and definition levels straight into Arrow value,
//     offset and validity buffers. There is no per-value interface call, no
//     parquet.Value, no row reconstruction.
//
// The default is parquet-go, because it was the faster one, by about 2x on
// the whole file and 3x with a projection, with far fewer allocations:
//
//	go test -run '^$' -bench Decode -benchtime 5x -count 3 ./sources/parquet
//
//	2M rows, 8 row groups, snappy: int64, int64 (5% null),
//	low-cardinality string (2% null), float64 (5% null), timestamp[ms];
//	64Ki-row batches, one subtask, 2 shared cores:
//
//	decoder     columns           rows/s   B/op    allocs/op
//	arrow       all                6.1M    585M    57k
//	parquet-go  all               12.2M    148M    2.7k
//	arrow       country,amount    12.9M    221M    34k
//	parquet-go  country,amount    36.8M     58M    1.3k
//
// (Figures from a shared machine; rerun the benchmark to compare.)
// pqarrow goes through generic record readers and level builders and
// allocates per call; the parquet-go path decodes a page once and copies
// typed slices into preallocated buffers, and gathers dictionary-encoded
// strings straight from the dictionary page.
//
// The parquet-go decoder handles boolean, 8 to 64 bit signed and unsigned
// integers, float32, float64, string, binary, date32 and timestamps. (Parquet
// has no second unit: a timestamp[s] column written by Arrow is stored, and
// read back by both decoders, as timestamp[ms].)
// When the default is used and a projected column has another type
// (decimal, float16, large string, time, ...), the source uses "arrow" for
// every column; asking for "parquet-go" explicitly is then an error naming
// the column. Source.Decoder reports the decoder in use.
package parquet
