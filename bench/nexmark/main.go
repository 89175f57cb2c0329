// Command nexmark runs the Nexmark queries on riffle and, with --flink, on
// Apache Flink (bench/flink) side by side on the same event count, and
// prints one Markdown table: per query, events per second and per
// CPU-second of both engines and their ratio.
//
//	go run ./bench/nexmark --flink --events 10000000 --queries q0,q1,q2,q5,q7
//
// Both engines generate the events at their source (the generator's cost
// is part of every query for both), run at parallelism 2 into a counting
// sink, and run as child processes, alternately, --runs times each (the
// table shows medians). CPU time is the child's user+system time from its
// rusage, start-up included for both (for Flink: the whole JVM, GC and JIT
// included; riffle's is `riffle bench nexmark --json`). Flink runs both of
// its APIs (DataStream and SQL, where the query has an SQL form) and the
// table compares riffle against the one with more events per CPU-second.
// The Flink project is built once with Maven (offline from ~/.m2 when it
// can be). Result row counts are compared between the engines at the same
// event count; a difference is printed below the table.
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

// flinkSQL lists the queries Flink runs in SQL (bench/flink/README.md).
var flinkSQL = []string{"q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8"}

type run struct {
	rows      int64
	wall, cpu time.Duration
}

type series struct {
	engine string // riffle, flink-datastream, flink-sql
	runs   []run
}

func (s *series) median() (wall, cpu time.Duration, rows int64) {
	var ws, cs []time.Duration
	for _, r := range s.runs {
		ws, cs = append(ws, r.wall), append(cs, r.cpu)
	}
	return benchenv.Median(ws), benchenv.Median(cs), s.runs[len(s.runs)-1].rows
}

func main() {
	events := flag.Int64("events", 10_000_000, "event numbers per query (all three tables)")
	qs := flag.String("queries", strings.Join(nexbench.Queries(), ","), "queries to run")
	runs := flag.Int("runs", 3, "runs of each engine and API per query (medians)")
	withFlink := flag.Bool("flink", false, "also run Apache Flink (bench/flink) and compare")
	apis := flag.String("flink-apis", "datastream,sql", "Flink APIs to run (the faster per query is compared)")
	flag.Parse()
	if err := mainErr(*events, strings.Split(*qs, ","), *runs, *withFlink, strings.Split(*apis, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "nexmark:", err)
		os.Exit(1)
	}
}

func mainErr(events int64, qs []string, runs int, withFlink bool, apis []string) error {
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
	if withFlink {
		if cp, err = buildFlink(root); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "load average before: %s\n", loadavg())
	table := map[string][]*series{}
	for _, q := range qs {
		ss := []*series{{engine: "riffle"}}
		if withFlink {
			for _, api := range apis {
				if api == "sql" && !slices.Contains(flinkSQL, q) {
					continue
				}
				ss = append(ss, &series{engine: "flink-" + api})
			}
		}
		for i := 0; i < runs; i++ {
			for _, s := range ss {
				var r run
				if s.engine == "riffle" {
					r, err = child(exec.Command(bin, "bench", "nexmark", "--json", "--log-level", "warn", "--query", q, "--events", fmt.Sprint(events)))
				} else {
					r, err = child(exec.Command("java", "-cp", cp, "dev.riffle.nexmark.Main", "--query", q,
						"--api", strings.TrimPrefix(s.engine, "flink-"), "--events", fmt.Sprint(events), "--parallelism", "2"))
				}
				if err != nil {
					return fmt.Errorf("%s %s: %w", s.engine, q, err)
				}
				fmt.Fprintf(os.Stderr, "%s %s run %d: %d rows, %.2f s, %.2f CPU-s\n", q, s.engine, i+1, r.rows, r.wall.Seconds(), r.cpu.Seconds())
				s.runs = append(s.runs, r)
			}
		}
		table[q] = ss
	}
	fmt.Fprintf(os.Stderr, "load average after: %s\n", loadavg())
	printTable(os.Stdout, events, runs, qs, table)
	return nil
}

// child runs c, parses the JSON line it prints (rows, wall_s) and takes
// its CPU time from its rusage.
func child(c *exec.Cmd) (run, error) {
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return run{}, fmt.Errorf("%v: %v\n%s", c.Args, err, tail(errb.String()))
	}
	var res struct {
		Rows  int64   `json:"rows"`
		WallS float64 `json:"wall_s"`
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return run{}, fmt.Errorf("%v: output %q: %v", c.Args, out.String(), err)
	}
	ru := c.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return run{rows: res.Rows, wall: time.Duration(res.WallS * float64(time.Second)), cpu: cpu}, nil
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

func printTable(w *os.File, events int64, runs int, qs []string, table map[string][]*series) {
	fmt.Fprintf(w, "Nexmark, %d events, parallelism 2, medians of %d, %d CPUs (%s)\n\n", events, runs, runtime.NumCPU(), runtime.GOARCH)
	fmt.Fprintln(w, "| query | riffle events/s | riffle events/CPU-s | Flink API | Flink events/s | Flink events/CPU-s | riffle/Flink (CPU) | rows riffle | rows Flink |")
	fmt.Fprintln(w, "|---|---:|---:|---|---:|---:|---:|---:|---:|")
	var notes []string
	for _, q := range qs {
		ss := table[q]
		rw, rc, rrows := ss[0].median()
		ev := float64(events)
		if len(ss) == 1 {
			fmt.Fprintf(w, "| %s | %s | %s | | | | | %d | |\n", q, human(ev/rw.Seconds()), human(ev/rc.Seconds()), rrows)
			continue
		}
		best := ss[1]
		for _, s := range ss[2:] {
			_, bc, _ := best.median()
			if _, c, _ := s.median(); c < bc {
				best = s
			}
		}
		fw, fc, frows := best.median()
		for _, s := range ss[1:] {
			if _, _, n := s.median(); n != rrows {
				notes = append(notes, fmt.Sprintf("%s: riffle %d rows, %s %d rows", q, rrows, s.engine, n))
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %.2f× | %d | %d |\n", q, human(ev/rw.Seconds()), human(ev/rc.Seconds()),
			strings.TrimPrefix(best.engine, "flink-"), human(ev/fw.Seconds()), human(ev/fc.Seconds()), fc.Seconds()/rc.Seconds(), rrows, frows)
	}
	for _, n := range notes {
		fmt.Fprintln(w, "\nrow counts differ:", n)
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
