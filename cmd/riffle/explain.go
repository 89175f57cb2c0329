package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/riffle-dev/riffle/job"
)

func init() {
	register(command{name: "explain", short: "print a job's planned graph: pushdowns, parallelism, exchanges", run: runExplain})
}

func runExplain(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "explain", "[flags] JOB.yaml", `
explain plans JOB.yaml as 'riffle backfill' or 'riffle run' would and
prints the plan without running it: the source and what was pushed into it
(the columns read, the predicates that skip Parquet row groups and how many
they prune), then every node of the dataflow graph in order with its
parallelism, its inputs and how each is exchanged (forward, rebalance,
broadcast, or hash by key columns), and its output columns. A Kafka job's
brokers are asked for the topics' partitions. Nothing is written.`)
	par := f.Int("parallelism", 0, "override the job's parallelism (0: the job file's)")
	brokers := f.String("brokers", "", "override the Kafka brokers of the job file")
	pos, err := f.parseInterspersed(e, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{errors.New("give one job file")}
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return usageError{fmt.Errorf("job: %w", err)}
	}
	spec, err := job.Parse(pos[0], data)
	if err != nil {
		return usageError{err}
	}
	plan, err := spec.PlanContext(ctx, job.Options{Parallelism: *par, Brokers: *brokers, ExplainOnly: true, Logger: e.log})
	if err != nil {
		return usageError{err}
	}
	return plan.Explain(e.stdout)
}
