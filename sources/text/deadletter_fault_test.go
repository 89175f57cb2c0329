package text

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/fsx"
)

// TestDeadLetterFinalFlushFailureFailsTheJob: the bad rows of a job
// without checkpoints reach the dead-letter file only when the last
// reader closes it (final flush and fsync). If that fails, the rows are
// lost, so the job must fail, naming the file, instead of succeeding.
func TestDeadLetterFinalFlushFailureFailsTheJob(t *testing.T) {
	for _, op := range []fsx.Op{fsx.OpWrite, fsx.OpSync, fsx.OpClose} {
		t.Run(op.String(), func(t *testing.T) {
			p := writeBad(t)
			dl := filepath.Join(t.TempDir(), "dead.jsonl")
			efs := &fsx.ErrorFS{Inject: fsx.InjectAfter(op, "dead.jsonl", 0, -1, fsx.ErrDiskFull)}
			src, err := New(Options{Paths: []string{p}, Columns: errCols, Header: true, OnError: OnErrorDeadLetter,
				DeadLetterPath: dl, DeadLetterFS: efs, SplitSize: 20})
			if err != nil {
				t.Fatal(err)
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			g := arrowexec.NewGraph()
			n := g.AddSource("source", src, 2)
			sink := exectest.NewSink()
			defer sink.Release()
			g.Add("sink", sink, 2, n.Forward())
			job, err := g.Compile(arrowexec.RunOptions{Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			err = job.Run(context.Background())
			if !errors.Is(err, fsx.ErrDiskFull) || !strings.Contains(err.Error(), dl) {
				t.Fatalf("Run = %v; want the failed %s of the dead-letter file %s", err, op, dl)
			}
		})
	}
}
