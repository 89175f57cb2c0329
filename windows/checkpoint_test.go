package windows

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

// TestCheckpointRestore snapshots a window operator half way, restores the
// snapshot into 1 or 2 new subtasks (key groups redistributed), feeds each
// the rest of its keys' events, and checks that the results before and
// after the restore together match the oracle. Variants: the memory
// backend (the window cache is unbounded: every window is snapshotted from
// the cache), a cache of 3 windows (evicted to the store after every
// batch), and Pebble with that small cache (key group frames hold both
// the store's file and cached windows). Each runs without and with a
// checkpoint directory (Task.SnapshotDir): the Pebble variant then writes
// files there, restored through RestoreState.Dirs.
func TestCheckpointRestore(t *testing.T) {
	for _, base := range kinds {
		for _, cfg := range []struct {
			par   int
			files bool
		}{{1, false}, {2, false}, {3, false}, {1, true}, {2, true}, {3, true}} {
			par, files := cfg.par, cfg.files
			t.Run(fmt.Sprintf("%s/p=%d/files=%v", kindName(base), par, files), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				rng := rand.New(rand.NewPCG(3, uint64(par)))
				evs := genEvents(rng, 2000, 6, 6, 40)
				opts := base
				opts.Keys, opts.Time, opts.Aggs, opts.AllowedLateness = []string{"k"}, "t", testAggs, 10*time.Millisecond
				if par >= 2 {
					opts.CacheWindows = 3 // evict often
				}
				if par == 3 {
					be, err := state.NewPebbleBackend(state.PebbleOptions{Dir: t.TempDir()})
					if err != nil {
						t.Fatal(err)
					}
					opts.Backend = be
					par = 2
				}
				ctx := context.Background()
				half := len(evs) / 2
				d := newDriver(t, mem, opts)
				snapDir := filepath.Join(t.TempDir(), "chk-1")
				if files {
					d.op.t.SnapshotDir = func(id uint64) (string, error) {
						return snapDir, os.MkdirAll(snapDir, 0o755)
					}
				}
				maxT := int64(0)
				for lo := 0; lo < half; lo += 100 {
					bs := toBatches(mem, evs[lo:lo+100], 100)
					d.process(bs[0])
					releaseBatches(bs)
					for _, e := range evs[lo : lo+100] {
						maxT = max(maxT, e.t)
					}
					d.watermark(maxT - 41)
				}
				// Asynchronous snapshot: the view is taken at the barrier,
				// then the operator goes on with the rest of the input (its
				// output discarded) before the snapshot is written; none of
				// that may leak into the snapshot.
				complete, err := d.op.SnapshotStateAsync(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				before := d.out.rows
				later := toBatches(mem, evs[half:], 100)
				for i, b := range later {
					d.process(b)
					for _, e := range evs[half+100*i : min(half+100*(i+1), len(evs))] {
						maxT = max(maxT, e.t)
					}
					d.watermark(maxT - 41)
				}
				releaseBatches(later)
				snap, err := complete(ctx)
				if err != nil {
					t.Fatal(err)
				}
				// Files only for a store on disk (Pebble).
				if wantFiles := files && opts.Backend != nil; wantFiles != (len(snap.KeyGroups) == 0) {
					t.Fatalf("files=%v (Pebble %v) but the snapshot has %d key group blobs", files, opts.Backend != nil, len(snap.KeyGroups))
				}
				if err := d.op.Close(); err != nil {
					t.Fatal(err)
				}
				// Restore into par subtasks.
				all := []collected{{rows: before}}
				rest := toBatches(mem, evs[half:], len(evs)-half)
				defer releaseBatches(rest)
				hashes := make([]uint64, rest[0].NumRows())
				if err := arrowexec.HashColumns([]arrow.Array{rest[0].Column(0)}, hashes); err != nil {
					t.Fatal(err)
				}
				for sub := 0; sub < par; sub++ {
					spec, err := New(opts)
					if err != nil {
						t.Fatal(err)
					}
					lo, hi := arrowexec.KeyGroupRange(128, par, sub)
					rs := &arrowexec.RestoreState{CheckpointID: 1, KeyGroups: map[int][]byte{}, Operator: [][]byte{snap.Operator}}
					if files {
						rs.Dirs = []string{snapDir}
					}
					for kg, b := range snap.KeyGroups {
						if kg >= lo && kg < hi {
							rs.KeyGroups[kg] = b
						}
					}
					op, err := spec.New(&arrowexec.Task{Node: "w", Subtask: sub, Parallelism: par, MaxParallelism: 128, Mem: mem, Inputs: []*arrow.Schema{evSchema}, Restore: rs})
					if err != nil {
						t.Fatal(err)
					}
					d2 := &driver{t: t, op: op.(*operator), ctx: ctx}
					if err := d2.op.Open(ctx); err != nil {
						t.Fatal(err)
					}
					var idx []int32
					for i, h := range hashes {
						if kg := arrowexec.KeyGroupOf(h, 128); kg >= lo && kg < hi {
							idx = append(idx, int32(i))
						}
					}
					mine, err := arrowexec.TakeRecord(mem, rest[0], idx)
					if err != nil {
						t.Fatal(err)
					}
					for off := int64(0); off < mine.NumRows(); off += 100 {
						part := mine.NewSlice(off, min(off+100, mine.NumRows()))
						d2.process(part)
						part.Release()
					}
					mine.Release()
					d2.finish()
					all = append(all, d2.out)
				}
				var merged collected
				for _, c := range all {
					merged.rows = append(merged.rows, c.rows...)
				}
				// No event is late: the watermark lags by more than the
				// disorder.
				compareResults(t, merged.final(), oracle(opts, evs))
			})
		}
	}
}
