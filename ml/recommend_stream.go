package ml

import (
	"bytes"
	"cmp"
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
	// ItemDefer is OnlineOptions.ItemDefer (0: every touched item is
	// re-solved at every update; DefaultUpdate: DefaultItemDefer).
	ItemDefer int
	// MaxHistory, when > 0, keeps each user's newest MaxHistory
	// interactions only (OnlineOptions.MaxHistory): at each update the
	// oldest ones beyond it leave the model and the state (the user's
	// list and the items' lists), so a stream that runs for months holds
	// a bounded history per user.
	MaxHistory int
	// HalfLife, when > 0, decays the confidence of an interaction by half
	// every HalfLife interactions that come after it: its weight counts
	// as w·2^(−(T−t)/HalfLife) at sequence number T for an interaction
	// accepted as the t-th. Stored (state and model) as w·2^((t−base)/H),
	// with α scaled by 2^(−(T−base)/H) at each update
	// (Online.SetAlphaScale), so nothing is rewritten as it ages except
	// once per DecayRebase half-lives, when every stored weight is
	// multiplied by 2^−DecayRebase and base moves on (O(state)).
	HalfLife int64
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
	// Prequential, when not nil, meters the model live: each incremental
	// update's interactions are scored against the model before it
	// applies them (PrequentialMeter; K defaults to 10), reported in
	// RecommendSpec.Stats.
	Prequential *PrequentialOptions
}

// DecayRebase is the number of half-lives after which the streaming
// operator rebases its inflated weights (UpdateOptions.HalfLife).
const DecayRebase = 32

// DefaultFullEvery is UpdateOptions.FullEvery's default.
const DefaultFullEvery = 10

// DefaultUpdate is the update: mapping's defaults in a job: an update
// every DefaultUpdateEvery interactions, a full retrain when the model
// has doubled, popular items re-solved once per 3–6% of new events
// (DefaultItemDefer), serving on.
func DefaultUpdate() UpdateOptions {
	return UpdateOptions{Every: DefaultUpdateEvery, RetrainGrowth: 2, Serve: true, ItemDefer: DefaultItemDefer}
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
	case u.ItemDefer < 0 || u.ItemDefer > 30:
		return fmt.Errorf("ml: recommend: update: item_defer must be in 0..30, got %d", u.ItemDefer)
	case u.HalfLife < 0:
		return fmt.Errorf("ml: recommend: update: half_life must be ≥ 0, got %d", u.HalfLife)
	case u.MaxHistory < 0:
		return fmt.Errorf("ml: recommend: update: max_history must be ≥ 0, got %d", u.MaxHistory)
	case u.ExportCheckpoints < 0:
		return fmt.Errorf("ml: recommend: update: export_every checkpoints must be ≥ 0, got %d", u.ExportCheckpoints)
	case u.ExportInterval < 0:
		return fmt.Errorf("ml: recommend: update: export_every interval must be ≥ 0, got %v", u.ExportInterval)
	case u.ExportCheckpoints > 0 && u.ExportInterval > 0:
		return errors.New("ml: recommend: update: export_every takes checkpoints or interval, not both")
	case u.FullEvery < 0:
		return fmt.Errorf("ml: recommend: update: full_every must be ≥ 0, got %d", u.FullEvery)
	}
	if p := u.Prequential; p != nil {
		if _, err := NewPrequentialMeter(*p, 1); err != nil {
			return fmt.Errorf("ml: recommend: update: %w", err)
		}
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
	// UserGramUpdates and ItemGramUpdates are Online.GramUpdates: the row
	// updates since each matrix was last computed exactly, so a restored
	// model refreshes them at the same update as one that never stopped.
	UserGramUpdates int `json:"user_gram_updates,omitempty"`
	ItemGramUpdates int `json:"item_gram_updates,omitempty"`
	// DecayBase is the sequence number the stored weights are inflated
	// from (UpdateOptions.HalfLife).
	DecayBase int64 `json:"decay_base,omitempty"`
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
	// Prequential is the live prequential meter's state (nil when off), so
	// a restored job's figures go on from the checkpoint's.
	Prequential *PrequentialState `json:"prequential,omitempty"`
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
	ihash     []uint64
	changed   []bool // users changed since the last version, by dense index
	nchanged  int

	lastExport time.Time
	stMu       sync.Mutex
	staged     []*staging // staged, not published, by version
	completed  uint64     // newest completed checkpoint
	snapped    uint64     // newest checkpoint snapshotted (its barrier passed)
	stagedAt   uint64     // checkpoint of the newest version staged

	live     liveSyncer
	failed   int64 // rows whose update failed and was rolled back
	finished bool  // Finish ran: later (lingering) snapshots stage nothing

	meter   *PrequentialMeter // nil: no live prequential metric
	models  []PrequentialModel
	stats   RecommendStats       // published to the spec after each update
	updHist *arrowexec.Histogram // update durations (RecommendStats.UpdateDurations)
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
	return &streamOp{opBase: base, up: up, updHist: arrowexec.NewHistogram(updateDurationBounds...)}
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
	on, err := NewOnline(OnlineOptions{Config: o.s.opts.Config, GramRefresh: o.up.GramRefresh, ItemDefer: o.up.ItemDefer,
		MaxHistory: o.up.MaxHistory})
	if err != nil {
		return fmt.Errorf("ml: recommend: %w", err)
	}
	o.online = on
	if p := o.up.Prequential; p != nil {
		if o.meter, err = NewPrequentialMeter(*p, 1); err != nil {
			return fmt.Errorf("ml: recommend: %w", err)
		}
		o.models = []PrequentialModel{on}
	}
	if o.meta.Stream != nil {
		o.sm = *o.meta.Stream
	}
	if o.t.Restore != nil {
		if err := o.restoreModel(ctx); err != nil {
			return err
		}
	}
	if ps := o.sm.Prequential; ps != nil && o.meter != nil {
		if err := o.meter.SetState(*ps); err != nil {
			// Options changed since the checkpoint: the figures start over.
			o.log.Warn("ml: recommend: the live prequential figures start from zero", "err", err)
		}
	}
	o.sm.Prequential = nil
	if err := o.maybeRebase(); err != nil {
		return err
	}
	if err := o.setAlphaScale(o.sm.Applied); err != nil {
		return err
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
	o.publishStats()
	return nil
}

// restoreModel rebuilds the model from the keyed state: the factors in
// the order of their dense indices (so a restored model has the same
// indices and is bitwise the one snapshotted), then every user's
// interactions in store order, then the Gram matrices (bitwise from the
// operator state; recomputed exactly when the state came from the batch
// operator, which keeps none).
func (o *streamOp) restoreModel(ctx context.Context) error {
	// Rows point into two arenas (keys, factors) by offset: decoding a
	// million rows allocates a few large arrays, not two small ones a row.
	type row struct {
		idx         uint32
		key, keyEnd int // keys[key:keyEnd]
		vec         int // vecs[vec:vec+k]
	}
	k := o.online.Factors()
	var keys []byte
	var vecs []float32
	read := func(v *state.Value[[]byte], user bool) ([]row, error) {
		var rows []row
		var bad error
		err := v.Range(func(e state.Entry, blob []byte) bool {
			var sf storedFactor
			var err error
			at := len(vecs)
			if sf, vecs, err = decodeStoredAppend(blob, user, k, vecs); err != nil {
				kind := o.b.itemKind
				if user {
					kind = o.b.userKind
				}
				bad = fmt.Errorf("key %s: %w", formatKey(kind, e.Key), err)
				return false
			}
			start := len(keys)
			keys = append(keys, e.Key...)
			rows = append(rows, row{idx: sf.idx, key: start, keyEnd: len(keys), vec: at})
			return true
		})
		if err == nil {
			err = bad
		}
		return byDenseIndex(rows, func(r row) uint32 { return r.idx }), err
	}
	users, err := read(o.user, true)
	if err != nil {
		return fmt.Errorf("ml: recommend: restore user factors: %w", err)
	}
	items, err := read(o.item, false)
	if err != nil {
		return fmt.Errorf("ml: recommend: restore item factors: %w", err)
	}
	o.online.Reserve(len(users), len(items))
	for _, x := range []struct {
		rows []row
		set  func([]byte, []float32) (int32, error)
	}{{users, o.online.SetUser}, {items, o.online.SetItem}} {
		for _, r := range x.rows {
			if _, err := x.set(keys[r.key:r.keyEnd], vecs[r.vec:r.vec+k]); err != nil {
				return fmt.Errorf("ml: recommend: restore: %w", err)
			}
		}
	}
	// Each user's list goes into the model as it is read (AddHistory
	// copies what it keeps), in store order as before; the raw list is
	// kept only to rewrite the batch operator's item lists.
	keepRaw := o.meta.Stream == nil
	var hist, one []Interaction
	var over []Interaction // users whose stored list exceeds MaxHistory
	if err := o.inter.Range(func(e state.Entry, vals [][]byte) bool {
		if o.up.MaxHistory > 0 && len(vals) > o.up.MaxHistory {
			over = append(over, Interaction{User: bytes.Clone(e.Key)})
		}
		one = one[:0]
		for _, v := range vals {
			one = append(one, Interaction{User: e.Key, Item: v[4:], Weight: math.Float32frombits(binary.LittleEndian.Uint32(v))})
		}
		o.online.AddHistory(one)
		if keepRaw {
			key := bytes.Clone(e.Key)
			for _, it := range one {
				hist = append(hist, Interaction{User: key, Item: bytes.Clone(it.Item), Weight: it.Weight})
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("ml: recommend: restore interactions: %w", err)
	}
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
		if err := o.online.SetGramUpdates(o.sm.UserGramUpdates, o.sm.ItemGramUpdates); err != nil {
			return fmt.Errorf("ml: recommend: restore: %w", err)
		}
	} else {
		o.online.RefreshGrams()
	}
	// State written without the cap (or a larger one): the model dropped
	// the oldest interactions as it read them; so does the state.
	if err := o.trimLists(over); err != nil {
		return err
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

// byDenseIndex orders rows by their dense index: in place when the
// indices are a permutation of 0..n-1 (every stored row was solved, the
// usual case), else by sorting.
func byDenseIndex[T any](rows []T, idx func(T) uint32) []T {
	out := make([]T, len(rows))
	placed := make([]bool, len(rows))
	for _, r := range rows {
		i := idx(r)
		if int(i) >= len(rows) || placed[i] {
			slices.SortFunc(rows, func(a, b T) int { return cmp.Compare(idx(a), idx(b)) })
			return rows
		}
		out[i], placed[i] = r, true
	}
	return out
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
	if o.up.HalfLife > 0 {
		seq := o.sm.Applied + int64(len(o.pend))
		for j := range o.ws {
			o.ws[j] = o.inflate(o.ws[j], seq+int64(j))
		}
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
		p.item[0] = p.user[1]
		o.pbuf = o.ikeys.append(o.pbuf, i)
		p.item[1] = int32(len(o.pbuf))
		p.w = o.ws[j]
		o.pend = append(o.pend, p)
	}
	if len(o.pend) >= o.up.Every || (o.up.Interval > 0 && time.Since(o.pendSince) >= o.up.Interval) {
		return o.update(ctx)
	}
	o.s.mu.Lock()
	o.s.stats.Pending = int64(len(o.pend))
	o.s.mu.Unlock()
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
	if err := o.setAlphaScale(o.sm.Applied + int64(n)); err != nil {
		return err
	}
	if !o.sm.Trained {
		o.online.AddHistory(o.batch)
		if err := o.online.Retrain(ctx, false); err != nil {
			return o.describeRowError("training failed", err)
		}
		o.sm.Trained, full = true, true
		o.sm.RetrainBase = o.online.NumInteractions()
		o.stats.NewUsers += int64(o.online.NumUsers())
		o.stats.NewItems += int64(o.online.NumItems())
	} else {
		if o.meter != nil {
			// Test, then train: the batch scored against the model before it.
			if err := o.meter.ObserveModels(o.online, o.models, o.batch, nil); err != nil {
				return fmt.Errorf("ml: recommend: prequential: %w", err)
			}
		}
		st, err := o.online.Apply(ctx, o.batch)
		if err != nil {
			return fmt.Errorf("ml: recommend: update: %w", err)
		}
		o.stats.NewUsers += int64(st.NewUsers)
		o.stats.NewItems += int64(st.NewItems)
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
	if err := o.trimLists(o.batch); err != nil {
		return err
	}
	o.pend, o.pbuf = o.pend[:0], o.pbuf[:0]
	o.sm.Applied += int64(n)
	if err := o.maybeRebase(); err != nil {
		return err
	}
	if err := o.storeChanged(); err != nil {
		return err
	}
	if err := o.syncLive(); err != nil {
		return err
	}
	o.stats.Updates++
	o.stats.Applied += int64(n)
	if full {
		o.stats.FullTrainings++
	}
	o.stats.LastUpdate = time.Now()
	o.stats.LastUpdateDuration = o.stats.LastUpdate.Sub(start)
	o.stats.UpdateTime += o.stats.LastUpdateDuration
	o.stats.MaxUpdateDuration = max(o.stats.MaxUpdateDuration, o.stats.LastUpdateDuration)
	o.updHist.Observe(o.stats.LastUpdateDuration.Seconds())
	o.publishStats()
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

// inflate returns weight w of the interaction with sequence number seq
// as stored under HalfLife: w·2^((seq−base)/H), saturated.
func (o *streamOp) inflate(w float32, seq int64) float32 {
	v := float64(w) * math.Exp2(float64(seq-o.sm.DecayBase)/float64(o.up.HalfLife))
	if v > math.MaxFloat32 {
		return math.MaxFloat32
	}
	return float32(v)
}

// setAlphaScale gives the model the confidence scale of sequence number
// t under HalfLife: 2^(−(t−base)/H).
func (o *streamOp) setAlphaScale(t int64) error {
	if o.up.HalfLife <= 0 {
		return nil
	}
	if err := o.online.SetAlphaScale(math.Exp2(-float64(t-o.sm.DecayBase) / float64(o.up.HalfLife))); err != nil {
		return fmt.Errorf("ml: recommend: half_life: %w", err)
	}
	return nil
}

// maybeRebase rebases the stored weights once DecayRebase half-lives
// (or a multiple) passed since the base: every stored weight (both lists
// in the state, the model's histories) is multiplied by 2^−(DecayRebase·n)
// and the base moves on by as many half-lives, so the inflated weights
// stay in float32's range (n > 1 only for state that ran long without
// half_life: its weights then underflow to 0, as old as they are).
func (o *streamOp) maybeRebase() error {
	h := o.up.HalfLife
	if h <= 0 {
		return nil
	}
	n := (o.sm.Applied - o.sm.DecayBase) / (DecayRebase * h)
	if n <= 0 {
		return nil
	}
	f := float32(math.Ldexp(1, -int(min(n*DecayRebase, 200))))
	for _, x := range []struct {
		l    *state.List[[]byte]
		kind idKind
	}{{o.inter, o.b.userKind}, {o.itemIntr, o.b.itemKind}} {
		var keys, vals [][]byte
		var lens []int
		if err := x.l.Range(func(e state.Entry, vs [][]byte) bool {
			keys = append(keys, bytes.Clone(e.Key))
			lens = append(lens, len(vs))
			for _, v := range vs {
				v = bytes.Clone(v)
				binary.LittleEndian.PutUint32(v, math.Float32bits(math.Float32frombits(binary.LittleEndian.Uint32(v))*f))
				vals = append(vals, v)
			}
			return true
		}); err != nil {
			return fmt.Errorf("ml: recommend: half_life: rebase: %w", err)
		}
		hs, err := hashKeys(x.kind, keys)
		if err != nil {
			return err
		}
		for j, key := range keys {
			if err := x.l.Update(hs[j], key, nil, vals[:lens[j]]); err != nil {
				return fmt.Errorf("ml: recommend: half_life: rebase: %w", err)
			}
			vals = vals[lens[j]:]
		}
	}
	o.online.ScaleWeights(f)
	o.sm.DecayBase += n * DecayRebase * h
	o.log.Info("ml: recommend: decayed weights rebased", "base", o.sm.DecayBase)
	return o.setAlphaScale(o.sm.Applied)
}

// trimLists removes from the state the oldest interactions of each user
// of batch whose list holds more than MaxHistory (the model dropped the
// same ones, Online.MaxHistory: a user's list and the model see its
// interactions in the same order), and, for each, the item's oldest
// entry of that user (the item's list is in arrival order too).
func (o *streamOp) trimLists(batch []Interaction) error {
	n := o.up.MaxHistory
	if n <= 0 {
		return nil
	}
	// Only a user at the cap may have a longer list (the model dropped
	// its oldest events); its list is read to see.
	var over [][]byte
	seen := map[string]bool{}
	for _, it := range batch {
		u, ok := o.online.UserIndex(it.User)
		if ok && o.online.UserEvents(u) == int64(n) && !seen[string(it.User)] {
			seen[string(it.User)] = true
			over = append(over, it.User)
		}
	}
	if len(over) == 0 {
		return nil
	}
	hs, err := hashKeys(o.b.userKind, over)
	if err != nil {
		return err
	}
	drops := map[string][][]byte{} // item key -> the users whose entry goes, in order
	var items [][]byte
	for j, u := range over {
		vals, err := o.inter.Get(hs[j], u, nil)
		if err != nil {
			return fmt.Errorf("ml: recommend: max_history: user %s: %w", formatKey(o.b.userKind, u), err)
		}
		d := len(vals) - n
		if d <= 0 {
			continue
		}
		for _, v := range vals[:d] {
			ik := string(v[4:])
			if _, ok := drops[ik]; !ok {
				items = append(items, []byte(ik))
			}
			drops[ik] = append(drops[ik], u)
		}
		if err := o.inter.Update(hs[j], u, nil, cloneAll(vals[d:])); err != nil {
			return fmt.Errorf("ml: recommend: max_history: user %s: %w", formatKey(o.b.userKind, u), err)
		}
	}
	ihs, err := hashKeys(o.b.itemKind, items)
	if err != nil {
		return err
	}
	for j, ik := range items {
		vals, err := o.itemIntr.Get(ihs[j], ik, nil)
		if err != nil {
			return fmt.Errorf("ml: recommend: max_history: item %s: %w", formatKey(o.b.itemKind, ik), err)
		}
		for _, u := range drops[string(ik)] {
			x := slices.IndexFunc(vals, func(v []byte) bool { return bytes.Equal(v[4:], u) })
			if x < 0 {
				return fmt.Errorf("ml: recommend: max_history: item %s has no entry of user %s to drop: user and item lists disagree",
					formatKey(o.b.itemKind, ik), formatKey(o.b.userKind, u))
			}
			vals = slices.Delete(vals, x, x+1)
		}
		if err := o.itemIntr.Update(ihs[j], ik, nil, cloneAll(vals)); err != nil {
			return fmt.Errorf("ml: recommend: max_history: item %s: %w", formatKey(o.b.itemKind, ik), err)
		}
	}
	return nil
}

func cloneAll(vals [][]byte) [][]byte {
	out := make([][]byte, len(vals))
	for j, v := range vals {
		out[j] = bytes.Clone(v)
	}
	return out
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
				buf = binary.AppendUvarint(buf, uint64(o.online.UserEvents(r)))
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
	o.exported(sv.Version)
	return nil
}

// exported records that version v was published (Stats).
func (o *streamOp) exported(v int64) {
	o.stats.LastExport, o.stats.LastExportTime = v, time.Now()
	o.publishStats()
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
	cfg := on.Config()
	cfg.Alpha *= on.AlphaScale() // the confidences the model was solved with (HalfLife)
	return &frozen{res: res, cfg: cfg}, nil
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
		o.stats.LastExport, o.stats.LastExportTime = sv.Version, time.Now()
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
	o.snapped = id
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
			o.stagedAt = id
			o.stMu.Lock()
			o.staged = append(o.staged, st)
			o.stMu.Unlock()
		}
	}
	sm := o.sm
	sm.UserGram, sm.ItemGram = bytesOf(o.online.UserGram()), bytesOf(o.online.ItemGram())
	sm.UserGramUpdates, sm.ItemGramUpdates = o.online.GramUpdates()
	if o.meter != nil {
		ps := o.meter.State()
		sm.Prequential = &ps
	}
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
		o.exported(next.Version)
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
		return o.exportAtStop(ctx)
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
		o.exported(sv.Version)
	}
	o.meta.Version = sv.Version
	o.sm.Emitted = o.sm.Applied
	o.log.Info("ml: recommend: end of input", "version", sv.Version, "users", len(res.userKeys), "items", len(res.itemKeys),
		"interactions", o.sm.Applied, "failed_rows", o.failed)
	return o.emit(ctx, res, out)
}

// exportAtStop publishes, when a job stops with a savepoint (a backfill
// held at its end, a stop without drain), a version of the final model
// that the export schedule did not stage at the stop barrier: nothing
// has been applied since that barrier, so the model is the savepoint's,
// and the savepoint completed (NotifyCheckpointComplete ran before
// Finish), so a job restored from it has this model. Nothing is published
// when the stop checkpoint did not complete (the model is then covered
// by no checkpoint) or the schedule already staged a version at it. A
// crash while writing leaves a temporary directory the restore removes;
// one after publishing leaves a version the restore numbers above.
func (o *streamOp) exportAtStop(ctx context.Context) error {
	if o.s.opts.Export == nil || !o.s.opts.Checkpointed || !o.sm.Trained ||
		o.snapped == 0 || o.completed != o.snapped || o.stagedAt == o.snapped || o.writing() {
		return nil
	}
	o.log.Info("ml: recommend: stopped with a savepoint: exporting its model", "checkpoint", o.snapped)
	return o.exportNow(ctx, o.snapped)
}

func (o *streamOp) Close() error { return o.opBase.Close() }
