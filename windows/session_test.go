package windows

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

// sessionOracle replays session windows by brute force: chunk i arrives
// at watermark wms[i], then the watermark moves to after[i]. It returns
// the last result of every emitted session (update: the session or one
// merged into it had been emitted before), the number of results emitted
// and of late rows.
func sessionOracle(o Options, chunks [][]ev, wms, after []int64) (map[winKey]result, int, int64) {
	gap, lateness := o.Gap.Milliseconds(), o.AllowedLateness.Milliseconds()
	type sess struct {
		start, end       int64
		evs              []ev
		emitted, pending bool
	}
	open := map[string][]*sess{} // by start
	out := map[winKey]result{}
	emitted := 0
	var late int64
	emit := func(k string, s *sess) {
		a := &oracleAcc{}
		for _, e := range s.evs {
			a.add(e)
		}
		r := a.result()
		r.update = s.emitted
		out[winKey{k, s.start, s.end}] = r
		emitted++
		s.emitted, s.pending = true, false
	}
	for i, chunk := range chunks {
		wm := wms[i]
		byKey := map[string][]ev{}
		var keys []string
		for _, e := range chunk {
			k := keyOf(e)
			if byKey[k] == nil {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], e)
		}
		for _, k := range keys {
			es := byKey[k]
			slices.SortStableFunc(es, func(a, b ev) int { return cmpInt(a.t, b.t) })
			var locals []*sess
			for _, e := range es {
				if n := len(locals); n > 0 && e.t <= locals[n-1].end {
					l := locals[n-1]
					l.end = max(l.end, e.t+gap)
					l.evs = append(l.evs, e)
				} else {
					locals = append(locals, &sess{start: e.t, end: e.t + gap, evs: []ev{e}})
				}
			}
			// Open sessions before batch-local ones of the same start.
			type item struct {
				s     *sess
				local bool
			}
			var items []item
			for _, s := range open[k] {
				items = append(items, item{s, false})
			}
			for _, l := range locals {
				items = append(items, item{l, true})
			}
			slices.SortStableFunc(items, func(a, b item) int { return cmpInt(a.s.start, b.s.start) })
			var next []*sess
			for lo := 0; lo < len(items); {
				hi, ce := lo+1, items[lo].s.end
				for hi < len(items) && items[hi].s.start <= ce {
					ce = max(ce, items[hi].s.end)
					hi++
				}
				part := items[lo:hi]
				lo = hi
				hasLocal, hasOpen := false, false
				for _, it := range part {
					hasLocal = hasLocal || it.local
					hasOpen = hasOpen || !it.local
				}
				if !hasLocal {
					next = append(next, part[0].s)
					continue
				}
				if !hasOpen && ce-1+lateness <= wm {
					for _, it := range part {
						late += int64(len(it.s.evs))
					}
					continue
				}
				m := &sess{start: part[0].s.start, end: ce, pending: true}
				for _, it := range part {
					m.evs = append(m.evs, it.s.evs...)
					m.emitted = m.emitted || it.s.emitted
				}
				if ce-1 <= wm {
					emit(k, m)
				}
				next = append(next, m)
			}
			open[k] = next
		}
		wm = after[i]
		for k, ss := range open {
			var keep []*sess
			for _, s := range ss {
				if s.pending && s.end-1 <= wm {
					emit(k, s)
				}
				if s.emitted && !s.pending && s.end-1+lateness <= wm {
					continue // purged
				}
				keep = append(keep, s)
			}
			open[k] = keep
		}
	}
	for k, ss := range open {
		for _, s := range ss {
			if s.pending {
				emit(k, s)
			}
		}
	}
	return out, emitted, late
}

// TestSessionCacheCheckpointOracle runs session windows with late data
// (the watermark lags less than the disorder) and allowed lateness
// through par1 subtasks with a small or unbounded cache, over the memory
// store or Pebble (evicting often, or writing every batch through),
// checkpoints them asynchronously half way (going on with more input
// before the snapshot is written), restores the snapshot into par2
// subtasks and replays the rest. The results before the checkpoint and
// after the restore together, their number and the late rows must match
// the brute-force oracle.
func TestSessionCacheCheckpointOracle(t *testing.T) {
	pars := [][2]int{{1, 2}, {2, 3}, {3, 1}, {2, 2}}
	type cacheCfg struct {
		name   string
		pebble bool
		files  bool
		limit  int
	}
	cfgs := []cacheCfg{
		{"memory", false, false, 0},
		{"memory-cache2", false, false, 2},
		{"pebble-cache3", true, false, 3},
		{"pebble-cache3-files", true, true, 3},
		{"pebble-through", true, false, -1},
	}
	n := 0
	for _, cfg := range cfgs {
		for _, lateness := range []time.Duration{0, 15 * time.Millisecond, 60 * time.Millisecond} {
			ps := pars[n%len(pars)]
			n++
			t.Run(fmt.Sprintf("%s/lateness=%v/par=%d-%d", cfg.name, lateness, ps[0], ps[1]), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				rng := rand.New(rand.NewPCG(uint64(n), uint64(lateness)))
				evs := genEvents(rng, 2500, 6, 6, 200)
				opts := Options{Kind: Session, Gap: 25 * time.Millisecond, Keys: []string{"k"}, Time: "t", Aggs: testAggs,
					AllowedLateness: lateness, CacheWindows: cfg.limit}
				if cfg.pebble {
					be, err := state.NewPebbleBackend(state.PebbleOptions{Dir: t.TempDir()})
					if err != nil {
						t.Fatal(err)
					}
					opts.Backend = be
				}
				var chunks [][]ev
				var wms, after []int64
				wm, maxT := arrowexec.MinWatermark, int64(-1<<62)
				for lo := 0; lo < len(evs); {
					bs := 1 + rng.IntN(80)
					c := evs[lo:min(lo+bs, len(evs))]
					lo += len(c)
					chunks, wms = append(chunks, c), append(wms, wm)
					for _, e := range c {
						maxT = max(maxT, e.t)
					}
					if next := maxT - 30; next > wm && rng.IntN(3) > 0 {
						wm = next
					}
					after = append(after, wm)
				}
				want, wantN, wantLate := sessionOracle(opts, chunks, wms, after)
				if wantLate == 0 {
					t.Fatal("the test produced no late data")
				}
				cut := len(chunks) / 2
				ctx := context.Background()

				// Run 1: chunks up to cut, checkpoint, then two more chunks
				// whose output is lost with the subtasks.
				var late, lost int64
				r1, dirs := startSessionRun(t, mem, opts, ps[0], nil, nil, cfg.files, &late)
				for c := 0; c < cut; c++ {
					r1.chunk(chunks[c], after[c])
				}
				got := slices.Clone(r1.rows())
				for _, d := range r1.subs {
					d.op.lateHook = func(b arrow.RecordBatch) { lost += b.NumRows() }
				}
				completes := make([]func(context.Context) (arrowexec.SubtaskSnapshot, error), len(r1.subs))
				for i, d := range r1.subs {
					var err error
					if completes[i], err = d.op.SnapshotStateAsync(ctx, 1); err != nil {
						t.Fatal(err)
					}
				}
				for c := cut; c < min(cut+2, len(chunks)); c++ {
					r1.chunk(chunks[c], after[c])
				}
				snaps := make([]arrowexec.SubtaskSnapshot, len(r1.subs))
				for i, complete := range completes {
					var err error
					if snaps[i], err = complete(ctx); err != nil {
						t.Fatal(err)
					}
				}
				r1.crash()

				// Run 2: restore at par2, the rest of the input, finish.
				r2, _ := startSessionRun(t, mem, opts, ps[1], snaps, dirs, false, &late)
				for c := cut; c < len(chunks); c++ {
					r2.chunk(chunks[c], after[c])
				}
				r2.finish()
				got = append(got, r2.rows()...)

				var c collected
				c.rows = got
				final := c.final()
				compareResults(t, final, want)
				for w, r := range want {
					if final[w].update != r.update {
						t.Fatalf("%s: last result update=%v, want %v", w, final[w].update, r.update)
					}
				}
				if len(got) != wantN {
					t.Fatalf("%d results, want %d", len(got), wantN)
				}
				if late != wantLate {
					t.Fatalf("%d late rows, want %d", late, wantLate)
				}
			})
		}
	}
}

// startSessionRun starts a lateRun that counts late rows into late and,
// with files, snapshots into a directory per subtask (returned).
func startSessionRun(t *testing.T, mem memory.Allocator, opts Options, par int, restore []arrowexec.SubtaskSnapshot, restoreDirs []string, files bool, late *int64) (*lateRun, []string) {
	t.Helper()
	var rs *lateSnap
	if restore != nil {
		rs = &lateSnap{win: restore}
	}
	r := startLateRun(t, mem, opts, nil, par, rs, 1, restoreDirs...)
	var dirs []string
	for _, d := range r.subs {
		d.op.lateHook = func(b arrow.RecordBatch) { *late += b.NumRows() }
		if files {
			dir := filepath.Join(t.TempDir(), "chk-1")
			dirs = append(dirs, dir)
			d.op.t.SnapshotDir = func(uint64) (string, error) { return dir, os.MkdirAll(dir, 0o755) }
		}
	}
	return r, dirs
}

// rows returns what the subtasks of r emitted.
func (r *lateRun) rows() []struct {
	w winKey
	r result
} {
	var out []struct {
		w winKey
		r result
	}
	for _, d := range r.subs {
		out = append(out, d.out.rows...)
	}
	return out
}
