package sinks_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/fsx"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/sinks"
)

// partSchema is the schema of the partitioned-output tests: an id, one
// column of every partition type (with NULLs and strings that need
// escaping) and a payload.
var partSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "n", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "u", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
	{Name: "v", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// partKeys are the k values: every one needs escaping somewhere, or is
// empty, or looks like a path.
var partKeys = []string{"plain", "a/b", "x=y", "50%", "", "sp ace", "ünï 日本", "..", ".hidden", "_under", "tab\tnl\n", `q"'#?*`, "-1", "true"}

// partRow is one input row (nil: NULL).
type partRow struct {
	id      int64
	k       *string
	n       *int32
	d       *int32
	b       *bool
	u       *uint64
	v       string
	present bool
}

func partRows(rng *rand.Rand, n int) []partRow {
	rows := make([]partRow, n)
	null := func() bool { return rng.IntN(8) == 0 }
	for i := range rows {
		r := partRow{id: int64(i), v: fmt.Sprintf("v%d,%s", rng.IntN(1000), nastyStrings[rng.IntN(len(nastyStrings))])}
		if !null() {
			k := partKeys[rng.IntN(len(partKeys))]
			r.k = &k
		}
		if !null() {
			x := int32(rng.IntN(5) - 2)
			r.n = &x
		}
		if !null() {
			x := int32(19000 + rng.IntN(4))
			r.d = &x
		}
		if !null() {
			x := rng.IntN(2) == 0
			r.b = &x
		}
		if !null() {
			x := []uint64{0, 7, 1 << 63, ^uint64(0)}[rng.IntN(4)]
			r.u = &x
		}
		rows[i] = r
	}
	return rows
}

func partBatch(mem memory.Allocator, rows []partRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, partSchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(r.id)
		if r.k != nil {
			b.Field(1).(*array.StringBuilder).Append(*r.k)
		} else {
			b.Field(1).AppendNull()
		}
		if r.n != nil {
			b.Field(2).(*array.Int32Builder).Append(*r.n)
		} else {
			b.Field(2).AppendNull()
		}
		if r.d != nil {
			b.Field(3).(*array.Date32Builder).Append(arrow.Date32(*r.d))
		} else {
			b.Field(3).AppendNull()
		}
		if r.b != nil {
			b.Field(4).(*array.BooleanBuilder).Append(*r.b)
		} else {
			b.Field(4).AppendNull()
		}
		if r.u != nil {
			b.Field(5).(*array.Uint64Builder).Append(*r.u)
		} else {
			b.Field(5).AppendNull()
		}
		b.Field(6).(*array.StringBuilder).Append(r.v)
	}
	return b.NewRecordBatch()
}

// partBatches cuts rows into batches of 1..max rows.
func partBatches(rng *rand.Rand, mem memory.Allocator, rows []partRow, max int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for len(rows) > 0 {
		n := min(1+rng.IntN(max), len(rows))
		out = append(out, partBatch(mem, rows[:n]))
		rows = rows[n:]
	}
	return out
}

// writePartitioned writes rows through a sink with opts, par subtasks each
// taking a contiguous share.
func writePartitioned(t *testing.T, mem memory.Allocator, opts sinks.FileOptions, rows []partRow, par int, seed uint64) *sinks.FileSpec {
	t.Helper()
	spec, err := sinks.NewFile(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Schema([]*arrow.Schema{partSchema}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 9))
	per := (len(rows) + par - 1) / par
	for st := range par {
		bs := partBatches(rng, mem, rows[min(st*per, len(rows)):min((st+1)*per, len(rows))], 200)
		err := runSubtask(t, spec, task(mem, partSchema, st, par), bs, true)
		releaseAll(bs)
		if err != nil {
			t.Fatal(err)
		}
	}
	return spec
}

// pyHive reads dir with pyarrow.dataset(partitioning="hive") and returns
// the id and the given partition columns of every row as text ("NULL"
// for a null), sorted by id: pyarrow's reading of the directory names.
func pyHive(t *testing.T, dir string, f sinks.Format, cols []string) [][]string {
	t.Helper()
	py := oracle.Python(t)
	script := `
import sys, json, pyarrow.dataset as ds
d, fmt, cols = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
f = {"parquet": "parquet", "csv": "csv", "jsonl": "json"}[fmt]
if fmt == "csv":
    # Every file infers its own types; u holds values beyond int64.
    import pyarrow as pa, pyarrow.csv as pc
    f = ds.CsvFileFormat(convert_options=pc.ConvertOptions(column_types={"u": pa.uint64()}))
t = ds.dataset(d, format=f, partitioning="hive").to_table()
out = []
ids = t.column("id").to_pylist()
vals = [t.column(c).to_pylist() for c in cols]
for i, id in enumerate(ids):
    out.append([str(id)] + ["NULL" if v[i] is None else str(v[i]) for v in vals])
out.sort(key=lambda r: int(r[0]))
json.dump(out, sys.stdout)
`
	cmd := exec.Command(py, "-c", script, dir, string(f), strings.Join(cols, ","))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pyarrow: %v\n%s", err, stderr.String())
	}
	var out [][]string
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// duckRead is DuckDB's reader of format f over glob g, with
// hive_partitioning.
func duckRead(f sinks.Format, g string, hive bool) string {
	fn := map[sinks.Format]string{sinks.Parquet: "read_parquet", sinks.CSV: "read_csv", sinks.JSONL: "read_json"}[f]
	extra := ""
	if f == sinks.CSV {
		extra = ", header=true, delim=',', quote='\"', escape='\"', types={'id': 'BIGINT', 'n': 'INTEGER', 'd': 'DATE', 'u': 'UBIGINT', 'v': 'VARCHAR'}"
	}
	return fmt.Sprintf("%s('%s', hive_partitioning=%v%s)", fn, g, hive, extra)
}

// TestPartitionedOracle writes random rows partitioned by string, integer,
// date, boolean and unsigned columns (NULLs, strings with '/', '=', '%',
// spaces, control and non-ASCII bytes), two subtasks, small parts and a
// cap of 3 open partitions, in every format; then DuckDB
// (hive_partitioning) and pyarrow (dataset, partitioning="hive") read the
// directory back. The oracle is the same query over the unpartitioned
// input (written by the plain sink, itself checked against DuckDB by
// TestOracle): every row, its partition values restored from the
// directory names, and files without the partition columns.
func TestPartitionedOracle(t *testing.T) {
	oracle.Python(t)
	cases := []struct {
		f  sinks.Format
		by []string
	}{
		{sinks.Parquet, []string{"k", "n"}},
		{sinks.Parquet, []string{"d", "b", "u"}},
		{sinks.CSV, []string{"k", "b"}},
		{sinks.JSONL, []string{"n", "k"}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%s", c.f, strings.Join(c.by, "-")), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			root := t.TempDir()
			in, out := filepath.Join(root, "in"), filepath.Join(root, "out")
			rows := partRows(rand.New(rand.NewPCG(21, uint64(len(c.by)))), 3000)
			writePartitioned(t, mem, sinks.FileOptions{Dir: in, Format: sinks.Parquet, NoSync: true}, rows, 1, 1)
			opts := smallParts(out, c.f)
			opts.PartSize = 4 << 10
			opts.PartitionBy = c.by
			opts.MaxOpenPartitions = 3
			spec := writePartitioned(t, mem, opts, rows, 2, 2)
			if len(spec.Published()) < 10 {
				t.Fatalf("%d parts published, want many", len(spec.Published()))
			}
			// The files hold no partition column.
			one := spec.Published()[0].Path
			cols := duck(t, "SELECT * FROM "+duckRead(c.f, one, false)+" LIMIT 0").Columns
			for _, col := range c.by {
				if slices.Contains(cols, col) {
					t.Fatalf("%s holds partition column %s: %v", one, col, cols)
				}
			}
			sel := "SELECT id, k, n::VARCHAR, d::VARCHAR, b::VARCHAR, u::VARCHAR, v FROM "
			want := duck(t, sel+duckRead(sinks.Parquet, in+"/*.parquet", false)+" ORDER BY id").Strings()
			got := duck(t, sel+duckRead(c.f, out+"/**/*."+c.f.Ext(), true)+" ORDER BY id").Strings()
			if len(got) != len(want) {
				t.Fatalf("DuckDB reads %d rows back, want %d", len(got), len(want))
			}
			for i := range want {
				if !slices.Equal(got[i], want[i]) {
					t.Fatalf("DuckDB row %d: got %q, want %q", i, got[i], want[i])
				}
			}
			// pyarrow: ids and partition values, as text.
			pyWant := make([][]string, len(rows))
			for i, r := range rows {
				pyWant[i] = []string{fmt.Sprint(r.id)}
				for _, col := range c.by {
					pyWant[i] = append(pyWant[i], partText(r, col))
				}
			}
			pyGot := pyHive(t, out, c.f, c.by)
			if len(pyGot) != len(pyWant) {
				t.Fatalf("pyarrow reads %d rows, want %d", len(pyGot), len(pyWant))
			}
			for i := range pyWant {
				if !slices.Equal(pyGot[i], pyWant[i]) {
					t.Fatalf("pyarrow row %d: got %q, want %q", i, pyGot[i], pyWant[i])
				}
			}
		})
	}
}

// partText is pyarrow's text of row r's partition value of col: strings
// as they are, integers in decimal, dates YYYY-MM-DD, booleans as the
// directory's text ("true", read back as a string), NULL "NULL".
func partText(r partRow, col string) string {
	switch col {
	case "k":
		if r.k != nil {
			return *r.k
		}
	case "n":
		if r.n != nil {
			return fmt.Sprint(*r.n)
		}
	case "d":
		if r.d != nil {
			return time.Unix(int64(*r.d)*86400, 0).UTC().Format(time.DateOnly)
		}
	case "b":
		if r.b != nil {
			return fmt.Sprint(*r.b)
		}
	case "u":
		if r.u != nil {
			return fmt.Sprint(*r.u)
		}
	}
	return "NULL"
}

// TestPartitionedEscaping pins the directory names: those DuckDB's COPY
// ... (PARTITION_BY) writes for the same values (DuckDB is the oracle).
func TestPartitionedEscaping(t *testing.T) {
	oracle.Python(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	root := t.TempDir()
	var rows []partRow
	for i := range partKeys {
		rows = append(rows, partRow{id: int64(i), k: &partKeys[i]})
	}
	rows = append(rows, partRow{id: int64(len(rows))})
	out := filepath.Join(root, "out")
	opts := sinks.FileOptions{Dir: out, Format: sinks.CSV, PartitionBy: []string{"k"}, NoSync: true}
	writePartitioned(t, mem, opts, rows, 1, 1)
	got := listDir(t, out)
	duckDir := filepath.Join(root, "duck")
	var vals []string
	for _, k := range partKeys {
		vals = append(vals, "'"+strings.ReplaceAll(k, "'", "''")+"'")
	}
	duck(t, fmt.Sprintf("COPY (SELECT unnest([%s, NULL]) AS k, 1 AS x) TO '%s' (FORMAT csv, PARTITION_BY (k))", strings.Join(vals, ", "), duckDir))
	want := listDir(t, duckDir)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("directories\n got %q\nwant %q (DuckDB's)", got, want)
	}
}

// TestPartitionedErrors: bad partition columns are refused at plan time
// (Schema), naming the column; the NULL marker as a string value at run
// time.
func TestPartitionedErrors(t *testing.T) {
	for _, c := range []struct {
		by   []string
		want string
	}{
		{[]string{"nope"}, `no column "nope"`},
		{[]string{"v", "id", "k", "n", "d", "b", "u"}, "takes every column"},
	} {
		spec, err := sinks.NewFile(sinks.FileOptions{Dir: t.TempDir(), PartitionBy: c.by})
		if err != nil {
			t.Fatal(err)
		}
		_, err = spec.Schema([]*arrow.Schema{partSchema})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("PartitionBy %v: got %v, want %q", c.by, err, c.want)
		}
	}
	f64 := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}, {Name: "y", Type: arrow.PrimitiveTypes.Int64}}, nil)
	spec, _ := sinks.NewFile(sinks.FileOptions{Dir: t.TempDir(), PartitionBy: []string{"x"}})
	if _, err := spec.Schema([]*arrow.Schema{f64}); err == nil || !strings.Contains(err.Error(), `column "x" has type float64`) {
		t.Fatalf("float64 partition column: %v", err)
	}
	if _, err := sinks.NewFile(sinks.FileOptions{Dir: "x", PartitionBy: []string{"a", "a"}}); err == nil {
		t.Fatal("repeated partition column accepted")
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	marker := sinks.HiveNull
	spec, _ = sinks.NewFile(sinks.FileOptions{Dir: t.TempDir(), PartitionBy: []string{"k"}, NoSync: true})
	b := partBatch(mem, []partRow{{id: 1, k: &marker}})
	defer b.Release()
	err := runSubtask(t, spec, task(mem, partSchema, 0, 1), []arrow.RecordBatch{b}, true)
	if err == nil || !strings.Contains(err.Error(), "NULL marker") {
		t.Fatalf("the NULL marker as a value: %v", err)
	}
}

// memPartIDs reads every published JSONL part under dir on m, checking
// that each row lies in the directory of its k: the ids, and the names
// of files left in progress.
func memPartIDs(t *testing.T, m *fsx.MemFS, dir string, rows []partRow) (ids []int64, left []string) {
	t.Helper()
	var walk func(d string)
	walk = func(d string) {
		ents, err := m.ReadDir(d)
		if fsx.IsNotExist(err) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := path.Join(d, e.Name())
			switch {
			case e.IsDir():
				walk(p)
			case strings.HasPrefix(e.Name(), "."):
				left = append(left, p)
			case strings.HasSuffix(e.Name(), ".jsonl"):
				f, err := m.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				sc := bufio.NewScanner(f)
				sc.Buffer(nil, 1<<20)
				for sc.Scan() {
					var row struct {
						ID int64
						K  *string
					}
					if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
						t.Fatalf("%s: %q: %v", p, sc.Text(), err)
					}
					if row.K != nil {
						t.Fatalf("%s holds the partition column k", p)
					}
					if want := "k=" + escapeForTest(rows[row.ID].k); path.Base(path.Dir(p)) != want {
						t.Fatalf("row %d in %s, want directory %s", row.ID, p, want)
					}
					ids = append(ids, row.ID)
				}
				f.Close()
			}
		}
	}
	walk(dir)
	return ids, left
}

// escapeForTest spells a k directory value the way
// TestPartitionedEscaping checked against DuckDB.
func escapeForTest(k *string) string {
	if k == nil {
		return sinks.HiveNull
	}
	var b strings.Builder
	for _, c := range []byte(*k) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// TestPartitionedCrashesOnMemFS is TestTwoPhaseCrashesOnMemFS for a
// partitioned JSONL sink (partition_by k, small parts, at most 3 open
// partitions, so checkpoints publish parts in many directories, each with
// its publish log): the power is cut after every I/O operation in turn,
// the sink restored from its last snapshot on what survived; the
// published rows are exactly those before that checkpoint's barrier, each
// once, each in its partition's directory, nothing left in progress.
func TestPartitionedCrashesOnMemFS(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(41, 42))
	rows := partRows(rng, 240)
	const nseg = 3
	per := len(rows) / nseg
	// Five partitions (and NULL), more than the 3 open ones allowed; rows
	// after the last checkpoint open one it does not know.
	for i := range rows {
		if rows[i].k != nil {
			rows[i].k = &partKeys[1+i%5]
		}
	}
	late := "late"
	for i := 2 * per; i < len(rows); i += 3 {
		rows[i].k = &late
	}
	segs := make([][]arrow.RecordBatch, nseg)
	for i := range segs {
		segs[i] = partBatches(rng, mem, rows[i*per:(i+1)*per], 60)
	}
	defer func() {
		for _, s := range segs {
			releaseAll(s)
		}
	}()
	const dir = "/out"
	mkOpts := func(fs sinks.FS) sinks.FileOptions {
		o := twoPhaseOpts(dir, sinks.JSONL)
		o.PartSize = 1 << 10
		o.PartitionBy = []string{"k"}
		o.MaxOpenPartitions = 3
		o.FS = fs
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		return o
	}
	scenario := func(m *fsx.MemFS, n int64) (ops int64, id uint64, blob []byte) {
		var count atomic.Int64
		r, err := openSink(t, mkOpts(&fsx.ErrorFS{FS: m, Inject: func(fsx.Op, string) error {
			if count.Add(1) > n {
				return errPowerCut
			}
			return nil
		}}), mem, partSchema, 0, 1, nil)
		if err != nil {
			return count.Load(), 0, nil
		}
		defer r.crash()
		ctx := context.Background()
		for e := uint64(1); e <= 2; e++ {
			for _, b := range segs[e-1] {
				if err := r.op.Process(ctx, 0, b, nil); err != nil {
					return count.Load(), id, blob
				}
			}
			snap, err := r.op.(arrowexec.Checkpointer).SnapshotState(ctx, e)
			if err != nil {
				return count.Load(), id, blob
			}
			id, blob = e, snap.Operator
			if err := r.notify(e); err != nil {
				return count.Load(), id, blob
			}
		}
		for _, b := range segs[2] {
			if r.op.Process(ctx, 0, b, nil) != nil {
				break
			}
		}
		return count.Load(), id, blob
	}
	total, id, _ := scenario(fsx.NewMemFS(), 1<<62)
	if id != 2 {
		t.Fatalf("fault-free run snapshotted %d checkpoints, want 2", id)
	}
	t.Logf("%d I/O operations", total)
	for n := int64(0); n <= total; n++ {
		m := fsx.NewMemFS()
		_, id, blob := scenario(m, n)
		m.Crash()
		r, err := openSink(t, mkOpts(m), mem, partSchema, 0, 1, restoreFrom(id, blob))
		if err != nil {
			t.Fatalf("cut at %d (last snapshot %d): recovery: %v", n, id, err)
		}
		r.crash()
		got, left := memPartIDs(t, m, dir, rows)
		slices.Sort(got)
		want := make([]int64, int(id)*per)
		for i := range want {
			want[i] = int64(i)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("cut at %d (last snapshot %d): published %d rows, want the %d before its barrier once each", n, id, len(got), len(want))
		}
		if len(left) > 0 && id > 0 {
			t.Fatalf("cut at %d (last snapshot %d): left in progress: %v", n, id, left)
		}
	}
}

// TestPartitionedRestoreRescale runs an unbounded partitioned Parquet sink
// with checkpoints at parallelism 2, crashes it after rows past its last
// complete checkpoint were written (some parts of them published by a
// later checkpoint whose completion the restore does not know: the
// restore goes back to the older one), restores at parallelism 3 and
// replays the rows after the restored checkpoint to new subtasks: DuckDB
// reads every input row exactly once, in its partition.
func TestPartitionedRestoreRescale(t *testing.T) {
	oracle.Python(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(51, 52))
	rows := partRows(rng, 3000)
	// Partitions the restored checkpoint does not know: some rows of
	// segment 1 (published by checkpoint 2) and 2 (in progress at the
	// crash) go to new ones.
	fresh := []string{"new-after-1", "new-after-2"}
	for i := range rows {
		if seg := (i % 1500) / 500; seg > 0 && rng.IntN(3) == 0 {
			rows[i].k = &fresh[seg-1]
		}
	}
	root := t.TempDir()
	out := filepath.Join(root, "out")
	opts := twoPhaseOpts(out, sinks.Parquet)
	opts.PartSize = 2 << 10
	opts.PartitionBy = []string{"n", "k"}
	opts.MaxOpenPartitions = 5
	// Rows: 3 segments per subtask of the first run; checkpoint 1 after
	// segment 1, checkpoint 2 after segment 2 (completed: its parts
	// published), then segment 3 written and the run crashes. The
	// restore goes back to checkpoint 1 (as if checkpoint 2's manifest
	// were unusable).
	spec1, err := sinks.NewFile(opts)
	if err != nil {
		t.Fatal(err)
	}
	seg := func(st, i int) []partRow { // subtask st's i-th segment of 500 rows
		lo := st*1500 + i*500
		return rows[lo : lo+500]
	}
	var runs [2]arrowexec.Operator
	ctx := context.Background()
	for st := range 2 {
		tk := task(mem, partSchema, st, 2)
		op, err := spec1.New(tk)
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Open(ctx); err != nil {
			t.Fatal(err)
		}
		runs[st] = op
	}
	feed := func(op arrowexec.Operator, rs []partRow) {
		bs := partBatches(rng, mem, rs, 90)
		defer releaseAll(bs)
		for _, b := range bs {
			if err := op.Process(ctx, 0, b, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ckpt1 [][]byte
	for i := range 3 {
		for st, op := range runs {
			feed(op, seg(st, i))
		}
		if i == 2 {
			break
		}
		var blobs [][]byte
		for _, op := range runs {
			snap, err := op.(arrowexec.Checkpointer).SnapshotState(ctx, uint64(i+1))
			if err != nil {
				t.Fatal(err)
			}
			blobs = append(blobs, snap.Operator)
		}
		for _, op := range runs {
			if err := op.(arrowexec.CheckpointListener).NotifyCheckpointComplete(ctx, uint64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		if i == 0 {
			ckpt1 = blobs
		}
	}
	for _, op := range runs {
		op.Close() // crash
	}
	// Restore checkpoint 1 at parallelism 3; replay every row after it
	// (segments 1 and 2 of both old subtasks), spread over the new ones.
	spec2, err := sinks.NewFile(opts)
	if err != nil {
		t.Fatal(err)
	}
	var replay []partRow
	for st := range 2 {
		replay = append(replay, seg(st, 1)...)
		replay = append(replay, seg(st, 2)...)
	}
	rng.Shuffle(len(replay), func(i, j int) { replay[i], replay[j] = replay[j], replay[i] })
	var ops []arrowexec.Operator
	for st := range 3 {
		tk := task(mem, partSchema, st, 3)
		tk.Restore = &arrowexec.RestoreState{CheckpointID: 1, Operator: ckpt1}
		op, err := spec2.New(tk)
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Open(ctx); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	per := (len(replay) + 2) / 3
	for st, op := range ops {
		feed(op, replay[min(st*per, len(replay)):min((st+1)*per, len(replay))])
	}
	for _, op := range ops {
		if err := op.Finish(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := op.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got := duck(t, fmt.Sprintf("SELECT id, k, n::VARCHAR, count(*) FROM read_parquet('%s/**/*.parquet', hive_partitioning=true) GROUP BY ALL ORDER BY id", out)).Strings()
	if len(got) != len(rows) {
		have := map[string]bool{}
		for _, g := range got {
			have[g[0]] = true
		}
		var miss []int
		for i := range rows {
			if !have[fmt.Sprint(i)] {
				miss = append(miss, i)
			}
		}
		t.Fatalf("read %d distinct rows back, want %d; missing %d: %v...", len(got), len(rows), len(miss), miss[:min(len(miss), 20)])
	}
	for i, g := range got {
		r := rows[i]
		want := []string{fmt.Sprint(r.id), nullText(r.k), partText(r, "n"), "1"}
		if !slices.Equal(g, want) {
			t.Fatalf("row %d: got %q, want %q (id, k, n, copies)", i, g, want)
		}
	}
	var hiddenLeft []string
	_ = filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".") {
			hiddenLeft = append(hiddenLeft, p)
		}
		return nil
	})
	if len(hiddenLeft) > 0 {
		t.Fatalf("left in progress: %v", hiddenLeft)
	}
}

func nullText(s *string) string {
	if s == nil {
		return oracle.Format(nil)
	}
	return *s
}

// duck runs query in DuckDB without its progress bar, which a slow query
// (a loaded machine) prints on the oracle's stdout.
func duck(t *testing.T, query string) *oracle.Table {
	t.Helper()
	return oracle.DuckDB(t, "SET enable_progress_bar=false; "+query)
}

// inProgress lists the hidden in-progress files under dir.
func inProgress(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".") {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPartitionedOpenCap feeds rows cycling through 5 partitions, one row
// per batch, to a CommitOnRoll sink capped at 2 open partitions: after
// every batch at most 2 parts are open (in progress), each cap hit
// publishes the least recently written partition's part, and every row
// is published once at the end.
func TestPartitionedOpenCap(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	keys := partKeys[:5]
	var rows []partRow
	for i := range 40 {
		rows = append(rows, partRow{id: int64(i), k: &keys[i%len(keys)], v: "x"})
	}
	spec, err := sinks.NewFile(sinks.FileOptions{Dir: dir, Format: sinks.JSONL, PartitionBy: []string{"k"},
		MaxOpenPartitions: 2, Commit: sinks.CommitOnRoll, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := openSink(t, spec.Options(), mem, partSchema, 0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range rows {
		b := partBatch(mem, []partRow{row})
		r.process([]arrow.RecordBatch{b})
		b.Release()
		if open := inProgress(t, dir); len(open) > 2 {
			t.Fatalf("after row %d: %d parts open, cap 2: %v", i, len(open), open)
		}
	}
	r.finish()
	got := publishedIDsTree(t, dir)
	if len(got) != len(rows) {
		t.Fatalf("published %d rows, want %d", len(got), len(rows))
	}
	// Each row opens a part (its partition's was closed two rows ago).
	parts := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".jsonl") {
			parts++
		}
		return nil
	})
	if parts != len(rows) {
		t.Fatalf("%d parts, want %d (one per row: the cap closes each part after its row)", parts, len(rows))
	}
}

// TestPartitionedRollsQuietPartitions: with CommitOnRoll and a roll
// interval, a partition that gets no more rows has its part rolled and
// published by the next batch of any partition once due (fake clock).
func TestPartitionedRollsQuietPartitions(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	now := time.Unix(1e9, 0)
	a, b := "a", "b"
	spec, err := sinks.NewFile(sinks.FileOptions{Dir: dir, Format: sinks.JSONL, PartitionBy: []string{"k"},
		Commit: sinks.CommitOnRoll, RollInterval: time.Minute, Clock: func() time.Time { return now }, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := openSink(t, spec.Options(), mem, partSchema, 0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	feed := func(id int64, k *string) {
		bt := partBatch(mem, []partRow{{id: id, k: k}})
		r.process([]arrow.RecordBatch{bt})
		bt.Release()
	}
	feed(0, &a)
	feed(1, &b)
	now = now.Add(2 * time.Minute)
	feed(2, &a) // due: a's part takes row 2 and rolls; b's, quiet, rolls too
	if open := inProgress(t, dir); len(open) != 0 {
		t.Fatalf("parts still open after the roll interval: %v", open)
	}
	if got := publishedIDsTree(t, dir); len(got) != 3 {
		t.Fatalf("published %v, want the 3 rows", got)
	}
	r.finish()
}

// publishedIDsTree reads the ids of every published JSONL part under dir.
func publishedIDsTree(t *testing.T, dir string) []int64 {
	t.Helper()
	var ids []int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") || !strings.HasSuffix(p, ".jsonl") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var row struct{ ID int64 }
			if err := json.Unmarshal([]byte(line), &row); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			ids = append(ids, row.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestPartitionedDictionary partitions by a dictionary-encoded string
// column (a pandas categorical), with NULLs, a NULL dictionary entry and
// two entries of one string: DuckDB reads every row back in its
// partition, and the two equal entries share a directory.
func TestPartitionedDictionary(t *testing.T) {
	oracle.Python(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dictType := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "c", Type: dictType, Nullable: true}}, nil)
	db := array.NewStringBuilder(mem)
	db.AppendValues([]string{"x/y", "", "z", "x/y"}, nil)
	db.AppendNull()
	dict := db.NewArray()
	db.Release()
	defer dict.Release()
	ib := array.NewInt8Builder(mem)
	idb := array.NewInt64Builder(mem)
	var want [][]string
	for i := range 200 {
		idb.Append(int64(i))
		v := "NULL"
		if j := i % 6; j == 5 {
			ib.AppendNull()
		} else {
			ib.Append(int8(j % 5))
			if j < 4 {
				v = []string{"x/y", "", "z", "x/y"}[j]
			}
		}
		want = append(want, []string{fmt.Sprint(i), v})
	}
	idx := ib.NewArray()
	ids := idb.NewArray()
	ib.Release()
	idb.Release()
	dcol := array.NewDictionaryArray(dictType, idx, dict)
	idx.Release()
	b := array.NewRecordBatch(schema, []arrow.Array{ids, dcol}, 200)
	ids.Release()
	dcol.Release()
	defer b.Release()
	out := t.TempDir()
	spec, err := sinks.NewFile(sinks.FileOptions{Dir: out, PartitionBy: []string{"c"}, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Schema([]*arrow.Schema{schema}); err != nil {
		t.Fatal(err)
	}
	if err := runSubtask(t, spec, task(mem, schema, 0, 1), []arrow.RecordBatch{b}, true); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, out); !slices.Equal(got, []string{"c=", "c=__HIVE_DEFAULT_PARTITION__", "c=x%2Fy", "c=z"}) {
		t.Fatalf("directories %q", got)
	}
	got := duck(t, fmt.Sprintf("SELECT id, c FROM read_parquet('%s/*/*.parquet', hive_partitioning=true) ORDER BY id", out)).Strings()
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("DuckDB reads\n%q\nwant\n%q", got, want)
	}
}

// TestPartitionedOverwrite: a second run with Overwrite leaves only its
// own parts, in every partition, also those it did not write.
func TestPartitionedOverwrite(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	a, b := "a", "b"
	var first, second []partRow
	for i := range 300 {
		k := &a
		if i%2 == 1 {
			k = &b
		}
		first = append(first, partRow{id: int64(i), k: k, v: strings.Repeat("x", 50)})
	}
	for i := range 20 {
		second = append(second, partRow{id: int64(1000 + i), k: &a, v: "y"})
	}
	opts := sinks.FileOptions{Dir: dir, Format: sinks.JSONL, PartitionBy: []string{"k"}, PartSize: 2 << 10, NoSync: true}
	writePartitioned(t, mem, opts, first, 2, 1)
	opts.Overwrite = true
	writePartitioned(t, mem, opts, second, 2, 2)
	got := publishedIDsTree(t, dir)
	slices.Sort(got)
	if want := partIDs(second); !slices.Equal(got, want) {
		t.Fatalf("after the overwrite: %v, want %v", got, want)
	}
}

func partIDs(rows []partRow) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.id
	}
	return out
}
