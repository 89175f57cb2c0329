package eval

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/riffle-dev/riffle/ml"
)

// Prequential protocol defaults.
const (
	DefaultTrainFraction = 0.5
	DefaultBatch         = 100
	DefaultBuckets       = 20
)

// PrequentialOptions configure the prequential protocol (doc.go).
type PrequentialOptions struct {
	// TrainFraction of the rows, in time order, trains the starting models
	// (default 0.5); the rest is replayed.
	TrainFraction float64
	// Batch is the number of replayed rows per micro-batch (default 100).
	Batch int
	// RetrainEvery: the full-retrain reference is retrained from scratch
	// (ml.Train on every row so far) once at least that many rows were
	// replayed since its last training, at a batch boundary. 0: no
	// reference.
	RetrainEvery int
	// K, MinWeight: as ml.PrequentialOptions (K defaults to 10).
	K         int
	MinWeight float32
	// Buckets is the number of points of the curve (default 20: per 5% of
	// the replayed rows).
	Buckets int
	// Config trains every factor model.
	Config ml.Config
	// Online, when not nil, adds the incremental model: an ml.Online with
	// these options, starting from the frozen model (ml.Train on the train
	// rows with Config, loaded by AddHistory, SetUser, SetItem and
	// RefreshGrams: the restore path of a job that continues a backfill),
	// then updated by Apply with each batch after the batch was scored:
	// the running job's path. Its Config is Config with, when set,
	// Online.Config's Solver (SolverCholesky) and CGSteps for the updates.
	Online *ml.OnlineOptions
}

// EnsureDefaults fills the zero fields with their defaults.
func (o *PrequentialOptions) EnsureDefaults() {
	if o.TrainFraction == 0 {
		o.TrainFraction = DefaultTrainFraction
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.K == 0 {
		o.K = 10
	}
	if o.Buckets == 0 {
		o.Buckets = DefaultBuckets
	}
}

// Validate checks options with their defaults filled in.
func (o *PrequentialOptions) Validate() error {
	switch {
	case !(o.TrainFraction > 0 && o.TrainFraction < 1):
		return fmt.Errorf("eval: prequential: train fraction %v must be in (0, 1)", o.TrainFraction)
	case o.Batch < 1, o.RetrainEvery < 0, o.K < 1, o.Buckets < 1:
		return fmt.Errorf("eval: prequential: batch %d, retrain-every %d, K %d and buckets %d must be positive", o.Batch, o.RetrainEvery, o.K, o.Buckets)
	}
	return o.Config.Validate()
}

// PrequentialResult is the outcome of the prequential protocol.
type PrequentialResult struct {
	Rows       int `json:"rows"`
	TrainRows  int `json:"train_rows"`
	ReplayRows int `json:"replay_rows"`
	Batches    int `json:"batches"`
	K          int `json:"k"`
	// Counts classifies the replayed events (ml.EventClass).
	Counts ml.PrequentialCounts `json:"counts"`
	// Models are the figures over the warm events, in the order
	// incremental (when asked for), retrain (when RetrainEvery > 0),
	// frozen, popularity.
	Models []PrequentialModelResult `json:"models"`
	// ColdUsers: the cold-user events, ranked by popularity.
	ColdUsers PrequentialModelResult `json:"cold_users"`
	Curve     []CurvePoint           `json:"curve"`
}

// PrequentialModelResult is one model's figures and update cost.
type PrequentialModelResult struct {
	Model    string  `json:"model"`
	Events   int64   `json:"events"`
	HR       float64 `json:"hr"`
	NDCG     float64 `json:"ndcg"`
	Fallback int64   `json:"fallback"`
	// Updates: batches applied (incremental) or trainings (retrain), the
	// rows they covered and their wall time in seconds.
	Updates       int     `json:"updates,omitempty"`
	UpdateRows    int64   `json:"update_rows,omitempty"`
	UpdateSeconds float64 `json:"update_seconds,omitempty"`
	// FailedRows: rows whose incremental solve failed and was rolled back.
	FailedRows int64 `json:"failed_rows,omitempty"`
}

// CurvePoint holds the figures over one bucket of the replayed rows:
// positions [From, To) of the replay, times [FromTime, ToTime], Events
// warm events; HR and NDCG per model, in Models order.
type CurvePoint struct {
	From     int       `json:"from"`
	To       int       `json:"to"`
	FromTime int64     `json:"from_time"`
	ToTime   int64     `json:"to_time"`
	Events   int64     `json:"events"`
	HR       []float64 `json:"hr"`
	NDCG     []float64 `json:"ndcg"`
}

// Key is the id key of Dataset dense index x that the prequential
// protocol hands to models: 4 bytes big endian, so bytewise key order is
// index order, which is id order.
func Key(x int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(x)) }

func unkey(k []byte) (int32, bool) {
	if len(k) != 4 {
		return 0, false
	}
	return int32(binary.BigEndian.Uint32(k)), true
}

// PrequentialSplit returns the rows of d in time order and the number of
// them that train.
func PrequentialSplit(d *Dataset, trainFraction float64) (order []int32, train int) {
	all := make([]int32, d.Len())
	for i := range all {
		all[i] = int32(i)
	}
	order = d.TimeOrder(all)
	return order, int(math.Floor(float64(len(order)) * trainFraction))
}

// Interactions returns rows of d as interactions keyed by Key.
func (d *Dataset) Interactions(rows []int32) []ml.Interaction {
	out := make([]ml.Interaction, len(rows))
	for j, r := range rows {
		out[j] = ml.Interaction{User: Key(d.Users[r]), Item: Key(d.Items[r]), Weight: d.Weights[r]}
	}
	return out
}

// preqModel is one model of the comparison and how it learns from a batch.
type preqModel struct {
	res    PrequentialModelResult
	view   ml.PrequentialModel
	update func(ctx context.Context, batch []ml.Interaction, seen []int32) error
}

// Prequential runs the prequential protocol on d (doc.go).
func Prequential(ctx context.Context, d *Dataset, o PrequentialOptions) (*PrequentialResult, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	order, nTrain := PrequentialSplit(d, o.TrainFraction)
	res := &PrequentialResult{Rows: len(order), TrainRows: nTrain, ReplayRows: len(order) - nTrain, K: o.K}
	train, replay := order[:nTrain], order[nTrain:]

	var models []*preqModel
	frozen, err := trainView(ctx, d, train, o.Config)
	if err != nil {
		return nil, fmt.Errorf("eval: prequential: frozen model: %w", err)
	}
	if o.Online != nil {
		oo := *o.Online
		oo.Config = o.Config
		if o.Online.Config.Solver == ml.SolverCholesky {
			oo.Config.Solver = ml.SolverCholesky
		}
		if o.Online.Config.CGSteps > 0 {
			oo.Config.CGSteps = o.Online.Config.CGSteps
		}
		on, err := ml.NewOnline(oo)
		if err != nil {
			return nil, fmt.Errorf("eval: prequential: %w", err)
		}
		if err := frozen.load(on, d, train); err != nil {
			return nil, fmt.Errorf("eval: prequential: incremental model: %w", err)
		}
		m := &preqModel{res: PrequentialModelResult{Model: "incremental"}, view: on}
		m.update = func(ctx context.Context, batch []ml.Interaction, _ []int32) error {
			t0 := time.Now()
			st, err := on.Apply(ctx, batch)
			if err != nil {
				return fmt.Errorf("eval: prequential: incremental update: %w", err)
			}
			m.res.Updates++
			m.res.UpdateRows += int64(len(batch))
			m.res.UpdateSeconds += time.Since(t0).Seconds()
			m.res.FailedRows += int64(st.FailedUsers + st.FailedItems)
			return nil
		}
		models = append(models, m)
	}
	if o.RetrainEvery > 0 {
		m := &preqModel{res: PrequentialModelResult{Model: "retrain"}}
		var since int
		retrain := func(ctx context.Context, rows []int32) error {
			t0 := time.Now()
			v, err := trainView(ctx, d, rows, o.Config)
			if err != nil {
				return fmt.Errorf("eval: prequential: retrain on %d rows: %w", len(rows), err)
			}
			m.view = v
			m.res.Updates++
			m.res.UpdateRows += int64(len(rows))
			m.res.UpdateSeconds += time.Since(t0).Seconds()
			since = 0
			return nil
		}
		m.view = frozen // the same training on the train rows
		m.update = func(ctx context.Context, batch []ml.Interaction, seen []int32) error {
			if since += len(batch); since >= o.RetrainEvery {
				return retrain(ctx, seen)
			}
			return nil
		}
		models = append(models, m)
	}
	models = append(models, &preqModel{res: PrequentialModelResult{Model: "frozen"}, view: frozen})

	meter, err := ml.NewPrequentialMeter(ml.PrequentialOptions{K: o.K, MinWeight: o.MinWeight}, len(models))
	if err != nil {
		return nil, err
	}
	views := make([]ml.PrequentialModel, len(models))
	nm := len(models) + 1 // and popularity
	h := newHistory(d)
	h.add(train)

	// Curve buckets: replay position q falls in bucket q·Buckets/len.
	buckets := min(o.Buckets, max(len(replay), 1))
	res.Curve = make([]CurvePoint, buckets)
	sums := make([][2][]float64, buckets)
	for b := range res.Curve {
		c := &res.Curve[b]
		c.From = (b*len(replay) + buckets - 1) / buckets
		c.To = ((b+1)*len(replay) + buckets - 1) / buckets
		if c.To > c.From {
			c.FromTime, c.ToTime = d.Times[replay[c.From]], d.Times[replay[c.To-1]]
		}
		sums[b] = [2][]float64{make([]float64, nm), make([]float64, nm)}
	}
	bucketOf := func(q int) int { return q * buckets / len(replay) }

	for lo := 0; lo < len(replay); lo += o.Batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+o.Batch, len(replay))
		batch := d.Interactions(replay[lo:hi])
		for j, m := range models {
			views[j] = m.view
		}
		err := meter.ObserveModels(h, views, batch, func(ev ml.PrequentialEvent) {
			if ev.Class != ml.EventWarm {
				return
			}
			b := bucketOf(lo + ev.Pos)
			res.Curve[b].Events++
			for j, r := range ev.Ranks {
				if r <= o.K {
					sums[b][0][j]++
					sums[b][1][j] += 1 / math.Log2(float64(r)+1)
				}
			}
		})
		if err != nil {
			return nil, err
		}
		h.add(replay[lo:hi])
		for _, m := range models {
			if m.update == nil {
				continue
			}
			if err := m.update(ctx, batch, order[:nTrain+lo+len(batch)]); err != nil {
				return nil, fmt.Errorf("%w (replay rows %d..%d)", err, lo, lo+len(batch)-1)
			}
		}
		res.Batches++
	}

	res.Counts = meter.Counts()
	for j, m := range models {
		f := meter.Model(j)
		m.res.Events, m.res.HR, m.res.NDCG, m.res.Fallback = f.Events, f.HR(), f.NDCG(), f.Fallback
		res.Models = append(res.Models, m.res)
	}
	p := meter.Popularity()
	res.Models = append(res.Models, PrequentialModelResult{Model: "popularity", Events: p.Events, HR: p.HR(), NDCG: p.NDCG()})
	c := meter.ColdUsers()
	res.ColdUsers = PrequentialModelResult{Model: "popularity (cold users)", Events: c.Events, HR: c.HR(), NDCG: c.NDCG()}
	for b := range res.Curve {
		cp := &res.Curve[b]
		cp.HR, cp.NDCG = make([]float64, nm), make([]float64, nm)
		if cp.Events > 0 {
			for j := range nm {
				cp.HR[j] = sums[b][0][j] / float64(cp.Events)
				cp.NDCG[j] = sums[b][1][j] / float64(cp.Events)
			}
		}
	}
	return res, nil
}

// history is the interaction history of the replay over Dataset indices,
// in the index spaces ml.PrequentialHistory asks for: items in order of
// first sight.
type history struct {
	d         *Dataset
	itemHist  []int32 // Dataset item -> history item, -1 unknown
	itemOf    []int32 // history item -> Dataset item
	userItems [][]int32
	userKnown []bool
	itemUsers [][]int32
}

func newHistory(d *Dataset) *history {
	h := &history{itemHist: make([]int32, d.ItemIDs.Len()), userItems: make([][]int32, d.UserIDs.Len()), userKnown: make([]bool, d.UserIDs.Len())}
	for i := range h.itemHist {
		h.itemHist[i] = -1
	}
	h.d = d
	return h
}

func (h *history) add(rows []int32) {
	for _, r := range rows {
		u, it := h.d.Users[r], h.d.Items[r]
		i := h.itemHist[it]
		if i < 0 {
			i = int32(len(h.itemOf))
			h.itemHist[it] = i
			h.itemOf = append(h.itemOf, it)
			h.itemUsers = append(h.itemUsers, nil)
		}
		h.userKnown[u] = true
		p, ok := slices.BinarySearch(h.userItems[u], i)
		if !ok {
			h.userItems[u] = slices.Insert(h.userItems[u], p, i)
			h.itemUsers[i] = append(h.itemUsers[i], u)
		}
	}
}

func (h *history) NumItems() int { return len(h.itemOf) }

func (h *history) UserIndex(key []byte) (int32, bool) {
	u, ok := unkey(key)
	if !ok || u < 0 || int(u) >= len(h.userKnown) || !h.userKnown[u] {
		return 0, false
	}
	return u, true
}

func (h *history) ItemIndex(key []byte) (int32, bool) {
	it, ok := unkey(key)
	if !ok || it < 0 || int(it) >= len(h.itemHist) || h.itemHist[it] < 0 {
		return 0, false
	}
	return h.itemHist[it], true
}

func (h *history) ItemKey(i int32) []byte                 { return Key(h.itemOf[i]) }
func (h *history) UserItems(u int32) ([]int32, []float32) { return h.userItems[u], nil }
func (h *history) ItemUsers(i int32) ([]int32, []float32) { return h.itemUsers[i], nil }

// modelView serves an *ml.Model trained on a compact matrix to the meter,
// its rows found by Dataset index.
type modelView struct {
	m                *ml.Model
	userIdx, itemIdx []int32 // Dataset index -> model row, -1 absent
}

// trainView trains cfg on rows of d.
func trainView(ctx context.Context, d *Dataset, rows []int32, cfg ml.Config) (*modelView, error) {
	ui, userIdx, itemIdx, _, _, err := d.matrix(rows)
	if err != nil {
		return nil, err
	}
	m, err := ml.Train(ctx, cfg, ui, nil)
	if err != nil {
		return nil, err
	}
	return &modelView{m: m, userIdx: userIdx, itemIdx: itemIdx}, nil
}

// load fills on with the rows' histories and v's factors.
func (v *modelView) load(on *ml.Online, d *Dataset, rows []int32) error {
	on.AddHistory(d.Interactions(rows))
	for x, r := range v.userIdx {
		if r >= 0 {
			if _, err := on.SetUser(Key(int32(x)), v.m.UserVector(int(r))); err != nil {
				return err
			}
		}
	}
	for x, r := range v.itemIdx {
		if r >= 0 {
			if _, err := on.SetItem(Key(int32(x)), v.m.ItemVector(int(r))); err != nil {
				return err
			}
		}
	}
	on.RefreshGrams()
	return nil
}

func (v *modelView) Factors() int { return v.m.Factors }

func lookup(idx []int32, key []byte) (int32, bool) {
	x, ok := unkey(key)
	if !ok || x < 0 || int(x) >= len(idx) || idx[x] < 0 {
		return 0, false
	}
	return idx[x], true
}

func (v *modelView) UserIndex(key []byte) (int32, bool) { return lookup(v.userIdx, key) }
func (v *modelView) ItemIndex(key []byte) (int32, bool) { return lookup(v.itemIdx, key) }
func (v *modelView) UserReady(int32) bool               { return true }
func (v *modelView) ItemReady(int32) bool               { return true }
func (v *modelView) UserVector(u int32) []float32       { return v.m.UserVector(int(u)) }
func (v *modelView) ItemVector(i int32) []float32       { return v.m.ItemVector(int(i)) }
