package windows

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/sinks"
	"github.com/riffle-dev/riffle/sources/parquet"
)

// lateRec identifies one late side-output record: the event (u is unique
// per event) and the window it was late for.
type lateRec struct {
	u     int64
	k     string
	t     int64
	start int64
}

func (r lateRec) String() string { return fmt.Sprintf("u=%d k=%s t=%d win=%d", r.u, r.k, r.t, r.start) }

// lateSet is the brute-force oracle of the side output: every (event,
// window) pair whose window was purged by the watermark the event's chunk
// saw (wms[i] is the watermark before chunk i).
func lateSet(o Options, chunks [][]ev, wms []int64) []lateRec {
	size, slide, lateness := o.Size.Milliseconds(), o.Slide.Milliseconds(), o.AllowedLateness.Milliseconds()
	if o.Kind == Tumbling {
		slide = size
	}
	var out []lateRec
	for i, c := range chunks {
		for _, e := range c {
			for _, w := range fixedWindows(e.t, size, slide) {
				if w[1]-1+lateness <= wms[i] {
					out = append(out, lateRec{u: e.u, k: keyOf(e), t: e.t, start: w[0]})
				}
			}
		}
	}
	return out
}

// readLate reads every published late record of dir and fails on files
// left in progress.
func readLate(t *testing.T, mem memory.Allocator, dir string, format sinks.Format) []lateRec {
	t.Helper()
	return readLateFiles(t, mem, dir, format, false)
}

// readLateFiles reads the published late records of dir; with
// skipHidden, files in progress are skipped, else they fail the test.
func readLateFiles(t *testing.T, mem memory.Allocator, dir string, format sinks.Format, skipHidden bool) []lateRec {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []lateRec
	for _, de := range ents {
		n := de.Name()
		if sinks.IsPublishLog(n) {
			continue // the sink's publish log (sinks/publog.go)
		}
		if strings.HasPrefix(n, ".") {
			if skipHidden {
				continue
			}
			t.Fatalf("left in progress: %s", n)
		}
		if !strings.HasPrefix(n, "late-") || !strings.HasSuffix(n, "."+string(format)) {
			t.Fatalf("unexpected file %s", n)
		}
		p := filepath.Join(dir, n)
		if format == sinks.JSONL {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				ws, err := time.Parse(time.RFC3339Nano, m[LateWindowStart].(string))
				if err != nil {
					t.Fatal(err)
				}
				k := "<null>"
				if s, ok := m["k"].(string); ok {
					k = s
				}
				if m[LateReason] != ReasonLate {
					t.Fatalf("reason %v", m[LateReason])
				}
				out = append(out, lateRec{u: int64(m["u"].(float64)), k: k, t: int64(m["t"].(float64)), start: ws.UnixMilli()})
			}
			f.Close()
			continue
		}
		eachParquetBatch(t, mem, []string{p}, func(b arrow.RecordBatch) {
			sc := b.Schema()
			kc := b.Column(sc.FieldIndices("k")[0]).(*array.String)
			tc := b.Column(sc.FieldIndices("t")[0]).(*array.Int64)
			uc := b.Column(sc.FieldIndices("u")[0]).(*array.Int64)
			wc := b.Column(sc.FieldIndices(LateWindowStart)[0]).(*array.Timestamp)
			for i := 0; i < int(b.NumRows()); i++ {
				k := "<null>"
				if kc.IsValid(i) {
					k = kc.Value(i)
				}
				out = append(out, lateRec{u: uc.Value(i), k: k, t: tc.Value(i), start: int64(wc.Value(i))})
			}
		})
	}
	return out
}

// eachParquetBatch reads Parquet files and calls fn on every batch (then
// released).
func eachParquetBatch(t *testing.T, mem memory.Allocator, paths []string, fn func(arrow.RecordBatch)) {
	t.Helper()
	src, err := parquet.New(parquet.Options{Paths: paths})
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Open(context.Background(), &arrowexec.Task{Parallelism: 1, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		b, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(b)
		b.Release()
	}
}

// compareLate checks that got and want are the same multiset.
func compareLate(t *testing.T, got, want []lateRec) {
	t.Helper()
	cnt := map[lateRec]int{}
	for _, r := range want {
		cnt[r]++
	}
	for _, r := range got {
		cnt[r]--
	}
	var diffs []string
	for r, c := range cnt {
		switch {
		case c > 0:
			diffs = append(diffs, fmt.Sprintf("missing %s (x%d)", r, c))
		case c < 0:
			diffs = append(diffs, fmt.Sprintf("extra %s (x%d)", r, -c))
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... %d more", len(diffs)-20))
		}
		t.Fatalf("%d late records, want %d:\n%s", len(got), len(want), strings.Join(diffs, "\n"))
	}
}

// newLateSink returns the file sink a job wires to the late side output:
// late-<subtask>-<seq> files committed with checkpoints.
func newLateSink(t testing.TB, dir string, format sinks.Format, partSize int64) *sinks.FileSpec {
	t.Helper()
	s, err := sinks.NewFile(sinks.FileOptions{Dir: dir, Format: format, Prefix: "late", PartSize: partSize, Commit: sinks.CommitOnCheckpoint})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// attachLate opens subtask sub (of par) of the late sink and routes d's
// late side output to it; rs restores it (the late sink states of every
// subtask of the previous run).
func (d *driver) attachLate(mem memory.Allocator, sink *sinks.FileSpec, sub, par int, rs *arrowexec.RestoreState) {
	op, err := sink.New(&arrowexec.Task{Node: "w-late", Subtask: sub, Parallelism: par, MaxParallelism: 128, Mem: mem,
		Inputs: []*arrow.Schema{d.op.p.late}, Metrics: &arrowexec.TaskMetrics{}, Restore: rs})
	if err != nil {
		d.t.Fatal(err)
	}
	if err := op.Open(d.ctx); err != nil {
		d.t.Fatal(err)
	}
	d.late = op
}

// lateRun is one run of a window operator at some parallelism, driven by
// hand: each chunk is routed to the subtask owning its key groups, every
// subtask sees every watermark; each subtask's late rows go to its subtask
// of the late sink (a forward side edge).
type lateRun struct {
	t    *testing.T
	mem  memory.Allocator
	subs []*driver
}

// lateSnap is a checkpoint of a lateRun: the window operators' and the
// late sinks' snapshots.
type lateSnap struct {
	win, late []arrowexec.SubtaskSnapshot
}

// startLateRun starts par subtasks, restored from restore if not nil
// (dirs: the snapshot directories of a files-mode checkpoint), with the
// late sink late makes (one per run, as a job plans; nil: none).
func startLateRun(t *testing.T, mem memory.Allocator, opts Options, late func() *sinks.FileSpec, par int, restore *lateSnap, id uint64, dirs ...string) *lateRun {
	t.Helper()
	spec, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := &lateRun{t: t, mem: mem}
	ctx := context.Background()
	var lateSpec *sinks.FileSpec
	if late != nil {
		lateSpec = late()
	}
	for sub := 0; sub < par; sub++ {
		tk := &arrowexec.Task{Node: "w", Subtask: sub, Parallelism: par, MaxParallelism: 128, Mem: mem, Inputs: []*arrow.Schema{evSchema}}
		if restore != nil {
			lo, hi := arrowexec.KeyGroupRange(128, par, sub)
			rs := &arrowexec.RestoreState{CheckpointID: id, KeyGroups: map[int][]byte{}, Dirs: dirs}
			for _, s := range restore.win {
				rs.Operator = append(rs.Operator, s.Operator)
				for kg, b := range s.KeyGroups {
					if kg >= lo && kg < hi {
						rs.KeyGroups[kg] = b
					}
				}
			}
			tk.Restore = rs
		}
		op, err := spec.New(tk)
		if err != nil {
			t.Fatal(err)
		}
		d := &driver{t: t, op: op.(*operator), ctx: ctx}
		if err := d.op.Open(ctx); err != nil {
			t.Fatal(err)
		}
		if late != nil {
			var lrs *arrowexec.RestoreState
			if restore != nil {
				lrs = &arrowexec.RestoreState{CheckpointID: id}
				for _, s := range restore.late {
					lrs.Operator = append(lrs.Operator, s.Operator)
				}
			}
			d.attachLate(mem, lateSpec, sub, par, lrs)
		}
		r.subs = append(r.subs, d)
	}
	return r
}

// chunk processes one chunk of events, then advances the watermark to wm.
func (r *lateRun) chunk(evs []ev, wm int64) {
	bs := toBatches(r.mem, evs, len(evs))
	defer releaseBatches(bs)
	b := bs[0]
	hashes := make([]uint64, b.NumRows())
	if err := arrowexec.HashColumns([]arrow.Array{b.Column(0)}, hashes); err != nil {
		r.t.Fatal(err)
	}
	par := len(r.subs)
	for sub, d := range r.subs {
		lo, hi := arrowexec.KeyGroupRange(128, par, sub)
		var idx []int32
		for i, h := range hashes {
			if kg := arrowexec.KeyGroupOf(h, 128); kg >= lo && kg < hi {
				idx = append(idx, int32(i))
			}
		}
		if len(idx) > 0 {
			mine, err := arrowexec.TakeRecord(r.mem, b, idx)
			if err != nil {
				r.t.Fatal(err)
			}
			d.process(mine)
			mine.Release()
		}
		d.watermark(wm)
	}
}

// snapshot snapshots every window subtask, then every late sink subtask
// (the barrier reaches the sink after the window forwarded it).
func (r *lateRun) snapshot(id uint64) *lateSnap {
	out := &lateSnap{}
	for _, d := range r.subs {
		s, err := d.op.SnapshotState(d.ctx, id)
		if err != nil {
			r.t.Fatal(err)
		}
		out.win = append(out.win, s)
		if d.late == nil {
			continue
		}
		ls, err := d.late.(arrowexec.Checkpointer).SnapshotState(d.ctx, id)
		if err != nil {
			r.t.Fatal(err)
		}
		out.late = append(out.late, ls)
	}
	return out
}

func (r *lateRun) notify(id uint64) {
	for _, d := range r.subs {
		if err := d.late.(arrowexec.CheckpointListener).NotifyCheckpointComplete(d.ctx, id); err != nil {
			r.t.Fatal(err)
		}
	}
}

// crash closes every subtask without Finish.
func (r *lateRun) crash() {
	for _, d := range r.subs {
		if err := d.op.Close(); err != nil {
			r.t.Fatal(err)
		}
		if d.late == nil {
			continue
		}
		if err := d.late.Close(); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *lateRun) finish() {
	for _, d := range r.subs {
		d.finish()
	}
}

// TestLateExactlyOnce runs a sliding window with late data through
// checkpoints and crashes (Close without Finish) at one parallelism,
// restores at others, and checks that the published late records are
// exactly the brute-force set of late (event, window) pairs: none missing,
// none twice, nothing left in progress. Checkpoints complete or not at
// random, so recovery meets pre-committed parts still pending as well as
// published ones; small parts make the sink roll between checkpoints.
func TestLateExactlyOnce(t *testing.T) {
	pars := [][]int{{1, 2, 1}, {2, 3, 1}, {3, 1, 2}}
	for _, format := range []sinks.Format{sinks.JSONL, sinks.Parquet} {
		for pi, ps := range pars {
			for seed := uint64(0); seed < 3; seed++ {
				t.Run(fmt.Sprintf("%s/par=%v/seed=%d", format, ps, seed), func(t *testing.T) {
					mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
					defer mem.AssertSize(t, 0)
					rng := rand.New(rand.NewPCG(seed, uint64(pi)))
					evs := genEvents(rng, 2400, 7, 6, 300)
					for i := range evs {
						evs[i].u = int64(i)
					}
					dir := filepath.Join(t.TempDir(), "late")
					opts := Options{Kind: Sliding, Size: 40 * time.Millisecond, Slide: 20 * time.Millisecond, Keys: []string{"k"}, Time: "t",
						Aggs: []Agg{{Func: Count, As: "n"}}, AllowedLateness: 20 * time.Millisecond}
					lateSink := func() *sinks.FileSpec { return newLateSink(t, dir, format, 2<<10) }
					if seed == 1 {
						opts.Kind, opts.Slide = Tumbling, 0
					}
					var chunks [][]ev
					var wms, after []int64
					wm, maxT := arrowexec.MinWatermark, int64(-1<<62)
					for lo := 0; lo < len(evs); lo += 60 {
						c := evs[lo:min(lo+60, len(evs))]
						chunks, wms = append(chunks, c), append(wms, wm)
						for _, e := range c {
							maxT = max(maxT, e.t)
						}
						if maxT-30 > wm {
							wm = maxT - 30
						}
						after = append(after, wm)
					}
					want := lateSet(opts, chunks, wms)
					if len(want) < 100 {
						t.Fatalf("only %d late records: the test needs late data", len(want))
					}
					// Each run processes chunks from its restore point,
					// takes checkpoints every few chunks (completed with
					// probability 1/2), and crashes a few chunks after the
					// one it restores the next run from.
					var id uint64
					var restore *lateSnap
					var restoreID uint64
					next := 0
					for run, par := range ps {
						r := startLateRun(t, mem, opts, lateSink, par, restore, restoreID)
						last := run == len(ps)-1
						stop := len(chunks)
						if !last {
							stop = min(len(chunks), next+len(chunks)/len(ps)+rng.IntN(6))
						}
						var pick *lateSnap
						pickID, pickNext := uint64(0), next
						for c := next; c < stop; c++ {
							r.chunk(chunks[c], after[c])
							if rng.IntN(4) != 0 {
								continue
							}
							id++
							snap := r.snapshot(id)
							if !last && c < stop-2 || pick == nil {
								pick, pickID, pickNext = snap, id, c+1
							}
							if rng.IntN(2) == 0 {
								r.notify(id)
							}
						}
						if last {
							r.finish()
							break
						}
						r.crash()
						if pick != nil {
							restore, restoreID, next = pick, pickID, pickNext
						} // else: no checkpoint, restart from the same point

					}
					compareLate(t, readLate(t, mem, dir, format), want)
				})
			}
		}
	}
}

// TestLateExactlyOnceRuntime runs a windowed job in the runtime with one
// source and a hash exchange: checkpoints 1 to 3 are taken while it runs
// (1 and 2 completed, 3 pre-committed only), the job is cancelled (a
// crash), and a job at another parallelism restores from one of them with
// RunOptions.Restore and runs to the end. The published late records are
// exactly the brute-force late set of the input.
func TestLateExactlyOnceRuntime(t *testing.T) {
	for _, format := range []sinks.Format{sinks.JSONL, sinks.Parquet} {
		for _, c := range []struct {
			par1, par2 int
			from       uint64
		}{{1, 3, 3}, {3, 2, 1}, {2, 1, 2}, {2, 3, 3}} {
			t.Run(fmt.Sprintf("%s/%d-to-%d/from=%d", format, c.par1, c.par2, c.from), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				rng := rand.New(rand.NewPCG(uint64(c.par1), uint64(c.par2)))
				evs := genEvents(rng, 3000, 9, 6, 300)
				for i := range evs {
					evs[i].u = int64(i)
				}
				const bs, lag = 50, 30
				batches := toBatches(mem, evs, bs)
				defer releaseBatches(batches)
				dir := filepath.Join(t.TempDir(), "late")
				opts := Options{Kind: Sliding, Size: 40 * time.Millisecond, Slide: 20 * time.Millisecond, Keys: []string{"k"}, Time: "t",
					Aggs: []Agg{{Func: Count, As: "n"}}, AllowedLateness: 20 * time.Millisecond}

				var chunks [][]ev
				var wms []int64
				wm := arrowexec.MinWatermark
				for lo := 0; lo < len(evs); lo += bs {
					ch := evs[lo:min(lo+bs, len(evs))]
					chunks, wms = append(chunks, ch), append(wms, wm)
					for _, e := range ch {
						wm = max(wm, e.t-lag)
					}
				}
				want := lateSet(opts, chunks, wms)

				var mu sync.Mutex
				snaps := map[uint64]map[string]map[int]arrowexec.SubtaskSnapshot{}
				run := func(par int, src *exectest.Replay, restore uint64, during func(job *arrowexec.Job)) error {
					spec, err := New(opts)
					if err != nil {
						t.Fatal(err)
					}
					sink := exectest.NewSink()
					defer sink.Release()
					g := arrowexec.NewGraph()
					s := g.AddSource("src", src, 1)
					w := g.Add("window", spec, par, s.HashBy("k"))
					g.Add("sink", sink, par, w.Forward())
					g.Add("late", newLateSink(t, dir, format, 4<<10), par, w.Side(LateOutput).Forward())
					ro := arrowexec.RunOptions{Mem: mem, QueueDepth: 2,
						OnSnapshot: func(node string, subtask int, id uint64, snap arrowexec.SubtaskSnapshot) error {
							mu.Lock()
							defer mu.Unlock()
							if snaps[id] == nil {
								snaps[id] = map[string]map[int]arrowexec.SubtaskSnapshot{}
							}
							if snaps[id][node] == nil {
								snaps[id][node] = map[int]arrowexec.SubtaskSnapshot{}
							}
							snaps[id][node][subtask] = snap
							return nil
						}}
					if restore != 0 {
						mu.Lock()
						cp := snaps[restore]
						mu.Unlock()
						prev := len(cp["window"])
						ro.Restore = func(node string, subtask, parallelism int) *arrowexec.RestoreState {
							rs := &arrowexec.RestoreState{CheckpointID: restore, KeyGroups: map[int][]byte{}}
							switch node {
							case "src":
								rs.Operator = [][]byte{cp["src"][0].Operator}
							case "late":
								for i := 0; i < prev; i++ {
									rs.Operator = append(rs.Operator, cp["late"][i].Operator)
								}
							case "window":
								lo, hi := arrowexec.KeyGroupRange(g.MaxParallelism(), parallelism, subtask)
								for i := 0; i < prev; i++ {
									rs.Operator = append(rs.Operator, cp["window"][i].Operator)
									for kg, b := range cp["window"][i].KeyGroups {
										if kg >= lo && kg < hi {
											rs.KeyGroups[kg] = b
										}
									}
								}
							default:
								return nil
							}
							return rs
						}
					}
					job, err := g.Compile(ro)
					if err != nil {
						t.Fatal(err)
					}
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					done := make(chan error, 1)
					go func() { done <- job.Run(ctx) }()
					if during != nil {
						during(job)
						cancel()
					}
					return <-done
				}
				complete := func(id uint64, par int) {
					// Wait until the source and every window subtask
					// snapshotted checkpoint id.
					deadline := time.Now().Add(30 * time.Second)
					for {
						mu.Lock()
						ok := len(snaps[id]["src"]) == 1 && len(snaps[id]["window"]) == par && len(snaps[id]["late"]) == par
						mu.Unlock()
						if ok {
							return
						}
						if time.Now().After(deadline) {
							t.Fatalf("checkpoint %d not complete", id)
						}
						time.Sleep(time.Millisecond)
					}
				}
				// The first job serves batches up to limits the test raises:
				// checkpoint i at i*hold/4, checkpoints 1 and 2 complete,
				// 3 is only pre-committed, crash at hold. Batches after a
				// completed checkpoint deliver its completion (in-band,
				// before the next message).
				hold := len(batches) * 2 / 3
				src1 := exectest.NewReplay(evSchema, batches, 1, lag)
				src1.Gated = true
				upTo := func(p int) { src1.ServeUpTo(t, p) }
				err := run(c.par1, src1, 0, func(job *arrowexec.Job) {
					for id := uint64(1); id <= 3; id++ {
						upTo(int(id) * hold / 4)
						if err := job.TriggerCheckpoint(context.Background(), arrowexec.Barrier{ID: id}); err != nil {
							t.Fatal(err)
						}
						complete(id, c.par1)
						if id < 3 {
							job.NotifyCheckpointComplete(id)
						}
					}
					upTo(hold)
					// The late rows of the batches after checkpoint 3
					// reach the sink (uncommitted when the job crashes).
					lateUpTo := int64(len(lateSet(opts, chunks[:hold], wms[:hold])))
					exectest.WaitFor(t, fmt.Sprintf("%d late rows at the late sink", lateUpTo), func() bool {
						var n int64
						for _, m := range job.Metrics("late") {
							n += m.RowsIn.Load()
						}
						return n == lateUpTo
					})
				})
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Fatal(err)
				}
				// The completed checkpoints published late rows while the
				// job ran (parts roll at 4 KiB), all of them in the late
				// set.
				early := readLateFiles(t, mem, dir, format, true)
				if len(early) == 0 {
					ents, _ := os.ReadDir(dir)
					for _, e := range ents {
						fi, _ := e.Info()
						t.Logf("%s %d", e.Name(), fi.Size())
					}
					t.Fatalf("checkpoints 1 and 2 completed but no late row was published")
				}
				cnt := map[lateRec]int{}
				for _, r := range want {
					cnt[r]++
				}
				for _, r := range early {
					if cnt[r]--; cnt[r] < 0 {
						t.Fatalf("published before the crash: %s, not (or not that often) late", r)
					}
				}
				pos, err := exectest.Position(snaps[c.from]["src"][0])
				if err != nil {
					t.Fatal(err)
				}
				if want := int(c.from) * hold / 4; pos != want {
					t.Fatalf("checkpoint %d at batch %d, want %d", c.from, pos, want)
				}
				if pos == 0 || pos >= hold {
					t.Fatalf("checkpoint %d at batch %d of %d: not mid-way", c.from, pos, hold)
				}
				if err := run(c.par2, exectest.NewReplay(evSchema, batches, 1, lag), c.from, nil); err != nil {
					t.Fatal(err)
				}
				compareLate(t, readLate(t, mem, dir, format), want)
			})
		}
	}
}
