package arrowexec_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/arrowexec/expr"
	"github.com/riffle-dev/riffle/arrowexec/ops"
)

// TestChainingMatchesUnchained builds random graphs of filters, projects,
// forward and exchanged identities and two-phase aggregates at parallelism
// 1 to 3 over random data, runs each chained (with some nodes opted out
// at random) and with RunOptions.DisableChaining while checkpoints are
// triggered, and checks that both runs emit the same rows and that every
// completed checkpoint saw the same rows before its barrier at every node
// (the sources' row counts). The filters and projects also run against a
// brute-force oracle: the rows of the unaggregated graphs are the source
// rows that pass every filter.
func TestChainingMatchesUnchained(t *testing.T) {
	for seed := uint64(1); seed <= 24; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rng := rand.New(rand.NewPCG(seed, 99))
			batches, rows := randomBatches(mem, rng, 2000+rng.IntN(3000), 1+rng.IntN(300), 1+rng.IntN(40))
			src := exectest.NewSource(testSchema, batches)
			release(batches)
			defer src.Release()
			plan := randomPlan(rng)

			chained, chains := plan.run(t, mem, src, false)
			unchained, flat := plan.run(t, mem, src, true)
			if !slices.Equal(chained, unchained) {
				t.Fatalf("plan %s: chained and unchained outputs differ: %d and %d rows", plan, len(chained), len(unchained))
			}
			for _, c := range flat {
				if len(c) != 1 {
					t.Fatalf("DisableChaining ran chain %v", c)
				}
			}
			if plan.expectChain && os.Getenv("RIFFLE_DISABLE_CHAINING") != "1" && !slices.ContainsFunc(chains, func(c []string) bool { return len(c) > 1 }) {
				t.Fatalf("plan %s: nothing chained: %v", plan, chains)
			}
			if !plan.aggregate {
				var want []string
				for _, r := range rows {
					if plan.keep(r) {
						want = append(want, r.key())
					}
				}
				slices.Sort(want)
				if !slices.Equal(chained, want) {
					t.Fatalf("plan %s: %d rows, oracle %d", plan, len(chained), len(want))
				}
			}
		})
	}
}

// chainPlan is a random linear graph: stages between the source and the
// sink, and whether a two-phase count/sum aggregate by k ends it.
type chainPlan struct {
	par         int
	stages      []stage
	aggregate   bool
	expectChain bool
}

type stage struct {
	kind      string // filter, project, forward, rebalance, hash
	par       int    // rebalance, hash: the new parallelism
	filter    string // filter: predicate
	threshold float64
	noChain   bool
}

func (p chainPlan) String() string {
	var parts []string
	for _, s := range p.stages {
		parts = append(parts, fmt.Sprintf("%s/%d%s", s.kind, s.par, map[bool]string{true: "!"}[s.noChain]))
	}
	return fmt.Sprintf("p=%d %s agg=%v", p.par, strings.Join(parts, " "), p.aggregate)
}

func randomPlan(rng *rand.Rand) chainPlan {
	p := chainPlan{par: 1 + rng.IntN(3), aggregate: rng.IntN(3) == 0}
	par := p.par
	chainable := false
	for range 1 + rng.IntN(5) {
		s := stage{kind: []string{"filter", "project", "forward", "rebalance", "hash"}[rng.IntN(5)], par: par,
			noChain: rng.IntN(6) == 0}
		switch s.kind {
		case "filter":
			s.threshold = rng.NormFloat64()
		case "rebalance", "hash":
			s.par = 1 + rng.IntN(3)
		}
		if (s.kind == "filter" || s.kind == "project" || s.kind == "forward") && !s.noChain {
			chainable = true
		}
		par = s.par
		p.stages = append(p.stages, s)
	}
	// The first chainable stage chains to its predecessor unless that one
	// opted out.
	p.expectChain = chainable && !slices.ContainsFunc(p.stages, func(s stage) bool { return s.noChain })
	return p
}

// keep is the plan's filters on one row (the brute-force oracle).
func (p chainPlan) keep(r row) bool {
	for _, s := range p.stages {
		if s.kind == "filter" && (r.v == nil || *r.v <= s.threshold) {
			return false
		}
	}
	return true
}

// run runs the plan, triggering checkpoints until the sources finish, and
// returns its output rows as sorted strings and the job's chains.
func (p chainPlan) run(t *testing.T, mem memory.Allocator, src *exectest.Source, disable bool) ([]string, [][]string) {
	t.Helper()
	g := arrowexec.NewGraph()
	cur := g.AddSource("src", src, p.par)
	in := cur.Forward()
	for i, s := range p.stages {
		name := fmt.Sprintf("%d-%s", i, s.kind)
		switch s.kind {
		case "filter":
			cur = g.Add(name, ops.NewFilter(expr.Gt(expr.Col("v"), expr.Lit(s.threshold))), s.par, in)
		case "project":
			cols := make([]ops.Column, testSchema.NumFields())
			for c, f := range testSchema.Fields() {
				cols[c] = ops.Column{Name: f.Name, Expr: expr.Col(f.Name)}
			}
			cur = g.Add(name, ops.NewProject(cols), s.par, in)
		case "forward":
			cur = g.Add(name, exectest.Identity(), s.par, in)
		case "rebalance":
			cur = g.Add(name, exectest.Identity(), s.par, cur.Rebalance())
		case "hash":
			cur = g.Add(name, exectest.Identity(), s.par, cur.HashBy("k"))
		}
		if s.noChain {
			cur.DisableChaining()
		}
		in = cur.Forward()
	}
	if p.aggregate {
		aggs := []agg.Agg{{Func: agg.Count, As: "n"}, {Func: agg.Sum, Column: "seq", As: "total"}}
		partial, err := agg.New(agg.Options{GroupBy: []string{"k"}, Aggs: aggs, Mode: agg.Partial})
		if err != nil {
			t.Fatal(err)
		}
		final, err := agg.New(agg.Options{GroupBy: []string{"k"}, Aggs: aggs, Mode: agg.Final})
		if err != nil {
			t.Fatal(err)
		}
		pn := g.Add("partial", partial, cur.Parallelism(), in)
		cur = g.Add("final", final, 2, pn.HashBy("k"))
		in = cur.Forward()
	}
	sink := exectest.NewSink()
	defer sink.Release()
	g.Add("sink", sink, cur.Parallelism(), in)
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2, DisableChaining: disable})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()
	for id := uint64(1); ; id++ {
		err := job.TriggerCheckpoint(ctx, arrowexec.Barrier{ID: id})
		if errors.Is(err, arrowexec.ErrSourcesFinished) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range sink.All() {
		if p.aggregate {
			out = append(out, batchStrings(b)...)
		} else {
			for _, r := range rowsOf([]arrow.RecordBatch{b}) {
				out = append(out, r.key())
			}
		}
	}
	slices.Sort(out)
	return out, job.Chains()
}

// batchStrings formats every row of b.
func batchStrings(b arrow.RecordBatch) []string {
	out := make([]string, b.NumRows())
	for i := range out {
		var cols []string
		for _, c := range b.Columns() {
			cols = append(cols, c.ValueStr(i))
		}
		out[i] = strings.Join(cols, "|")
	}
	return out
}
