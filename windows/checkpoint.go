package windows

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
)

// Checkpoints: the window state is the state store's snapshot. SnapshotState
// writes it to a temporary directory and hands the runtime one blob per key
// group (the data file) and, as operator state, the snapshot's MANIFEST;
// restore writes them back and calls state.Restore for the key groups the
// subtask owns now, then rebuilds the timers from the restored windows.
// Snapshots are synchronous (the store's BeginSnapshot view is written
// before SnapshotState returns).
//
// The late side output is a nested file sink in two-phase commit mode
// (sinks.CommitOnCheckpoint): SnapshotState pre-commits it and carries its
// operator state in the window operator's (Late), NotifyCheckpointComplete
// publishes what the checkpoint covers, and a restore hands the nested sink
// the late states of every previous subtask, so it publishes what the
// checkpoint pre-committed and discards everything newer, at any
// parallelism.

type opSnapshot struct {
	Manifest  []byte `json:"manifest"`
	Watermark int64  `json:"watermark"`
	// Late is the late side output's operator state (sinks'), if any.
	Late json.RawMessage `json:"late,omitempty"`
}

var _ arrowexec.CheckpointListener = (*operator)(nil)

// SnapshotState implements arrowexec.Checkpointer.
func (o *operator) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	if err := o.flush(false); err != nil {
		return arrowexec.SubtaskSnapshot{}, fmt.Errorf("windows: snapshot %d: %w", id, err)
	}
	var late []byte
	if cp, ok := o.late.(arrowexec.Checkpointer); ok {
		ls, err := cp.SnapshotState(ctx, id)
		if err != nil {
			return arrowexec.SubtaskSnapshot{}, fmt.Errorf("windows: snapshot %d: late output: %w", id, err)
		}
		late = ls.Operator
	}
	return snapshotStore(ctx, o.store, id, o.wm, late)
}

// NotifyCheckpointComplete implements arrowexec.CheckpointListener: the
// late side output publishes what checkpoint id pre-committed.
func (o *operator) NotifyCheckpointComplete(ctx context.Context, id uint64) error {
	if l, ok := o.late.(arrowexec.CheckpointListener); ok {
		if err := l.NotifyCheckpointComplete(ctx, id); err != nil {
			return fmt.Errorf("windows: late output: %w", err)
		}
	}
	return nil
}

// snapshotStore snapshots a store as a SubtaskSnapshot: one blob per key
// group, the MANIFEST, the watermark and the late side output's state as
// operator state.
func snapshotStore(ctx context.Context, store state.Store, id uint64, wm int64, late []byte) (arrowexec.SubtaskSnapshot, error) {
	dir, err := os.MkdirTemp("", "riffle-window-snap-")
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, fmt.Errorf("windows: snapshot: %w", err)
	}
	defer os.RemoveAll(dir)
	m, err := store.Snapshot(ctx, dir)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, fmt.Errorf("windows: snapshot %d: %w", id, err)
	}
	snap := arrowexec.SubtaskSnapshot{KeyGroups: map[int][]byte{}}
	for _, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			return snap, fmt.Errorf("windows: snapshot %d: %w", id, err)
		}
		snap.KeyGroups[f.KeyGroup] = data
	}
	raw, err := os.ReadFile(filepath.Join(dir, state.ManifestName))
	if err != nil {
		return snap, fmt.Errorf("windows: snapshot %d: %w", id, err)
	}
	snap.Operator, err = json.Marshal(opSnapshot{Manifest: raw, Watermark: wm, Late: late})
	return snap, err
}

func (o *operator) restore(ctx context.Context, rs *arrowexec.RestoreState) error {
	wm, err := restoreStore(ctx, o.store, rs)
	if err != nil {
		return err
	}
	o.wm = wm
	o.stateMaybe = true
	return o.rebuildTimers()
}

// lateRestore is the RestoreState of the late side output: the late states
// of every previous subtask, in subtask order (empty where a snapshot had
// none: the sink then starts afresh if all are).
func lateRestore(rs *arrowexec.RestoreState) (*arrowexec.RestoreState, error) {
	lr := &arrowexec.RestoreState{CheckpointID: rs.CheckpointID, Watermark: rs.Watermark, Operator: make([][]byte, len(rs.Operator))}
	for i, blob := range rs.Operator {
		if len(blob) == 0 {
			continue
		}
		var s opSnapshot
		if err := json.Unmarshal(blob, &s); err != nil {
			return nil, fmt.Errorf("windows: restore: subtask %d: %w", i, err)
		}
		lr.Operator[i] = s.Late
	}
	return lr, nil
}

// restoreStore restores the key groups a store owns from the snapshots of
// snapshotStore and returns the largest watermark they recorded.
func restoreStore(ctx context.Context, store state.Store, rs *arrowexec.RestoreState) (int64, error) {
	root, err := os.MkdirTemp("", "riffle-window-restore-")
	if err != nil {
		return 0, fmt.Errorf("windows: restore: %w", err)
	}
	defer os.RemoveAll(root)
	var dirs []string
	wm := rs.Watermark
	for i, blob := range rs.Operator {
		if len(blob) == 0 {
			continue
		}
		var s opSnapshot
		if err := json.Unmarshal(blob, &s); err != nil {
			return 0, fmt.Errorf("windows: restore: subtask %d: %w", i, err)
		}
		m, err := decodeManifest(s.Manifest)
		if err != nil {
			return 0, fmt.Errorf("windows: restore: subtask %d: %w", i, err)
		}
		dir := filepath.Join(root, fmt.Sprint(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(dir, state.ManifestName), s.Manifest, 0o644); err != nil {
			return 0, err
		}
		for _, f := range m.Files {
			if data, ok := rs.KeyGroups[f.KeyGroup]; ok {
				if err := os.WriteFile(filepath.Join(dir, f.Name), data, 0o644); err != nil {
					return 0, err
				}
			}
		}
		dirs = append(dirs, dir)
		if s.Watermark > wm {
			wm = s.Watermark
		}
	}
	if len(dirs) > 0 {
		lo, hi := store.KeyGroupRange()
		if err := state.Restore(ctx, store, dirs, lo, hi); err != nil {
			return 0, fmt.Errorf("windows: restore: %w", err)
		}
	}
	return wm, nil
}

func decodeManifest(raw []byte) (state.Manifest, error) {
	var m state.Manifest
	if len(raw) < 4 {
		return m, fmt.Errorf("short manifest")
	}
	return m, json.Unmarshal(raw[4:], &m)
}

// rebuildTimers derives every timer from the windows in state.
func (o *operator) rebuildTimers() error {
	var derr error
	err := o.acc.Range(func(e state.Entry, blob []byte) bool {
		start, end, err := state.DecodeWindow(e.Namespace)
		if err != nil || len(blob) < blobHeader {
			derr = fmt.Errorf("windows: restore: corrupt window state: %v", err)
			return false
		}
		h := getU(blob, 1)
		pending := blob[0]&flagPending != 0
		if o.s.opts.Kind != Session {
			// A placeholder entry: current() loads the window when due.
			ph := &cached{tag: mixStart(h, start), ck: string(cacheKey(nil, e.Key, start)), hash: h, evicted: true}
			if pending {
				o.addFixed(end-1, ph, false)
			} else {
				o.addFixed(end-1+o.p.lateness, ph, true)
			}
			return true
		}
		t := timer{at: end - 1, kind: timerFire, hash: h, key: string(e.Key), start: start, end: end}
		if !pending {
			t.at, t.kind = end-1+o.p.lateness, timerPurge
		}
		o.timers.add(t)
		return true
	})
	if err != nil {
		return err
	}
	return derr
}
