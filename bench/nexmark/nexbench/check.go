package nexbench

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
)

// oracles holds, per query, DuckDB SQL over the view named after the
// query's tables (person, auction, bid: the same events in Parquet) and
// SQL over the view r (riffle's output) that selects the same columns.
// Check compares the two as multisets of rows; with tol set, the column
// tol is a float compared with a relative tolerance of floatTol and the
// columns key must be a key (unique) of both.
type oracleSQL struct {
	want, got string
	tol       string
	key       []string
}

var oracles = map[string]oracleSQL{
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
	// Category-10 auctions of sellers in OR, ID or CA (Flink's q3).
	"q3": {
		want: `SELECT p.name, p.city, p.state, a.id FROM auction a JOIN person p ON a.seller = p.id
WHERE a.category = 10 AND p.state IN ('OR', 'ID', 'CA')`,
		got: `SELECT name, city, state, id FROM r`,
	},
	// The closing price of an auction is its highest bid between its
	// date_time and expires; their average per category.
	"q4": {
		want: `SELECT category, avg(final) AS avg_final FROM (
  SELECT a.id, a.category, max(b.price) AS final FROM auction a JOIN bid b
  ON a.id = b.auction AND b.date_time BETWEEN a.date_time AND a.expires GROUP BY a.id, a.category)
GROUP BY category`,
		got: `SELECT category, avg_final FROM r`,
		tol: "avg_final", key: []string{"category"},
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
	// Per closed auction (q4's closing prices), the average closing price
	// of its seller's last 10 closed auctions ordered by expires, id.
	"q6": {
		want: `WITH c AS (
  SELECT a.id, a.seller, a.expires, max(b.price) AS final FROM auction a JOIN bid b
  ON a.id = b.auction AND b.date_time BETWEEN a.date_time AND a.expires GROUP BY a.id, a.seller, a.expires)
SELECT seller, id, avg(final) OVER (PARTITION BY seller ORDER BY expires, id ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) AS avg_price FROM c`,
		got: `SELECT seller, id, avg_price FROM r`,
		tol: "avg_price", key: []string{"seller", "id"},
	},
	// Per tumbling window of 10 s, the bids at the window's highest price.
	"q7": {
		want: `WITH b AS (SELECT *, epoch_ms(date_time) // 10000 AS w FROM bid),
m AS (SELECT w, max(price) AS maxprice FROM b GROUP BY w)
SELECT b.auction, b.bidder, b.price, b.date_time FROM b JOIN m ON b.w = m.w AND b.price = m.maxprice`,
		got: `SELECT auction, bidder, price, date_time FROM r`,
	},
	// The persons with an auction in the tumbling 10 s window they
	// registered in (Flink's q8: both sides grouped per window, joined).
	"q8": {
		want: `WITH p AS (SELECT id, name, epoch_ms(date_time) // 10000 AS w FROM person),
a AS (SELECT DISTINCT seller, epoch_ms(date_time) // 10000 AS w FROM auction)
SELECT p.id, p.name, p.w * 10000 AS starttime FROM p JOIN a ON p.id = a.seller AND p.w = a.w`,
		got: `SELECT id, name, epoch_ms(starttime) FROM r`,
	},
}

// floatTol is the relative tolerance of float results (an average
// summed in another order differs in its last bits).
const floatTol = 1e-9

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
	in, err := WriteInputs(ctx, cfg)
	if err != nil {
		return 0, err
	}
	out, err := RunToFiles(ctx, cfg)
	if err != nil {
		return 0, err
	}
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	var views strings.Builder
	for _, t := range slices.Sorted(maps.Keys(in)) {
		fmt.Fprintf(&views, "CREATE VIEW %s AS SELECT * FROM read_parquet(%s);\n", t, lit(in[t]))
	}
	cmp := `SELECT (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want)),
       (SELECT count(*) FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got)),`
	if o.tol != "" {
		// Rows of one side with no row of the other with the same key and
		// a value within the tolerance.
		var same strings.Builder
		for _, k := range o.key {
			fmt.Fprintf(&same, "x.%[1]s IS NOT DISTINCT FROM y.%[1]s AND ", k)
		}
		miss := func(a, b string) string {
			return fmt.Sprintf(`(SELECT count(*) FROM %[1]s x WHERE NOT EXISTS (SELECT 1 FROM %[2]s y WHERE
  %[3]sabs(x.%[4]s - y.%[4]s) <= %[5]g * greatest(abs(y.%[4]s), 1)))`, a, b, same.String(), o.tol, floatTol)
		}
		cmp = "SELECT " + miss("got", "want") + ",\n       " + miss("want", "got") + ","
	}
	sql := fmt.Sprintf(`SET TimeZone = 'UTC';
%sCREATE VIEW r AS SELECT * FROM read_parquet(%s);
CREATE TABLE want AS %s;
CREATE TABLE got AS %s;
%s
       (SELECT count(*) FROM want), (SELECT count(*) FROM got);`,
		views.String(), lit(out+"/**/*.parquet"), o.want, o.got, cmp)
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
