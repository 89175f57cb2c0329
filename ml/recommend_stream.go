package ml

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/fsx"
	"github.com/riffle-dev/riffle/state"
)

// DefaultUpdateEvery is the number of interactions per update of the
// streaming recommend operator when UpdateOptions.Every is 0.
const DefaultUpdateEvery = 10000

// UpdateOptions configure the streaming recommend operator (package doc,
// "The streaming recommend operator"). The zero value updates every
// DefaultUpdateEvery interactions (and at every checkpoint barrier), never
// retrains in full after the first training, serves nothing and, with an
// export, exports at every checkpoint (at every update without
// checkpoints).
type UpdateOptions struct {
	// Every is the number of pending interactions that triggers an update
	// (default DefaultUpdateEvery).
	Every int
	// Interval, when > 0, also triggers an update once the oldest pending
	// interaction has waited that long (processing time, checked when a
	// batch arrives: an idle stream has nothing pending but what arrived
	// last, which the next checkpoint barrier applies).
	Interval time.Duration
	// RetrainGrowth, when > 0, runs a full warm retrain (Online.Retrain)
	// after an update that leaves the number of distinct (user, item)
	// pairs at RetrainGrowth times what it was at the last full training;
	// it must then be > 1. 0: never.
	RetrainGrowth float64
	// Serve keeps a Live copy of the model current (RecommendSpec.Live).
	Serve bool
	// GramRefresh is OnlineOptions.GramRefresh.
	GramRefresh int
	// ExportCheckpoints exports a version at every ExportCheckpoints-th
	// checkpoint (without checkpoints: update); ExportInterval instead
	// exports at the first checkpoint (update) once that much processing
	// time passed since the last version. At most one may be set; neither
	// means every checkpoint.
	ExportCheckpoints int
	ExportInterval    time.Duration
	// ExportChangedOnly writes, in a version, only the users whose factors
	// changed since the previous version (recommendations and user
	// factors; all item factors), except every FullEvery-th version
	// (default DefaultFullEvery), which holds every user.
	ExportChangedOnly bool
	FullEvery         int
}

// DefaultFullEvery is UpdateOptions.FullEvery's default.
const DefaultFullEvery = 10

// DefaultUpdate is the update: mapping's defaults in a job: an update
// every DefaultUpdateEvery interactions, a full retrain when the model
// has doubled, serving on.
func DefaultUpdate() UpdateOptions {
	return UpdateOptions{Every: DefaultUpdateEvery, RetrainGrowth: 2, Serve: true}
}

// Validate reports the first bad option.
func (u *UpdateOptions) Validate() error {
	switch {
	case u.Every < 0:
		return fmt.Errorf("ml: recommend: update: every must be ≥ 0, got %d", u.Every)
	case u.Interval < 0:
		return fmt.Errorf("ml: recommend: update: interval must be ≥ 0, got %v", u.Interval)
	case u.RetrainGrowth != 0 && !(u.RetrainGrowth > 1):
		return fmt.Errorf("ml: recommend: update: retrain_growth must be > 1 (or 0: never), got %v", u.RetrainGrowth)
	case u.GramRefresh < 0:
		return fmt.Errorf("ml: recommend: update: gram refresh must be ≥ 0, got %d", u.GramRefresh)
	case u.ExportCheckpoints < 0:
		return fmt.Errorf("ml: recommend: update: export_every checkpoints must be ≥ 0, got %d", u.ExportCheckpoints)
	case u.ExportInterval < 0:
		return fmt.Errorf("ml: recommend: update: export_every interval must be ≥ 0, got %v", u.ExportInterval)
	case u.ExportCheckpoints > 0 && u.ExportInterval > 0:
		return errors.New("ml: recommend: update: export_every takes checkpoints or interval, not both")
	case u.FullEvery < 0:
		return fmt.Errorf("ml: recommend: update: full_every must be ≥ 0, got %d", u.FullEvery)
	}
	return nil
}

// streamMeta is the streaming operator's part of the operator state.
type streamMeta struct {
	// Trained: the model had its first full training.
	Trained bool `json:"trained"`
	// RetrainBase is the number of distinct pairs at the last full
	// training (RetrainGrowth).
	RetrainBase int64 `json:"retrain_base"`
	// Applied counts the interactions applied to the model; Emitted is
	// Applied when the end of bounded input last emitted the lists.
	Applied int64 `json:"applied"`
	Emitted int64 `json:"emitted"`
	// UserGram and ItemGram are the model's Gram matrices, float64 little
	// endian, bit for bit (package doc).
	UserGram []byte `json:"user_gram,omitempty"`
	ItemGram []byte `json:"item_gram,omitempty"`
	// NextVersion is the next export version's number.
	NextVersion int64 `json:"next_version"`
	// Staged are the versions staged and not known published at the
	// barrier, oldest first: a restore publishes them.
	Staged []stagedVersion `json:"staged,omitempty"`
	// LastVersion is the newest version staged; SinceFull counts the
	// versions since the last full one; Checkpoints the checkpoints (or
	// updates) since the last version.
	LastVersion int64 `json:"last_version"`
	SinceFull   int   `json:"since_full"`
	Checkpoints int   `json:"checkpoints"`
	// Changed holds the dense indices of the users changed since the last
	// version (int32 little endian), for changed-only versions.
	Changed []byte `json:"changed,omitempty"`
}

// stagedVersion is an export version written into its temporary
// directory at a barrier, published when that checkpoint completes.
type stagedVersion struct {
	Version     int64  `json:"version"`
	Checkpoint  uint64 `json:"checkpoint"`
	ChangedOnly bool   `json:"changed_only,omitempty"`
	Since       int64  `json:"since,omitempty"`
}

// staging is a staged version in memory: done once its files are written
// (the snapshot's asynchronous part), err if that failed.
type staging struct {
	stagedVersion
	done bool
	err  error
}

// liveSyncer is what the streaming operator needs of the serving copy.
type liveSyncer interface {
	Sync(o *Online) error
}

// pendRef is a pending interaction: its keys in streamOp.pbuf.
type pendRef struct {
	user, item [2]int32 // offset, end
	w          float32
}

// streamOp is the streaming recommend operator: one subtask holding one
// Online model.
type streamOp struct {
	opBase
	up     UpdateOptions
	online *Online
	sm     streamMeta

	pend      []pendRef
	pbuf      []byte
	batch     []Interaction
	pendSince time.Time
	counts    map[string]int // each user's list length
	ihash     []uint64
	changed   []bool // users changed since the last version, by dense index
	nchanged  int

	lastExport time.Time
	stMu       sync.Mutex
	staged     []*staging // staged, not published, by version
	completed  uint64     // newest completed checkpoint

	live     liveSyncer
	failed   int64 // rows whose update failed and was rolled back
	finished bool  // Finish ran: later (lingering) snapshots stage nothing
}

func (s *RecommendSpec) newStream(base opBase) *streamOp {
	up := *s.opts.Update
	if up.Every == 0 {
		up.Every = DefaultUpdateEvery
	}
	if up.FullEvery == 0 {
		up.FullEvery = DefaultFullEvery
	}
	if up.ExportCheckpoints == 0 && up.ExportInterval == 0 {
		up.ExportCheckpoints = 1
	}
	base.positive = true
	return &streamOp{opBase: base, up: up, counts: map[string]int{}}
}

var (
	_ arrowexec.AsyncCheckpointer  = (*streamOp)(nil)
	_ arrowexec.Checkpointer       = (*streamOp)(nil)
	_ arrowexec.CheckpointListener = (*streamOp)(nil)
)

func (o *streamOp) Open(ctx context.Context) error {
	if err := o.open(ctx); err != nil {
		return err
	}
	on, err := NewOnline(OnlineOptions{Config: o.s.opts.Config, GramRefresh: o.up.GramRefresh})
	if err != nil {
		return fmt.Errorf("ml: recommend: %w", err)
	}
	o.online = on
	if o.meta.Stream != nil {
		o.sm = *o.meta.Stream
	}
	if o.t.Restore != nil {
		if err := o.restoreModel(ctx); err != nil {
			return err
		}
	}
	if o.s.opts.Export != nil {
		if err := o.recoverExports(); err != nil {
			return err
		}
	}
	o.lastExport = time.Now()
	if o.up.Serve {
		o.live = o.s.newLive(o.b)
		if err := o.syncLive(); err != nil {
			return err
		}
	}
	return nil
}

// restoreModel rebuilds the model from the keyed state: the factors in
// the order of their dense indices (so a restored model has the same
// indices and is bitwise the one snapshotted), then every user's
// interactions in store order, then the Gram matrices (bitwise from the
// operator state; recomputed exactly when the state came from the batch
// operator, which keeps none).
func (o *streamOp) restoreModel(ctx context.Context) error {
	type row struct {
		idx uint32
		key []byte
		vec []float32
	}
	k := o.online.Factors()
	read := func(v *state.Value[[]byte], user bool) ([]row, error) {
		var rows []row
		var bad error
		err := v.Range(func(e state.Entry, blob []byte) bool {
			sf, err := decodeStored(blob, user, k)
			if err != nil {
				kind := o.b.itemKind
				if user {
					kind = o.b.userKind
				}
				bad = fmt.Errorf("key %s: %w", formatKey(kind, e.Key), err)
				return false
			}
			rows = append(rows, row{idx: sf.idx, key: bytes.Clone(e.Key), vec: sf.vec})
			return true
		})
		if err == nil {
			err = bad
		}
		slices.SortFunc(rows, func(a, b row) int { return int(a.idx) - int(b.idx) })
		return rows, err
	}
	users, err := read(o.user, true)
	if err != nil {
		return fmt.Errorf("ml: recommend: restore user factors: %w", err)
	}
	items, err := read(o.item, false)
	if err != nil {
		return fmt.Errorf("ml: recommend: restore item factors: %w", err)
	}
	for _, r := range users {
		if _, err := o.online.SetUser(r.key, r.vec); err != nil {
			return fmt.Errorf("ml: recommend: restore: %w", err)
		}
	}
	for _, r := range items {
		if _, err := o.online.SetItem(r.key, r.vec); err != nil {
			return fmt.Errorf("ml: recommend: restore: %w", err)
		}
	}
	var hist []Interaction
	if err := o.inter.Range(func(e state.Entry, vals [][]byte) bool {
		key := bytes.Clone(e.Key)
		o.counts[string(key)] = len(vals)
		for _, v := range vals {
			hist = append(hist, Interaction{User: key, Item: bytes.Clone(v[4:]), Weight: math.Float32frombits(binary.LittleEndian.Uint32(v))})
		}
		return true
	}); err != nil {
		return fmt.Errorf("ml: recommend: restore interactions: %w", err)
	}
	o.online.AddHistory(hist)
	if o.meta.Stream == nil {
		// State of the batch operator: trained if it holds factors; its
		// item lists are summed per user (or absent, before training):
		// write them again as the raw interactions.
		o.sm = streamMeta{Trained: len(users) > 0, NextVersion: o.meta.Version + 1, LastVersion: o.meta.Version}
		o.online.RefreshGrams()
		o.sm.RetrainBase = o.online.NumInteractions()
		if err := o.rewriteItemLists(hist); err != nil {
			return err
		}
	} else if kk := k * k * 8; len(o.sm.UserGram) == kk && len(o.sm.ItemGram) == kk {
		if err := o.online.SetGrams(floatsOf(o.sm.UserGram), floatsOf(o.sm.ItemGram)); err != nil {
			return fmt.Errorf("ml: recommend: restore: %w", err)
		}
	} else {
		o.online.RefreshGrams()
	}
	o.changed = make([]bool, o.online.NumUsers())
	for j := 0; j+4 <= len(o.sm.Changed); j += 4 {
		if u := int(binary.LittleEndian.Uint32(o.sm.Changed[j:])); u < len(o.changed) && !o.changed[u] {
			o.changed[u] = true
			o.nchanged++
		}
	}
	o.log.Info("ml: recommend: model restored", "users", o.online.NumUsers(), "items", o.online.NumItems(),
		"interactions", o.online.NumInteractions(), "trained", o.sm.Trained)
	return ctx.Err()
}

// rewriteItemLists replaces every item's list with its raw interactions
// (weight | user key), in the order of hist.
func (o *streamOp) rewriteItemLists(hist []Interaction) error {
	byItem := map[string][][]byte{}
	var order [][]byte
	for _, it := range hist {
		l, ok := byItem[string(it.Item)]
		if !ok {
			order = append(order, it.Item)
		}
		e := binary.LittleEndian.AppendUint32(nil, math.Float32bits(it.Weight))
		byItem[string(it.Item)] = append(l, append(e, it.User...))
	}
	hs, err := hashKeys(o.b.itemKind, order)
	if err != nil {
		return err
	}
	for j, key := range order {
		if err := o.itemIntr.Update(hs[j], key, nil, byItem[string(key)]); err != nil {
			return fmt.Errorf("ml: recommend: restore item interactions: %w", err)
		}
	}
	return nil
}

func floatsOf(b []byte) []float64 {
	f := make([]float64, len(b)/8)
	for i := range f {
		f[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return f
}

func bytesOf(f []float64) []byte {
	b := make([]byte, 0, 8*len(f))
	for _, x := range f {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

func (o *streamOp) Process(ctx context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	if err := o.accept(ctx, b); err != nil {
		return err
	}
	if len(o.rows) == 0 {
		return nil
	}
	if err := o.appendUserLists(); err != nil {
		return err
	}
	if err := o.appendItemLists(b); err != nil {
		return err
	}
	if len(o.pend) == 0 {
		o.pendSince = time.Now()
	}
	for j, i := range o.rows {
		var p pendRef
		p.user[0] = int32(len(o.pbuf))
		o.pbuf = o.ukeys.append(o.pbuf, i)
		p.user[1] = int32(len(o.pbuf))
		o.counts[string(o.pbuf[p.user[0]:p.user[1]])]++
		p.item[0] = p.user[1]
		o.pbuf = o.ikeys.append(o.pbuf, i)
		p.item[1] = int32(len(o.pbuf))
		p.w = o.ws[j]
		o.pend = append(o.pend, p)
	}
	if len(o.pend) >= o.up.Every || (o.up.Interval > 0 && time.Since(o.pendSince) >= o.up.Interval) {
		return o.update(ctx)
	}
	return nil
}

// appendItemLists appends the accepted rows to their items' lists
// (weight | user key), at the items' key groups.
func (o *streamOp) appendItemLists(b arrow.RecordBatch) error {
	n := int(b.NumRows())
	if cap(o.ihash) < n {
		o.ihash = make([]uint64, n)
	}
	h := o.ihash[:n]
	if err := arrowexec.HashColumns([]arrow.Array{b.Column(o.b.itemIdx)}, h); err != nil {
		return fmt.Errorf("ml: recommend: %w", err)
	}
	if err := o.appendLists(o.itemIntr, h, &o.ikeys, &o.ukeys); err != nil {
		return fmt.Errorf("ml: recommend: batch %d: item interactions: %w", o.batches, err)
	}
	return nil
}

// update applies the pending interactions to the model: the first
// training of a model that never had one (AddHistory, then a full
// Retrain), an incremental Apply afterwards (and a warm full retrain when
// RetrainGrowth says so); then it writes the changed rows' factors to the
// state and brings the serving copy up to date.
func (o *streamOp) update(ctx context.Context) error {
	if len(o.pend) == 0 && (o.sm.Trained || o.online.NumInteractions() == 0) {
		return nil
	}
	start := time.Now()
	o.batch = o.batch[:0]
	for _, p := range o.pend {
		o.batch = append(o.batch, Interaction{User: o.pbuf[p.user[0]:p.user[1]], Item: o.pbuf[p.item[0]:p.item[1]], Weight: p.w})
	}
	n := len(o.batch)
	full := false
	if !o.sm.Trained {
		o.online.AddHistory(o.batch)
		if err := o.online.Retrain(ctx, false); err != nil {
			return o.describeRowError("training failed", err)
		}
		o.sm.Trained, full = true, true
		o.sm.RetrainBase = o.online.NumInteractions()
	} else {
		st, err := o.online.Apply(ctx, o.batch)
		if err != nil {
			return fmt.Errorf("ml: recommend: update: %w", err)
		}
		if st.Failed != nil {
			o.failed += int64(st.FailedUsers + st.FailedItems)
			o.logFailed(st)
		}
		if g := o.up.RetrainGrowth; g > 0 && float64(o.online.NumInteractions()) >= g*float64(o.sm.RetrainBase) {
			// The rows changed by the Apply are a subset of the retrain's.
			if err := o.online.Retrain(ctx, true); err != nil {
				// The incremental model stays; the next growth tries again.
				o.log.Warn("ml: recommend: full retrain failed, keeping the incremental model", "err", err)
			} else {
				full = true
				o.sm.RetrainBase = o.online.NumInteractions()
			}
		}
	}
	o.pend, o.pbuf = o.pend[:0], o.pbuf[:0]
	o.sm.Applied += int64(n)
	if err := o.storeChanged(); err != nil {
		return err
	}
	if err := o.syncLive(); err != nil {
		return err
	}
	o.log.Debug("ml: recommend: updated", "interactions", n, "full", full, "users", o.online.NumUsers(),
		"items", o.online.NumItems(), "elapsed", time.Since(start))
	if o.s.opts.Export != nil && !o.s.opts.Checkpointed {
		// Without checkpoints nothing covers an export: write it now.
		o.sm.Checkpoints++
		if o.exportDue() {
			return o.exportNow(ctx, 0)
		}
	}
	return nil
}

// logFailed logs the rows an Apply rolled back, by id.
func (o *streamOp) logFailed(st UpdateStats) {
	var re *RowError
	if !errors.As(st.Failed, &re) {
		o.log.Warn("ml: recommend: update rolled rows back", "users", st.FailedUsers, "items", st.FailedItems, "err", st.Failed)
		return
	}
	ids := make([]string, 0, min(len(re.Failed), 20))
	for _, r := range re.Failed[:min(len(re.Failed), 20)] {
		if re.Side == "user" {
			ids = append(ids, formatKey(o.b.userKind, o.online.UserKey(int32(r))))
		} else {
			ids = append(ids, formatKey(o.b.itemKind, o.online.ItemKey(int32(r))))
		}
	}
	o.log.Warn("ml: recommend: numerical trouble: rows rolled back to their previous factors (not exported until solved)",
		"side", re.Side, "ids", ids, "failed_users", st.FailedUsers, "failed_items", st.FailedItems, "reason", re.Reason)
}

// describeRowError names the row of a numerical failure by id.
func (o *streamOp) describeRowError(what string, err error) error {
	var re *RowError
	if errors.As(err, &re) {
		id := "?"
		switch {
		case re.Side == "user" && re.Row < o.online.NumUsers():
			id = formatKey(o.b.userKind, o.online.UserKey(int32(re.Row)))
		case re.Side == "item" && re.Row < o.online.NumItems():
			id = formatKey(o.b.itemKind, o.online.ItemKey(int32(re.Row)))
		}
		return fmt.Errorf("ml: recommend: %s at %s id %s (nothing exported): %w", what, re.Side, id, err)
	}
	return fmt.Errorf("ml: recommend: %s (nothing exported): %w", what, err)
}

// storeChanged writes the factors of the rows the last update changed to
// the state: users as (list length | dense index | factors), items as
// (dense index | factors), the batch operator's encodings.
func (o *streamOp) storeChanged() error {
	users, items := o.online.Changed()
	for _, u := range users {
		for int(u) >= len(o.changed) {
			o.changed = append(o.changed, false)
		}
		if !o.changed[u] {
			o.changed[u] = true
			o.nchanged++
		}
	}
	put := func(v *state.Value[[]byte], kind idKind, rows []int32, key func(int32) []byte, vec func(int32) []float32, count bool) error {
		if len(rows) == 0 {
			return nil
		}
		keys := make([][]byte, len(rows))
		for j, r := range rows {
			keys[j] = key(r)
		}
		hs, err := hashKeys(kind, keys)
		if err != nil {
			return err
		}
		var ks state.Keys
		vals := make([][]byte, len(rows))
		buf := make([]byte, 0, len(rows)*(4+4*o.online.Factors()+binary.MaxVarintLen32))
		for j, r := range rows {
			start := len(buf)
			if count {
				buf = binary.AppendUvarint(buf, uint64(o.counts[string(keys[j])]))
			}
			buf = binary.LittleEndian.AppendUint32(buf, uint32(r))
			buf = appendFloats(buf, vec(r))
			ks.Append(hs[j], keys[j], nil)
			vals[j] = buf[start:]
		}
		return v.PutMany(&ks, vals)
	}
	if err := put(o.user, o.b.userKind, users, o.online.UserKey, o.online.UserVector, true); err != nil {
		return fmt.Errorf("ml: recommend: store user factors: %w", err)
	}
	if err := put(o.item, o.b.itemKind, items, o.online.ItemKey, o.online.ItemVector, false); err != nil {
		return fmt.Errorf("ml: recommend: store item factors: %w", err)
	}
	return nil
}

func (o *streamOp) syncLive() error {
	if o.live == nil || !o.sm.Trained {
		return nil
	}
	if err := o.live.Sync(o.online); err != nil {
		return fmt.Errorf("ml: recommend: serving copy: %w", err)
	}
	return nil
}

// exportDue says whether the schedule asks for a version now.
func (o *streamOp) exportDue() bool {
	if !o.sm.Trained {
		return false
	}
	if o.up.ExportInterval > 0 {
		return time.Since(o.lastExport) >= o.up.ExportInterval
	}
	return o.sm.Checkpoints >= o.up.ExportCheckpoints
}

// nextStage takes the next version number and decides whether it holds
// only the changed users.
func (o *streamOp) nextStage(ck uint64) stagedVersion {
	sv := stagedVersion{Version: o.sm.NextVersion, Checkpoint: ck}
	o.sm.NextVersion++
	if o.up.ExportChangedOnly && o.sm.LastVersion > 0 && o.sm.SinceFull+1 < o.up.FullEvery {
		sv.ChangedOnly, sv.Since = true, o.sm.LastVersion
		o.sm.SinceFull++
	} else {
		o.sm.SinceFull = 0
	}
	o.sm.LastVersion = sv.Version
	o.sm.Checkpoints = 0
	o.lastExport = time.Now()
	return sv
}

// changedUsers returns the users changed since the last version (and
// forgets them: the next version starts afresh).
func (o *streamOp) takeChanged() []int32 {
	var us []int32
	for u, c := range o.changed {
		if c {
			us = append(us, int32(u))
		}
	}
	clear(o.changed)
	o.nchanged = 0
	return us
}

// exportNow writes and publishes a version at once (no checkpoint covers
// it: a job without checkpoints, or the end of bounded input).
func (o *streamOp) exportNow(ctx context.Context, ck uint64) error {
	sv := o.nextStage(ck)
	res, err := o.freeze(sv, o.changedSubset(sv))
	if err != nil {
		return err
	}
	if err := o.writeStaged(ctx, sv, res); err != nil {
		return err
	}
	eo := o.s.opts.Export
	if err := publishVersion(eo.fs(), eo.Path, sv.Version, eo.Retain); err != nil {
		return err
	}
	o.s.notePublished(sv.Version)
	return nil
}

func (o *streamOp) changedSubset(sv stagedVersion) []int32 {
	us := o.takeChanged()
	if !sv.ChangedOnly {
		return nil
	}
	if us == nil {
		us = []int32{}
	}
	return us
}

// frozen is a copy of the model taken at a barrier, in key order, for an
// export written while the operator goes on.
type frozen struct {
	res *trainResult
	cfg Config
}

// freeze copies the model (the users of subset when not nil, else every
// user; every item) into a trainResult in key order, leaving out rows not
// ready (never solved: never exported). Scoring is left to score.
func (o *streamOp) freeze(sv stagedVersion, subset []int32) (*frozen, error) {
	on := o.online
	k := on.Factors()
	var users []int32
	if subset != nil {
		for _, u := range subset {
			if on.UserReady(u) {
				users = append(users, u)
			}
		}
	} else {
		for u := range int32(on.NumUsers()) {
			if on.UserReady(u) {
				users = append(users, u)
			}
		}
	}
	var items []int32
	for i := range int32(on.NumItems()) {
		if on.ItemReady(i) {
			items = append(items, i)
		}
	}
	slices.SortFunc(users, func(a, b int32) int { return bytes.Compare(on.UserKey(a), on.UserKey(b)) })
	slices.SortFunc(items, func(a, b int32) int { return bytes.Compare(on.ItemKey(a), on.ItemKey(b)) })
	newItem := make([]int32, on.NumItems())
	for i := range newItem {
		newItem[i] = -1
	}
	res := &trainResult{version: sv.Version, k: o.s.opts.K, rows: o.sm.Applied}
	m := &Model{Factors: k, NumUsers: len(users), NumItems: len(items),
		UserFactors: make([]float32, 0, len(users)*k), ItemFactors: make([]float32, 0, len(items)*k)}
	res.itemKeys = make([][]byte, len(items))
	for j, i := range items {
		newItem[i] = int32(j)
		res.itemKeys[j] = bytes.Clone(on.ItemKey(i))
		m.ItemFactors = append(m.ItemFactors, on.ItemVector(i)...)
	}
	res.userKeys = make([][]byte, len(users))
	var us, is []int32
	var ws []float32
	for j, u := range users {
		res.userKeys[j] = bytes.Clone(on.UserKey(u))
		m.UserFactors = append(m.UserFactors, on.UserVector(u)...)
		its, w := on.UserItems(u)
		for x, i := range its {
			if ni := newItem[i]; ni >= 0 {
				us, is, ws = append(us, int32(j)), append(is, ni), append(ws, w[x])
			}
		}
	}
	ui, err := NewInteractions(len(users), len(items), us, is, ws)
	if err != nil {
		return nil, fmt.Errorf("ml: recommend: export: %w", err)
	}
	res.model, res.ui = m, ui
	return &frozen{res: res, cfg: on.Config()}, nil
}

// score computes the frozen model's top-K lists, loss and fingerprint.
func (f *frozen) score(ctx context.Context, b *bound) (*trainResult, error) {
	start := time.Now()
	res := f.res
	nu, k := len(res.userKeys), res.k
	fp := newFingerprint()
	for u := range nu {
		items, ws := res.ui.Row(u)
		for j, i := range items {
			fp.add(res.userKeys[u], res.itemKeys[i], ws[j])
		}
	}
	res.finger = fp.sum()
	var err error
	if res.userHash, err = hashKeys(b.userKind, res.userKeys); err != nil {
		return nil, err
	}
	if nu > 0 && len(res.itemKeys) > 0 {
		res.loss = Loss(f.cfg, res.ui, res.model)
	}
	if err := res.topK(ctx, f.cfg, b, k); err != nil {
		return nil, err
	}
	res.elapsed = time.Since(start)
	return res, nil
}

// writeStaged scores f and writes its files into the version's temporary
// directory.
func (o *streamOp) writeStaged(ctx context.Context, sv stagedVersion, f *frozen) error {
	res, err := f.score(ctx, o.b)
	if err != nil {
		return err
	}
	return o.s.writeVersion(ctx, res, o.b, versionInfo{checkpoint: sv.Checkpoint, changedOnly: sv.ChangedOnly, since: sv.Since})
}

// recoverExports runs at Open: the versions the restored checkpoint
// staged and that are not published yet are published (their files are
// complete: the checkpoint completed only after they were written), every
// other temporary directory (versions staged at checkpoints that never
// completed, crashed exports) is removed, and the next version number is
// above every version on disk, so none is ever published twice.
func (o *streamOp) recoverExports() error {
	eo := o.s.opts.Export
	fs, root := eo.fs(), eo.Path
	keep := map[string]bool{}
	for _, sv := range o.sm.Staged {
		keep[exportTempPrefix+VersionName(sv.Version)] = true
	}
	if err := removeExportLeftovers(fs, root, func(name string) bool { return keep[name] }); err != nil {
		return err
	}
	for _, sv := range o.sm.Staged {
		if err := checkStaged(fs, root, sv.Version); err != nil {
			return fmt.Errorf("ml: recommend: restore: export staged at checkpoint %d: %w", sv.Checkpoint, err)
		}
		if err := publishVersion(fs, root, sv.Version, eo.Retain); err != nil {
			return err
		}
		o.s.notePublished(sv.Version)
		o.log.Info("ml: recommend: published the export the restored checkpoint staged", "version", sv.Version, "checkpoint", sv.Checkpoint)
	}
	o.sm.Staged = nil
	vs, err := versionsOnDisk(fs, root)
	if err != nil {
		return err
	}
	if len(vs) > 0 {
		o.sm.NextVersion = max(o.sm.NextVersion, vs[len(vs)-1]+1)
	}
	o.sm.NextVersion = max(o.sm.NextVersion, o.meta.Version+1, 1)
	return nil
}

// checkStaged checks that staged version v is published or complete in
// its temporary directory (its manifest, written last, lists files that
// are all there).
func checkStaged(fs fsx.FS, root string, v int64) error {
	if _, err := fs.Stat(filepath.Join(root, VersionName(v))); err == nil {
		return nil
	}
	dir := stagedDir(root, v)
	f, err := fs.Open(filepath.Join(dir, ModelFile))
	if err != nil {
		return fmt.Errorf("ml: export: version %d is neither published nor staged: %w", v, err)
	}
	var m Manifest
	err = json.NewDecoder(f).Decode(&m)
	f.Close()
	if err != nil {
		return fmt.Errorf("ml: export: %s: %w", filepath.Join(dir, ModelFile), err)
	}
	for _, name := range m.Files {
		if _, err := fs.Stat(filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			return fmt.Errorf("ml: export: staged version %d: %w", v, err)
		}
	}
	return nil
}

// SnapshotState implements arrowexec.Checkpointer.
func (o *streamOp) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	complete, err := o.SnapshotStateAsync(ctx, id)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	return complete(ctx)
}

// SnapshotStateAsync implements arrowexec.AsyncCheckpointer: the pending
// interactions are applied first (the snapshot holds the model of every
// interaction before the barrier), a version due is staged (the model
// copied now, written by complete), then the state's point-in-time view
// is taken as the batch operator takes it.
func (o *streamOp) SnapshotStateAsync(ctx context.Context, id uint64) (func(context.Context) (arrowexec.SubtaskSnapshot, error), error) {
	if err := o.update(ctx); err != nil {
		return nil, err
	}
	var st *staging
	var fz *frozen
	if o.s.opts.Export != nil && o.s.opts.Checkpointed && !o.finished {
		o.sm.Checkpoints++
		if o.exportDue() && !o.writing() {
			sv := o.nextStage(id)
			var err error
			if fz, err = o.freeze(sv, o.changedSubset(sv)); err != nil {
				return nil, err
			}
			st = &staging{stagedVersion: sv}
			o.stMu.Lock()
			o.staged = append(o.staged, st)
			o.stMu.Unlock()
		}
	}
	sm := o.sm
	sm.UserGram, sm.ItemGram = bytesOf(o.online.UserGram()), bytesOf(o.online.ItemGram())
	sm.Changed = nil
	for u, c := range o.changed {
		if c {
			sm.Changed = binary.LittleEndian.AppendUint32(sm.Changed, uint32(u))
		}
	}
	o.stMu.Lock()
	sm.Staged = nil
	for _, s := range o.staged {
		if s == st || s.done && s.err == nil {
			sm.Staged = append(sm.Staged, s.stagedVersion)
		}
	}
	o.stMu.Unlock()
	o.meta.Stream = &sm
	complete, err := o.snapshotAsync(ctx, id)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return complete, nil
	}
	return func(ctx context.Context) (arrowexec.SubtaskSnapshot, error) {
		err := o.writeStaged(ctx, st.stagedVersion, fz)
		o.stMu.Lock()
		st.done, st.err = true, err
		o.stMu.Unlock()
		if err != nil {
			return arrowexec.SubtaskSnapshot{}, fmt.Errorf("ml: recommend: export version %d at checkpoint %d: %w", st.Version, id, err)
		}
		return complete(ctx)
	}, nil
}

// writing says whether a staged version is still being written (a new
// one waits: versions are published in order).
func (o *streamOp) writing() bool {
	o.stMu.Lock()
	defer o.stMu.Unlock()
	for _, s := range o.staged {
		if !s.done {
			return true
		}
	}
	return false
}

// NotifyCheckpointComplete implements arrowexec.CheckpointListener: the
// versions staged at this checkpoint or before are published, in order.
func (o *streamOp) NotifyCheckpointComplete(ctx context.Context, id uint64) error {
	o.completed = max(o.completed, id)
	eo := o.s.opts.Export
	for {
		o.stMu.Lock()
		var next *staging
		if len(o.staged) > 0 && o.staged[0].Checkpoint <= o.completed && o.staged[0].done {
			next = o.staged[0]
		}
		o.stMu.Unlock()
		if next == nil {
			return nil
		}
		if next.err != nil {
			return next.err
		}
		if err := publishVersion(eo.fs(), eo.Path, next.Version, eo.Retain); err != nil {
			return err
		}
		o.s.notePublished(next.Version)
		o.log.Info("ml: recommend: export published", "version", next.Version, "checkpoint", next.Checkpoint, "changed_only", next.ChangedOnly)
		o.stMu.Lock()
		o.staged = o.staged[1:]
		o.stMu.Unlock()
	}
}

// Finish applies what is pending; at the real end of bounded input it
// then exports a version (published at once, as the file sinks publish at
// the end) and emits every user's top-K like the batch operator. A
// restored job that already emitted and has nothing new emits nothing.
func (o *streamOp) Finish(ctx context.Context, out arrowexec.Emitter) error {
	o.finished = true
	if o.t.Suspended() {
		// Held for a savepoint: the stop barrier's snapshot applied
		// everything; the job resumed from it goes on learning.
		return nil
	}
	if err := o.update(ctx); err != nil {
		return err
	}
	if o.meta.Version > 0 && o.sm.Emitted == o.sm.Applied {
		return nil
	}
	if o.online.NumUsers() == 0 {
		o.log.Warn("ml: recommend: no interactions in the input: nothing to emit")
	}
	sv := o.nextStage(0)
	sv.ChangedOnly, sv.Since = false, 0
	o.sm.SinceFull = 0
	o.takeChanged()
	fz, err := o.freeze(sv, nil)
	if err != nil {
		return err
	}
	res, err := fz.score(ctx, o.b)
	if err != nil {
		return err
	}
	if eo := o.s.opts.Export; eo != nil {
		if err := o.s.writeVersion(ctx, res, o.b, versionInfo{}); err != nil {
			return err
		}
		if err := publishVersion(eo.fs(), eo.Path, sv.Version, eo.Retain); err != nil {
			return err
		}
		o.s.notePublished(sv.Version)
	}
	o.meta.Version = sv.Version
	o.sm.Emitted = o.sm.Applied
	o.log.Info("ml: recommend: end of input", "version", sv.Version, "users", len(res.userKeys), "items", len(res.itemKeys),
		"interactions", o.sm.Applied, "failed_rows", o.failed)
	return o.emit(ctx, res, out)
}

func (o *streamOp) Close() error { return o.opBase.Close() }
