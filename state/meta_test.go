package state

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cespare/xxhash/v2"
	"github.com/riffle-dev/riffle/arrowexec"
)

// The metamorphic test: one seeded op list applied to a cluster of stores on
// the memory backend, the same on the Pebble backend, and to a map-based
// model written independently of the key layout. The three histories must
// be equal. Snapshot/restore ops move the cluster to another parallelism.

var (
	metaSeeds = flag.Int("state.seeds", 8, "metamorphic test: number of seeds")
	metaOps   = flag.Int("state.ops", 600, "metamorphic test: ops per seed")
	metaSeed  = flag.Int64("state.seed", 0, "metamorphic test: run only this seed")
)

const metaMaxPar = 16

type metaKey struct {
	hash uint64
	key  []byte
}

// metaKeys is the key universe: string keys encoded by EncodeKeys (hash from
// arrowexec.HashColumns) and raw binary keys full of 0x00 and 0xff.
func metaKeys(t testing.TB) []metaKey {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewStringBuilder(mem)
	for i := 0; i < 24; i++ {
		b.Append(fmt.Sprintf("user-%d", i*7))
	}
	b.AppendNull()
	b.Append("")
	arr := b.NewArray()
	defer arr.Release()
	b.Release()
	var ks Keys
	if err := EncodeKeys([]arrow.Array{arr}, &ks); err != nil {
		t.Fatal(err)
	}
	var out []metaKey
	for i := 0; i < ks.Len(); i++ {
		out = append(out, metaKey{ks.Hashes[i], bytes.Clone(ks.Key(i))})
	}
	for _, raw := range [][]byte{{0}, {0, 0}, {0, 1}, {0xff}, {0xff, 0}, {1, 0, 0xff}, {}, []byte("a\x00b")} {
		out = append(out, metaKey{xxhash.Sum64(raw) ^ 0x1234, raw})
	}
	return out
}

var metaNamespaces = [][]byte{nil, AppendWindow(nil, 0, 10), AppendWindow(nil, 10, 20), AppendWindow(nil, -5, 20), {0}, {0, 0xff}}

type opKind int

const (
	opPut opKind = iota
	opGet
	opDelete
	opPutMany
	opGetMany
	opNamespaces
	opClearKey
	opMapPut
	opMapGet
	opMapDelete
	opMapIterate
	opMapClear
	opMapPutMany
	opMapGetMany
	opListAppend
	opListAppendMany
	opListGet
	opListUpdate
	opListNamespaces
	opRange
	opSizes
	opAdvance
	opPurge
	opRestore
	opFlush // Pebble: flush memtables (and sometimes compact); no-op elsewhere
	opListGetMany
	opCount
)

var opWeights = [opCount]int{
	opPut: 10, opGet: 10, opDelete: 3, opPutMany: 3, opGetMany: 3, opNamespaces: 3, opClearKey: 1,
	opMapPut: 8, opMapGet: 6, opMapDelete: 2, opMapIterate: 3, opMapClear: 1, opMapPutMany: 2, opMapGetMany: 2,
	opListAppend: 8, opListAppendMany: 2, opListGet: 4, opListUpdate: 1, opListNamespaces: 2,
	opRange: 2, opSizes: 1, opAdvance: 3, opPurge: 1, opRestore: 2, opFlush: 2, opListGetMany: 2,
}

type metaRow struct {
	k, ns int
	mk    int64
	val   int64
}

type metaOp struct {
	kind opKind
	ttl  bool // use the TTL variant of the state
	metaRow
	rows []metaRow // batch ops
	dt   time.Duration
	par  int
}

func genOps(rng *rand.Rand, n, nkeys int) []metaOp {
	total := 0
	for _, w := range opWeights {
		total += w
	}
	row := func() metaRow {
		return metaRow{k: rng.Intn(nkeys), ns: rng.Intn(len(metaNamespaces)), mk: int64(rng.Intn(12)) - 4, val: rng.Int63n(1000) - 500}
	}
	ops := make([]metaOp, n)
	for i := range ops {
		r := rng.Intn(total)
		var kind opKind
		for kind = 0; r >= opWeights[kind]; kind++ {
			r -= opWeights[kind]
		}
		op := metaOp{kind: kind, ttl: rng.Intn(3) == 0, metaRow: row()}
		switch kind {
		case opPutMany, opGetMany, opMapPutMany, opMapGetMany, opListAppendMany, opListUpdate, opListGetMany:
			for j := rng.Intn(8); j >= 0; j-- {
				op.rows = append(op.rows, row())
			}
		case opAdvance:
			op.dt = time.Duration(rng.Intn(8)) * time.Second
		case opRestore:
			op.par = 1 + rng.Intn(6)
		}
		ops[i] = op
	}
	return ops
}

const metaTTL = 10 * time.Second

// metaSystem is what the op list is applied to.
type metaSystem interface {
	apply(op metaOp) string
	close()
}

func runMeta(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	keys := metaKeys(t)
	ops := genOps(rng, *metaOps, len(keys))
	startPar := 1 + rng.Intn(5)
	systems := map[string]metaSystem{
		"model": newModel(keys),
		"memory": newCluster(t, keys, startPar, func(clock func() time.Time, fs FS) Backend {
			return NewMemoryBackend(Options{Clock: clock, FS: fs})
		}),
		"pebble": newCluster(t, keys, startPar, func(clock func() time.Time, fs FS) Backend {
			b, err := NewPebbleBackend(PebbleOptions{Options: Options{Clock: clock, FS: fs}, Dir: t.TempDir(), CacheSize: 1 << 20, MemTableSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}),
	}
	names := []string{"model", "memory", "pebble"}
	hist := map[string][]string{}
	for _, name := range names {
		for _, op := range ops {
			hist[name] = append(hist[name], systems[name].apply(op))
		}
		systems[name].close()
	}
	for _, name := range names[1:] {
		for i := range ops {
			if hist[name][i] != hist["model"][i] {
				from := max(0, i-5)
				t.Fatalf("seed %d: %s diverges from the model at op %d (%+v):\n  model:  %s\n  %s: %s\nprevious ops:\n%s",
					seed, name, i, ops[i], hist["model"][i], name, hist[name][i], strings.Join(hist["model"][from:i], "\n"))
			}
		}
	}
}

func TestMetamorphic(t *testing.T) {
	if *metaSeed != 0 {
		runMeta(t, *metaSeed)
		return
	}
	n := *metaSeeds
	if testing.Short() {
		n = 3
	}
	for i := 0; i < n; i++ {
		seed := int64(1000 + i)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runMeta(t, seed) })
	}
}

// ---- the cluster of stores under test ----

type clusterStore struct {
	s      Store
	v, vt  *Value[int64]
	m, mt  *Map[int64, string]
	l, lt  *List[int64]
	lo, hi int
}

type cluster struct {
	t       testing.TB
	keys    []metaKey
	backend Backend
	clock   *fakeClock
	subs    []clusterStore
	gen     int
	snapDir string
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func newCluster(t testing.TB, keys []metaKey, par int, mk func(func() time.Time, FS) Backend) *cluster {
	c := &cluster{t: t, keys: keys, clock: &fakeClock{now: time.Unix(1_700_000_000, 0)}, snapDir: t.TempDir()}
	c.backend = mk(c.clock.Now, noSyncFS{OSFS})
	c.open(par, nil)
	return c
}

func (c *cluster) open(par int, dirs []string) {
	ctx := context.Background()
	c.gen++
	subs := make([]clusterStore, par)
	for i := range subs {
		lo, hi := arrowexec.KeyGroupRange(metaMaxPar, par, i)
		s, err := c.backend.Open(ctx, StoreOptions{Name: fmt.Sprintf("g%d/%d", c.gen, i), MaxParallelism: metaMaxPar, KeyGroupLo: lo, KeyGroupHi: hi})
		if err != nil {
			c.t.Fatal(err)
		}
		if dirs != nil {
			if err := Restore(ctx, s, dirs, lo, hi); err != nil {
				c.t.Fatal(err)
			}
			if err := checkOwnKeyGroups(s); err != nil {
				c.t.Fatal(err)
			}
		}
		cs := clusterStore{s: s, lo: lo, hi: hi}
		cs.v = must(NewValue(s, ValueDescriptor[int64]{Name: "v", Codec: Int64}))
		cs.vt = must(NewValue(s, ValueDescriptor[int64]{Name: "vt", Codec: Int64, TTL: metaTTL}))
		cs.m = must(NewMap(s, MapDescriptor[int64, string]{Name: "m", KeyCodec: Int64, ValueCodec: String}))
		cs.mt = must(NewMap(s, MapDescriptor[int64, string]{Name: "mt", KeyCodec: Int64, ValueCodec: String, TTL: metaTTL}))
		cs.l = must(NewList(s, ListDescriptor[int64]{Name: "l", Codec: Int64}))
		cs.lt = must(NewList(s, ListDescriptor[int64]{Name: "lt", Codec: Int64, TTL: metaTTL}))
		subs[i] = cs
	}
	c.subs = subs
}

// checkOwnKeyGroups scans the whole engine of s: every entry must lie in a
// key group the store owns.
func checkOwnKeyGroups(s Store) error {
	st := s.base()
	return st.eng.scan(nil, nil, func(k, v []byte) (bool, error) {
		if kg := int(k[0])<<8 | int(k[1]); kg < st.lo || kg >= st.hi {
			return false, fmt.Errorf("store [%d, %d) holds an entry of key group %d", st.lo, st.hi, kg)
		}
		return true, nil
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (c *cluster) close() {
	for _, s := range c.subs {
		if err := s.s.Close(); err != nil {
			c.t.Error(err)
		}
	}
}

// sub returns the subtask owning key k.
func (c *cluster) sub(k int) *clusterStore {
	kg := int(c.keys[k].hash % metaMaxPar)
	for i := range c.subs {
		if kg >= c.subs[i].lo && kg < c.subs[i].hi {
			return &c.subs[i]
		}
	}
	panic("no owner")
}

func mapVal(v int64) string { return fmt.Sprintf("s%d", v) }

func errStr(err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return ""
}

func (c *cluster) apply(op metaOp) string {
	ctx := context.Background()
	k, ns := c.keys[op.k], metaNamespaces[op.ns]
	s := c.sub(op.k)
	v, m, l := s.v, s.m, s.l
	if op.ttl {
		v, m, l = s.vt, s.mt, s.lt
	}
	// Batch ops split rows by owning subtask, as a hash exchange would.
	split := func() map[*clusterStore][]metaRow {
		out := map[*clusterStore][]metaRow{}
		for _, r := range op.rows {
			st := c.sub(r.k)
			out[st] = append(out[st], r)
		}
		return out
	}
	pick := func(st *clusterStore) (*Value[int64], *Map[int64, string], *List[int64]) {
		if op.ttl {
			return st.vt, st.mt, st.lt
		}
		return st.v, st.m, st.l
	}
	keysOf := func(rows []metaRow) *Keys {
		var ks Keys
		for _, r := range rows {
			ks.Append(c.keys[r.k].hash, c.keys[r.k].key, metaNamespaces[r.ns])
		}
		return &ks
	}
	switch op.kind {
	case opPut:
		return errStr(v.Put(k.hash, k.key, ns, op.val))
	case opGet:
		got, ok, err := v.Get(k.hash, k.key, ns)
		return fmt.Sprint(got, ok, errStr(err))
	case opDelete:
		return errStr(v.Delete(k.hash, k.key, ns))
	case opClearKey:
		return errStr(v.ClearKey(k.hash, k.key)) + errStr(m.ClearKey(k.hash, k.key)) + errStr(l.ClearKey(k.hash, k.key))
	case opPutMany, opMapPutMany, opListAppendMany:
		for st, rows := range split() {
			v, m, l := pick(st)
			vals := make([]int64, len(rows))
			mks := make([]int64, len(rows))
			svals := make([]string, len(rows))
			for i, r := range rows {
				vals[i], mks[i], svals[i] = r.val, r.mk, mapVal(r.val)
			}
			var err error
			switch op.kind {
			case opPutMany:
				err = v.PutMany(keysOf(rows), vals)
			case opMapPutMany:
				err = m.PutMany(keysOf(rows), mks, svals)
			default:
				err = l.AppendMany(keysOf(rows), vals)
			}
			if err != nil {
				return errStr(err)
			}
		}
		return ""
	case opGetMany, opMapGetMany, opListGetMany:
		res := make([]string, len(op.rows))
		for st, rows := range split() {
			v, m, l := pick(st)
			found := make([]bool, len(rows))
			var strs []string
			if op.kind == opListGetMany {
				out := make([][]int64, len(rows))
				if err := l.GetMany(keysOf(rows), out); err != nil {
					return errStr(err)
				}
				for i := range rows {
					strs = append(strs, fmt.Sprint(out[i]))
				}
			} else if op.kind == opGetMany {
				out := make([]int64, len(rows))
				if err := v.GetMany(keysOf(rows), out, found); err != nil {
					return errStr(err)
				}
				for i := range rows {
					strs = append(strs, fmt.Sprint(out[i], found[i]))
				}
			} else {
				out := make([]string, len(rows))
				mks := make([]int64, len(rows))
				for i, r := range rows {
					mks[i] = r.mk
				}
				if err := m.GetMany(keysOf(rows), mks, out, found); err != nil {
					return errStr(err)
				}
				for i := range rows {
					strs = append(strs, fmt.Sprint(out[i], found[i]))
				}
			}
			// put results back in op order
			j := 0
			for i, r := range op.rows {
				if c.sub(r.k) == st {
					res[i] = strs[j]
					j++
				}
			}
		}
		return strings.Join(res, ",")
	case opNamespaces:
		var sb strings.Builder
		err := v.Namespaces(k.hash, k.key, func(ns []byte, val int64) bool {
			fmt.Fprintf(&sb, "%x=%d ", ns, val)
			return true
		})
		return sb.String() + errStr(err)
	case opMapPut:
		return errStr(m.Put(k.hash, k.key, ns, op.mk, mapVal(op.val)))
	case opMapGet:
		got, ok, err := m.Get(k.hash, k.key, ns, op.mk)
		return fmt.Sprint(got, ok, errStr(err))
	case opMapDelete:
		return errStr(m.Delete(k.hash, k.key, ns, op.mk))
	case opMapClear:
		return errStr(m.Clear(k.hash, k.key, ns))
	case opMapIterate:
		var sb strings.Builder
		n := 0
		err := m.Iterate(k.hash, k.key, ns, func(mk int64, val string) bool {
			fmt.Fprintf(&sb, "%d=%s ", mk, val)
			n++
			return n < 5 // exercise early stop
		})
		return sb.String() + errStr(err)
	case opListAppend:
		return errStr(l.Append(k.hash, k.key, ns, op.val))
	case opListGet:
		got, err := l.Get(k.hash, k.key, ns)
		return fmt.Sprint(got, errStr(err))
	case opListUpdate:
		vals := make([]int64, 0, len(op.rows))
		for _, r := range op.rows[1:] {
			vals = append(vals, r.val)
		}
		return errStr(l.Update(k.hash, k.key, ns, vals))
	case opListNamespaces:
		var sb strings.Builder
		err := l.Namespaces(k.hash, k.key, func(ns []byte, vals []int64) bool {
			fmt.Fprintf(&sb, "%x=%v ", ns, vals)
			return true
		})
		return sb.String() + errStr(err)
	case opRange:
		var sb strings.Builder
		lo, hi := rangeBounds(c.keys, op)
		for _, st := range c.subs {
			v, m, l := pick(&st)
			var err error
			switch op.mk & 3 {
			case 0, 3:
				err = v.RangeKeys(lo, hi, func(e Entry, val int64) bool {
					fmt.Fprintf(&sb, "%d/%x/%x=%d ", e.KeyGroup, e.Key, e.Namespace, val)
					return true
				})
			case 1:
				err = m.RangeKeys(lo, hi, func(e Entry, mk int64, val string) bool {
					fmt.Fprintf(&sb, "%d/%x/%x/%d=%s ", e.KeyGroup, e.Key, e.Namespace, mk, val)
					return true
				})
			case 2:
				err = l.RangeKeys(lo, hi, func(e Entry, vals []int64) bool {
					fmt.Fprintf(&sb, "%d/%x/%x=%v ", e.KeyGroup, e.Key, e.Namespace, vals)
					return true
				})
			}
			if err != nil {
				return errStr(err)
			}
		}
		return sb.String()
	case opSizes:
		total := map[string]int64{}
		for _, st := range c.subs {
			sz, err := st.s.Sizes(ctx)
			if err != nil {
				return errStr(err)
			}
			for _, z := range sz {
				total[z.Name] += z.Entries
			}
		}
		return fmt.Sprint(total)
	case opAdvance:
		c.clock.now = c.clock.now.Add(op.dt)
		return ""
	case opPurge:
		for _, st := range c.subs {
			if _, err := st.s.PurgeExpired(ctx); err != nil {
				return errStr(err)
			}
		}
		return ""
	case opFlush:
		for _, st := range c.subs {
			if pe, ok := st.s.base().eng.(*pebbleEngine); ok {
				if err := pe.db.Flush(); err != nil {
					return errStr(err)
				}
				if op.val&1 == 0 {
					if err := pe.db.Compact([]byte{0}, []byte{0xff, 0xff, 0xff}, false); err != nil {
						return errStr(err)
					}
				}
			}
		}
		return ""
	case opRestore:
		var dirs []string
		for i, st := range c.subs {
			dir := filepath.Join(c.snapDir, fmt.Sprintf("chk-%d/sub-%d", c.gen, i))
			if i%2 == 0 { // both the synchronous and the two-phase path
				if _, err := st.s.Snapshot(ctx, dir); err != nil {
					return errStr(err)
				}
			} else {
				p, err := st.s.BeginSnapshot(ctx)
				if err != nil {
					return errStr(err)
				}
				// keep writing after the view was taken: must not show up
				if err := st.v.Put(uint64(st.lo), []byte("late"), nil, 1); err != nil {
					return errStr(err)
				}
				if _, err := p.Write(ctx, dir); err != nil {
					return errStr(err)
				}
			}
			dirs = append(dirs, dir)
		}
		c.close()
		c.open(op.par, dirs)
		return fmt.Sprintf("restored at parallelism %d", op.par)
	}
	panic("unknown op")
}

// rangeBounds picks key bounds for a range op: unbounded half the time.
func rangeBounds(keys []metaKey, op metaOp) (lo, hi []byte) {
	switch op.val & 3 {
	case 0:
		return nil, nil
	case 1:
		return keys[op.k].key, nil
	case 2:
		return nil, keys[op.k].key
	}
	return keys[op.k].key, keys[(op.k+op.ns+1)%len(keys)].key
}

func inBounds(k, lo, hi []byte) bool {
	return (lo == nil || bytes.Compare(k, lo) >= 0) && (hi == nil || bytes.Compare(k, hi) < 0)
}

// ---- the model ----

type mval struct {
	v   int64
	s   string
	exp int64 // 0: never
}

type mEntry struct {
	k  int
	ns int
}

type model struct {
	keys  []metaKey
	now   int64
	vals  [2]map[mEntry]mval
	maps  [2]map[mEntry]map[int64]mval
	lists [2]map[mEntry][]mval
}

func newModel(keys []metaKey) *model {
	m := &model{keys: keys, now: time.Unix(1_700_000_000, 0).UnixNano()}
	for i := 0; i < 2; i++ {
		m.vals[i] = map[mEntry]mval{}
		m.maps[i] = map[mEntry]map[int64]mval{}
		m.lists[i] = map[mEntry][]mval{}
	}
	return m
}

func (m *model) close() {}

func (m *model) live(v mval) bool { return v.exp == 0 || v.exp > m.now }

func (m *model) exp(ttl int) int64 {
	if ttl == 1 {
		return m.now + int64(metaTTL)
	}
	return 0
}

func (m *model) liveList(l []mval) []int64 {
	var out []int64
	for _, e := range l {
		if m.live(e) {
			out = append(out, e.v)
		}
	}
	return out
}

// order sorts entries as the store iterates: key group, key, namespace.
func (m *model) order(es []mEntry) {
	sort.Slice(es, func(i, j int) bool {
		a, b := es[i], es[j]
		ka, kb := m.keys[a.k], m.keys[b.k]
		if ga, gb := ka.hash%metaMaxPar, kb.hash%metaMaxPar; ga != gb {
			return ga < gb
		}
		if c := bytes.Compare(ka.key, kb.key); c != 0 {
			return c < 0
		}
		return bytes.Compare(metaNamespaces[a.ns], metaNamespaces[b.ns]) < 0
	})
}

func (m *model) apply(op metaOp) string {
	t := 0
	if op.ttl {
		t = 1
	}
	e := mEntry{op.k, op.ns}
	vals, maps, lists := m.vals[t], m.maps[t], m.lists[t]
	switch op.kind {
	case opPut:
		vals[e] = mval{v: op.val, exp: m.exp(t)}
		return ""
	case opGet:
		v, ok := vals[e]
		if !ok || !m.live(v) {
			return fmt.Sprint(0, false, "")
		}
		return fmt.Sprint(v.v, true, "")
	case opDelete:
		delete(vals, e)
		return ""
	case opClearKey:
		for x := range vals {
			if x.k == op.k {
				delete(vals, x)
			}
		}
		for x := range maps {
			if x.k == op.k {
				delete(maps, x)
			}
		}
		for x := range lists {
			if x.k == op.k {
				delete(lists, x)
			}
		}
		return ""
	case opPutMany:
		for _, r := range op.rows {
			vals[mEntry{r.k, r.ns}] = mval{v: r.val, exp: m.exp(t)}
		}
		return ""
	case opMapPutMany:
		for _, r := range op.rows {
			x := mEntry{r.k, r.ns}
			if maps[x] == nil {
				maps[x] = map[int64]mval{}
			}
			maps[x][r.mk] = mval{s: mapVal(r.val), exp: m.exp(t)}
		}
		return ""
	case opListAppendMany:
		for _, r := range op.rows {
			x := mEntry{r.k, r.ns}
			lists[x] = append(lists[x], mval{v: r.val, exp: m.exp(t)})
		}
		return ""
	case opGetMany:
		var res []string
		for _, r := range op.rows {
			v, ok := vals[mEntry{r.k, r.ns}]
			if !ok || !m.live(v) {
				res = append(res, fmt.Sprint(0, false))
			} else {
				res = append(res, fmt.Sprint(v.v, true))
			}
		}
		return strings.Join(res, ",")
	case opListGetMany:
		var res []string
		for _, r := range op.rows {
			l := m.liveList(lists[mEntry{r.k, r.ns}])
			if len(l) == 0 {
				l = nil
			}
			res = append(res, fmt.Sprint(l))
		}
		return strings.Join(res, ",")
	case opMapGetMany:
		var res []string
		for _, r := range op.rows {
			v, ok := maps[mEntry{r.k, r.ns}][r.mk]
			if !ok || !m.live(v) {
				res = append(res, fmt.Sprint("", false))
			} else {
				res = append(res, fmt.Sprint(v.s, true))
			}
		}
		return strings.Join(res, ",")
	case opNamespaces:
		var es []mEntry
		for x, v := range vals {
			if x.k == op.k && m.live(v) {
				es = append(es, x)
			}
		}
		m.order(es)
		var sb strings.Builder
		for _, x := range es {
			fmt.Fprintf(&sb, "%x=%d ", metaNamespaces[x.ns], vals[x].v)
		}
		return sb.String()
	case opMapPut:
		if maps[e] == nil {
			maps[e] = map[int64]mval{}
		}
		maps[e][op.mk] = mval{s: mapVal(op.val), exp: m.exp(t)}
		return ""
	case opMapGet:
		v, ok := maps[e][op.mk]
		if !ok || !m.live(v) {
			return fmt.Sprint("", false, "")
		}
		return fmt.Sprint(v.s, true, "")
	case opMapDelete:
		delete(maps[e], op.mk)
		return ""
	case opMapClear:
		delete(maps, e)
		return ""
	case opMapIterate:
		var mks []int64
		for mk, v := range maps[e] {
			if m.live(v) {
				mks = append(mks, mk)
			}
		}
		sort.Slice(mks, func(i, j int) bool { return mks[i] < mks[j] })
		var sb strings.Builder
		for i, mk := range mks {
			if i == 5 {
				break
			}
			fmt.Fprintf(&sb, "%d=%s ", mk, maps[e][mk].s)
		}
		return sb.String()
	case opListAppend:
		lists[e] = append(lists[e], mval{v: op.val, exp: m.exp(t)})
		return ""
	case opListGet:
		return fmt.Sprint(m.liveList(lists[e]), "")
	case opListUpdate:
		var l []mval
		for _, r := range op.rows[1:] {
			l = append(l, mval{v: r.val, exp: m.exp(t)})
		}
		lists[e] = l
		return ""
	case opListNamespaces:
		var es []mEntry
		for x, l := range lists {
			if x.k == op.k && len(m.liveList(l)) > 0 {
				es = append(es, x)
			}
		}
		m.order(es)
		var sb strings.Builder
		for _, x := range es {
			fmt.Fprintf(&sb, "%x=%v ", metaNamespaces[x.ns], m.liveList(lists[x]))
		}
		return sb.String()
	case opRange:
		var sb strings.Builder
		var es []mEntry
		lo, hi := rangeBounds(m.keys, op)
		inRange := func(x mEntry) bool { return inBounds(m.keys[x.k].key, lo, hi) }
		switch op.mk & 3 {
		case 0, 3:
			for x, v := range vals {
				if m.live(v) && inRange(x) {
					es = append(es, x)
				}
			}
			m.order(es)
			for _, x := range es {
				k := m.keys[x.k]
				fmt.Fprintf(&sb, "%d/%x/%x=%d ", k.hash%metaMaxPar, k.key, metaNamespaces[x.ns], vals[x].v)
			}
		case 1:
			for x := range maps {
				if inRange(x) {
					es = append(es, x)
				}
			}
			m.order(es)
			for _, x := range es {
				k := m.keys[x.k]
				var mks []int64
				for mk, v := range maps[x] {
					if m.live(v) {
						mks = append(mks, mk)
					}
				}
				sort.Slice(mks, func(i, j int) bool { return mks[i] < mks[j] })
				for _, mk := range mks {
					fmt.Fprintf(&sb, "%d/%x/%x/%d=%s ", k.hash%metaMaxPar, k.key, metaNamespaces[x.ns], mk, maps[x][mk].s)
				}
			}
		case 2:
			for x, l := range lists {
				if len(m.liveList(l)) > 0 && inRange(x) {
					es = append(es, x)
				}
			}
			m.order(es)
			for _, x := range es {
				k := m.keys[x.k]
				fmt.Fprintf(&sb, "%d/%x/%x=%v ", k.hash%metaMaxPar, k.key, metaNamespaces[x.ns], m.liveList(lists[x]))
			}
		}
		return sb.String()
	case opSizes:
		total := map[string]int64{}
		names := [2]string{"", "t"}
		for t := 0; t < 2; t++ {
			var n int64
			for _, v := range m.vals[t] {
				if m.live(v) {
					n++
				}
			}
			total["v"+names[t]] = n
			n = 0
			for _, mm := range m.maps[t] {
				for _, v := range mm {
					if m.live(v) {
						n++
					}
				}
			}
			total["m"+names[t]] = n
			n = 0
			for _, l := range m.lists[t] {
				if len(m.liveList(l)) > 0 {
					n++
				}
			}
			total["l"+names[t]] = n
		}
		return fmt.Sprint(total)
	case opAdvance:
		m.now += int64(op.dt)
		return ""
	case opPurge, opFlush:
		return ""
	case opRestore:
		return fmt.Sprintf("restored at parallelism %d", op.par)
	}
	panic("unknown op")
}

// noSyncFS skips fsyncs: the metamorphic test checks logic, not durability,
// and fsync dominates its wall time.
type noSyncFS struct{ FS }

type noSyncFile struct{ File }

func (noSyncFile) Sync() error { return nil }

func (f noSyncFS) Create(name string) (File, error) {
	file, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return noSyncFile{file}, nil
}

func (noSyncFS) SyncDir(string) error { return nil }
