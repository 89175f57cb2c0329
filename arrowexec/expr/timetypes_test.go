package expr

import "testing"

// timeScript writes times.parquet with pyarrow: timestamps in every unit,
// with and without zones, date32, date64, all with NULLs.
const timeScript = `
import sys, random, datetime
import pyarrow as pa, pyarrow.parquet as pq
rng = random.Random(13)
n = 1500
base = 1_700_000_000
def ts(): return None if rng.random() < 0.15 else base + rng.randint(-10**8, 10**8)
secs = [ts() for _ in range(n)]
def arr(unit, tz=None):
    mul = {'s': 1, 'ms': 1000, 'us': 10**6, 'ns': 10**9}[unit]
    return pa.array([None if s is None else s * mul + rng.randint(0, mul - 1) for s in secs], pa.timestamp(unit, tz))
days = [None if rng.random() < 0.15 else rng.randint(-20000, 30000) for _ in range(n)]
pq.write_table(pa.table({
  'id': pa.array(range(n), pa.int64()),
  'ts_s': arr('s', 'America/New_York'),
  'ts_ms': arr('ms'),
  'ts_us': arr('us', 'UTC'),
  'ts_ns': arr('ns', 'Asia/Kolkata'),
  'd32': pa.array(days, pa.date32()),
  'd64': pa.array([None if d is None else d * 86400000 for d in days], pa.date64()),
}), sys.argv[1])
`

// timeCases run in riffle and in DuckDB (TimeZone UTC) on the same file.
var timeCases = []string{
	"ts_s > TIMESTAMP '2023-11-14 22:13:20'", "ts_ms <= TIMESTAMP '2023-11-14 22:13:20'",
	"ts_us = ts_ms", "ts_ns < ts_us", "ts_s >= ts_ns",
	"epoch_ms(date_trunc('day', ts_ns))", "epoch_ms(date_trunc('hour', ts_s))", "epoch_ms(date_trunc('month', ts_us))",
	"extract(year FROM ts_ms)", "extract(dow FROM ts_us)", "date_part('minute', ts_ns)",
	"d32 = d64", "d32 < DATE '2000-01-01'", "extract(year FROM d64)", "extract(doy FROM d32)",
	"epoch_ms(CAST(d32 AS timestamp))", "CAST(ts_ns AS date) = d32",
}

// TestTimeTypesDuckDB checks comparisons, date_trunc, extract and casts over
// timestamps of every unit and zone and date32/date64 against DuckDB.
func TestTimeTypesDuckDB(t *testing.T) {
	checkFileCases(t, timeScript, timeCases)
}
