// Command nexmark runs the Nexmark queries on riffle and, with --flink, on
// Apache Flink (bench/flink) side by side on the same event count, and
// prints one Markdown table: per query, events per second and per
// CPU-second of both engines and their ratio.
//
//	go run ./bench/nexmark --flink --events 10000000 --queries q0,q1,q2,q5,q7
//	go run ./bench/nexmark --flink --events 50000000 --runs 3   # steady state
//
// Both engines generate the events at their source (the generator's cost
// is part of every query for both), run at parallelism 2 into a counting
// sink, and run as child processes, alternately, --runs times each (the
// table shows medians). CPU time is the child's user+system time from its
// rusage, start-up included for both (for Flink: the whole JVM, GC and JIT
// included; riffle's is `riffle bench nexmark --json`). A second pair of
// columns gives the job phase alone, as each engine measures it in its own
// process: riffle's CPU time over its job's run, Flink's process CPU time
// inside execute() (the MiniCluster's start and the JIT's warm-up still
// in, the JVM's start, class loading and SQL planning out). At a few
// million events Flink's whole-JVM figure is dominated by start-up; run
// ≥ 50M events for steady-state numbers.
//
// Flink runs both of its APIs (DataStream and SQL, where the query has an
// SQL form) and the table compares riffle against the one with more events
// per CPU-second. A query riffle has no job file for (examples/nexmark) runs
// on Flink alone, with a note. A run that fails (say a JVM out of memory) is
// noted below the table and its series dropped; the others go on.
// The Flink project is built once with Maven (offline from ~/.m2 when it
// can be). Result row counts are compared between the engines at the same
// event count; a difference is printed below the table (for a changelog
// result, Flink SQL's q4, with the size of the table the changelog
// leaves).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/riffle-dev/riffle/bench/internal/benchenv"
	"github.com/riffle-dev/riffle/bench/nexmark/nexbench"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// flinkQueries lists the queries bench/flink has, flinkSQL those it also
// runs in SQL (bench/flink/README.md).
var (
	flinkQueries = []string{"q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8"}
	flinkSQL     = []string{"q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8"}
)

type run struct {
	rows, netRows int64
	wall, cpu     time.Duration
	jobCPU        time.Duration // CPU time of the job phase, as the child measured it
}

type series struct {
	engine string // riffle, flink-datastream, flink-sql
	runs   []run
	base   []run // at --baseline-events
	err    error // the failed run's error; runs then holds none
}

// stats are a series' medians.
type stats struct {
	wall, cpu, jobCPU time.Duration
	rows, netRows     int64
}

func (s *series) median() stats { return medians(s.runs) }

func medians(runs []run) stats {
	var ws, cs, js []time.Duration
	for _, r := range runs {
		ws, cs, js = append(ws, r.wall), append(cs, r.cpu), append(js, r.jobCPU)
	}
	last := runs[len(runs)-1]
	return stats{benchenv.Median(ws), benchenv.Median(cs), benchenv.Median(js), last.rows, last.netRows}
}

// config is one invocation's flags.
type config struct {
	events, baseline int64
	queries, apis    []string
	runs             int
	flink            bool
}

func main() {
	var c config
	flag.Int64Var(&c.events, "events", 10_000_000, "event numbers per query (all three tables)")
	flag.Int64Var(&c.baseline, "baseline-events", 0,
		"also run every engine and API at this many events and report the marginal events per CPU-second between the two counts (start-up cancels out); 0: off")
	qs := flag.String("queries", "", "queries to run (default: riffle's, or with --flink q0..q8)")
	flag.IntVar(&c.runs, "runs", 3, "runs of each engine and API per query (medians)")
	flag.BoolVar(&c.flink, "flink", false, "also run Apache Flink (bench/flink) and compare")
	apis := flag.String("flink-apis", "datastream,sql", "Flink APIs to run (the faster per query is compared)")
	flag.Parse()
	if *qs == "" {
		*qs = strings.Join(nexbench.Queries(), ",")
		if c.flink {
			*qs = strings.Join(flinkQueries, ",")
		}
	}
	c.queries, c.apis = strings.Split(*qs, ","), strings.Split(*apis, ",")
	if c.baseline < 0 || c.baseline >= c.events {
		fmt.Fprintln(os.Stderr, "nexmark: --baseline-events must be in [0, --events)")
		os.Exit(2)
	}
	if err := mainErr(c); err != nil {
		fmt.Fprintln(os.Stderr, "nexmark:", err)
		os.Exit(1)
	}
}

func mainErr(c config) error {
	root, err := oracle.RepoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "nexmark-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "riffle")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/riffle").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/riffle: %v\n%s", err, out)
	}
	var cp string
	if c.flink {
		if cp, err = buildFlink(root); err != nil {
			return err
		}
	}
	command := func(s *series, q string, events int64) *exec.Cmd {
		if s.engine == "riffle" {
			return exec.Command(bin, "bench", "nexmark", "--json", "--log-level", "warn", "--query", q, "--events", fmt.Sprint(events))
		}
		return exec.Command("java", "-cp", cp, "dev.riffle.nexmark.Main", "--query", q,
			"--api", strings.TrimPrefix(s.engine, "flink-"), "--events", fmt.Sprint(events), "--parallelism", "2")
	}
	fmt.Fprintf(os.Stderr, "load average before: %s\n", loadavg())
	table := map[string][]*series{}
	var notes []string
	for _, q := range c.queries {
		var ss []*series
		if slices.Contains(nexbench.Queries(), q) {
			ss = append(ss, &series{engine: "riffle"})
		} else {
			notes = append(notes, fmt.Sprintf("%s: riffle has no examples/nexmark/%s.yaml in this build; Flink only", q, q))
		}
		if c.flink && slices.Contains(flinkQueries, q) {
			for _, api := range c.apis {
				if api == "sql" && !slices.Contains(flinkSQL, q) {
					continue
				}
				ss = append(ss, &series{engine: "flink-" + api})
			}
		}
		if len(ss) == 0 {
			return fmt.Errorf("query %s: neither riffle (%s) nor Flink (%s) has it", q, strings.Join(nexbench.Queries(), ","), strings.Join(flinkQueries, ","))
		}
		for _, events := range []int64{c.baseline, c.events} {
			if events == 0 {
				continue
			}
			for i := 0; i < c.runs; i++ {
				for _, s := range ss {
					if s.err != nil {
						continue
					}
					r, err := child(command(s, q, events))
					if err != nil {
						s.err, s.runs, s.base = err, nil, nil
						fmt.Fprintf(os.Stderr, "%s %s at %d events, run %d failed: %v\n", q, s.engine, events, i+1, err)
						notes = append(notes, fmt.Sprintf("%s: %s failed at %d events in run %d: %s", q, s.engine, events, i+1, firstLine(err.Error())))
						continue
					}
					fmt.Fprintf(os.Stderr, "%s %s at %d events, run %d: %d rows, %.2f s, %.2f CPU-s (job phase %.2f)\n", q, s.engine, events, i+1, r.rows,
						r.wall.Seconds(), r.cpu.Seconds(), r.jobCPU.Seconds())
					if events == c.baseline {
						s.base = append(s.base, r)
					} else {
						s.runs = append(s.runs, r)
					}
				}
			}
		}
		table[q] = slices.DeleteFunc(ss, func(s *series) bool { return s.err != nil })
	}
	fmt.Fprintf(os.Stderr, "load average after: %s\n", loadavg())
	printTable(os.Stdout, c, table, notes)
	return nil
}

// child runs c, parses the JSON line it prints (rows, net_rows, wall_s,
// and as job_cpu_s or cpu_s the CPU time the child measured over its job)
// and takes its whole CPU time from its rusage.
func child(c *exec.Cmd) (run, error) {
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return run{}, fmt.Errorf("%v: %v\n%s", c.Args, err, tail(errb.String()))
	}
	var res struct {
		Rows    int64    `json:"rows"`
		NetRows *int64   `json:"net_rows"` // Flink: the changelog's net rows
		WallS   float64  `json:"wall_s"`
		CPUS    float64  `json:"cpu_s"`     // riffle: CPU over the job's run
		JobCPUS *float64 `json:"job_cpu_s"` // Flink: CPU inside execute()
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return run{}, fmt.Errorf("%v: output %q: %v", c.Args, out.String(), err)
	}
	ru := c.ProcessState.SysUsage().(*syscall.Rusage)
	r := run{rows: res.Rows, netRows: res.Rows, wall: seconds(res.WallS), cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), jobCPU: seconds(res.CPUS)}
	if res.NetRows != nil {
		r.netRows = *res.NetRows
	}
	if res.JobCPUS != nil {
		r.jobCPU = seconds(*res.JobCPUS)
	}
	return r, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}

// buildFlink builds bench/flink (once per call; Maven offline first) and
// returns the class path of its classes and dependencies.
func buildFlink(root string) (string, error) {
	pom := filepath.Join(root, "bench", "flink", "pom.xml")
	args := []string{"-q", "-B", "-f", pom, "package", "dependency:copy-dependencies", "-DskipTests"}
	if out, err := exec.Command("mvn", append([]string{"-o"}, args...)...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "mvn offline failed (%v), trying online\n", err)
		if out2, err := exec.Command("mvn", args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("mvn package: %v\n%s\n%s", err, tail(string(out)), tail(string(out2)))
		}
	}
	t := filepath.Join(root, "bench", "flink", "target")
	return filepath.Join(t, "classes") + string(os.PathListSeparator) + filepath.Join(t, "dependency", "*"), nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

// printTable prints one row per query: riffle's medians, those of the
// Flink API with more events per CPU-second (whole process), and the
// ratios riffle/Flink of events per CPU-second on whole-process CPU, on
// job-phase CPU and, with --baseline-events, on the marginal CPU between
// the two event counts ("steady").
func printTable(w *os.File, c config, table map[string][]*series, notes []string) {
	fmt.Fprintf(w, "Nexmark, %d events, parallelism 2, medians of %d, %d CPUs (%s)", c.events, c.runs, runtime.NumCPU(), runtime.GOARCH)
	if c.baseline > 0 {
		fmt.Fprintf(w, "; steady = (%d − %d events) / (CPU at %d − CPU at %d)", c.events, c.baseline, c.events, c.baseline)
	}
	fmt.Fprint(w, "\n\n")
	// One column set per engine: events/s, events/CPU-s, job phase, steady.
	engineCols := []string{"events/s", "events/CPU-s", "job phase events/CPU-s"}
	ratioCols := []string{"riffle/Flink (CPU)", "riffle/Flink (job phase)"}
	if c.baseline > 0 {
		engineCols = append(engineCols, "steady events/CPU-s")
		ratioCols = append(ratioCols, "riffle/Flink (steady)")
	}
	head := []string{"query"}
	for _, e := range []string{"riffle", "Flink"} {
		if e == "Flink" {
			head = append(head, "Flink API")
		}
		for _, col := range engineCols {
			head = append(head, e+" "+col)
		}
	}
	head = append(append(head, ratioCols...), "rows riffle", "rows Flink")
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	align := make([]string, len(head))
	for i, h := range head {
		align[i] = "---:"
		if h == "query" || h == "Flink API" {
			align[i] = "---"
		}
	}
	fmt.Fprintln(w, "|"+strings.Join(align, "|")+"|")
	ev := float64(c.events)
	rate := func(d time.Duration) string { return human(ev / d.Seconds()) }
	// rates are a series' events per CPU-second: whole, job phase, steady.
	rates := func(s *series) []float64 {
		m := s.median()
		v := []float64{ev / m.cpu.Seconds(), ev / m.jobCPU.Seconds()}
		if c.baseline > 0 {
			v = append(v, float64(c.events-c.baseline)/(m.cpu-medians(s.base).cpu).Seconds())
		}
		return v
	}
	dash := func(n int) []string { return slices.Repeat([]string{"–"}, n) }
	for _, q := range c.queries {
		var riffle *series
		var flink []*series
		for _, s := range table[q] {
			if s.engine == "riffle" {
				riffle = s
			} else {
				flink = append(flink, s)
			}
		}
		row := []string{q}
		var r stats
		var rr []float64
		if riffle != nil {
			r, rr = riffle.median(), rates(riffle)
			row = append(row, rate(r.wall))
			for _, v := range rr {
				row = append(row, human(v))
			}
		} else {
			row = append(row, dash(len(engineCols))...)
		}
		rowsFlink := "–"
		if len(flink) > 0 {
			best := slices.MinFunc(flink, func(a, b *series) int { return int(a.median().cpu - b.median().cpu) })
			f, fr := best.median(), rates(best)
			row = append(row, strings.TrimPrefix(best.engine, "flink-"), rate(f.wall))
			for _, v := range fr {
				row = append(row, human(v))
			}
			if riffle != nil {
				for i := range fr {
					row = append(row, fmt.Sprintf("%.2f×", rr[i]/fr[i]))
				}
			} else {
				row = append(row, dash(len(ratioCols))...)
			}
			rowsFlink = fmt.Sprint(f.rows)
			if f.netRows != f.rows {
				rowsFlink += fmt.Sprintf(" (net %d)", f.netRows)
			}
		} else {
			row = append(row, dash(1+len(engineCols)+len(ratioCols))...)
		}
		rowsRiffle := "–"
		if riffle != nil {
			rowsRiffle = fmt.Sprint(r.rows)
		}
		row = append(row, rowsRiffle, rowsFlink)
		fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		if riffle == nil {
			continue
		}
		for _, s := range flink {
			if f := s.median(); f.rows != r.rows && f.netRows != r.rows {
				notes = append(notes, fmt.Sprintf("%s: row counts differ: riffle %d rows, %s %d rows (net %d)", q, r.rows, s.engine, f.rows, f.netRows))
			}
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range notes {
		fmt.Fprintln(w, "-", n)
	}
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
