# DuckDB's side of BenchmarkSort (arrowexec/ops): the same 1Mi generated rows
# (riffle gen --rows 1048576 --seed 1 FILE), loaded into memory, sorted on one
# thread into a table; median of 3 runs per order. Usage:
#   .venv/bin/python bench/sort/duckdb_sort.py FILE
import sys
import time

import duckdb

con = duckdb.connect()
con.execute("SET threads=1")
con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{sys.argv[1]}')")
orders = {
    "int64": "user_id",
    "float-desc,int64": "weight DESC, item_id",
    "string,timestamp": "event_type, event_time DESC",
    "top100/float-desc,int64": "weight DESC, item_id LIMIT 100",
}
for name, order in orders.items():
    ts = []
    for _ in range(3):
        t0 = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TABLE s AS SELECT * FROM t ORDER BY {order}")
        ts.append(time.perf_counter() - t0)
    print(f"{name}: median {sorted(ts)[1] * 1000:.1f} ms")
