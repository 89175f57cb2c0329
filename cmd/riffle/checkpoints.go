package main

import (
	"context"
	"fmt"
	"os"

	"github.com/riffle-dev/riffle/checkpoint"
)

func init() {
	register(command{name: "checkpoints", short: "list or inspect a job's checkpoints and savepoints", run: runCheckpoints})
}

func runCheckpoints(_ context.Context, e *env, args []string) error {
	f := newFlags(e, "checkpoints", "list [--verify] DIR | inspect PATH", `
list DIR      the checkpoints in a checkpoint directory (or the one
              checkpoint or savepoint DIR is): id, status (complete,
              savepoint, in-progress, or corrupt with the file and the
              reason), time, size and watermark. Every file's size and
              checksum is verified against the manifest (this reads all of
              it). With --verify the exit status is 1 when any complete
              checkpoint or savepoint fails verification.
inspect PATH  one checkpoint or savepoint: its manifest, nodes and subtasks,
              state sizes, source positions (Kafka offsets per partition,
              Parquet files and row groups) and watermark. A checkpoint
              that fails verification is an error (exit status 1).`)
	verify := f.Bool("verify", false, "list: exit with status 1 when a checkpoint fails verification")
	// Flags may also follow the subcommand and the path.
	pos, err := f.parseInterspersed(e, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		f.Usage()
		return usageError{fmt.Errorf("want a subcommand (list or inspect) and a path")}
	}
	if pos[0] == "list" || pos[0] == "inspect" {
		fi, err := os.Stat(pos[1])
		switch {
		case err != nil:
			return usageError{err}
		case !fi.IsDir():
			return usageError{fmt.Errorf("%s: not a checkpoint directory", pos[1])}
		}
	}
	switch pos[0] {
	case "list":
		infos, err := checkpoint.List(pos[1])
		if err != nil {
			return err
		}
		if len(infos) == 0 {
			fmt.Fprintf(e.stdout, "no checkpoints in %s\n", pos[1])
			return nil
		}
		if err := checkpoint.WriteList(e.stdout, infos); err != nil {
			return err
		}
		bad := 0
		for _, inf := range infos {
			if inf.Err != nil {
				bad++
			}
		}
		if bad > 0 && *verify {
			return fmt.Errorf("%d of %d checkpoints in %s fail verification", bad, len(infos), pos[1])
		}
		return nil
	case "inspect":
		s, err := checkpoint.Inspect(pos[1])
		if err != nil {
			return err
		}
		return checkpoint.WriteSummary(e.stdout, s)
	}
	return usageError{fmt.Errorf("unknown subcommand %q (want list or inspect)", pos[0])}
}
