// Package arrowtext encodes Arrow record batches as text rows: CSV lines
// and JSON objects. It is riffle's one Arrow-to-text encoder: the file
// sinks' csv and jsonl parts (package sinks), the Kafka sink's messages
// (sinks/kafka, one JSON object per message) and ml's text exports write
// through it, so the same batch reads the same everywhere.
//
// Encoding is columnar: each column of a batch is encoded on its own into
// one buffer with a typed loop per Arrow type (value i at
// buf[ends[i]:ends[i+1]]), then rows are stitched from the columns. No
// per-value interface call on the common types.
//
// # Formats
//
// JSON (one object per row, members in schema order, named after the
// columns):
//   - null values are null, in every type;
//   - integers are numbers; floats are numbers in the shortest form that
//     reads back to the same value, like encoding/json (exponent below
//     1e-6 and from 1e21 on), with ".0" added to an integral value so that
//     readers that infer types (DuckDB, pyarrow) read a double: 3.0, 0.25,
//     1e-07, 1e+21; NaN and ±Inf, which JSON cannot hold, are null;
//   - booleans are true/false; strings are JSON strings escaped like
//     encoding/json without HTML escaping (invalid UTF-8 becomes U+FFFD);
//     binaries are base64 strings (standard alphabet, padded);
//   - timestamps are ISO 8601 strings with the unit's fraction digits
//     (none, 3, 6 or 9): a timestamp with a time zone is written as its
//     UTC instant with "Z" ("2026-01-02T03:04:05.678Z"), one without as
//     its wall-clock text without a zone ("2026-01-02T03:04:05.678");
//     dates are "2006-01-02";
//   - decimals are numbers with their exact text;
//   - dictionary columns are their values; lists (list, large list, fixed
//     size list) are arrays and structs objects, their values encoded by
//     the same rules; other types fall back to encoding/json of arrow-go's
//     value (GetOneForMarshal).
//
// CSV (a header line of the column names, then one line per row): the same
// text without JSON's quotes; a field is quoted (RFC 4180) when it holds a
// comma, quote, CR or LF, or is an empty string; a null is an empty
// unquoted field; NaN and ±Inf are nan, inf and -inf. Nested types cannot
// be written as CSV (CheckCSV). CSVOptions (NewCSVEncoder, NewCSVWriter)
// change the delimiter, the quote character and the text of a NULL (a
// string equal to it is then quoted) and leave out the header.
package arrowtext
