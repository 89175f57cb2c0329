package arrowexec_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/fsx"
)

// The operators and readers below keep a file open through an fsx.FS the
// way sinks and dead-letter files do: what they wrote is durable only once
// Close has synced and closed it. Faults are injected into that FS.

// fileSinkSpec writes one line per batch to sink-<subtask> and syncs and
// closes it in Close.
type fileSinkSpec struct {
	fs  fsx.FS
	dir string
}

func (s *fileSinkSpec) Schema([]*arrow.Schema) (*arrow.Schema, error) { return nil, nil }

func (s *fileSinkSpec) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	return &fileSinkOp{spec: s, t: t}, nil
}

type fileSinkOp struct {
	spec *fileSinkSpec
	t    *arrowexec.Task
	f    fsx.File
}

func (o *fileSinkOp) Open(context.Context) error {
	f, err := o.spec.fs.Create(filepath.Join(o.spec.dir, fmt.Sprintf("sink-%d", o.t.Subtask)))
	o.f = f
	return err
}

func (o *fileSinkOp) Process(_ context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	_, err := fmt.Fprintf(o.f, "%d\n", b.NumRows())
	return err
}

func (o *fileSinkOp) Finish(context.Context, arrowexec.Emitter) error { return nil }

func (o *fileSinkOp) Close() error {
	if o.f == nil {
		return nil
	}
	err := o.f.Sync()
	return errors.Join(err, o.f.Close())
}

// fileSource serves exectest batches; each reader keeps a side file
// (side-<subtask>, like a dead-letter file) synced and closed by Close,
// and writes its final snapshot to snap-<subtask>-<checkpoint>.
type fileSource struct {
	*exectest.Source
	fs  fsx.FS
	dir string
}

func (s *fileSource) Open(ctx context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	r, err := s.Source.Open(ctx, t)
	if err != nil {
		return nil, err
	}
	f, err := s.fs.Create(filepath.Join(s.dir, fmt.Sprintf("side-%d", t.Subtask)))
	if err != nil {
		return nil, err
	}
	return &fileReader{SourceReader: r, src: s, t: t, side: f}, nil
}

type fileReader struct {
	arrowexec.SourceReader
	src  *fileSource
	t    *arrowexec.Task
	side fsx.File
}

func (r *fileReader) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	f, err := r.src.fs.Create(filepath.Join(r.src.dir, fmt.Sprintf("snap-%d-%d", r.t.Subtask, id)))
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	_, err = f.Write([]byte("position"))
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return arrowexec.SubtaskSnapshot{Operator: []byte("position")}, nil
}

func (r *fileReader) Close() error {
	err := r.side.Sync()
	return errors.Join(err, r.side.Close(), r.SourceReader.Close())
}

// TestCloseAndFinalSnapshotErrorsFailTheJob injects faults into the files
// sinks and sources close at the end of a job: each must fail Run, named
// by its node, and never replace an earlier error (it is joined after it).
func TestCloseAndFinalSnapshotErrorsFailTheJob(t *testing.T) {
	injected := errors.New("injected fault")
	failProcess := errors.New("operator failed")
	for _, tc := range []struct {
		name     string
		inject   func(fsx.Op, string) error
		failOp   bool   // the middle operator fails on its first batch
		wantNode string // node of the injected fault's TaskError
		wantMsg  string
	}{
		{name: "sink close: fsync fails", inject: fsx.InjectAfter(fsx.OpSync, "sink-1", 0, 1, injected),
			wantNode: "sink", wantMsg: "close"},
		{name: "sink close: close fails", inject: fsx.InjectAfter(fsx.OpClose, "sink-0", 0, 1, injected),
			wantNode: "sink", wantMsg: "close"},
		{name: "source close: final fsync of its side file fails", inject: fsx.InjectAfter(fsx.OpSync, "side-1", 0, 1, injected),
			wantNode: "source", wantMsg: "close"},
		{name: "final snapshot fails", inject: fsx.InjectAfter(fsx.OpCreate, "snap-0-0", 0, 1, injected),
			wantNode: "source", wantMsg: "final snapshot"},
		{name: "sink close fails after the job failed", inject: fsx.InjectAfter(fsx.OpSync, "sink-*", 0, -1, injected),
			failOp: true, wantNode: "sink", wantMsg: "close"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			batches, _ := randomBatches(mem, rand.New(rand.NewPCG(1, 2)), 400, 50, 10)
			src := exectest.NewSource(testSchema, batches)
			for _, b := range batches {
				b.Release()
			}
			defer src.Release()
			dir := t.TempDir()
			efs := &fsx.ErrorFS{Inject: tc.inject}
			g := arrowexec.NewGraph()
			n := g.AddSource("source", &fileSource{Source: src, fs: efs, dir: dir}, 2)
			mid := exectest.Identity()
			if tc.failOp {
				mid = &exectest.Func{Fn: func(*arrowexec.Task, arrow.RecordBatch) (arrow.RecordBatch, error) {
					return nil, failProcess
				}}
			}
			m := g.Add("mid", mid, 2, n.Forward())
			g.Add("sink", &fileSinkSpec{fs: efs, dir: dir}, 2, m.Forward())
			job, err := g.Compile(arrowexec.RunOptions{Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			err = job.Run(context.Background())
			if !errors.Is(err, injected) {
				t.Fatalf("Run = %v; want the injected fault", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Run = %q; want it to say %q", err, tc.wantMsg)
			}
			found := false
			for _, e := range leaves(err) {
				var te *arrowexec.TaskError
				if errors.As(e, &te) && errors.Is(te, injected) && te.Node == tc.wantNode {
					found = true
				}
			}
			if !found {
				t.Errorf("Run = %v; want a TaskError of node %q carrying the fault", err, tc.wantNode)
			}
			if tc.failOp {
				if !errors.Is(err, failProcess) {
					t.Fatalf("Run = %v; the operator's error is lost", err)
				}
				if !strings.HasPrefix(err.Error(), `node "mid"`) {
					t.Errorf("Run = %q; want the first error (mid's) first", err)
				}
			}
		})
	}
}

// leaves flattens joined errors.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}
