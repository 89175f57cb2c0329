package arrowexec_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
)

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "seq", Type: arrow.PrimitiveTypes.Int64},
	{Name: "k", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "v", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
}, nil)

type row struct {
	seq int64
	k   *int64
	s   *string
	v   *float64
	b   *bool
}

func (r row) key() string {
	f := func(p any) string {
		switch x := p.(type) {
		case *int64:
			if x == nil {
				return "∅"
			}
			return fmt.Sprint(*x)
		case *string:
			if x == nil {
				return "∅"
			}
			return "'" + *x + "'"
		case *float64:
			if x == nil {
				return "∅"
			}
			return fmt.Sprint(*x)
		case *bool:
			if x == nil {
				return "∅"
			}
			return fmt.Sprint(*x)
		}
		return "?"
	}
	return fmt.Sprintf("%d|%s|%s|%s|%s", r.seq, f(r.k), f(r.s), f(r.v), f(r.b))
}

// randomBatches builds n rows split into batches of batchSize, with nulls
// and keys of the given cardinality. It returns the batches and the rows as
// plain Go values (the oracle's view).
func randomBatches(mem memory.Allocator, rng *rand.Rand, n, batchSize, card int) ([]arrow.RecordBatch, []row) {
	var rows []row
	var out []arrow.RecordBatch
	bld := array.NewRecordBuilder(mem, testSchema)
	defer bld.Release()
	for i := 0; i < n; i++ {
		r := row{seq: int64(i)}
		if rng.IntN(10) > 0 {
			k := int64(rng.IntN(card)) - int64(card/2)
			r.k = &k
		}
		if rng.IntN(10) > 0 {
			s := strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN(4))
			r.s = &s
		}
		if rng.IntN(10) > 0 {
			v := rng.NormFloat64()
			r.v = &v
		}
		if rng.IntN(10) > 0 {
			b := rng.IntN(2) == 0
			r.b = &b
		}
		rows = append(rows, r)
		bld.Field(0).(*array.Int64Builder).Append(r.seq)
		if r.k == nil {
			bld.Field(1).AppendNull()
		} else {
			bld.Field(1).(*array.Int64Builder).Append(*r.k)
		}
		if r.s == nil {
			bld.Field(2).AppendNull()
		} else {
			bld.Field(2).(*array.StringBuilder).Append(*r.s)
		}
		if r.v == nil {
			bld.Field(3).AppendNull()
		} else {
			bld.Field(3).(*array.Float64Builder).Append(*r.v)
		}
		if r.b == nil {
			bld.Field(4).AppendNull()
		} else {
			bld.Field(4).(*array.BooleanBuilder).Append(*r.b)
		}
		if (i+1)%batchSize == 0 || i == n-1 {
			out = append(out, bld.NewRecordBatch())
		}
	}
	return out, rows
}

func rowsOf(bs []arrow.RecordBatch) []row {
	var rows []row
	for _, b := range bs {
		seq := b.Column(0).(*array.Int64)
		k := b.Column(1).(*array.Int64)
		s := b.Column(2).(*array.String)
		v := b.Column(3).(*array.Float64)
		bo := b.Column(4).(*array.Boolean)
		for i := 0; i < int(b.NumRows()); i++ {
			r := row{seq: seq.Value(i)}
			if k.IsValid(i) {
				x := k.Value(i)
				r.k = &x
			}
			if s.IsValid(i) {
				x := s.Value(i)
				r.s = &x
			}
			if v.IsValid(i) {
				x := v.Value(i)
				r.v = &x
			}
			if bo.IsValid(i) {
				x := bo.Value(i)
				r.b = &x
			}
			rows = append(rows, r)
		}
	}
	return rows
}

func sortedKeys(rows []row) []string {
	ks := make([]string, len(rows))
	for i, r := range rows {
		ks[i] = r.key()
	}
	sort.Strings(ks)
	return ks
}

func release(bs []arrow.RecordBatch) {
	for _, b := range bs {
		b.Release()
	}
}

// TestExchanges runs source -> identity -> sink over every edge kind, batch
// size and parallelism, and checks the multiset of rows and, for hash
// edges, that each key lives on exactly one subtask.
func TestExchanges(t *testing.T) {
	for _, kind := range []arrowexec.PartitionKind{arrowexec.Forward, arrowexec.Rebalance, arrowexec.Broadcast, arrowexec.Hash} {
		for _, bs := range []int{1, 7, 1024, 65536} {
			for _, p := range []int{1, 2, 4} {
				t.Run(fmt.Sprintf("%v/batch=%d/p=%d", kind, bs, p), func(t *testing.T) {
					mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
					defer mem.AssertSize(t, 0)
					rng := rand.New(rand.NewPCG(uint64(bs), uint64(p)))
					n := 3000
					if bs == 65536 {
						n = 70000
					}
					batches, rows := randomBatches(mem, rng, n, bs, 50)
					src := exectest.NewSource(testSchema, batches)
					release(batches)
					defer src.Release()
					sink := exectest.NewSink()
					defer sink.Release()

					g := arrowexec.NewGraph()
					s := g.AddSource("src", src, p)
					var in arrowexec.Input
					switch kind {
					case arrowexec.Forward:
						in = s.Forward()
					case arrowexec.Rebalance:
						in = s.Rebalance()
					case arrowexec.Broadcast:
						in = s.Broadcast()
					case arrowexec.Hash:
						in = s.HashBy("k", "s")
					}
					mid := g.Add("mid", exectest.Identity(), p, in)
					g.Add("sink", sink, p, mid.Forward())
					job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 2})
					if err != nil {
						t.Fatal(err)
					}
					if err := job.Run(context.Background()); err != nil {
						t.Fatal(err)
					}
					want := rows
					if kind == arrowexec.Broadcast {
						want = nil
						for i := 0; i < p; i++ {
							want = append(want, rows...)
						}
					}
					got := rowsOf(sink.All())
					if a, b := sortedKeys(got), sortedKeys(want); strings.Join(a, "\n") != strings.Join(b, "\n") {
						t.Fatalf("rows differ: got %d rows, want %d", len(a), len(b))
					}
					if len(sink.Finished) != p {
						t.Fatalf("finished subtasks = %d, want %d", len(sink.Finished), p)
					}
					if kind == arrowexec.Hash {
						owner := map[string]int{}
						for sub, bs := range sink.Batches {
							for _, r := range rowsOf(bs) {
								key := row{k: r.k, s: r.s}.key()
								if o, ok := owner[key]; ok && o != sub {
									t.Fatalf("key %s on subtasks %d and %d", key, o, sub)
								}
								owner[key] = sub
							}
						}
					}
				})
			}
		}
	}
}

// TestHashDeterministic pins hashes of a few keys: key groups decide where
// keyed state lives in checkpoints, so the hash function must never change
// silently (a change needs a checkpoint format migration).
func TestHashDeterministic(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ib := array.NewInt64Builder(mem)
	ib.AppendValues([]int64{0, 1, -1, 42}, nil)
	ib.AppendNull()
	a := ib.NewArray()
	defer a.Release()
	ib.Release()
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"", "a", "view", "purchase", "x"}, nil)
	s := sb.NewArray()
	defer s.Release()
	sb.Release()
	h := make([]uint64, 5)
	if err := arrowexec.HashColumns([]arrow.Array{a}, h); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{0x623d7033fff4157d, 0x4db51dacd3949b0f, 0x269619b44b543ca8, 0x6394f952aac719b, 0xa8ac947486f55ce5}; !slices.Equal(h, want) {
		t.Fatalf("int64 hashes changed: %#x", h)
	}
	if err := arrowexec.HashColumns([]arrow.Array{a, s}, h); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{0x602798bcdeba4d2e, 0x9cb34c8d25bd10a3, 0xa24ac097198e6c7a, 0x5d085ee902612e59, 0xf6e124f06653b089}; !slices.Equal(h, want) {
		t.Fatalf("(int64, string) hashes changed: %#x", h)
	}
}

func TestKeyGroupRanges(t *testing.T) {
	for _, maxP := range []int{1, 7, 128} {
		for p := 1; p <= maxP && p <= 16; p++ {
			owned := make([]int, maxP)
			for s := 0; s < p; s++ {
				lo, hi := arrowexec.KeyGroupRange(maxP, p, s)
				for kg := lo; kg < hi; kg++ {
					owned[kg]++
					if got := arrowexec.SubtaskOfKeyGroup(kg, maxP, p); got != s {
						t.Fatalf("maxP=%d p=%d: key group %d in range of %d but maps to %d", maxP, p, kg, s, got)
					}
				}
			}
			for kg, c := range owned {
				if c != 1 {
					t.Fatalf("maxP=%d p=%d: key group %d owned %d times", maxP, p, kg, c)
				}
			}
		}
	}
}

// TestFirstErrorStopsJob: an operator failing mid-stream stops every subtask,
// the error names node and subtask, and nothing leaks.
func TestFirstErrorStopsJob(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	batches, _ := randomBatches(mem, rng, 20000, 100, 10)
	src := exectest.NewSource(testSchema, batches)
	release(batches)
	defer src.Release()
	sink := exectest.NewSink()
	defer sink.Release()
	boom := errors.New("boom")
	var calls sync.Map
	fail := &exectest.Func{Fn: func(task *arrowexec.Task, b arrow.RecordBatch) (arrow.RecordBatch, error) {
		n, _ := calls.LoadOrStore(task.Subtask, new(int))
		*n.(*int)++
		if task.Subtask == 1 && *n.(*int) == 5 {
			return nil, boom
		}
		b.Retain()
		return b, nil
	}}
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 2)
	f := g.Add("fail", fail, 3, s.HashBy("k"))
	g.Add("sink", sink, 2, f.Rebalance())
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = job.Run(context.Background())
	var te *arrowexec.TaskError
	if !errors.As(err, &te) || te.Node != "fail" || te.Subtask != 1 || !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom from fail/1", err)
	}
	if got := err.Error(); got != `node "fail" subtask 1: boom` {
		t.Fatalf("message %q", got)
	}
}

// TestCancel: cancelling the context stops a job whose sink blocks forever.
func TestCancel(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(3, 4))
	batches, _ := randomBatches(mem, rng, 5000, 10, 10)
	src := exectest.NewSource(testSchema, batches)
	release(batches)
	defer src.Release()
	ctx, cancel := context.WithCancel(context.Background())
	block := &exectest.Func{Fn: func(task *arrowexec.Task, b arrow.RecordBatch) (arrow.RecordBatch, error) {
		cancel()
		<-ctx.Done()
		return nil, nil
	}}
	sink := exectest.NewSink()
	defer sink.Release()
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 2)
	f := g.Add("block", block, 2, s.Rebalance())
	g.Add("sink", sink, 1, f.Rebalance())
	job, err := g.Compile(arrowexec.RunOptions{Mem: mem, QueueDepth: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("job did not stop after cancel")
	}
}

// TestPlanErrors: graph mistakes are reported before anything runs.
func TestPlanErrors(t *testing.T) {
	src := exectest.NewSource(testSchema, nil)
	cases := []struct {
		name string
		mk   func(g *arrowexec.Graph)
		want string
	}{
		{"unknown key", func(g *arrowexec.Graph) {
			s := g.AddSource("src", src, 1)
			g.Add("x", exectest.NewSink(), 1, s.HashBy("nope"))
		}, `arrowexec: hash edge "src" -> "x": unknown key column "nope" (have ["seq" "k" "s" "v" "b"])`},
		{"forward parallelism", func(g *arrowexec.Graph) {
			s := g.AddSource("src", src, 2)
			g.Add("x", exectest.NewSink(), 3, s.Forward())
		}, `arrowexec: forward edge "src" -> "x" needs equal parallelism, have 2 and 3`},
		{"duplicate", func(g *arrowexec.Graph) {
			g.AddSource("src", src, 1)
			g.AddSource("src", src, 1)
		}, `arrowexec: duplicate node name "src"`},
		{"read from sink", func(g *arrowexec.Graph) {
			s := g.AddSource("src", src, 1)
			k := g.Add("sink", exectest.NewSink(), 1, s.Forward())
			g.Add("x", exectest.Identity(), 1, k.Forward())
		}, `arrowexec: node "x" reads from "sink", a sink with no output`},
	}
	for _, c := range cases {
		g := arrowexec.NewGraph()
		c.mk(g)
		err := g.Build()
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: err = %v\nwant %s", c.name, err, c.want)
		}
	}
}
