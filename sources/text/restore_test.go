package text

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
)

// TestRestore reads part of every subtask's splits, snapshots, and resumes
// from the snapshots at another parallelism: every row is read exactly
// once.
func TestRestore(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	dir := t.TempDir()
	id := 0
	for i := 0; i < 3; i++ {
		id = genCSV(t, rng, filepath.Join(dir, fmt.Sprintf("f%d.csv", i)), id, 300, i == 1, true, true)
	}
	ctx := context.Background()
	for _, pp := range [][2]int{{2, 3}, {3, 1}, {1, 2}} {
		t.Run(fmt.Sprintf("%d->%d", pp[0], pp[1]), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			src, err := New(Options{Paths: []string{dir}, Columns: testCols, Header: true, SplitSize: 700, BatchSize: 13})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			var states [][]byte
			for i := 0; i < pp[0]; i++ {
				r, err := src.Open(ctx, &arrowexec.Task{Subtask: i, Parallelism: pp[0], Mem: mem})
				if err != nil {
					t.Fatal(err)
				}
				for k := 0; k < 5+3*i; k++ {
					b, err := r.Next(ctx)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					for _, row := range render(b) {
						ids = append(ids, row[0])
					}
					b.Release()
				}
				snap, err := r.(arrowexec.Checkpointer).SnapshotState(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				states = append(states, snap.Operator)
				r.Close()
			}
			for i := 0; i < pp[1]; i++ {
				r, err := src.Open(ctx, &arrowexec.Task{Subtask: i, Parallelism: pp[1], Mem: mem, Restore: &arrowexec.RestoreState{Operator: states}})
				if err != nil {
					t.Fatal(err)
				}
				for {
					b, err := r.Next(ctx)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					for _, row := range render(b) {
						ids = append(ids, row[0])
					}
					b.Release()
				}
				r.Close()
			}
			if len(ids) != id {
				t.Fatalf("%d rows after restore, want %d", len(ids), id)
			}
			seen := map[string]bool{}
			for _, x := range ids {
				if seen[x] {
					t.Fatalf("row %s read twice", x)
				}
				seen[x] = true
			}
		})
	}
}
