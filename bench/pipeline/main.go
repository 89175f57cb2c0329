// Command pipeline times a scan + filter + group-by over a generated Parquet
// file with riffle and with DuckDB, side by side in one run, with the same
// thread count, and prints a Markdown table of the results.
//
//	go run ./bench/pipeline --rows 50000000 --threads 2 --runs 3
//
// DuckDB runs from the project's Python environment (scripts/python-env.sh).
// Both engines read the same file and write their result to Parquet; DuckDB
// is timed inside its process (interpreter start-up excluded), riffle from
// planning to the last file published.
//
// With --set etl it times the ETL query set instead (etl.go): ten queries
// over the function library, each the same rows in both engines:
//
//	go run ./bench/pipeline --set etl --rows 20000000 --threads 2 --runs 3
//
// With --scrape, it instead measures what Prometheus scraping costs riffle:
// the same queries in blocks of ten back to back, blocks alternately
// without and with a scraper that GETs /metrics every second across the
// block (the job served as `riffle run --metrics-addr` serves it), and the
// CPU one scrape takes:
//
//	go run ./bench/pipeline --scrape --rows 20000000 --threads 2 --runs 6
//
// With --plot DIR it also writes the table to DIR/pipeline.md and charts
// beside it (PNG, with their numbers as CSV; package internal/chart):
// pipeline-wall and pipeline-cpu, the median seconds of both engines side
// by side per query, and pipeline-throughput, the rows per second riffle's
// Parquet scan delivered over its last run of each query (sampled every
// 100 ms from the source's row counter; a filter pushed into the scan leaves
// out the rows it drops).
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
	name  string
	steps string
	sql   string
}

var queries = []query{
	{
		name: "filter+groupby(item)",
		steps: `
  - filter: "event_type <> 'view' AND weight > 1"
  - aggregate:
      group_by: [item_id]
      aggs: ["count(*) AS n", "sum(weight) AS total", "avg(weight) AS mean"]`,
		sql: `SELECT item_id, count(*) AS n, sum(weight) AS total, avg(weight) AS mean FROM read_parquet('%s')
WHERE event_type <> 'view' AND weight > 1 GROUP BY item_id`,
	},
	{
		name: "groupby(user) count/sum",
		steps: `
  - aggregate:
      group_by: [user_id]
      aggs: ["count(*) AS n", "sum(weight) AS total"]`,
		sql: `SELECT user_id, count(*) AS n, sum(weight) AS total FROM read_parquet('%s') GROUP BY user_id`,
	},
}

func main() {
	rows := flag.Int64("rows", 50_000_000, "rows of generated input")
	threads := flag.Int("threads", runtime.GOMAXPROCS(0), "threads for both engines")
	runs := flag.Int("runs", 3, "timed runs per engine and query (median reported)")
	dir := flag.String("dir", "", "cache directory for the input (default .cache/bench in the repo)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of riffle's runs to this file")
	scrape := flag.Bool("scrape", false, "measure the cost of a 1 s Prometheus scraper instead of comparing with DuckDB")
	placebo := flag.Bool("scrape-placebo", false, "with --scrape: the scraper ticks but does not scrape (an A/A check of the measurement's noise)")
	plot := flag.String("plot", "", "also write the table and charts of it (PNG with CSV) into this directory")
	set := flag.String("set", "pipeline", "query set: pipeline (scan, filter, group-by) or etl (ten queries over the function library)")
	flag.Parse()
	qs, ok := querySets[*set]
	if !ok {
		fmt.Fprintf(os.Stderr, "pipeline: --set %q: want pipeline or etl\n", *set)
		os.Exit(2)
	}
	if *scrape {
		if err := runScrape(*rows, *threads, *runs, *dir, *placebo); err != nil {
			fmt.Fprintln(os.Stderr, "pipeline:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*set, qs, *rows, *threads, *runs, *dir, *cpuprofile, *plot); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

// querySets are the --set choices.
var querySets = map[string][]query{"pipeline": queries, "etl": etlQueries}

func run(set string, queries []query, rows int64, threads, runs int, dir, cpuprofile, plot string) (err error) {
	env, stop, err := benchenv.Setup(rows, threads, dir, cpuprofile)
	if err != nil {
		return err
	}
	defer stop()
	if err := env.NeedPython(); err != nil {
		return err
	}
	out, err := benchenv.NewOutput(plot, set)
	if err != nil {
		return err
	}
	defer out.Close(&err)
	input, dir, python := env.Input, env.Dir, env.Python
	fmt.Fprintf(out, "%s\n\n", env.Header(threads, runs))
	fmt.Fprintln(out, "| query | riffle wall | DuckDB wall | wall ratio | riffle CPU | DuckDB CPU | CPU ratio | riffle rows/s |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|")
	wall := &chart.Bars{Title: "scan + filter + group-by: median wall time", YLabel: "seconds", Series: []chart.BarSeries{{Name: "riffle"}, {Name: "DuckDB"}}}
	cpu := &chart.Bars{Title: "scan + filter + group-by: median CPU time", YLabel: "seconds", Series: []chart.BarSeries{{Name: "riffle"}, {Name: "DuckDB"}}}
	tput := &chart.Lines{Title: "riffle: rows out of the Parquet scan over its last run", XLabel: "seconds", YLabel: "M rows/s"}
	for _, q := range queries {
		var rt, dt, rc, dc []time.Duration
		for i := 0; i < runs; i++ {
			// Alternate engines so that neither gets a warmer machine.
			c0 := benchenv.CPUSelf()
			var curve *chart.Series
			if plot != "" && i == runs-1 {
				curve = &chart.Series{Name: q.name}
			}
			d, err := timeRiffle(input, dir, q, threads, curve)
			if err != nil {
				return fmt.Errorf("riffle %s: %w", q.name, err)
			}
			if curve != nil {
				tput.Series = append(tput.Series, *curve)
			}
			rt, rc = append(rt, d), append(rc, benchenv.CPUSelf()-c0)
			d, cpu, err := timeDuckDB(python, input, dir, q, threads)
			if err != nil {
				return fmt.Errorf("duckdb %s: %w", q.name, err)
			}
			dt, dc = append(dt, d), append(dc, cpu)
		}
		r, d := benchenv.Median(rt), benchenv.Median(dt)
		fmt.Fprintf(out, "| %s | %.2f s | %.2f s | %.2f× | %.2f s | %.2f s | %.2f× | %.1fM |\n", q.name, r.Seconds(), d.Seconds(), r.Seconds()/d.Seconds(),
			benchenv.Median(rc).Seconds(), benchenv.Median(dc).Seconds(), benchenv.Median(rc).Seconds()/benchenv.Median(dc).Seconds(), float64(rows)/r.Seconds()/1e6)
		wall.Groups, cpu.Groups = append(wall.Groups, q.name), append(cpu.Groups, q.name)
		wall.Series[0].Values = append(wall.Series[0].Values, r.Seconds())
		wall.Series[1].Values = append(wall.Series[1].Values, d.Seconds())
		cpu.Series[0].Values = append(cpu.Series[0].Values, benchenv.Median(rc).Seconds())
		cpu.Series[1].Values = append(cpu.Series[1].Values, benchenv.Median(dc).Seconds())
	}
	fmt.Fprintln(out, "\nwall: elapsed time of the query; CPU: user+system time the engine spent on it (less sensitive to other load).")
	if err := out.Plot(wall, set+"-wall"); err != nil {
		return err
	}
	if err := out.Plot(cpu, set+"-cpu"); err != nil {
		return err
	}
	return out.Plot(tput, set+"-throughput")
}

// timeRiffle runs q with riffle and returns its wall time; with curve set
// it samples the source's rows read into it (M rows/s over time).
func timeRiffle(input, dir string, q query, threads int, curve *chart.Series) (time.Duration, error) {
	return timeRiffleWith(input, dir, q, threads, curve, nil)
}

// timeRiffleWith is timeRiffle; started, if set, gets the compiled job.
func timeRiffleWith(input, dir string, q query, threads int, curve *chart.Series, started func(*arrowexec.Job)) (time.Duration, error) {
	out := filepath.Join(dir, "out-riffle")
	os.RemoveAll(out)
	yml := fmt.Sprintf("name: bench\nsource:\n  parquet:\n    path: %s\nsteps:%s\nsink:\n  file:\n    path: %s\n", input, q.steps, out)
	start := time.Now()
	spec, err := job.Parse("bench.yaml", []byte(yml))
	if err != nil {
		return 0, err
	}
	plan, err := spec.Plan(job.Options{Parallelism: threads})
	if err != nil {
		return 0, err
	}
	j, err := plan.Graph.Compile(arrowexec.RunOptions{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, err
	}
	if started != nil {
		started(j)
	}
	if err := benchenv.Run(j, plan.SourceNode, curve); err != nil {
		return 0, err
	}
	if _, err := plan.Commit(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// timeDuckDB returns the query's wall time and the CPU time DuckDB spent on
// it (process CPU during the query, measured inside the process).
func timeDuckDB(python, input, dir string, q query, threads int) (time.Duration, time.Duration, error) {
	out := filepath.Join(dir, "out-duckdb.parquet")
	os.Remove(out)
	script := fmt.Sprintf(`
import duckdb, time
c = duckdb.connect()
c.execute("SET threads=%d")
c.execute("SET TimeZone='UTC'")
c.execute("SET enable_progress_bar=false")
t = time.perf_counter(); p = time.process_time()
c.execute("""COPY (%s) TO '%s' (FORMAT parquet)""")
print(time.perf_counter() - t, time.process_time() - p)
`, threads, fmt.Sprintf(q.sql, input), out)
	cmd := exec.Command(python, "-c", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return 0, 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("unexpected output %q", b)
	}
	wall, err1 := strconv.ParseFloat(f[0], 64)
	cpu, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("unexpected output %q", b)
	}
	return time.Duration(wall * float64(time.Second)), time.Duration(cpu * float64(time.Second)), nil
}
