// Package text is riffle's bounded CSV and JSONL source: it reads files,
// globs or directories of delimited text or JSON lines as Arrow record
// batches, splitting large files into byte ranges read in parallel.
//
// # Inputs and columns
//
// Options.Paths are resolved by internal/filelist, as the Parquet source
// resolves them (directory walks keep *.csv, *.tsv and *.txt files, or
// *.jsonl, *.ndjson and *.json; names starting with '.' or '_' are
// skipped; the list is sorted). Columns are declared with a name and a
// type, in the Kafka source's syntax (int64, int32, float64, string, bool,
// timestamp, binary; `required` makes an empty value a bad row), and batches
// carry them in declaration order. With Options.Header the first record of
// each CSV file names its fields: declared columns are found there by name
// (a subset, in any order; each file may order them differently);
// without a header they are each record's fields in order. A UTF-8 byte
// order mark at the start of a file is skipped.
//
// # CSV
//
// RFC 4180: fields are separated by Options.Delimiter (default ','); a
// field in double quotes may hold delimiters, line breaks and doubled
// quotes ("" is one "). Records end with LF or CRLF; the last one may
// lack its line break. Blank lines are skipped. Every record must have as
// many fields as the header (or as there are declared columns).
//
// NULLs: an empty unquoted field is NULL whatever the type. A quoted empty
// field ("") is the empty string in string and binary columns and NULL in
// others. (DuckDB's read_csv gives the same with allow_quoted_nulls =
// false.) Values convert as the Kafka source's CSV values do (see
// internal/coerce): integers and floats may have surrounding spaces,
// bools are true/false, timestamps are epoch milliseconds or RFC 3339.
//
// # JSONL
//
// One flat JSON object per line, decoded by the Kafka source's JSON
// scanner with its coercions; members not declared are validated and
// skipped, missing members and null are NULL.
//
// # Splits
//
// New reads every file once (counting line breaks and quotes with
// bytes.Count, no parsing) to cut it into splits of about Options.SplitSize bytes that
// start and end on record boundaries, and to learn the line each split
// starts on, so errors name exact lines even when splits are read in
// parallel. A record ends at the first line break outside quotes, found by
// quote parity; the pre-scan and the readers use the same rule, so a
// quoted line break never cuts a record. Splits are assigned to subtasks
// by filelist.Assign (largest first to the least loaded subtask, as the
// Parquet source assigns row groups); a subtask reads its splits in file
// order and each split's rows in order. A batch holds at most
// Options.BatchSize rows of one split.
//
// # Decoding
//
// A reader reads a split through a buffer (4 MiB, doubled for a record
// that does not fit), finds record ends with bytes.IndexByte and
// bytes.Count, splits fields in place (quoted fields with doubled quotes
// are undone into a per-batch arena) and keeps, per declared column, the
// offset and length of each row's value. Each column is then converted in
// one typed loop (the type switch is outside the loop; no interface call
// per value) into typed slices appended to Arrow builders in one call.
//
// # Bad input
//
// A malformed record (unterminated quote, text after a closing quote, a
// quote inside an unquoted field, the wrong number of fields, invalid
// JSON), a value that does not convert, or an empty required value is
// handled per Options.OnError: fail (the default) fails the reader with
// an *Error naming the file, the 1-based line the record starts on and
// the column: `csv: file data.csv: line 17: column "rating": cannot
// convert string "x" to float64` (a reader reports the first bad row of
// its split);
// skip drops the row and counts it (Stats.Skipped); dead-letter writes a
// JSON line {file, line, reason, class, payload} through internal/deadletter
// (class: missing_field for an empty required column, bad_value for a
// value that does not convert, else malformed),
// the Kafka source's mechanism (synced at every checkpoint and at close),
// and counts it. A bad row is dropped from every column or kept in all.
//
// # Checkpoints and event time
//
// Reader implements arrowexec.Checkpointer: its snapshot lists the work
// left as (file, byte offset, end, line); batches end on record
// boundaries, so a restore resumes exactly, and Open with Task.Restore
// splits the union of the work left again, at any parallelism. With
// Options.Watermark, text files carry no statistics bounding the event
// times to come, so a reader reports no watermark until the end of input,
// when the runtime's final watermark fires every window once (as for
// unsorted Parquet files); SuspendWatermark reports the bounded
// out-of-orderness watermark of the rows read, for hand-overs.
//
// # Memory and errors
//
// Next returns a batch the caller owns, allocated from Task.Mem; read
// buffers live on the Go heap. Next checks the context once per batch.
// Close is safe to call twice. Every error starts with "csv: " or
// "jsonl: " and names the file.
package text
