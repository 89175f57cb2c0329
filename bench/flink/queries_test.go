package flink

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/sources/nexmark"
)

// TestFlinkQueriesMatchDuckDB runs the Flink queries (bench/flink, a local
// MiniCluster per query and API) on 200,000 events and checks their
// results against DuckDB running the queries' SQL over riffle's generator's
// events for the same seed, written to Parquet: every field these queries
// read is one the Java generator draws exactly as riffle's does
// (TestJavaGeneratorMatchesRiffle), so the answers must agree. Row counts
// for q3, q4, q6 and q8 (q4 and q6 in DataStream emit one row per closed
// auction that had a bid in its lifetime, Flink SQL's q4 leaves one row per
// category), the rows themselves for q7 (each DataStream row must be one of
// its window's highest bids, one per window).
//
// Heavy (seven JVMs, about a minute of CPU): runs only with RIFFLE_FLINK=1
// and the Flink jars in target/dependency (mvn -f bench/flink/pom.xml
// package dependency:copy-dependencies).
func TestFlinkQueriesMatchDuckDB(t *testing.T) {
	if os.Getenv("RIFFLE_FLINK") != "1" {
		t.Skip("set RIFFLE_FLINK=1 to run the Flink queries")
	}
	deps, _ := filepath.Glob(filepath.Join("target", "dependency", "*.jar"))
	if len(deps) == 0 {
		t.Skip("no Flink jars in target/dependency: mvn -f bench/flink/pom.xml package dependency:copy-dependencies")
	}
	py := oracle.Python(t)
	dir := t.TempDir()
	// Compiled apart from target/classes, which a benchmark may be using.
	srcs, _ := filepath.Glob(filepath.Join("src", "main", "java", "dev", "riffle", "nexmark", "*.java"))
	classes := filepath.Join(dir, "classes")
	cp := filepath.Join("target", "dependency", "*")
	if out, err := exec.Command("javac", append([]string{"-nowarn", "-cp", cp, "-d", classes}, srcs...)...).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	cp = classes + string(os.PathListSeparator) + cp

	const events, seed = 200_000, 1
	views := ""
	for _, tb := range nexmark.Tables {
		path := filepath.Join(dir, tb.String()+".parquet")
		if err := nexmark.WriteParquet(context.Background(), path, nexmark.Options{Table: tb, Events: events, Seed: seed}, nil); err != nil {
			t.Fatal(err)
		}
		views += fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM read_parquet('%s');\n", tb, path)
	}
	duck := func(sql string) [][]string {
		t.Helper()
		script := `import duckdb, sys
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
*stmts, last = [s for s in sys.argv[1].split(';') if s.strip()]
for s in stmts:
    con.execute(s)
for row in con.execute(last).fetchall():
    print(','.join(str(v) for v in row))`
		out, err := exec.Command(py, "-c", script, views+sql).Output()
		if err != nil {
			t.Fatalf("DuckDB %s: %v", sql, err)
		}
		var rows [][]string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			rows = append(rows, strings.Split(l, ","))
		}
		return rows
	}
	count := func(sql string) int64 {
		n, err := strconv.ParseInt(duck("SELECT count(*) FROM (" + sql + ")")[0][0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// flink runs one query and returns its JSON summary and printed rows.
	flink := func(query, api string) (res struct{ Rows, NetRows int64 }, rows []string) {
		t.Helper()
		out, err := exec.Command("java", "-cp", cp, "dev.riffle.nexmark.Main", "--query", query, "--api", api,
			"--events", fmt.Sprint(events), "--seed", fmt.Sprint(seed), "--print", "true").Output()
		if err != nil {
			t.Fatalf("Flink %s %s: %v", query, api, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var r struct {
			Rows    int64 `json:"rows"`
			NetRows int64 `json:"net_rows"`
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
			t.Fatalf("Flink %s %s: %q: %v", query, api, lines[len(lines)-1], err)
		}
		res.Rows, res.NetRows = r.Rows, r.NetRows
		return res, lines[:len(lines)-1]
	}

	closed := `SELECT A.id, A.category FROM auction A JOIN bid B ON A.id = B.auction
WHERE B.date_time BETWEEN A.date_time AND A.expires GROUP BY A.id, A.category`
	checks := []struct {
		query, api string
		want       int64 // rows
		net        bool  // compare the changelog's net rows
	}{
		{"q3", "datastream", count(`SELECT P.name, P.city, P.state, A.id FROM auction A JOIN person P ON A.seller = P.id
WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')`), false},
		{"q4", "datastream", count(closed), false},
		{"q4", "sql", count("SELECT DISTINCT category FROM (" + closed + ")"), true},
		{"q6", "datastream", count(closed), false},
		{"q8", "datastream", count(`SELECT DISTINCT P.id, P.name, epoch_ms(P.date_time) // 10000 FROM person P
JOIN auction A ON P.id = A.seller AND epoch_ms(P.date_time) // 10000 = epoch_ms(A.date_time) // 10000`), false},
	}
	checks = append(checks, checks[0], checks[4])
	checks[5].api, checks[6].api = "sql", "sql"
	for _, c := range checks {
		res, _ := flink(c.query, c.api)
		got := res.Rows
		if c.net {
			got = res.NetRows
		}
		if got != c.want {
			t.Errorf("%s %s: Flink %d rows (net %d), DuckDB %d", c.query, c.api, res.Rows, res.NetRows, c.want)
		}
		t.Logf("%s %s: %d rows (net %d), DuckDB %d", c.query, c.api, res.Rows, res.NetRows, c.want)
	}

	// q7: every window's highest bids in DuckDB; the DataStream version
	// keeps one of them per window.
	top := map[string][]string{} // window -> "auction,bidder,price,date_time" of its highest bids
	for _, r := range duck(`WITH b AS (SELECT *, epoch_ms(date_time) // 10000 AS w FROM bid),
m AS (SELECT w, max(price) AS p FROM b GROUP BY w)
SELECT b.w, b.auction, b.bidder, b.price, epoch_ms(b.date_time) FROM b JOIN m ON b.w = m.w AND b.price = m.p`) {
		top[r[0]] = append(top[r[0]], strings.Join(r[1:], ","))
	}
	_, rows := flink("q7", "datastream")
	seen := map[string]bool{}
	for _, r := range rows {
		f := strings.Split(r, ",")
		ms, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil {
			t.Fatalf("q7 row %q: %v", r, err)
		}
		w := fmt.Sprint(ms / 10000)
		if seen[w] {
			t.Errorf("q7: window %s twice", w)
		}
		seen[w] = true
		if !slices.Contains(top[w], r) {
			t.Errorf("q7: Flink's %q is not among window %s's highest bids %v", r, w, top[w])
		}
	}
	if len(seen) != len(top) {
		t.Errorf("q7: Flink %d windows, DuckDB %d", len(seen), len(top))
	}
}
