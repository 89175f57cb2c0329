package main

import (
	"context"
	"fmt"

	"github.com/riffle-dev/riffle/checkpoint"
)

func init() {
	register(command{name: "checkpoints", short: "list or inspect a job's checkpoints and savepoints", run: runCheckpoints})
}

func runCheckpoints(_ context.Context, e *env, args []string) error {
	f := newFlags(e, "checkpoints", "list DIR | inspect PATH", `
list DIR      the checkpoints in a checkpoint directory: id, status (complete,
              savepoint, in-progress, or corrupt with the reason), time,
              size and watermark. Every file's checksum is verified.
inspect PATH  one checkpoint or savepoint: its manifest, nodes and subtasks,
              state sizes, source positions (Kafka offsets per partition,
              Parquet files and row groups) and watermark.`)
	if err := f.parse(e, args); err != nil {
		return err
	}
	if f.NArg() != 2 {
		f.Usage()
		return usageError{fmt.Errorf("want a subcommand (list or inspect) and a path")}
	}
	switch f.Arg(0) {
	case "list":
		infos, err := checkpoint.List(f.Arg(1))
		if err != nil {
			return err
		}
		if len(infos) == 0 {
			fmt.Fprintf(e.stdout, "no checkpoints in %s\n", f.Arg(1))
			return nil
		}
		return checkpoint.WriteList(e.stdout, infos)
	case "inspect":
		s, err := checkpoint.Inspect(f.Arg(1))
		if err != nil {
			return err
		}
		return checkpoint.WriteSummary(e.stdout, s)
	}
	return usageError{fmt.Errorf("unknown subcommand %q (want list or inspect)", f.Arg(0))}
}
