package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/riffle-dev/riffle/bench/nexmark/nexbench"
	"github.com/riffle-dev/riffle/internal/oracle"
)

func init() {
	register(command{name: "bench", short: "benchmark a Nexmark query (bench nexmark)", run: runBench})
}

func runBench(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "bench", "nexmark --query qN [--events N] [--source gen|parquet|kafka] [--check]", `
bench nexmark runs one Nexmark query of examples/nexmark (q0 ... q8) over
--events event numbers (all three tables; the query reads its tables'
share) into a counting sink, and prints events per second and per
CPU-second (this process's CPU time over the run, every goroutine and GC
included). The input is the generator itself (--source gen), or the same
events written to Parquet under --dir (--source parquet) or produced,
before the clock starts, to new Kafka topics on --brokers (one per table,
one partition per subtask, deleted after the run: --source kafka). Latency
percentiles are not printed: the run is bounded and goes as fast as it
can, so an event's latency is only its wait in the queue.

--check instead runs the query into Parquet files under --dir and
compares them with DuckDB running the query's SQL over the same events
written to Parquet (needs the oracle venv, .venv with duckdb).`)
	query := f.String("query", "q0", "the query: "+strings.Join(nexbench.Queries(), ", "))
	events := f.Int64("events", 10_000_000, "event numbers over all tables")
	seed := f.Int64("seed", 1, "random seed")
	par := f.Int("parallelism", 0, "subtasks (0: the job file's, 2)")
	source := f.String("source", nexbench.SourceGen, "gen, parquet or kafka")
	brokers := f.String("brokers", os.Getenv("RIFFLE_KAFKA_BROKERS"), "Kafka bootstrap brokers for --source kafka, comma-separated (default $RIFFLE_KAFKA_BROKERS)")
	dir := f.String("dir", "", "where Parquet input and --check output go (default: a temporary directory, removed)")
	check := f.Bool("check", false, "compare the query's output with DuckDB instead of timing it")
	asJSON := f.Bool("json", false, "print one JSON line (events, rows, wall_s, cpu_s)")
	cpuprofile := f.String("cpuprofile", "", "write a CPU profile of the timed run to this file")
	pos, err := f.parseInterspersed(e, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "nexmark" {
		f.Usage()
		return usageError{fmt.Errorf("want the subcommand nexmark")}
	}
	if *events < 1 || *par < 0 {
		return usageError{fmt.Errorf("--events must be positive, --parallelism not negative")}
	}
	if *dir == "" && (*check || *source == nexbench.SourceParquet) {
		tmp, err := os.MkdirTemp("", "riffle-bench-nexmark-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	cfg := nexbench.Config{Query: *query, Events: *events, Seed: *seed, Parallelism: *par, Source: *source, Dir: *dir, Brokers: *brokers, Log: e.log}
	if *check {
		py, err := oracle.Available()
		if err != nil {
			return err
		}
		rows, err := nexbench.Check(ctx, cfg, py)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %d rows from %s at %d events agree with DuckDB\n", *query, rows, cfg.Source, *events)
		return nil
	}
	if *source == nexbench.SourceParquet {
		if _, err := nexbench.WriteInputs(ctx, cfg); err != nil {
			return err
		}
	}
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := nexbench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	fmt.Fprintf(e.stdout, "%s from %s: %d events, %d rows, %.3f s, %.3f CPU-s: %.0f events/s, %.0f events per CPU-second\n",
		res.Query, res.Source, res.Events, res.Rows, res.WallS, res.CPUS, res.EventsPerSec(), res.EventsPerCPUSec())
	if *cpuprofile != "" {
		abs, _ := filepath.Abs(*cpuprofile)
		e.log.Info("cpu profile", "path", abs)
	}
	return nil
}
