package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/examples"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/ml"
)

// TestExamplesRunAsShipped runs every job file of examples/ as a user of a
// fresh clone would, from an empty working directory, with the commands
// its header comment gives: the bounded ones over data from 'riffle gen',
// the continuous ones against the embedded broker (--embedded-kafka),
// stopped with ^C once /status shows they read everything they were sent.
// Each output is checked against DuckDB over the generated input. A new
// example without a case here fails the test.
func TestExamplesRunAsShipped(t *testing.T) {
	oracle.Python(t)
	exdir, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	ex := func(name string) string { return filepath.Join(exdir, name) }
	cases := map[string]func(t *testing.T){
		"item-stats.yaml": func(t *testing.T) {
			t.Chdir(t.TempDir())
			genFile(t, "riffle-quickstart/events.parquet", "--rows", "20000", "--seed", "3")
			if code, _, errOut := runCLI(t, "backfill", "--progress", "never", ex("item-stats.yaml")); code != exitOK {
				t.Fatalf("backfill: exit %d\n%s", code, errOut)
			}
			checkItemStats(t, "riffle-quickstart/events.parquet", "riffle-quickstart/item-stats")
		},
		"live-item-stats.yaml": func(t *testing.T) {
			t.Chdir(t.TempDir())
			genFile(t, "events.parquet", "--rows", "8000", "--seed", "4")
			admin := freeAddr(t)
			// --output elsewhere: nothing but the job creates the
			// dead-letter file's directory.
			done, stderr := startCLI(t, "run", "--embedded-kafka", "events:3", "--admin-addr", admin, "--log-format", "json",
				"--progress", "never", "--output", "live-out", ex("live-item-stats.yaml"))
			brokers := embeddedBrokers(t, done, stderr)
			produceInto(t, brokers, "events.parquet")
			// One bad message, for the dead-letter file (its directory
			// does not exist yet).
			kafkatest.Produce(t, brokers, "events", []kafkago.Message{{Value: []byte(`{"user_id": "x"}`)}})
			waitFor(t, "the job to read every event", done, stderr, func() bool {
				st, err := getStatus(admin)
				return err == nil && st.RowsIn == 8000 && st.DeadLetters == 1
			})
			stopRun(t, done, stderr)
			checkItemStats(t, "events.parquet", "live-out")
			if data, err := os.ReadFile("riffle-quickstart/dead-letters.jsonl"); err != nil || !strings.Contains(string(data), `\"x\"`) {
				t.Fatalf("dead-letter file: %v, %q", err, data)
			}
		},
		// The pair hands over from files to a stream in one state; run
		// them together, as their header comments say.
		"item-hours-backfill.yaml": func(t *testing.T) {
			t.Chdir(t.TempDir())
			genFile(t, "data/events.parquet", "--rows", "30000", "--seed", "5", "--items", "100", "--start", "2025-01-01T00:00:00Z", "--span", "168h")
			code, stdout, errOut := runCLI(t, "backfill", "--progress", "never", "--savepoint", "sp/handover", ex("item-hours-backfill.yaml"))
			if code != exitOK || !strings.Contains(stdout, "sp/handover") {
				t.Fatalf("backfill --savepoint: exit %d, %q\n%s", code, stdout, errOut)
			}
			backfilled := countRows(t, "out/item-hours")
			if backfilled == 0 {
				t.Fatalf("the backfill published nothing\n%s", errOut)
			}
			genFile(t, "stream.parquet", "--rows", "6000", "--seed", "6", "--items", "100", "--start", "2025-01-08T00:00:00Z", "--span", "12h")
			admin := freeAddr(t)
			done, stderr := startCLI(t, "run", "--embedded-kafka", "events:3", "--checkpoint-dir", "ck/item-hours", "--from", "sp/handover",
				"--admin-addr", admin, "--log-format", "json", "--progress", "never", ex("item-hours-live.yaml"))
			produceInto(t, embeddedBrokers(t, done, stderr), "stream.parquet")
			// Hours of the stream fired: the watermark passed 01:00.
			hour := time.Date(2025, 1, 8, 1, 0, 0, 0, time.UTC).UnixMilli()
			waitFor(t, "the live job to read every event and fire windows", done, stderr, func() bool {
				st, err := getStatus(admin)
				return err == nil && st.RowsIn == 6000 && st.WindowsFired > 0 && st.WatermarkMS != nil && *st.WatermarkMS >= hour
			})
			stopRun(t, done, stderr)
			// Every published window equals DuckDB's over both inputs:
			// the hour of the handover was counted from both halves.
			q := `CREATE VIEW got AS SELECT item_id, epoch_ms(window_start) AS ws, views, round(weight, 6) AS w FROM read_parquet('out/item-hours/*.parquet');
CREATE VIEW want AS SELECT item_id, epoch_ms(event_time) // 3600000 * 3600000 AS ws, count(*) AS views, round(sum(weight), 6) AS w
  FROM read_parquet(['data/events.parquet', 'stream.parquet']) GROUP BY ALL;
SELECT (SELECT count(*) FROM got), (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want)),
  (SELECT count(*) FROM got WHERE ws >= epoch_ms(TIMESTAMPTZ '2025-01-08 00:00:00+00'))`
			res := oracle.DuckDB(t, q).Strings()[0]
			if res[1] != "0" || atoi(t, res[0]) <= backfilled || res[2] == "0" {
				t.Fatalf("windows published, not equal to DuckDB's, from the stream = %v (backfill published %d)", res, backfilled)
			}
		},
		"item-hours-live.yaml": nil, // run by item-hours-backfill.yaml
		// The recommender's pair: one model learned from the files, then
		// from the topic; run together, as their header comments say (the
		// checkpoints made frequent so versions come out within seconds).
		"recs-backfill.yaml": func(t *testing.T) {
			t.Chdir(t.TempDir())
			genFile(t, "data/events.parquet", "--rows", "20000", "--seed", "7", "--users", "400", "--items", "300", "--latent-factors", "8",
				"--start", "2025-01-01T00:00:00Z", "--span", "168h")
			code, stdout, errOut := runCLI(t, "backfill", "--progress", "never", "--savepoint", "sp/recs", ex("recs-backfill.yaml"))
			if code != exitOK || !strings.Contains(stdout, "sp/recs") {
				t.Fatalf("backfill --savepoint: exit %d, %q\n%s", code, stdout, errOut)
			}
			genFile(t, "stream.parquet", "--rows", "3000", "--seed", "8", "--users", "400", "--items", "300", "--latent-factors", "8",
				"--start", "2025-01-08T00:00:00Z", "--span", "12h")
			admin := freeAddr(t)
			done, stderr := startCLI(t, "run", "--embedded-kafka", "events:3", "--checkpoint-dir", "ck/recs", "--checkpoint-interval", "200ms",
				"--from", "sp/recs", "--admin-addr", admin, "--log-format", "json", "--progress", "never", ex("recs-live.yaml"))
			produceInto(t, embeddedBrokers(t, done, stderr), "stream.parquet")
			waitFor(t, "a version learned from every event", done, stderr, func() bool {
				v, err := ml.ReadLatest(nil, "out/recs")
				if err != nil || v == 0 {
					return false
				}
				m, err := ml.ReadManifest(nil, "out/recs", v)
				return err == nil && m.InputRows == 23000
			})
			user := oracle.DuckDBStrings(t, "SELECT min(user_id) FROM read_parquet('stream.parquet')")[0][0]
			checkLiveServing(t, admin, user)
			stopRun(t, done, stderr)
			code, stdout, errOut = runCLI(t, "recommend", "--from", "out/recs", "--user", user)
			if code != exitOK || strings.Count(stdout, "\n") != 11 {
				t.Fatalf("recommend: exit %d\n%s%s", code, stdout, errOut)
			}
		},
		"recs-live.yaml": nil, // run by recs-backfill.yaml
		"recs.yaml": func(t *testing.T) {
			t.Chdir(t.TempDir())
			genFile(t, "riffle-quickstart/events.parquet", "--rows", "20000", "--users", "400", "--items", "300", "--latent-factors", "8", "--seed", "6")
			if code, _, errOut := runCLI(t, "backfill", "--progress", "never", ex("recs.yaml")); code != exitOK {
				t.Fatalf("backfill: exit %d\n%s", code, errOut)
			}
			in, out := "read_parquet('riffle-quickstart/events.parquet')", "read_parquet('riffle-quickstart/recs-out/*.parquet')"
			if rows := oracle.DuckDBStrings(t, fmt.Sprintf(`SELECT (SELECT count(DISTINCT user_id) FROM %[1]s) - (SELECT count(DISTINCT user_id) FROM %[2]s),
  (SELECT count(*) FROM %[2]s s JOIN %[1]s i USING (user_id, item_id)),
  (SELECT count(*) FROM (SELECT user_id FROM %[2]s GROUP BY user_id HAVING count(*) != 10 OR max(rank) != 10))`, in, out)); fmt.Sprint(rows) != "[[0 0 0]]" {
				t.Fatalf("users missing, training items recommended, users without 10 rows: %v", rows)
			}
			user := oracle.DuckDBStrings(t, "SELECT min(user_id) FROM "+in)[0][0]
			code, stdout, errOut := runCLI(t, "recommend", "--from", "riffle-quickstart/recs", "--user", user)
			if code != exitOK || strings.Count(stdout, "\n") != 11 {
				t.Fatalf("recommend: exit %d\n%s%s", code, stdout, errOut)
			}
		},
		"movielens-recs.yaml": func(t *testing.T) {
			shared := sharedBesideRepo(t)
			if shared == "" {
				t.Skip("no shared/data/ml-latest-small/ratings.csv beside the repository or above it")
			}
			// A project root whose parent holds shared/, as the header
			// comment assumes, so the job file runs as is.
			root := filepath.Join(t.TempDir(), "riffle")
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(shared, filepath.Join(root, "..", "shared")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(exdir, filepath.Join(root, "examples")); err != nil {
				t.Fatal(err)
			}
			t.Chdir(root)
			if code, _, errOut := runCLI(t, "backfill", "--progress", "never", "examples/movielens-recs.yaml"); code != exitOK {
				t.Fatalf("backfill: exit %d\n%s", code, errOut)
			}
			top10 := "read_parquet('out/movielens-recs/top10/*.parquet')"
			if cols := oracle.DuckDBStrings(t, "SELECT column_name FROM (DESCRIBE SELECT * FROM "+top10+")"); fmt.Sprint(cols) != "[[user_id] [item_id] [rank] [score]]" {
				t.Fatalf("columns %v, want user_id, item_id, rank, score", cols)
			}
			checkTopK(t, "read_csv('../shared/data/ml-latest-small/ratings.csv')", "userId", "movieId", top10, 10)
			// The export riffle recommend answers from holds the same lists.
			q := `CREATE VIEW s AS SELECT user_id, item_id, rank, score FROM read_parquet('out/movielens-recs/top10/*.parquet');
CREATE VIEW x AS SELECT user_id, item_id, rank, score FROM read_parquet('out/movielens-recs/model/v000001/recommendations/*.parquet');
SELECT (SELECT count(*) FROM (SELECT * FROM s EXCEPT ALL SELECT * FROM x)), (SELECT count(*) FROM (SELECT * FROM x EXCEPT ALL SELECT * FROM s))`
			if res := oracle.DuckDBStrings(t, q); fmt.Sprint(res) != "[[0 0]]" {
				t.Fatalf("rows only in the sink's output, only in the export = %v", res)
			}
		},
	}
	entries, err := examples.Jobs.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		run, ok := cases[e.Name()]
		if !ok {
			t.Errorf("examples/%s has no case in TestExamplesRunAsShipped", e.Name())
			continue
		}
		if run != nil {
			t.Run(e.Name(), run)
		}
	}
}

func genFile(t *testing.T, out string, args ...string) {
	t.Helper()
	if code, _, errOut := runCLI(t, append(append([]string{"gen", "--progress", "never"}, args...), out)...); code != exitOK {
		t.Fatalf("gen %s: exit %d\n%s", out, code, errOut)
	}
}

// embeddedBrokers waits for run --embedded-kafka (with --log-format json)
// to log its broker's address, and returns it.
func embeddedBrokers(t *testing.T, done <-chan int, stderr *syncBuffer) string {
	t.Helper()
	var addr string
	waitFor(t, "the embedded broker", done, stderr, func() bool {
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && strings.HasPrefix(fmt.Sprint(m["msg"]), "embedded Kafka-compatible broker started") {
				addr, _ = m["brokers"].(string)
				return addr != ""
			}
		}
		return false
	})
	return addr
}

func produceInto(t *testing.T, brokers, file string) {
	t.Helper()
	if code, _, errOut := runCLI(t, "produce", "--brokers", brokers, "--topic", "events", "--key", "user_id", "--timestamp", "event_time",
		"--progress", "never", file); code != exitOK {
		t.Fatalf("produce: exit %d\n%s", code, errOut)
	}
}

// stopRun stops a running 'riffle run' with ^C and waits for it.
func stopRun(t *testing.T, done <-chan int, stderr *syncBuffer) {
	t.Helper()
	interrupt(t)
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("run: exit %d after ^C\n%s", code, stderr)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("run did not stop after ^C\n%s", stderr)
	}
}

func countRows(t *testing.T, dir string) int {
	t.Helper()
	if fs, _ := filepath.Glob(filepath.Join(dir, "*.parquet")); len(fs) == 0 {
		return 0
	}
	return atoi(t, oracle.DuckDB(t, fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/*.parquet')", dir)).Strings()[0][0])
}

// checkItemStats compares the output of the item-stats examples with
// DuckDB over their input.
func checkItemStats(t *testing.T, input, out string) {
	t.Helper()
	if countRows(t, out) == 0 {
		t.Fatalf("no output in %s", out)
	}
	q := fmt.Sprintf(`CREATE VIEW got AS SELECT item_id, events, round(total_weight, 6) AS tw, last_event FROM read_parquet('%s/*.parquet');
CREATE VIEW want AS SELECT item_id, count(*) AS events, round(sum(weight), 6) AS tw, max(event_time) AS last_event FROM read_parquet('%s')
  WHERE event_type IN ('click', 'cart', 'purchase') AND weight > 0 GROUP BY item_id;
SELECT (SELECT count(*) FROM got), (SELECT count(*) FROM want),
  (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want)),
  (SELECT count(*) FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got))`, out, input)
	res := oracle.DuckDB(t, q).Strings()[0]
	if res[0] != res[1] || res[2] != "0" || res[3] != "0" {
		t.Fatalf("%s: rows got, want, extra, missing = %v", out, res)
	}
}

// sharedBesideRepo returns the shared/ directory holding
// data/ml-latest-small/ratings.csv beside the repository or up to two
// levels above it (a worktree under work/wt/ sees work/shared), or "".
func sharedBesideRepo(t *testing.T) string {
	t.Helper()
	root, err := oracle.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, up := range []string{"..", "../..", "../../.."} {
		dir, err := filepath.Abs(filepath.Join(root, up, "shared"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "data", "ml-latest-small", "ratings.csv")); err == nil {
			return dir
		}
	}
	return ""
}

// checkTopK checks top-K lists (a DuckDB table expression with columns
// user_id, item_id, rank, score) against their interaction input (one
// with user and item columns): every user of the input has k rows ranked
// 1..k with distinct items and scores finite and not increasing by rank;
// every id is one of the input and no item is one the user has.
func checkTopK(t *testing.T, input, user, item, recs string, k int) {
	t.Helper()
	q := fmt.Sprintf(`CREATE VIEW i AS SELECT DISTINCT %[2]s AS user_id, %[3]s AS item_id FROM %[1]s;
CREATE VIEW r AS SELECT user_id, item_id, rank, score FROM %[4]s;
SELECT (SELECT count(DISTINCT user_id) FROM i) - (SELECT count(DISTINCT user_id) FROM r),
  (SELECT count(*) FROM (SELECT user_id FROM r GROUP BY user_id HAVING count(*) != %[5]d OR count(DISTINCT rank) != %[5]d OR min(rank) != 1 OR max(rank) != %[5]d OR count(DISTINCT item_id) != %[5]d)),
  (SELECT count(*) FROM r JOIN i USING (user_id, item_id)),
  (SELECT count(*) FROM r WHERE item_id NOT IN (SELECT item_id FROM i) OR user_id NOT IN (SELECT user_id FROM i)),
  (SELECT count(*) FROM (SELECT score < lead(score) OVER (PARTITION BY user_id ORDER BY rank) AS up FROM r) WHERE up),
  (SELECT count(*) FROM r WHERE NOT isfinite(score))`, input, user, item, recs, k)
	if res := oracle.DuckDBStrings(t, q); fmt.Sprint(res) != "[[0 0 0 0 0 0]]" {
		t.Fatalf("%s: users missing, users without %d rows ranked 1..%[2]d, rated items recommended, unknown ids, scores rising with rank, non-finite scores = %v", recs, k, res)
	}
}
