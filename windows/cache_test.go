package windows

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestWindowCache checks the open-addressing window cache against a map
// under random puts, lookups and deletes, with few distinct tags (so
// probe runs are long and entries share tags) and across growth.
func TestWindowCache(t *testing.T) {
	for _, tags := range []uint64{3, 50, 1 << 40} {
		rng := rand.New(rand.NewPCG(tags, 1))
		var c windowCache
		want := map[string]*cached{}
		var live []*cached
		for step := 0; step < 60000; step++ {
			switch op := rng.IntN(10); {
			case op < 5 || len(live) == 0:
				ck := fmt.Sprintf("%08d-%d", step, rng.IntN(1000))
				e := &cached{tag: rng.Uint64N(tags), ck: ck}
				c.put(e)
				want[ck] = e
				live = append(live, e)
			case op < 8:
				i := rng.IntN(len(live))
				e := live[i]
				c.del(e)
				c.del(e) // twice: no-op
				delete(want, e.ck)
				live[i] = live[len(live)-1]
				live = live[:len(live)-1]
			default:
				e := live[rng.IntN(len(live))]
				if got := c.getS(e.tag, e.ck); got != e {
					t.Fatalf("tags %d step %d: get %q = %v", tags, step, e.ck, got)
				}
				if got := c.get(e.tag, []byte(e.ck+"x")); got != nil {
					t.Fatalf("tags %d: found a missing key", tags)
				}
			}
			if c.n != len(want) {
				t.Fatalf("tags %d step %d: n %d, want %d", tags, step, c.n, len(want))
			}
		}
		n := 0
		c.each(func(e *cached) {
			n++
			if want[e.ck] != e {
				t.Fatalf("tags %d: each saw %q, not in the cache", tags, e.ck)
			}
		})
		if n != len(want) {
			t.Fatalf("tags %d: each saw %d, want %d", tags, n, len(want))
		}
		for _, e := range live {
			if c.getS(e.tag, e.ck) != e {
				t.Fatalf("tags %d: lost %q", tags, e.ck)
			}
		}
	}
}

// TestSortByKey checks the radix sort of a firing bucket against sorting
// by cache key, with keys shorter and longer than a word, shared prefixes
// and equal keys.
func TestSortByKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	o := &operator{}
	for _, n := range []int{0, 1, 2, 7, 100, 3000} {
		for round := 0; round < 20; round++ {
			var b []*cached
			for i := 0; i < n; i++ {
				key := make([]byte, rng.IntN(14))
				for j := range key {
					key[j] = byte(rng.IntN(3)) // few values: ties and prefixes
					if round%2 == 1 {
						key[j] = byte(rng.IntN(256))
					}
				}
				b = append(b, &cached{ck: string(cacheKey(nil, key, 42))})
			}
			got := slices.Clone(b)
			o.sortByKey(got)
			for i := 1; i < len(got); i++ {
				if got[i-1].ck > got[i].ck {
					t.Fatalf("n %d: %q before %q", n, got[i-1].ck, got[i].ck)
				}
			}
			seen := map[*cached]bool{}
			for _, e := range got {
				seen[e] = true
			}
			if len(seen) != len(b) {
				t.Fatalf("n %d: %d entries after sorting, want %d", n, len(seen), len(b))
			}
		}
	}
}

// TestTimerQueue checks the session timer heap against sorting: timers
// pop in (time, kind, end, start, key) order, equal ones marked dup, with
// interleaved adds and pops, few distinct times and keys (many ties).
func TestTimerQueue(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	ents := []*sessKey{{key: []byte("a")}, {key: []byte("b")}, {key: []byte("ab")}, {key: []byte("a")}}
	var q timerQueue
	var want []timer
	wm := int64(0)
	for step := 0; step < 20000; step++ {
		if rng.IntN(3) > 0 {
			tm := timer{at: wm + rng.Int64N(40), kind: timerKind(rng.IntN(2)), ent: ents[rng.IntN(len(ents))], start: rng.Int64N(4)}
			tm.end = tm.at + 1 - int64(tm.kind)*5
			q.add(tm)
			want = append(want, tm)
			continue
		}
		wm += rng.Int64N(5)
		got := q.popDue(wm, nil)
		var due, rest []timer
		for _, tm := range want {
			if tm.at <= wm {
				due = append(due, tm)
			} else {
				rest = append(rest, tm)
			}
		}
		want = rest
		slices.SortFunc(due, func(a, b timer) int {
			if a.at != b.at {
				return cmpInt(a.at, b.at)
			}
			return compareTimers(&a, &b)
		})
		if len(got) != len(due) || q.len() != len(want) {
			t.Fatalf("step %d: popped %d, want %d; left %d, want %d", step, len(got), len(due), q.len(), len(want))
		}
		for i := range got {
			g, w := got[i], due[i]
			if g.at != w.at || compareTimers(&g, &w) != 0 {
				t.Fatalf("step %d: timer %d is %+v, want %+v", step, i, g, w)
			}
			if dup := i > 0 && g.at == due[i-1].at && compareTimers(&due[i-1], &w) == 0; g.dup != dup {
				t.Fatalf("step %d: timer %d dup %v, want %v", step, i, g.dup, dup)
			}
		}
	}
}
