package sinks_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/fsx"
	"github.com/riffle-dev/riffle/sinks"
)

var errPowerCut = errors.New("power cut (injected)")

// memIDs reads the ids of the rows of every published JSONL part of dir on
// m, and the names of the files left in progress.
func memIDs(t *testing.T, m *fsx.MemFS, dir string) (ids []int64, left []string) {
	t.Helper()
	ents, err := m.ReadDir(dir)
	if fsx.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	for _, n := range names {
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".jsonl") {
			continue
		}
		f, err := m.Open(path.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var row struct{ ID int64 }
			if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
				t.Fatalf("%s: %q: %v", n, sc.Text(), err)
			}
			ids = append(ids, row.ID)
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return ids, hidden(names)
}

// TestTwoPhaseCrashesOnMemFS cuts the power at every I/O operation of a
// CommitOnCheckpoint JSONL sink in turn (small parts, so each checkpoint
// publishes several through the publish log) on an in-memory FS that
// keeps, after the crash, only what was synced (fsx.MemFS.Crash). The
// sink is then restored from its last snapshot (the checkpoint the
// coordinator would have made durable) on what the crash left: the
// published rows are exactly those before that checkpoint's barrier, each
// once, and nothing is left in progress. The oracle is the input rows.
func TestTwoPhaseCrashesOnMemFS(t *testing.T) {
	mem, schema, rows, segs := segmentedInput(t, 31, 32, 600, 3)
	per := (len(rows) + len(segs) - 1) / len(segs)
	const dir = "/out"
	// scenario runs two checkpoints and a third segment, cutting the power
	// after n operations; it returns the operations done and the last
	// snapshot taken (id and blob).
	scenario := func(m *fsx.MemFS, n int64) (ops int64, id uint64, blob []byte) {
		var count atomic.Int64
		opts := twoPhaseOpts(dir, sinks.JSONL)
		opts.FS = &fsx.ErrorFS{FS: m, Inject: func(fsx.Op, string) error {
			if count.Add(1) > n {
				return errPowerCut
			}
			return nil
		}}
		r, err := openSink(t, opts, mem, schema, 0, 1, nil)
		if err != nil {
			return count.Load(), 0, nil
		}
		defer r.crash()
		ctx := context.Background()
		process := func(bs []arrow.RecordBatch) error {
			for _, b := range bs {
				if err := r.op.Process(ctx, 0, b, nil); err != nil {
					return err
				}
			}
			return nil
		}
		for e := uint64(1); e <= 2; e++ {
			if err := process(segs[e-1]); err != nil {
				return count.Load(), id, blob
			}
			snap, err := r.op.(arrowexec.Checkpointer).SnapshotState(ctx, e)
			if err != nil {
				return count.Load(), id, blob
			}
			id, blob = e, snap.Operator
			if err := r.notify(e); err != nil {
				return count.Load(), id, blob
			}
		}
		_ = process(segs[2])
		return count.Load(), id, blob
	}

	total, id, _ := scenario(fsx.NewMemFS(), 1<<62)
	if id != 2 {
		t.Fatalf("fault-free run snapshotted %d checkpoints, want 2", id)
	}
	t.Logf("%d I/O operations", total)
	for n := int64(0); n <= total; n++ {
		m := fsx.NewMemFS()
		_, id, blob := scenario(m, n)
		m.Crash()
		opts := twoPhaseOpts(dir, sinks.JSONL)
		opts.FS = m
		r, err := openSink(t, opts, mem, schema, 0, 1, restoreFrom(id, blob))
		if err != nil {
			t.Fatalf("cut at %d (last snapshot %d): recovery: %v", n, id, err)
		}
		r.crash()
		got, left := memIDs(t, m, dir)
		slices.Sort(got)
		want := ids(rows[:int(id)*per])
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("cut at %d (last snapshot %d): published %d rows, want the %d before its barrier once each", n, id, len(got), len(want))
		}
		if len(left) > 0 && id > 0 {
			t.Fatalf("cut at %d (last snapshot %d): left in progress: %v", n, id, left)
		}
	}
}
