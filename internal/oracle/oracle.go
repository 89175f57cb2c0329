package oracle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing oracle from a
// skip into a failure.
const RequireEnv = "RIFFLE_REQUIRE_ORACLE"

// Timeout bounds one Python run.
var Timeout = 5 * time.Minute

// Table is a result read back through the oracle.
type Table struct {
	Columns []string
	// Types are the engine's own type names (DuckDB: "BIGINT", pyarrow:
	// "int64", pandas: "int64"/"object"/...).
	Types []string
	Rows  [][]any
}

// Strings renders every value with Format.
func (t *Table) Strings() [][]string {
	out := make([][]string, len(t.Rows))
	for i, r := range t.Rows {
		s := make([]string, len(r))
		for j, v := range r {
			s[j] = Format(v)
		}
		out[i] = s
	}
	return out
}

// Column returns the values of the named column, or fails when it is absent.
func (t *Table) Column(tb testing.TB, name string) []any {
	tb.Helper()
	for j, c := range t.Columns {
		if c == name {
			out := make([]any, len(t.Rows))
			for i, r := range t.Rows {
				out[i] = r[j]
			}
			return out
		}
	}
	tb.Fatalf("oracle: no column %q in %v", name, t.Columns)
	return nil
}

// Format renders one oracle value: "NULL" for nil, Go's shortest
// round-trip form for floats, the value itself otherwise.
func Format(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

// RepoRoot returns the directory holding go.mod, walking up from the working
// directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("oracle: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("oracle: go.mod not found above the working directory")
		}
		dir = parent
	}
}

var probe struct {
	once   sync.Once
	python string
	err    error
}

// Available returns the venv's Python interpreter, or an error saying why the
// oracle cannot run.
func Available() (string, error) {
	probe.once.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			probe.err = err
			return
		}
		py := filepath.Join(root, ".venv", "bin", "python")
		if _, err := os.Stat(py); err != nil {
			probe.err = fmt.Errorf("oracle: %s missing: run scripts/python-env.sh", py)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, py, "-c", "import duckdb, pyarrow, pandas, pytz").CombinedOutput()
		if err != nil {
			probe.err = fmt.Errorf("oracle: %s cannot import duckdb/pyarrow/pandas (run scripts/python-env.sh): %v: %s",
				py, err, bytes.TrimSpace(out))
			return
		}
		probe.python = py
	})
	return probe.python, probe.err
}

// Python returns the venv's interpreter, skipping tb when it is missing
// (failing it when RIFFLE_REQUIRE_ORACLE=1).
func Python(tb testing.TB) string {
	tb.Helper()
	py, err := Available()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("%v (%s=1)", err, RequireEnv)
		}
		tb.Skipf("%v (set %s=1 to fail instead of skipping)", err, RequireEnv)
	}
	return py
}

// DuckDB runs query in a fresh in-memory DuckDB (TimeZone UTC) and returns its
// result.
func DuckDB(tb testing.TB, query string) *Table {
	tb.Helper()
	return run(tb, "duckdb", query, "")
}

// DuckDBError runs query in a fresh in-memory DuckDB and returns the
// error DuckDB raises ("" when the query succeeds): for tests that check
// that riffle fails where DuckDB does (overflow, invalid casts).
func DuckDBError(tb testing.TB, query string) string {
	tb.Helper()
	const check = "import sys, duckdb\ntry:\n    duckdb.connect().sql(sys.argv[1]).fetchall()\nexcept Exception as e:\n    print(type(e).__name__ + ': ' + str(e))\n"
	out, err := exec.Command(Python(tb), "-c", check, query).CombinedOutput()
	if err != nil {
		tb.Fatalf("oracle: duckdb %q: %v\n%s", query, err, out)
	}
	return strings.TrimSpace(string(out))
}

// DuckDBStrings runs query and returns its rows rendered with Format.
func DuckDBStrings(tb testing.TB, query string) [][]string {
	tb.Helper()
	return DuckDB(tb, query).Strings()
}

// Format names a file format for PyArrowRead and PandasRead.
type FileFormat string

// File formats the readers understand.
const (
	Parquet FileFormat = "parquet"
	CSV     FileFormat = "csv"
	JSONL   FileFormat = "jsonl"
)

// PyArrowRead reads path with pyarrow and returns its table. path is a file or
// a directory; a directory is read as a pyarrow dataset, which ignores files
// whose names start with '.' or '_' (in-progress and temporary files).
func PyArrowRead(tb testing.TB, path string, format FileFormat) *Table {
	tb.Helper()
	return run(tb, "pyarrow", path, string(format))
}

// PandasRead reads one file with pandas (read_parquet, read_csv,
// read_json(lines=True)) with default options, as a user would. pandas has a
// single missing value: nulls and float NaN both come back as nil.
func PandasRead(tb testing.TB, path string, format FileFormat) *Table {
	tb.Helper()
	return run(tb, "pandas", path, string(format))
}

func run(tb testing.TB, mode, arg, format string) *Table {
	tb.Helper()
	py := Python(tb)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", script, mode, arg, format)
	cmd.Env = append(os.Environ(), "TZ=UTC", "PYTHONDONTWRITEBYTECODE=1", "PYTHONHASHSEED=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("oracle: %s %q: %v\n%s", mode, arg, err, stderr.String())
	}
	t, err := decode(stdout.Bytes())
	if err != nil {
		tb.Fatalf("oracle: %s %q: %v", mode, arg, err)
	}
	return t
}

func decode(data []byte) (*Table, error) {
	var raw struct {
		Columns []string `json:"columns"`
		Types   []string `json:"types"`
		Rows    [][]any  `json:"rows"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decoding result: %w", err)
	}
	t := &Table{Columns: raw.Columns, Types: raw.Types, Rows: raw.Rows}
	for _, r := range t.Rows {
		for j, v := range r {
			x, err := value(v)
			if err != nil {
				return nil, err
			}
			r[j] = x
		}
	}
	return t, nil
}

func value(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, nil
		}
		return strconv.ParseFloat(string(x), 64)
	case map[string]any:
		// Special floats travel as {"float": "nan"|"inf"|"-inf"}.
		if s, ok := x["float"].(string); ok {
			switch s {
			case "nan":
				return math.NaN(), nil
			case "inf":
				return math.Inf(1), nil
			case "-inf":
				return math.Inf(-1), nil
			}
		}
		return nil, fmt.Errorf("unexpected value %v", x)
	case []any:
		// Nested values (lists, structs) are rendered as their JSON text.
		b, err := json.Marshal(x)
		return string(b), err
	default:
		return v, nil
	}
}

// script is the Python side: argv = mode, query-or-path, format. It prints one
// JSON object {"columns", "types", "rows"}.
var script = strings.TrimSpace(`
import base64, datetime, decimal, json, math, sys

def conv(v):
    if v is None:
        return None
    if hasattr(v, "item") and type(v).__module__ == "numpy":
        v = v.item()
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if math.isnan(v):
            return {"float": "nan"}
        if math.isinf(v):
            return {"float": "inf" if v > 0 else "-inf"}
        return v
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, datetime.datetime) or type(v).__name__ == "Timestamp":
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            return v.isoformat() + "Z"
        return v.isoformat()
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, datetime.timedelta):
        return str(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, dict):
        return {k: conv(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [conv(x) for x in v]
    return str(v)

def emit(columns, types, rows):
    json.dump({"columns": columns, "types": types,
               "rows": [[conv(v) for v in r] for r in rows]},
              sys.stdout, allow_nan=False)

mode, arg, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "duckdb":
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    # A query slower than progress_bar_time would draw its bar on stdout.
    con.execute("SET enable_progress_bar_print = false")
    rel = con.execute(arg)
    cols = [d[0] for d in rel.description]
    types = [str(d[1]) for d in rel.description]
    emit(cols, types, rel.fetchall())
elif mode == "pyarrow":
    import os
    import pyarrow as pa
    if os.path.isdir(arg):
        import pyarrow.dataset as ds
        f = {"parquet": "parquet", "csv": "csv", "jsonl": "json"}[fmt]
        tbl = ds.dataset(arg, format=f).to_table()
    elif fmt == "parquet":
        import pyarrow.parquet as pq
        tbl = pq.read_table(arg)
    elif fmt == "csv":
        import pyarrow.csv as pcsv
        tbl = pcsv.read_csv(arg)
    elif fmt == "jsonl":
        import pyarrow.json as pjson
        tbl = pjson.read_json(arg)
    else:
        raise SystemExit("unknown format " + fmt)
    cols = tbl.column_names
    types = [str(t) for t in tbl.schema.types]
    data = [tbl.column(i).to_pylist() for i in range(tbl.num_columns)]
    emit(cols, types, list(zip(*data)) if data else [])
elif mode == "pandas":
    import pandas as pd
    if fmt == "parquet":
        df = pd.read_parquet(arg)
    elif fmt == "csv":
        df = pd.read_csv(arg)
    elif fmt == "jsonl":
        df = pd.read_json(arg, lines=True)
    else:
        raise SystemExit("unknown format " + fmt)
    cols = [str(c) for c in df.columns]
    types = [str(t) for t in df.dtypes]
    data = []
    for c in df.columns:
        s = df[c]
        data.append([None if pd.isna(v) else v for v in s.astype(object).tolist()])
    emit(cols, types, list(zip(*data)) if data else [])
else:
    raise SystemExit("unknown mode " + mode)
`)
