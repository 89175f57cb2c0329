"""Reads a JSON Lines file with pyarrow and with DuckDB and checks every
cell against the expected cells written by the Go test (texttest.Expected).
Prints one line per mismatch and exits 1 if there is any."""
import base64
import datetime as dt
import json
import math
import sys
from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pyarrow.json as pj

path, expected_path = sys.argv[1], sys.argv[2]
with open(expected_path) as f:
    expected = json.load(f)

EPOCH = dt.datetime(1970, 1, 1)


def nanos_of(got):
    """Nanoseconds since the epoch of a timestamp as a reader returns it
    (datetime, pandas Timestamp or ISO text), and whether it carries a zone."""
    if isinstance(got, str):
        ts = pd.Timestamp(got)
        return ts.value, ts.tzinfo is not None
    if isinstance(got, pd.Timestamp):
        return got.value, got.tzinfo is not None
    if isinstance(got, dt.datetime):
        zoned = got.tzinfo is not None
        naive = got.astimezone(dt.timezone.utc).replace(tzinfo=None) if zoned else got
        d = naive - EPOCH
        return (d.days * 86400 + d.seconds) * 10**9 + d.microseconds * 1000, zoned
    raise TypeError(f"not a timestamp: {got!r}")


def check(cell, got, where, micros):
    t = cell["t"]
    if t == "null":
        return got is None, "null"
    if got is None:
        return False, cell
    if t == "int":
        want = int(cell["v"])
        if isinstance(got, float):  # beyond int64: read as a double
            return got == float(want), want
        return isinstance(got, int) and not isinstance(got, bool) and got == want, want
    if t == "float":
        want = float.fromhex(cell["v"])
        if cell.get("bits") == 32 and isinstance(got, float):
            # the float32's shortest text, read as a double, rounds back to it
            return np.float32(got) == np.float32(want), want
        return isinstance(got, float) and got == want, want
    if t == "bool":
        return got is cell["v"], cell["v"]
    if t == "str":
        return got == cell["v"], cell["v"]
    if t == "bin":
        return got == cell["v"] or got == base64.b64decode(cell["v"]), cell["v"]
    if t == "date":
        if isinstance(got, dt.datetime):
            got = got.date()
        if isinstance(got, dt.date):
            got = got.isoformat()
        return got == cell["v"], cell["v"]
    if t == "dec":
        if isinstance(got, Decimal):
            return got == Decimal(cell["v"]), cell["v"]
        return float(got) == float(cell["v"]), cell["v"]
    if t == "ts":
        want = int(cell["v"])
        n, zoned = nanos_of(got)
        if micros or not isinstance(got, str) and not isinstance(got, pd.Timestamp):
            # DuckDB and datetime hold microseconds
            want = want // 1000 * 1000
            n = n // 1000 * 1000
        return n == want and (zoned == cell["zoned"] or not isinstance(got, str)), (want, cell["zoned"])
    if t == "list":
        if not isinstance(got, list) or len(got) != len(cell["v"]):
            return False, cell["v"]
        for i, (c, g) in enumerate(zip(cell["v"], got)):
            ok, w = check(c, g, f"{where}[{i}]", micros)
            if not ok:
                return False, cell["v"]
        return True, None
    if t == "struct":
        if not isinstance(got, dict):
            return False, cell["v"]
        for k, c in cell["v"].items():
            ok, w = check(c, got.get(k), f"{where}.{k}", micros)
            if not ok:
                return False, cell["v"]
        return True, None
    raise ValueError(f"unknown kind {t}")


bad = 0
readers = {"pyarrow": (pj.read_json(path).to_pylist(), False)}
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
rel = con.sql(f"SELECT * FROM read_json_auto('{path}', format='newline_delimited')")
cols = rel.columns
readers["duckdb"] = ([dict(zip(cols, r)) for r in rel.fetchall()], True)

for name, (rows, micros) in readers.items():
    if len(rows) != len(expected):
        print(f"{name}: {len(rows)} rows, want {len(expected)}")
        bad += 1
        continue
    for r, (want_row, got_row) in enumerate(zip(expected, rows)):
        if set(want_row) != set(got_row):
            print(f"{name} row {r}: columns {sorted(got_row)}, want {sorted(want_row)}")
            bad += 1
            continue
        for col, cell in want_row.items():
            ok, w = check(cell, got_row[col], f"{col}", micros)
            if not ok:
                print(f"{name} row {r} column {col}: got {got_row[col]!r}, want {w!r}")
                bad += 1
sys.exit(1 if bad else 0)
