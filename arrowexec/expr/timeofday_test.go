package expr

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

// todScript writes tod.parquet with pyarrow: times of day in every Arrow
// unit (time32[s], time32[ms], time64[us], time64[ns]), a timestamp and
// strings holding times, all with NULLs.
const todScript = `
import sys, random, datetime
import pyarrow as pa, pyarrow.parquet as pq
rng = random.Random(17)
n = 1200
def us(): return None if rng.random() < 0.15 else rng.randint(0, 86400 * 10**6 - 1)
base = [us() for _ in range(n)]
other = [us() for _ in range(n)]
def strs():
    out = []
    for _ in range(n):
        v = us()
        if v is None:
            out.append(None)
            continue
        s = '%02d:%02d:%02d' % (v // 3600000000, v // 60000000 % 60, v // 1000000 % 60)
        if rng.random() < 0.5:
            s += '.%06d' % (v % 1000000)
        out.append(s)
    return out
pq.write_table(pa.table({
  'id': pa.array(range(n), pa.int64()),
  't_s': pa.array([None if v is None else v // 10**6 for v in base], pa.time32('s')),
  't_ms': pa.array([None if v is None else v // 1000 for v in other], pa.time32('ms')),
  't_us': pa.array(base, pa.time64('us')),
  't_ns': pa.array([None if v is None else v * 1000 + rng.randint(0, 999) for v in other], pa.time64('ns')),
  'ts': pa.array([None if rng.random() < 0.15 else rng.randint(-2 * 10**15, 2 * 10**15) for _ in range(n)], pa.timestamp('us')),
  's': pa.array(strs(), pa.string()),
}), sys.argv[1])
`

// todCases run in riffle and in DuckDB on the same file. DuckDB reads
// time64[ns] as TIME_NS, which it does not compare with TIME: the cases cast
// it to time (microseconds, truncated), as riffle reads it.
var todCases = []string{
	"t_s < t_us", "t_s = t_us", "t_ms >= CAST(t_ns AS time)", "t_us <> t_ms", "CAST(t_ns AS time) > CAST('12:00:00' AS time)",
	"t_s <= CAST('06:30' AS time)",
	"CAST(t_s AS string)", "CAST(t_ms AS string)", "CAST(t_us AS string)", "CAST(CAST(t_ns AS time) AS string)",
	"CAST(CAST(ts AS time) AS string)", "CAST(ts AS time) < t_us", "CAST(CAST(s AS time) AS string)", "CAST(s AS time) = t_us",
	"extract(hour FROM t_us)", "date_part('minute', t_ms)", "date_part('second', CAST(t_ns AS time))", "date_part('millisecond', t_us)",
	"date_part('microsecond', CAST(t_ns AS time))", "extract(epoch FROM t_ms)", "extract(hour FROM CAST(ts AS time))",
	"CAST(greatest(t_s, t_ms) AS string)", "CAST(least(t_us, CAST(t_ns AS time), t_s) AS string)", "CAST(coalesce(t_us, t_ms) AS string)",
	"CAST(CASE WHEN t_s > t_ms THEN t_s ELSE CAST(t_ns AS time) END AS string)",
}

// TestTimeOfDayDuckDB checks comparisons, casts to and from string and
// timestamp, extract and the conditionals over times of day of every unit
// against DuckDB.
func TestTimeOfDayDuckDB(t *testing.T) {
	checkFileCases(t, todScript, todCases)
}

// TestTimeOfDayErrors: what a time of day cannot do is a bind error.
func TestTimeOfDayErrors(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "t", Type: arrow.FixedWidthTypes.Time32s, Nullable: true},
		{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_us, Nullable: true},
	}, nil)
	for _, src := range []string{"extract(year FROM t)", "date_part('dow', t)", "t < ts", "t + 1", "t = 'x'", "CAST(t AS int64)", "date_trunc('hour', t)"} {
		e, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Bind(e, sc); err == nil {
			t.Errorf("%s: bound, want an error", src)
		}
	}
}
