package joins

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// joinCases are the joins every oracle test runs.
var joinCases = []struct {
	name string
	o    Options
}{
	{"interval", Options{Type: Interval, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "rt", Lower: -30 * time.Millisecond, Upper: 50 * time.Millisecond}},
	{"interval-after", Options{Type: Interval, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "rt", Lower: 10 * time.Millisecond, Upper: 80 * time.Millisecond}},
	{"window-tumbling", Options{Type: Window, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "rt", Size: 100 * time.Millisecond}},
	{"window-sliding", Options{Type: Window, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "rt", Size: 90 * time.Millisecond, Slide: 30 * time.Millisecond}},
	{"regular", Options{Type: Regular, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, TTL: time.Hour}},
}

// TestJoinOracle compares every join with the nested-loop oracle on
// out-of-order input (no row late: the watermark lags by more than the
// disorder), across batch sizes, parallelism 1/2/3 and both backends.
func TestJoinOracle(t *testing.T) {
	for _, jc := range joinCases {
		for _, be := range []string{"memory", "pebble"} {
			for _, par := range []int{1, 2, 3} {
				for _, maxBatch := range []int{1, 7, 500} {
					if be == "pebble" && maxBatch == 1 {
						continue // slow and covered by memory
					}
					t.Run(fmt.Sprintf("%s/%s/p=%d/batch=%d", jc.name, be, par, maxBatch), func(t *testing.T) {
						mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
						defer mem.AssertSize(t, 0)
						rng := rand.New(rand.NewPCG(uint64(par), uint64(maxBatch)))
						evs := genEvents(rng, 400, 9, 3, 40)
						o := jc.o
						o.Backend = backend(t, be)
						o.BatchSize = 50
						want := oracle(mem, o, evs)
						if len(want) < 100 {
							t.Fatalf("oracle has %d rows: the test data joins too little", len(want))
						}
						ss := steps(mem, rng, evs, maxBatch, 41)
						defer releaseSteps(ss)
						got := runJoin(t, mem, o, ss, par, -1, 0, false)
						sameRows(t, got, want)
					})
				}
			}
		}
	}
}

// TestJoinCheckpointRestore checkpoints at a random step (the snapshot
// written a few steps later, as the runtime's asynchronous snapshot is),
// crashes, and restores at another parallelism (key groups
// redistributed): the output committed before the checkpoint plus the
// restored run's equals the uninterrupted run's and the oracle. The
// Pebble variant with a checkpoint directory writes files (restored from
// RestoreState.Dirs).
func TestJoinCheckpointRestore(t *testing.T) {
	for _, jc := range joinCases {
		for _, cfg := range []struct {
			be        string
			par, par2 int
			files     bool
		}{{"memory", 1, 3, false}, {"memory", 3, 2, false}, {"memory", 2, 1, false}, {"pebble", 2, 3, true}, {"pebble", 3, 1, false}} {
			t.Run(fmt.Sprintf("%s/%s/p=%d->%d/files=%v", jc.name, cfg.be, cfg.par, cfg.par2, cfg.files), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				rng := rand.New(rand.NewPCG(uint64(cfg.par*10+cfg.par2), 7))
				evs := genEvents(rng, 300, 7, 3, 40)
				o := jc.o
				o.BatchSize = 64
				want := oracle(mem, o, evs)
				ss := steps(mem, rng, evs, 20, 41)
				defer releaseSteps(ss)
				o.Backend = backend(t, cfg.be)
				whole := runJoin(t, mem, o, ss, cfg.par, -1, 0, false)
				sameRows(t, whole, want)
				for range 3 {
					crashAt := rng.IntN(len(ss) - 1)
					o.Backend = backend(t, cfg.be)
					got := runJoin(t, mem, o, ss, cfg.par, crashAt, cfg.par2, cfg.files)
					sameRows(t, got, whole)
				}
			})
		}
	}
}
