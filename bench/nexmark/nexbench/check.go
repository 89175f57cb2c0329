package nexbench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// oracles holds, per query, DuckDB SQL over the view named after the
// query's table (the same events in Parquet) and SQL over the view r (riffle's
// output) that selects the same columns. Check compares the two as
// multisets of rows.
var oracles = map[string]struct{ want, got string }{
	"q0": {
		want: `SELECT auction, bidder, price, date_time, extra FROM bid`,
		got:  `SELECT auction, bidder, price, date_time, extra FROM r`,
	},
	// The exact price·0.908 has at most 3 decimals: rounding both sides
	// to 3 decimals compares riffle's float64 with a tolerance of 0.0005.
	"q1": {
		want: `SELECT auction, bidder, round(CAST(price * 0.908 AS DOUBLE), 3), date_time, extra FROM bid`,
		got:  `SELECT auction, bidder, round(price, 3), date_time, extra FROM r`,
	},
	"q2": {
		want: `SELECT auction, price FROM bid WHERE auction % 123 = 0`,
		got:  `SELECT auction, price FROM r`,
	},
	// Windows of 10 s every 2 s: a bid at t is in the 5 windows starting
	// at floor(t/2s)·2s - k·2s, k = 0..4. Every auction with the most bids
	// of its window (ties kept).
	"q5": {
		want: `WITH w AS (
  SELECT auction, (epoch_ms(date_time) // 2000) * 2000 - k * 2000 AS ws FROM bid, range(5) t(k)),
c AS (SELECT auction, ws, count(*) AS num FROM w GROUP BY auction, ws),
m AS (SELECT ws, max(num) AS maxn FROM c GROUP BY ws)
SELECT c.auction, c.ws, c.num FROM c JOIN m ON c.ws = m.ws AND c.num = m.maxn`,
		got: `SELECT auction, epoch_ms(window_start), num FROM r`,
	},
	// Per tumbling window of 10 s, the bids at the window's highest price.
	"q7": {
		want: `WITH b AS (SELECT *, epoch_ms(date_time) // 10000 AS w FROM bid),
m AS (SELECT w, max(price) AS maxprice FROM b GROUP BY w)
SELECT b.auction, b.bidder, b.price, b.date_time FROM b JOIN m ON b.w = m.w AND b.price = m.maxprice`,
		got: `SELECT auction, bidder, price, date_time FROM r`,
	},
}

// Checked says whether Check knows the query's SQL.
func Checked(query string) bool { _, ok := oracles[query]; return ok }

// Check runs the query from cfg.Source into Parquet files and compares
// them with DuckDB (python: an interpreter with the duckdb module)
// running the query's SQL over the same events written to Parquet. It
// returns the number of rows that agreed.
func Check(ctx context.Context, cfg Config, python string) (int64, error) {
	o, ok := oracles[cfg.Query]
	if !ok {
		return 0, fmt.Errorf("nexbench: no oracle SQL for %s", cfg.Query)
	}
	spec, err := Load(cfg.Query, cfg.Events, cfg.Seed)
	if err != nil {
		return 0, err
	}
	in, err := WriteInput(ctx, cfg)
	if err != nil {
		return 0, err
	}
	out, err := RunToFiles(ctx, cfg)
	if err != nil {
		return 0, err
	}
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	sql := fmt.Sprintf(`SET TimeZone = 'UTC';
CREATE VIEW %s AS SELECT * FROM read_parquet(%s);
CREATE VIEW r AS SELECT * FROM read_parquet(%s);
CREATE TABLE want AS %s;
CREATE TABLE got AS %s;
SELECT (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want)),
       (SELECT count(*) FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got)),
       (SELECT count(*) FROM want), (SELECT count(*) FROM got);`,
		spec.Source.Nexmark.Table, lit(in), lit(out+"/**/*.parquet"), o.want, o.got)
	script := `import duckdb, sys
con = duckdb.connect()
con.execute('SET enable_progress_bar = false')
*stmts, last = [s for s in sys.argv[1].split(';') if s.strip()]
for s in stmts:
    con.execute(s)
print(*con.execute(last).fetchone())`
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, python, "-c", script, sql)
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("nexbench: %s: DuckDB: %v: %s", cfg.Query, err, stderr.Bytes())
	}
	var extra, missing, want, got int64
	if _, err := fmt.Sscan(string(b), &extra, &missing, &want, &got); err != nil {
		return 0, fmt.Errorf("nexbench: %s: DuckDB said %q: %v", cfg.Query, b, err)
	}
	if extra != 0 || missing != 0 {
		return 0, fmt.Errorf("nexbench: %s at %d events: riffle's %d rows differ from DuckDB's %d: %d only in riffle's, %d only in DuckDB's (output in %s)",
			cfg.Query, cfg.Events, got, want, extra, missing, out)
	}
	return got, nil
}
