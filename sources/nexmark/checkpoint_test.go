package nexmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
)

// TestRestoreRescale: readers snapshot after different numbers of batches,
// and the job restores at another parallelism (several times in a row,
// down and up); the rows emitted before and after every restore are
// exactly the rows of the whole stream, none twice, and no restored reader
// emits a row at or below its watermark.
func TestRestoreRescale(t *testing.T) {
	for _, tab := range []Table{Bid, Person} {
		for _, chain := range [][]int{{3, 1}, {3, 2, 7}, {2, 5, 5, 1}, {1, 4, 3}} {
			t.Run(fmt.Sprintf("%s/%v", tab, chain), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				o := Options{Table: tab, Events: 50_003, BatchEvents: 1000, Seed: 2, WatermarkDelay: NoWatermarkDelay}
				ref := readAll(t, o, 1, mem)
				want := sortedCopy(rowStrings(ref[0]))
				releaseAll(ref)
				src, err := NewSource(o)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				var blobs [][]byte
				for step, par := range chain {
					last := step == len(chain)-1
					var next [][]byte
					for sub := range par {
						task := &arrowexec.Task{Subtask: sub, Parallelism: par, Mem: mem}
						if step > 0 {
							task.Restore = &arrowexec.RestoreState{CheckpointID: uint64(step), Operator: blobs}
						}
						r, err := src.Open(context.Background(), task)
						if err != nil {
							t.Fatal(err)
						}
						// Subtask sub reads sub+2 batches before the
						// checkpoint; the last run reads to the end.
						for n := 0; last || n < sub+2; n++ {
							wm, _ := r.(arrowexec.WatermarkSource).CurrentWatermark()
							b, err := r.Next(context.Background())
							if err == io.EOF {
								break
							}
							if err != nil {
								t.Fatal(err)
							}
							checkAbove(t, b, wm)
							got = append(got, rowStrings([]arrow.RecordBatch{b})...)
							b.Release()
						}
						snap, err := r.(arrowexec.Checkpointer).SnapshotState(context.Background(), uint64(step+1))
						if err != nil {
							t.Fatal(err)
						}
						next = append(next, snap.Operator)
						r.Close()
					}
					blobs = next
				}
				if got = sortedCopy(got); !slices.Equal(got, want) {
					t.Fatalf("%d rows over the restores, want the stream's %d exactly once", len(got), len(want))
				}
			})
		}
	}
}

func checkAbove(t *testing.T, b arrow.RecordBatch, wm int64) {
	t.Helper()
	for _, ts := range timesOf(b) {
		if ts <= wm {
			t.Fatalf("date_time %d at or below the watermark %d", ts, wm)
		}
	}
}

// TestRestoreErrors: a corrupt blob and a checkpoint of other options are
// errors naming what is wrong.
func TestRestoreErrors(t *testing.T) {
	src, err := NewSource(Options{Table: Bid, Events: 1000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Open(context.Background(), &arrowexec.Task{Parallelism: 1, Mem: memory.DefaultAllocator})
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := r.(arrowexec.Checkpointer).SnapshotState(context.Background(), 1)
	restore := func(s *Source, blob []byte) error {
		_, err := s.Open(context.Background(), &arrowexec.Task{Parallelism: 1, Mem: memory.DefaultAllocator,
			Restore: &arrowexec.RestoreState{CheckpointID: 1, Operator: [][]byte{blob}}})
		return err
	}
	if err := restore(src, snap.Operator); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{[]byte("nxm"), []byte("xxxx1234"), snap.Operator[:len(snap.Operator)-1], append(slices.Clone(snap.Operator), 0x80)} {
		if err := restore(src, bad); !errors.Is(err, errBadCheckpoint) {
			t.Errorf("restore from %q: %v, want a corrupt-state error", bad, err)
		}
	}
	other, _ := NewSource(Options{Table: Bid, Events: 1000, Seed: 2})
	if err := restore(other, snap.Operator); err == nil {
		t.Error("a checkpoint of seed 1 restored into seed 2")
	}
}
