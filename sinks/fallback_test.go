package sinks_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/sinks"
)

// publishedContent reads every published part of dir: name -> content.
func publishedContent(t *testing.T, dir string, f sinks.Format) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range visible(t, dir, f) {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = b
	}
	return out
}

// checkUnchanged fails when a part of before is gone or differs.
func checkUnchanged(t *testing.T, dir string, before map[string][]byte, when string) {
	t.Helper()
	for n, b := range before {
		now, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatalf("%s: published %s is gone: %v", when, n, err)
		}
		if !bytes.Equal(now, b) {
			t.Fatalf("%s: published %s changed (%d bytes, was %d)", when, n, len(now), len(b))
		}
	}
}

// TestFallbackKeepsPublishedParts: checkpoints 1, 2 and 3 complete and
// publish parts (two subtasks, small parts, some rolled at every
// checkpoint); rows follow barrier 3; the job crashes. Checkpoint 3 turns
// out unusable, so the job restores checkpoint 2, at parallelism 1, 2 or
// 3, and replays every row after barrier 2 in other batches, spread over
// its subtasks. Every part published before the restore must stay byte
// for byte as it was, through the restore, a checkpoint of the new run, a
// crash and a restore of that checkpoint, and the end of the job; the
// output must hold every row exactly once (Go readers, and DuckDB when the
// oracle is available). A part changed after it was published makes the
// restore refuse, naming it.
func TestFallbackKeepsPublishedParts(t *testing.T) {
	for _, f := range []sinks.Format{sinks.Parquet, sinks.CSV, sinks.JSONL} {
		for _, p2 := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/2->%d", f, p2), func(t *testing.T) {
				mem, schema, rows, _ := segmentedInput(t, 71, uint64(p2), 4000, 1)
				dir := t.TempDir()
				opts := twoPhaseOpts(dir, f)
				opts.RollCheckpoints = 2
				rng := rand.New(rand.NewPCG(72, uint64(p2)))
				const nseg, old = 6, 2
				per := (2000 + nseg - 1) / nseg
				sub := func(s int) [][]any { return rows[s*2000 : (s+1)*2000] }
				var batches []arrow.RecordBatch
				defer func() { releaseAll(batches) }()
				split := func(rs [][]any, max int) []arrow.RecordBatch {
					bs := splitBatches(rng, mem, schema, rs, max)
					batches = append(batches, bs...)
					return bs
				}
				var blobs [old][]byte
				for s := 0; s < old; s++ {
					r, err := openSink(t, opts, mem, schema, s, old, nil)
					if err != nil {
						t.Fatal(err)
					}
					for c := 1; c <= 3; c++ {
						r.process(split(sub(s)[(c-1)*per:c*per], 60))
						blob := r.snapshot(uint64(c))
						if c == 2 {
							blobs[s] = blob
						}
						if err := r.notify(uint64(c)); err != nil {
							t.Fatal(err)
						}
					}
					r.process(split(sub(s)[3*per:4*per], 60)) // after barrier 3
					r.crash()
				}
				before := publishedContent(t, dir, f)
				if len(before) == 0 {
					t.Fatal("nothing published before the crash")
				}

				// A part published by checkpoint 3 (the newest name)
				// that changed: the restore refuses, naming it.
				var victim string
				for n := range before {
					victim = max(victim, n)
				}
				path := filepath.Join(dir, victim)
				if err := os.WriteFile(path, append(bytes.Clone(before[victim]), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				if r, err := openSink(t, opts, mem, schema, 0, p2, restoreFrom(2, blobs[0], blobs[1])); err == nil {
					r.crash()
					t.Fatalf("restore over a changed %s: no error", victim)
				} else if !strings.Contains(err.Error(), "changed since it was published") || !strings.Contains(err.Error(), victim) {
					t.Fatalf("restore over a changed part: %v", err)
				}
				if err := os.WriteFile(path, before[victim], 0o644); err != nil {
					t.Fatal(err)
				}

				// The fallback: restore checkpoint 2 at p2, replay the
				// third segment, checkpoint 10, crash.
				restore := restoreFrom(2, blobs[0], blobs[1])
				var runs []*sinkRun
				for s := 0; s < p2; s++ {
					r, err := openSink(t, opts, mem, schema, s, p2, restore)
					if err != nil {
						t.Fatal(err)
					}
					runs = append(runs, r)
				}
				checkUnchanged(t, dir, before, "after the restore of checkpoint 2")
				for s := 0; s < old; s++ {
					runs[s%p2].process(split(sub(s)[2*per:3*per], 97))
				}
				blobs10 := make([][]byte, p2)
				for s, r := range runs {
					blobs10[s] = r.snapshot(10)
				}
				for _, r := range runs {
					if err := r.notify(10); err != nil {
						t.Fatal(err)
					}
				}
				for s := 0; s < old; s++ {
					runs[s%p2].process(split(sub(s)[3*per:4*per], 97))
				}
				for _, r := range runs {
					r.crash()
				}
				checkUnchanged(t, dir, before, "after checkpoint 10")

				// Restore checkpoint 10, replay the rest, finish.
				runs = runs[:0]
				for s := 0; s < p2; s++ {
					r, err := openSink(t, opts, mem, schema, s, p2, restoreFrom(10, blobs10...))
					if err != nil {
						t.Fatal(err)
					}
					runs = append(runs, r)
				}
				for s := 0; s < old; s++ {
					runs[s%p2].process(split(sub(s)[3*per:], 97))
				}
				for _, r := range runs {
					r.finish()
				}
				checkUnchanged(t, dir, before, "at the end")
				checkExactlyOnce(t, mem, dir, f, ids(rows))
				checkPublishedRows(t, mem, dir, f, rows)
				if f == sinks.Parquet {
					t.Run("oracle", func(t *testing.T) {
						oracle.Python(t)
						duck := oracle.DuckDB(t, duckSelect+fmt.Sprintf("read_parquet('%s')", glob(dir, "parquet")))
						compareRows(t, "duckdb", duck.Rows, rows, cmpOpts{})
					})
				}
			})
		}
	}
}
