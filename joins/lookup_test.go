package joins

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

// memTable is a Table of fixed batches whose version the test sets.
type memTable struct {
	mem     memory.Allocator
	rows    []ev
	version string
	loads   int
}

func (m *memTable) Schema() *arrow.Schema                   { return rightSchema }
func (m *memTable) Version(context.Context) (string, error) { return m.version, nil }
func (m *memTable) Load(_ context.Context, mem memory.Allocator) ([]arrow.RecordBatch, error) {
	m.loads++
	var out []arrow.RecordBatch
	for i := 0; i < len(m.rows); i += 37 { // several batches
		out = append(out, batch(mem, m.rows[i:min(i+37, len(m.rows))]))
	}
	return out, nil
}

// runLookup runs the left events of evs through par subtasks of a lookup
// join (each subtask a share of the batches, as a rebalance would give
// it) and returns the emitted rows, sorted; before batch reloadAt (if >=
// 0) it swaps the table's rows for next and advances the clock.
func runLookup(t *testing.T, mem memory.Allocator, tbl *memTable, evs []ev, par, maxBatch int, rng *rand.Rand, reloadAt int, next []ev) []string {
	now := time.Unix(0, 0)
	spec, err := NewLookup(LookupOptions{Keys: []string{"k"}, TableKeys: []string{"k"}, Table: tbl, Check: time.Minute, Clock: func() time.Time { return now }, BatchSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	out := &collector{}
	ctx := context.Background()
	var ops []arrowexec.Operator
	for sub := 0; sub < par; sub++ {
		op, err := spec.New(&arrowexec.Task{Node: "lookup", Subtask: sub, Parallelism: par, MaxParallelism: 128, Mem: mem, Inputs: []*arrow.Schema{leftSchema}})
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Open(ctx); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	var left []ev
	for _, e := range evs {
		if e.side == 0 {
			left = append(left, e)
		}
	}
	for i, n := 0, 0; i < len(left); n++ {
		if n == reloadAt {
			tbl.rows, tbl.version = next, "v2"
			now = now.Add(time.Minute)
		}
		j := min(i+1+rng.IntN(maxBatch), len(left))
		b := batch(mem, left[i:j])
		err := ops[n%par].Process(ctx, 0, b, out)
		b.Release()
		if err != nil {
			t.Fatal(err)
		}
		i = j
	}
	for _, op := range ops {
		if err := op.Finish(ctx, out); err != nil {
			t.Fatal(err)
		}
		if err := op.Close(); err != nil {
			t.Fatal(err)
		}
		if err := op.Close(); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(out.rows)
	return out.rows
}

// TestLookupOracle compares the lookup join with the nested-loop join of
// the stream and the table, across batch sizes and parallelism.
func TestLookupOracle(t *testing.T) {
	for _, par := range []int{1, 2, 3} {
		for _, maxBatch := range []int{1, 9, 400} {
			t.Run(fmt.Sprintf("p=%d/batch=%d", par, maxBatch), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				rng := rand.New(rand.NewPCG(uint64(par), uint64(maxBatch)))
				evs := genEvents(rng, 300, 40, 3, 40)
				var table []ev
				for _, e := range evs {
					if e.side == 1 && rng.IntN(3) == 0 {
						table = append(table, e)
					}
				}
				want := oracle(mem, Options{Type: Regular}, append(leftOf(evs), table...))
				if len(want) < 100 {
					t.Fatalf("oracle has %d rows", len(want))
				}
				tbl := &memTable{rows: table, version: "v1"}
				got := runLookup(t, mem, tbl, evs, par, maxBatch, rng, -1, nil)
				sameRows(t, got, want)
				if tbl.loads != par {
					t.Fatalf("%d loads for %d subtasks, want one each (the version did not change)", tbl.loads, par)
				}
			})
		}
	}
}

// TestLookupReload: after the table's version changes and the check
// interval passed, batches join with the new table.
func TestLookupReload(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(5, 5))
	evs := genEvents(rng, 200, 10, 3, 40)
	left := leftOf(evs)
	var t1, t2 []ev
	for _, e := range evs {
		if e.side == 1 {
			if e.k%2 == 0 {
				t1 = append(t1, e)
			} else {
				t2 = append(t2, e)
			}
		}
	}
	// One subtask, batches of one row: rows before the reload join t1,
	// the others t2.
	tbl := &memTable{rows: t1, version: "v1"}
	got := runLookup(t, mem, tbl, evs, 1, 1, rng, 50, t2)
	want := append(oracle(mem, Options{Type: Regular}, append(slices.Clone(left[:50]), t1...)),
		oracle(mem, Options{Type: Regular}, append(slices.Clone(left[50:]), t2...))...)
	slices.Sort(want)
	sameRows(t, got, want)
	if tbl.loads != 2 {
		t.Fatalf("%d loads, want 2", tbl.loads)
	}
}

func leftOf(evs []ev) []ev {
	var out []ev
	for _, e := range evs {
		if e.side == 0 {
			out = append(out, e)
		}
	}
	return out
}
