package windows

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
)

// ev is one test event.
type ev struct {
	k     string
	kNull bool
	t     int64
	v     int64
	vNull bool
	u     int64
	w     string // min and max over strings
	wNull bool
}

var evSchema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "t", Type: arrow.PrimitiveTypes.Int64},
	{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "u", Type: arrow.PrimitiveTypes.Int64},
	{Name: "w", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// genEvents draws n events over keys keys whose event times lag their
// (increasing) arrival times by at most disorder ms.
func genEvents(rng *rand.Rand, n, keys int, step, disorder int64) []ev {
	out := make([]ev, n)
	a := int64(rng.IntN(1000))
	for i := range out {
		a += rng.Int64N(step + 1)
		e := ev{k: fmt.Sprintf("k%02d", rng.IntN(keys)), t: a - rng.Int64N(disorder+1), v: rng.Int64N(100) - 20, u: rng.Int64N(40)}
		e.kNull = rng.IntN(50) == 0
		e.vNull = rng.IntN(10) == 0
		e.w, e.wNull = randString(rng), rng.IntN(8) == 0
		out[i] = e
	}
	return out
}

// randString draws a string of 0 to 6 letters of a small alphabet, so
// that values share prefixes and one is a prefix of another.
func randString(rng *rand.Rand) string {
	b := make([]byte, rng.IntN(7))
	for i := range b {
		b[i] = "abcz"[rng.IntN(4)]
	}
	return string(b)
}

func toBatches(mem memory.Allocator, evs []ev, size int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	b := array.NewRecordBuilder(mem, evSchema)
	defer b.Release()
	for i, e := range evs {
		if e.kNull {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.StringBuilder).Append(e.k)
		}
		b.Field(1).(*array.Int64Builder).Append(e.t)
		if e.vNull {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.Int64Builder).Append(e.v)
		}
		b.Field(3).(*array.Int64Builder).Append(e.u)
		if e.wNull {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.StringBuilder).Append(e.w)
		}
		if (i+1)%size == 0 || i == len(evs)-1 {
			out = append(out, b.NewRecordBatch())
		}
	}
	return out
}

func releaseBatches(bs []arrow.RecordBatch) {
	for _, b := range bs {
		b.Release()
	}
}

var testAggs = []Agg{
	{Func: Count, As: "n"},
	{Func: Count, Column: "v", As: "nv"},
	{Func: Sum, Column: "v", As: "s"},
	{Func: Min, Column: "v", As: "lo"},
	{Func: Max, Column: "v", As: "hi"},
	{Func: Avg, Column: "v", As: "mean"},
	{Func: CountDistinct, Column: "u", As: "users"},
	{Func: ApproxDistinct, Column: "u", As: "users_approx"},
	{Func: VarSamp, Column: "v", As: "var"},
	{Func: StddevPop, Column: "v", As: "sdp"},
	{Func: Min, Column: "w", As: "wlo"},
	{Func: Max, Column: "w", As: "whi"},
	{Func: agg.Median, Column: "v", As: "med"},
	{Func: agg.Quantile, Column: "v", Param: 0.9, As: "q9"},
	{Func: agg.First, Column: "v", As: "fv"},
	{Func: agg.ArgMax, Column: "u", Column2: "v", As: "amu"},
}

// result is one window result (or the oracle's).
type result struct {
	n, nv, s, lo, hi int64
	mean             float64
	users, approx    int64
	// variance functions (NaN: NULL)
	vs, sdp float64
	// min and max of w ("NULL": no value; values are lower case)
	wlo, whi string
	// median, quantile 0.9 (NaN: NULL); first(v) and arg_max(u, v)
	// (null: NULL)
	med, q9       float64
	fv, amu       int64
	fvNull, amuNo bool
	update        bool
	// The oracle's: the sorted values (quantiles are checked by rank
	// beyond agg.KLLK values) and the acceptable results of first and
	// arg_max (rows tied on the ordering value; nil: NULL).
	sorted      []float64
	fvOK, amuOK []*int64
}

func (r result) String() string {
	return fmt.Sprintf("n=%d nv=%d s=%d lo=%d hi=%d mean=%.4g users=%d approx=%d var=%.6g sdp=%.6g wlo=%q whi=%q", r.n, r.nv, r.s, r.lo, r.hi, r.mean, r.users, r.approx, r.vs, r.sdp, r.wlo, r.whi)
}

type winKey struct {
	k          string
	start, end int64
}

func (w winKey) String() string { return fmt.Sprintf("%s[%d,%d)", w.k, w.start, w.end) }

// oracleAcc accumulates a window by brute force.
type oracleAcc struct {
	n, nv, s, lo, hi int64
	users            map[int64]bool
	vals             []float64
	nw               int
	wlo, whi         string
	// first(v) by t, arg_max(u, v): the best ordering value and the
	// results of the rows holding it
	ft, bv    int64
	fOK, amOK []*int64
}

func (a *oracleAcc) add(e ev) {
	var v *int64
	if !e.vNull {
		v = &e.v
	}
	switch {
	case a.n == 0 || e.t < a.ft:
		a.ft, a.fOK = e.t, []*int64{v}
	case e.t == a.ft:
		a.fOK = append(a.fOK, v)
	}
	if !e.vNull {
		u := e.u
		switch {
		case a.amOK == nil || e.v > a.bv:
			a.bv, a.amOK = e.v, []*int64{&u}
		case e.v == a.bv:
			a.amOK = append(a.amOK, &u)
		}
	}
	a.n++
	if a.users == nil {
		a.users = map[int64]bool{}
	}
	a.users[e.u] = true
	if !e.wNull {
		if a.nw == 0 || e.w < a.wlo {
			a.wlo = e.w
		}
		if a.nw == 0 || e.w > a.whi {
			a.whi = e.w
		}
		a.nw++
	}
	if e.vNull {
		return
	}
	if a.nv == 0 || e.v < a.lo {
		a.lo = e.v
	}
	if a.nv == 0 || e.v > a.hi {
		a.hi = e.v
	}
	a.nv++
	a.s += e.v
	a.vals = append(a.vals, float64(e.v))
}

func (a *oracleAcc) result() result {
	r := result{n: a.n, nv: a.nv, s: a.s, lo: a.lo, hi: a.hi, users: int64(len(a.users)), approx: int64(len(a.users)), wlo: "NULL", whi: "NULL",
		fvOK: a.fOK, amuOK: a.amOK}
	if a.nw > 0 {
		r.wlo, r.whi = a.wlo, a.whi
	}
	r.sorted = slices.Clone(a.vals)
	slices.Sort(r.sorted)
	r.med, r.q9 = math.NaN(), math.NaN()
	if len(a.vals) > 0 {
		r.med = agg.QuantileCont(slices.Clone(a.vals), 0.5)
		r.q9 = agg.QuantileCont(slices.Clone(a.vals), 0.9)
	}
	if a.nv > 0 {
		r.mean = float64(a.s) / float64(a.nv)
	}
	// Two passes: the mean, then the squared deviations from it.
	ss := 0.0
	for _, v := range a.vals {
		ss += (v - r.mean) * (v - r.mean)
	}
	r.vs, r.sdp = math.NaN(), math.NaN()
	if a.nv > 1 {
		r.vs = ss / float64(a.nv-1)
	}
	if a.nv > 0 {
		r.sdp = math.Sqrt(ss / float64(a.nv))
	}
	return r
}

func keyOf(e ev) string {
	if e.kNull {
		return "<null>"
	}
	return e.k
}

// fixedWindows returns the [start, end) windows of a tumbling or sliding
// assigner containing t, by brute force over candidate starts.
func fixedWindows(t, size, slide int64) [][2]int64 {
	var out [][2]int64
	first := (t-size)/slide*slide - 2*slide
	for s := first; s <= t; s += slide {
		if s <= t && t < s+size && floorMod(s, slide) == 0 {
			out = append(out, [2]int64{s, s + size})
		}
	}
	return out
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// oracle computes every window of evs by brute force (no lateness: every
// event counts).
func oracle(o Options, evs []ev) map[winKey]result {
	accs := map[winKey]*oracleAcc{}
	add := func(w winKey, e ev) {
		a := accs[w]
		if a == nil {
			a = &oracleAcc{}
			accs[w] = a
		}
		a.add(e)
	}
	switch o.Kind {
	case Tumbling, Sliding:
		slide := o.Slide.Milliseconds()
		if o.Kind == Tumbling {
			slide = o.Size.Milliseconds()
		}
		for _, e := range evs {
			for _, w := range fixedWindows(e.t, o.Size.Milliseconds(), slide) {
				add(winKey{keyOf(e), w[0], w[1]}, e)
			}
		}
	case Session:
		gap := o.Gap.Milliseconds()
		byKey := map[string][]ev{}
		for _, e := range evs {
			byKey[keyOf(e)] = append(byKey[keyOf(e)], e)
		}
		for k, es := range byKey {
			slices.SortStableFunc(es, func(a, b ev) int { return int(a.t - b.t) })
			var cur []ev
			flush := func() {
				if len(cur) == 0 {
					return
				}
				w := winKey{k, cur[0].t, cur[len(cur)-1].t + gap}
				for _, e := range cur {
					add(w, e)
				}
				cur = cur[:0]
			}
			for _, e := range es {
				if len(cur) > 0 && e.t > cur[len(cur)-1].t+gap {
					flush()
				}
				cur = append(cur, e)
			}
			flush()
		}
	}
	out := map[winKey]result{}
	for w, a := range accs {
		out[w] = a.result()
	}
	return out
}

// collected is what a window operator emitted, in emission order.
type collected struct {
	rows []struct {
		w winKey
		r result
	}
}

// read appends the rows of a result batch.
func (c *collected) read(b arrow.RecordBatch) {
	col := func(name string) arrow.Array {
		if ix := b.Schema().FieldIndices(name); len(ix) == 1 {
			return b.Column(ix[0])
		}
		return nil
	}
	k := col("k").(*array.String)
	st := col("window_start").(*array.Timestamp)
	en := col("window_end").(*array.Timestamp)
	i64 := func(name string, i int) int64 {
		a, _ := col(name).(*array.Int64)
		if a == nil || a.IsNull(i) {
			return 0
		}
		return a.Value(i)
	}
	mean, _ := col("mean").(*array.Float64)
	f64 := func(name string, i int) float64 {
		a, _ := col(name).(*array.Float64)
		if a == nil || a.IsNull(i) {
			return math.NaN()
		}
		return a.Value(i)
	}
	str := func(name string, i int) string {
		a, _ := col(name).(*array.String)
		if a == nil || a.IsNull(i) {
			return "NULL"
		}
		return a.Value(i)
	}
	upd := col("is_update").(*array.Boolean)
	for i := 0; i < int(b.NumRows()); i++ {
		w := winKey{k: "<null>", start: int64(st.Value(i)), end: int64(en.Value(i))}
		if k.IsValid(i) {
			w.k = k.Value(i)
		}
		r := result{n: i64("n", i), nv: i64("nv", i), s: i64("s", i), lo: i64("lo", i), hi: i64("hi", i),
			users: i64("users", i), approx: i64("users_approx", i), update: upd.Value(i),
			vs: f64("var", i), sdp: f64("sdp", i), wlo: str("wlo", i), whi: str("whi", i),
			med: f64("med", i), q9: f64("q9", i), fv: i64("fv", i), amu: i64("amu", i)}
		if c, _ := col("fv").(*array.Int64); c == nil || c.IsNull(i) {
			r.fvNull = true
		}
		if c, _ := col("amu").(*array.Int64); c == nil || c.IsNull(i) {
			r.amuNo = true
		}
		if mean != nil && mean.IsValid(i) {
			r.mean = mean.Value(i)
		}
		c.rows = append(c.rows, struct {
			w winKey
			r result
		}{w, r})
	}
}

// final returns the last result of every window.
func (c *collected) final() map[winKey]result {
	out := map[winKey]result{}
	for _, r := range c.rows {
		out[r.w] = r.r
	}
	return out
}

func sameResult(got, want result) bool {
	if got.n != want.n || got.nv != want.nv || got.s != want.s || got.lo != want.lo || got.hi != want.hi || got.users != want.users ||
		got.wlo != want.wlo || got.whi != want.whi {
		return false
	}
	if math.Abs(got.mean-want.mean) > 1e-9*math.Max(1, math.Abs(want.mean)) {
		return false
	}
	for _, p := range [][2]float64{{got.vs, want.vs}, {got.sdp, want.sdp}} {
		if math.IsNaN(p[0]) != math.IsNaN(p[1]) || math.Abs(p[0]-p[1]) > 1e-9*math.Max(1, math.Abs(p[1])) {
			return false
		}
	}
	if !sameQuantile(got.med, want.med, 0.5, want.sorted) || !sameQuantile(got.q9, want.q9, 0.9, want.sorted) {
		return false
	}
	if !oneOf(got.fv, got.fvNull, want.fvOK) || !oneOf(got.amu, got.amuNo, want.amuOK) {
		return false
	}
	d := got.approx - want.users
	if d < 0 {
		d = -d
	}
	return d <= max(2, want.users*3/100)
}

// sameQuantile: exact up to agg.KLLK values, else within the rank bound.
func sameQuantile(got, want, q float64, sorted []float64) bool {
	if math.IsNaN(got) || math.IsNaN(want) {
		return math.IsNaN(got) == math.IsNaN(want)
	}
	if len(sorted) <= agg.KLLK {
		return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want))
	}
	n := float64(len(sorted))
	target := q * (n - 1)
	lo := float64(sort.SearchFloat64s(sorted, got))
	hi := float64(sort.Search(len(sorted), func(i int) bool { return sorted[i] > got })) - 1
	return target >= lo-agg.KLLRankError*n && target <= hi+agg.KLLRankError*n
}

// oneOf: got (null: NULL) is one of the acceptable results (nil: NULL).
func oneOf(got int64, null bool, ok []*int64) bool {
	if len(ok) == 0 {
		return null
	}
	for _, w := range ok {
		if w == nil && null || w != nil && !null && *w == got {
			return true
		}
	}
	return false
}

func compareResults(t *testing.T, got, want map[winKey]result) {
	t.Helper()
	var diffs []string
	for w, r := range want {
		g, ok := got[w]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s: want %s", w, r))
		} else if !sameResult(g, r) {
			diffs = append(diffs, fmt.Sprintf("%s: got %s, want %s", w, g, r))
		}
	}
	for w, r := range got {
		if _, ok := want[w]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %s: %s", w, r))
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... %d more", len(diffs)-20))
		}
		t.Fatalf("%d windows, want %d; differences:\n%s", len(got), len(want), strings.Join(diffs, "\n"))
	}
}

// emitter collects emitted batches; with late, it hands the late side
// output to that operator (a sink), as the runtime's side edge would.
type emitter struct {
	c    *collected
	late arrowexec.Operator
}

func (e emitter) Emit(_ context.Context, b arrow.RecordBatch) error {
	e.c.read(b)
	b.Release()
	return nil
}

func (e emitter) EmitSide(ctx context.Context, name string, b arrow.RecordBatch) error {
	defer b.Release()
	if name != LateOutput {
		return fmt.Errorf("emitter: unknown side output %q", name)
	}
	return e.late.Process(ctx, 0, b, nil)
}

func (e emitter) SideWired(name string) bool { return name == LateOutput && e.late != nil }

// driver runs one operator by hand: Process, OnWatermark, Finish; with
// late, the late side output's sink too (snapshotted, notified, finished
// and closed with the window operator).
type driver struct {
	t    testing.TB
	op   *operator
	late arrowexec.Operator
	out  collected
	ctx  context.Context
}

func (d *driver) emitter() emitter { return emitter{&d.out, d.late} }

func newDriver(t testing.TB, mem memory.Allocator, opts Options) *driver {
	spec, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	op, err := spec.New(&arrowexec.Task{Node: "w", Parallelism: 1, MaxParallelism: 128, Mem: mem, Inputs: []*arrow.Schema{evSchema}})
	if err != nil {
		t.Fatal(err)
	}
	d := &driver{t: t, op: op.(*operator), ctx: context.Background()}
	if err := d.op.Open(d.ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *driver) process(b arrow.RecordBatch) {
	if err := d.op.Process(d.ctx, 0, b, d.emitter()); err != nil {
		d.t.Fatal(err)
	}
}

func (d *driver) watermark(wm int64) {
	if err := d.op.OnWatermark(d.ctx, wm, d.emitter()); err != nil {
		d.t.Fatal(err)
	}
}

func (d *driver) finish() {
	d.watermark(arrowexec.MaxWatermark)
	if err := d.op.Finish(d.ctx, d.emitter()); err != nil {
		d.t.Fatal(err)
	}
	if err := d.op.Close(); err != nil {
		d.t.Fatal(err)
	}
	if d.late != nil {
		if err := d.late.Finish(d.ctx, nil); err != nil {
			d.t.Fatal(err)
		}
		if err := d.late.Close(); err != nil {
			d.t.Fatal(err)
		}
	}
}

// openOperator opens one subtask of a window operator over input schema
// sc; the caller closes it (before asserting its allocator is empty).
func openOperator(t *testing.T, mem memory.Allocator, sc *arrow.Schema, opts Options) *operator {
	t.Helper()
	spec, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	op, err := spec.New(&arrowexec.Task{Node: "w", Parallelism: 1, MaxParallelism: 128, Mem: mem, Inputs: []*arrow.Schema{sc}})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Open(context.Background()); err != nil {
		op.Close()
		t.Fatal(err)
	}
	return op.(*operator)
}
