// Command windows times event-time window aggregates over a generated
// Parquet file (internal/gen) with riffle and DuckDB's equivalent GROUP BY
// over time buckets, side by side in one run with the same thread count,
// and prints a Markdown table.
//
//	go run ./bench/windows --rows 50000000 --threads 2 --runs 3
//
// riffle runs the job as a stream would: the Parquet source reports
// event-time watermarks (its row groups are in event-time order within the
// generator's 5 s disorder), so windows fire and leave state as the input
// advances; DuckDB aggregates the whole file. Both read the same file and
// write their result to Parquet. DuckDB runs from the project's Python
// environment (scripts/python-env.sh) and is timed inside its process.
//
// With --plot DIR it also writes the table to DIR/windows.md and charts
// beside it (PNG, with their numbers as CSV; package internal/chart):
// windows-wall, the median wall seconds of both engines side by side per
// query, windows-per-core, their events per CPU-second, and
// windows-throughput, the rows per second riffle's Parquet scan delivered
// over its last run of each query (sampled every 100 ms).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/bench/internal/benchenv"
	"github.com/riffle-dev/riffle/internal/chart"
	"github.com/riffle-dev/riffle/job"
)

type query struct {
	name   string
	window string
	sql    string
}

var queries = []query{
	{
		name:   "tumbling 10m count/sum by item",
		window: "type: tumbling\n      size: 10m",
		sql: `SELECT item_id, time_bucket(INTERVAL 10 MINUTE, event_time) AS window_start, count(*) AS n, sum(weight) AS total
FROM read_parquet('%s') GROUP BY ALL`,
	},
	{
		name:   "sliding 10m/5m count/sum by item",
		window: "type: sliding\n      size: 10m\n      slide: 5m",
		sql: `SELECT item_id, b - INTERVAL (5 * i) MINUTE AS window_start, count(*) AS n, sum(weight) AS total
FROM (SELECT item_id, weight, time_bucket(INTERVAL 5 MINUTE, event_time) AS b FROM read_parquet('%s')), (VALUES (0), (1)) AS v(i)
GROUP BY ALL`,
	},
}

func main() {
	rows := flag.Int64("rows", 50_000_000, "rows of generated input")
	threads := flag.Int("threads", runtime.GOMAXPROCS(0), "threads for both engines")
	runs := flag.Int("runs", 3, "timed runs per engine and query (median reported)")
	dir := flag.String("dir", "", "cache directory for the input (default .cache/bench in the repo)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of riffle's runs to this file")
	plot := flag.String("plot", "", "also write the table and charts of it (PNG with CSV) into this directory")
	flag.Parse()
	if err := run(*rows, *threads, *runs, *dir, *cpuprofile, *plot); err != nil {
		fmt.Fprintln(os.Stderr, "windows:", err)
		os.Exit(1)
	}
}

func run(rows int64, threads, runs int, dir, cpuprofile, plot string) (err error) {
	env, stop, err := benchenv.Setup(rows, threads, dir, cpuprofile)
	if err != nil {
		return err
	}
	defer stop()
	if err := env.NeedPython(); err != nil {
		return err
	}
	out, err := benchenv.NewOutput(plot, "windows")
	if err != nil {
		return err
	}
	defer out.Close(&err)
	input, dir, python := env.Input, env.Dir, env.Python
	fmt.Fprintf(out, "%s\n\n", env.Header(threads, runs))
	fmt.Fprintln(out, "| query | riffle wall | DuckDB wall | wall ratio | riffle events/s | riffle events/s per core | DuckDB events/s per core | result rows (riffle, DuckDB) |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|")
	engines := func() []chart.BarSeries { return []chart.BarSeries{{Name: "riffle"}, {Name: "DuckDB"}} }
	wall := &chart.Bars{Title: "event-time windows: median wall time", YLabel: "seconds", Series: engines()}
	perCore := &chart.Bars{Title: "event-time windows: events per CPU-second", YLabel: "M events/s per core", Series: engines()}
	tput := &chart.Lines{Title: "riffle: rows out of the Parquet scan over its last run", XLabel: "seconds", YLabel: "M rows/s"}
	for _, q := range queries {
		var rt, dt, rc, dc []time.Duration
		var rrows, drows int64
		for i := 0; i < runs; i++ {
			c0 := benchenv.CPUSelf()
			var curve *chart.Series
			if plot != "" && i == runs-1 {
				curve = &chart.Series{Name: q.name}
			}
			d, n, err := timeRiffle(input, dir, q, threads, curve)
			if err != nil {
				return fmt.Errorf("riffle %s: %w", q.name, err)
			}
			if curve != nil {
				tput.Series = append(tput.Series, *curve)
			}
			rt, rc, rrows = append(rt, d), append(rc, benchenv.CPUSelf()-c0), n
			d, cpu, n, err := timeDuckDB(python, input, dir, q, threads)
			if err != nil {
				return fmt.Errorf("duckdb %s: %w", q.name, err)
			}
			dt, dc, drows = append(dt, d), append(dc, cpu), n
		}
		r, d := benchenv.Median(rt), benchenv.Median(dt)
		fmt.Fprintf(out, "| %s | %.2f s | %.2f s | %.2f× | %.2fM | %.2fM | %.2fM | %d, %d |\n", q.name, r.Seconds(), d.Seconds(), r.Seconds()/d.Seconds(),
			float64(rows)/r.Seconds()/1e6, float64(rows)/benchenv.Median(rc).Seconds()/1e6, float64(rows)/benchenv.Median(dc).Seconds()/1e6, rrows, drows)
		wall.Groups, perCore.Groups = append(wall.Groups, q.name), append(perCore.Groups, q.name)
		wall.Series[0].Values = append(wall.Series[0].Values, r.Seconds())
		wall.Series[1].Values = append(wall.Series[1].Values, d.Seconds())
		perCore.Series[0].Values = append(perCore.Series[0].Values, float64(rows)/benchenv.Median(rc).Seconds()/1e6)
		perCore.Series[1].Values = append(perCore.Series[1].Values, float64(rows)/benchenv.Median(dc).Seconds()/1e6)
	}
	fmt.Fprintln(out, "\nper core: rows divided by the CPU time (user+system) the engine spent, so other load on a shared machine counts less.")
	if err := out.Plot(wall, "windows-wall"); err != nil {
		return err
	}
	if err := out.Plot(perCore, "windows-per-core"); err != nil {
		return err
	}
	return out.Plot(tput, "windows-throughput")
}

// timeRiffle runs q with riffle and returns its wall time and result rows;
// with curve set it samples the source's rows into it (M rows/s over time).
func timeRiffle(input, dir string, q query, threads int, curve *chart.Series) (time.Duration, int64, error) {
	out := filepath.Join(dir, "out-riffle-windows")
	os.RemoveAll(out)
	yml := fmt.Sprintf(`name: bench
source:
  parquet: {path: %s}
  watermark: {column: event_time, max_out_of_orderness: 5s}
steps:
  - window:
      %s
      key: [item_id]
      time: event_time
      aggs: ["count(*) AS n", "sum(weight) AS total"]
sink:
  file: {path: %s}
`, input, q.window, out)
	start := time.Now()
	spec, err := job.Parse("bench.yaml", []byte(yml))
	if err != nil {
		return 0, 0, err
	}
	plan, err := spec.Plan(job.Options{Parallelism: threads})
	if err != nil {
		return 0, 0, err
	}
	j, err := plan.Graph.Compile(arrowexec.RunOptions{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, 0, err
	}
	if err := benchenv.Run(j, plan.SourceNode, curve); err != nil {
		return 0, 0, err
	}
	if _, err := plan.Commit(); err != nil {
		return 0, 0, err
	}
	el := time.Since(start)
	var n int64
	for _, m := range j.Metrics(plan.SinkNode) {
		n += m.RowsIn.Load()
	}
	return el, n, nil
}

func timeDuckDB(python, input, dir string, q query, threads int) (time.Duration, time.Duration, int64, error) {
	out := filepath.Join(dir, "out-duckdb-windows.parquet")
	os.Remove(out)
	script := fmt.Sprintf(`
import duckdb, time
c = duckdb.connect()
c.execute("SET threads=%d")
c.execute("SET enable_progress_bar=false")
t = time.perf_counter(); p = time.process_time()
c.execute("""COPY (%s) TO '%s' (FORMAT parquet)""")
w, u = time.perf_counter() - t, time.process_time() - p
n = c.execute("SELECT count(*) FROM read_parquet('%s')").fetchone()[0]
print(w, u, n)
`, threads, fmt.Sprintf(q.sql, input), out, out)
	cmd := exec.Command(python, "-c", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 0, 0, 0, fmt.Errorf("unexpected output %q", b)
	}
	wall, err1 := strconv.ParseFloat(f[0], 64)
	cpu, err2 := strconv.ParseFloat(f[1], 64)
	n, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, fmt.Errorf("unexpected output %q", b)
	}
	return time.Duration(wall * float64(time.Second)), time.Duration(cpu * float64(time.Second)), n, nil
}
