package joins

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

// Checkpoints: the join state is the state store's snapshot, taken at the
// barrier (state.Store.BeginSnapshot: a point-in-time view) and written
// while the operator goes on (arrowexec.AsyncCheckpointer). A store on
// disk (Pebble) in a job with a checkpoint directory writes its files into
// the subtask's directory (Task.SnapshotDir), restored from every previous
// subtask's directory (RestoreState.Dirs); otherwise the snapshot is one
// blob per key group (SubtaskSnapshot.KeyGroups) and the MANIFEST in the
// operator state. Either way a restore loads the key groups the subtask
// owns now, at any parallelism, and rebuilds the timers (in memory only)
// from one pass over the restored rows.

type opSnapshot struct {
	Manifest  []byte `json:"manifest,omitempty"`
	Watermark int64  `json:"watermark"`
	Files     bool   `json:"files,omitempty"`
}

// SnapshotState implements arrowexec.Checkpointer.
func (o *operator) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	complete, err := o.SnapshotStateAsync(ctx, id)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return complete(ctx)
}

// SnapshotStateAsync implements arrowexec.AsyncCheckpointer.
func (o *operator) SnapshotStateAsync(ctx context.Context, id uint64) (func(context.Context) (arrowexec.SubtaskSnapshot, error), error) {
	p, err := o.store.BeginSnapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("joins: %s: snapshot %d: %w", o.t.Node, id, err)
	}
	wm, t, disk := o.wm, o.t, o.store.DiskBytes() > 0
	return func(ctx context.Context) (arrowexec.SubtaskSnapshot, error) {
		snap, err := writeSnapshot(ctx, p, t, disk, id, wm)
		if err != nil {
			return snap, fmt.Errorf("joins: %s: snapshot %d: %w", t.Node, id, err)
		}
		return snap, nil
	}, nil
}

func writeSnapshot(ctx context.Context, p state.PendingSnapshot, t *arrowexec.Task, disk bool, id uint64, wm int64) (arrowexec.SubtaskSnapshot, error) {
	if disk && t.SnapshotDir != nil {
		if dir, err := t.SnapshotDir(id); err == nil {
			if _, err := p.Write(ctx, dir); err != nil {
				return arrowexec.SubtaskSnapshot{}, err
			}
			op, err := json.Marshal(opSnapshot{Watermark: wm, Files: true})
			return arrowexec.SubtaskSnapshot{Operator: op}, err
		}
	}
	dir, err := os.MkdirTemp("", "riffle-join-snap-")
	if err != nil {
		p.Discard()
		return arrowexec.SubtaskSnapshot{}, err
	}
	defer os.RemoveAll(dir)
	m, err := p.Write(ctx, dir)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	snap := arrowexec.SubtaskSnapshot{KeyGroups: map[int][]byte{}}
	for _, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			return snap, err
		}
		snap.KeyGroups[f.KeyGroup] = data
	}
	raw, err := os.ReadFile(filepath.Join(dir, state.ManifestName))
	if err != nil {
		return snap, err
	}
	snap.Operator, err = json.Marshal(opSnapshot{Manifest: raw, Watermark: wm})
	return snap, err
}

// restore loads the owned key groups and rebuilds the timers.
func (o *operator) restore(ctx context.Context, rs *arrowexec.RestoreState) error {
	wm := rs.Watermark
	var snaps []opSnapshot
	files := false
	for i, blob := range rs.Operator {
		if len(blob) == 0 {
			continue
		}
		var s opSnapshot
		if err := json.Unmarshal(blob, &s); err != nil {
			return fmt.Errorf("restore: subtask %d: %w", i, err)
		}
		snaps = append(snaps, s)
		files = files || s.Files
		wm = max(wm, s.Watermark)
	}
	lo, hi := o.store.KeyGroupRange()
	if files {
		if err := state.Restore(ctx, o.store, rs.Dirs, lo, hi); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	} else if len(snaps) > 0 {
		root, err := os.MkdirTemp("", "riffle-join-restore-")
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		defer os.RemoveAll(root)
		var dirs []string
		for i, s := range snaps {
			dir := filepath.Join(root, fmt.Sprint(i))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, state.ManifestName), s.Manifest, 0o644); err != nil {
				return err
			}
			m, err := state.ReadManifest(state.OSFS, dir)
			if err != nil {
				return fmt.Errorf("restore: subtask %d: %w", i, err)
			}
			for _, f := range m.Files {
				if data, ok := rs.KeyGroups[f.KeyGroup]; ok {
					if err := os.WriteFile(filepath.Join(dir, f.Name), data, 0o644); err != nil {
						return err
					}
				}
			}
			dirs = append(dirs, dir)
		}
		if err := state.Restore(ctx, o.store, dirs, lo, hi); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	o.wm = wm
	return o.rebuildTimers()
}

// rebuildTimers sets the timers of the restored rows.
func (o *operator) rebuildTimers() error {
	for side := range 2 {
		var err error
		rerr := o.lists[side].Range(func(e state.Entry, vals [][]byte) bool {
			if len(vals) == 0 {
				return true
			}
			hash := rowHash(vals[0])
			switch o.s.opts.Type {
			case Interval:
				next := o.expiry(side, rowTime(vals[0]))
				for _, v := range vals[1:] {
					next = min(next, o.expiry(side, rowTime(v)))
				}
				o.schedule(side, hash, e.Key, next)
			case Window:
				var end int64
				if _, end, err = state.DecodeWindow(e.Namespace); err != nil {
					return false
				}
				o.scheduleWindow(end, hash, e.Key)
			}
			return true
		})
		if rerr != nil {
			return fmt.Errorf("restore: timers: %w", rerr)
		}
		if err != nil {
			return fmt.Errorf("restore: timers: %w", err)
		}
	}
	return nil
}

var _ arrowexec.AsyncCheckpointer = (*operator)(nil)
