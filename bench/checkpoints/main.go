// Command checkpoints measures what exactly-once checkpoints cost a running
// job: the same keyed tumbling-window job (hourly, per user) over generated events runs with
// no checkpoints, with a checkpoint every 10 s and every 1 s, side by side
// in one run, and the table reports wall time, throughput, the overhead
// against no checkpoints, and the checkpoints' count, duration and size.
//
//	go run ./bench/checkpoints --rows 20000000 --runs 3
//
// The input is a bounded Parquet file, so every run does the same work; the
// checkpoint machinery (barriers, alignment, window-state snapshots, the
// coordinator's manifest and atomic directory commit) is the same as for a
// Kafka source.
//
// With --plot DIR it also writes the table to DIR/checkpoints.md and charts
// beside it (PNG, with their numbers as CSV; package internal/chart):
// checkpoints-wall, the median wall seconds per configuration, and
// checkpoints-throughput, the rows per second the source delivered over
// each configuration's last run (sampled every 100 ms), where checkpoint
// pauses show.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/bench/internal/benchenv"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/chart"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/job"
)

// A stateful job: hourly windows per user keep one window per active user
// in keyed state, so checkpoints carry real state.
const steps = `
steps:
  - window:
      type: tumbling
      size: 1h
      key: [user_id]
      time: event_time
      aggs: ["count(*) AS n", "sum(weight) AS w", "max(item_id) AS top"]`

func main() {
	rows := flag.Int64("rows", 20_000_000, "rows of generated input")
	runs := flag.Int("runs", 3, "runs per configuration (median reported)")
	par := flag.Int("parallelism", 2, "subtasks per node")
	dir := flag.String("dir", "", "cache directory (default .cache/bench in the repo)")
	plot := flag.String("plot", "", "also write the table and charts of it (PNG with CSV) into this directory")
	flag.Parse()
	if err := run(*rows, *runs, *par, *dir, *plot); err != nil {
		fmt.Fprintln(os.Stderr, "checkpoints:", err)
		os.Exit(1)
	}
}

type result struct {
	wall      time.Duration
	completed int64
	lastDur   time.Duration
	lastBytes int64
}

func run(rows int64, runs, par int, dir, plot string) (err error) {
	if dir == "" {
		root, err := oracle.RepoRoot()
		if err != nil {
			return err
		}
		dir = filepath.Join(root, ".cache", "bench")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	input := filepath.Join(dir, fmt.Sprintf("events-%d-seed1.parquet", rows))
	if _, err := os.Stat(input); err != nil {
		fmt.Fprintf(os.Stderr, "generating %d rows into %s\n", rows, input)
		if err := gen.WriteFile(context.Background(), input, gen.Options{Rows: rows, Seed: 1}, nil); err != nil {
			return err
		}
	}
	yml := fmt.Sprintf("name: ckpt-bench\nsource:\n  parquet:\n    path: %s\n  watermark: {column: event_time, max_out_of_orderness: 5s}\n%s\nsink:\n  file: {path: %s}\n",
		input, steps, filepath.Join(dir, "out-ckpt"))
	spec, err := job.Parse("ckpt-bench.yaml", []byte(yml))
	if err != nil {
		return err
	}
	configs := []struct {
		name     string
		interval time.Duration // 0: no checkpoints
	}{{"none", 0}, {"every 10 s", 10 * time.Second}, {"every 1 s", time.Second}}
	res := make([][]result, len(configs))
	tput := &chart.Lines{Title: "source rows per second over the last run", XLabel: "seconds", YLabel: "M rows/s"}
	for r := 0; r < runs; r++ {
		for i, c := range configs { // interleaved: no configuration gets a quieter machine
			var curve *chart.Series
			if plot != "" && r == runs-1 {
				curve = &chart.Series{Name: "checkpoints " + c.name}
			}
			out, err := once(spec, par, c.interval, filepath.Join(dir, "ckpt"), curve)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			res[i] = append(res[i], out)
			if curve != nil {
				tput.Series = append(tput.Series, *curve)
			}
		}
	}
	out, err := benchenv.NewOutput(plot, "checkpoints")
	if err != nil {
		return err
	}
	defer out.Close(&err)
	fmt.Fprintf(out, "input: %s (%d rows), parallelism %d, runs %d\n\n", filepath.Base(input), rows, par, runs)
	fmt.Fprintln(out, "| checkpoints | wall (median) | events/s | overhead vs none | checkpoints completed | last checkpoint duration | mean retained checkpoint size |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|")
	wall := &chart.Bars{Title: "keyed hourly windows: median wall time by checkpoint interval", YLabel: "seconds", Series: []chart.BarSeries{{Name: "riffle"}}}
	base := median(res[0]).wall
	for i, c := range configs {
		m := median(res[i])
		ov := "—"
		if i > 0 {
			ov = fmt.Sprintf("%+.1f%%", 100*(m.wall.Seconds()/base.Seconds()-1))
		}
		fmt.Fprintf(out, "| %s | %.2f s | %.1fM | %s | %d | %s | %.1f MiB |\n", c.name, m.wall.Seconds(), float64(rows)/m.wall.Seconds()/1e6, ov,
			m.completed, m.lastDur.Round(time.Millisecond), float64(m.lastBytes)/(1<<20))
		wall.Groups = append(wall.Groups, c.name)
		wall.Series[0].Values = append(wall.Series[0].Values, m.wall.Seconds())
	}
	if err := out.Plot(wall, "checkpoints-wall"); err != nil {
		return err
	}
	return out.Plot(tput, "checkpoints-throughput")
}

func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return int(a.wall - b.wall) })
	return s[len(s)/2]
}

// once runs the job with checkpoints every interval (none for 0); with
// curve set it samples the source's rows into it (M rows/s over time).
func once(spec *job.Spec, par int, interval time.Duration, ckptDir string, curve *chart.Series) (result, error) {
	log := slog.New(slog.DiscardHandler)
	start := time.Now()
	var plan *job.Plan
	build := func() (*arrowexec.Graph, error) {
		var err error
		plan, err = spec.Plan(job.Options{Parallelism: par})
		if err != nil {
			return nil, err
		}
		return plan.Graph, nil
	}
	if interval == 0 {
		g, err := build()
		if err != nil {
			return result{}, err
		}
		j, err := g.Compile(arrowexec.RunOptions{Log: log})
		if err != nil {
			return result{}, err
		}
		if err := benchenv.Run(j, plan.SourceNode, curve); err != nil {
			return result{}, err
		}
		if _, err := plan.Commit(); err != nil {
			return result{}, err
		}
		return result{wall: time.Since(start)}, nil
	}
	if err := os.RemoveAll(ckptDir); err != nil {
		return result{}, err
	}
	var coord *checkpoint.Coordinator
	var rate *benchenv.Rate
	cfg := checkpoint.RunConfig{
		Options:    checkpoint.Options{Dir: ckptDir, Interval: interval, Log: log, JobFingerprint: "ckpt-bench"},
		RunOptions: arrowexec.RunOptions{Log: log},
		OnStart: func(c *checkpoint.Coordinator, j *arrowexec.Job) {
			coord = c
			if curve != nil && rate == nil {
				rate = benchenv.StartSourceRate(j, plan.SourceNode)
			}
		},
	}
	err := checkpoint.Run(context.Background(), cfg, func(*checkpoint.Checkpoint) (*arrowexec.Graph, error) { return build() })
	if rate != nil {
		*curve = rate.Stop(curve.Name, 1e6)
	}
	if err != nil {
		return result{}, err
	}
	if _, err := plan.Commit(); err != nil {
		return result{}, err
	}
	st := coord.Stats()
	wall := time.Since(start)
	// Mean size of the retained checkpoints (the last one, taken as the
	// input ends, holds little state).
	var size, n int64
	infos, err := checkpoint.List(ckptDir)
	if err != nil {
		return result{}, err
	}
	for _, inf := range infos {
		if inf.Err == nil && !inf.InProgress {
			size += inf.Bytes
			n++
		}
	}
	if n > 0 {
		size /= n
	}
	return result{wall: wall, completed: st.Completed, lastDur: st.LastDuration, lastBytes: size}, nil
}
