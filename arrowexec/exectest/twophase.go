package exectest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/riffle-dev/riffle/arrowexec"
)

// CommitLog is what TwoPhase sinks made visible: every committed value of
// their first column (int64), per sink node. A commit is idempotent, as
// publishing a file is: a token committed twice counts once.
type CommitLog struct {
	mu        sync.Mutex
	tokens    map[string]bool
	committed map[string][]int64
	wms       map[string][]int64 // watermarks seen, per node/subtask
	schemas   map[string]*arrow.Schema
}

// NewCommitLog returns an empty log.
func NewCommitLog() *CommitLog {
	return &CommitLog{tokens: map[string]bool{}, committed: map[string][]int64{}, wms: map[string][]int64{}, schemas: map[string]*arrow.Schema{}}
}

func (l *CommitLog) commit(node, token string, vs []int64) {
	l.mu.Lock()
	if !l.tokens[token] {
		l.tokens[token] = true
		l.committed[node] = append(l.committed[node], vs...)
	}
	l.mu.Unlock()
}

// Committed returns the values node committed, sorted.
func (l *CommitLog) Committed(node string) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(slices.Values(l.committed[node]))
}

// Watermarks returns the watermarks subtask sub of node received, in
// order.
func (l *CommitLog) Watermarks(node string, sub int) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.wms[fmt.Sprintf("%s/%d", node, sub)])
}

// Schema returns the schema of the batches node received (nil before any).
func (l *CommitLog) Schema(node string) *arrow.Schema {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.schemas[node]
}

// TwoPhase is a two-phase-commit sink of its input's first column (int64):
// rows since the last barrier are pre-committed at a barrier (kept in the
// snapshot), committed when that checkpoint completes, and committed at
// once at the end of input. A restored subtask 0 commits what the restored
// checkpoint pre-committed for every previous subtask. Run tells the
// commits of two runs of a test apart.
type TwoPhase struct {
	Log *CommitLog
	Run int
}

func (s TwoPhase) Schema([]*arrow.Schema) (*arrow.Schema, error) { return nil, nil }

func (s TwoPhase) New(t *arrowexec.Task) (arrowexec.Operator, error) {
	return &twoPhaseOp{log: s.Log, run: s.Run, t: t, pending: map[uint64][]int64{}}, nil
}

type twoPhaseOp struct {
	log     *CommitLog
	run     int
	t       *arrowexec.Task
	open    []int64
	pending map[uint64][]int64
}

func (o *twoPhaseOp) token(id uint64) string {
	return fmt.Sprintf("%d/%s/%d/%d", o.run, o.t.Node, o.t.Subtask, id)
}

// Open commits, in subtask 0 of a restored run, what the checkpoint
// pre-committed: lines "<checkpoint> <token> <values...>".
func (o *twoPhaseOp) Open(context.Context) error {
	rs := o.t.Restore
	if rs == nil || o.t.Subtask != 0 {
		return nil
	}
	for _, blob := range rs.Operator {
		for _, line := range strings.Split(string(blob), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			id, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return fmt.Errorf("exectest: restore: %w", err)
			}
			if id > rs.CheckpointID {
				continue
			}
			vs := make([]int64, 0, len(f)-2)
			for _, s := range f[2:] {
				v, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return fmt.Errorf("exectest: restore: %w", err)
				}
				vs = append(vs, v)
			}
			o.log.commit(o.t.Node, f[1], vs)
		}
	}
	return nil
}

func (o *twoPhaseOp) Process(_ context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	o.log.mu.Lock()
	o.log.schemas[o.t.Node] = b.Schema()
	o.log.mu.Unlock()
	o.open = append(o.open, b.Column(0).(*array.Int64).Int64Values()...)
	return nil
}

func (o *twoPhaseOp) OnWatermark(_ context.Context, wm int64, _ arrowexec.Emitter) error {
	key := fmt.Sprintf("%s/%d", o.t.Node, o.t.Subtask)
	o.log.mu.Lock()
	o.log.wms[key] = append(o.log.wms[key], wm)
	o.log.mu.Unlock()
	return nil
}

func (o *twoPhaseOp) SnapshotState(_ context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	o.pending[id] = o.open
	o.open = nil
	var lines []string
	for _, pid := range slices.Sorted(maps.Keys(o.pending)) {
		parts := []string{strconv.FormatUint(pid, 10), o.token(pid)}
		for _, v := range o.pending[pid] {
			parts = append(parts, strconv.FormatInt(v, 10))
		}
		lines = append(lines, strings.Join(parts, " "))
	}
	return arrowexec.SubtaskSnapshot{Operator: []byte(strings.Join(lines, "\n"))}, nil
}

func (o *twoPhaseOp) NotifyCheckpointComplete(_ context.Context, id uint64) error {
	for pid, vs := range o.pending {
		if pid <= id {
			o.log.commit(o.t.Node, o.token(pid), vs)
			delete(o.pending, pid)
		}
	}
	return nil
}

func (o *twoPhaseOp) Finish(context.Context, arrowexec.Emitter) error {
	if o.t.Suspended() {
		return nil
	}
	for pid, vs := range o.pending {
		o.log.commit(o.t.Node, o.token(pid), vs)
		delete(o.pending, pid)
	}
	o.log.commit(o.t.Node, o.token(0)+"/end", o.open)
	o.open = nil
	return nil
}

func (o *twoPhaseOp) Close() error { return nil }

// Snapshots records a job's snapshots (RunOptions.OnSnapshot) by
// checkpoint, node and subtask, and restores a job from one of them.
type Snapshots struct {
	mu      sync.Mutex
	m       map[uint64]map[string]map[int]arrowexec.SubtaskSnapshot
	arrived chan struct{}
}

// NewSnapshots returns an empty record.
func NewSnapshots() *Snapshots {
	return &Snapshots{m: map[uint64]map[string]map[int]arrowexec.SubtaskSnapshot{}, arrived: make(chan struct{}, 1024)}
}

// OnSnapshot is a RunOptions.OnSnapshot.
func (s *Snapshots) OnSnapshot(node string, sub int, id uint64, snap arrowexec.SubtaskSnapshot) error {
	s.mu.Lock()
	if s.m[id] == nil {
		s.m[id] = map[string]map[int]arrowexec.SubtaskSnapshot{}
	}
	if s.m[id][node] == nil {
		s.m[id][node] = map[int]arrowexec.SubtaskSnapshot{}
	}
	s.m[id][node][sub] = snap
	s.mu.Unlock()
	s.arrived <- struct{}{}
	return nil
}

// Arrived returns a channel that receives once per snapshot.
func (s *Snapshots) Arrived() <-chan struct{} { return s.arrived }

// Restore is a RunOptions.Restore from checkpoint id: every subtask gets
// the operator state of every subtask of its node in the checkpoint, in
// subtask order, and the key group blobs of the key groups it owns at its
// new parallelism (out of arrowexec.DefaultMaxParallelism).
func (s *Snapshots) Restore(id uint64) func(node string, sub, par int) *arrowexec.RestoreState {
	s.mu.Lock()
	cp := s.m[id]
	s.mu.Unlock()
	return func(node string, sub, par int) *arrowexec.RestoreState {
		rs := &arrowexec.RestoreState{CheckpointID: id, KeyGroups: map[int][]byte{}}
		lo, hi := arrowexec.KeyGroupRange(arrowexec.DefaultMaxParallelism, par, sub)
		for i := 0; i < len(cp[node]); i++ {
			rs.Operator = append(rs.Operator, cp[node][i].Operator)
			for kg, b := range cp[node][i].KeyGroups {
				if kg >= lo && kg < hi {
					rs.KeyGroups[kg] = b
				}
			}
		}
		return rs
	}
}
