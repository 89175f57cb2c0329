package state

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/cockroachdb/pebble"
)

// TestClearAndDrain guards the fix for quadratic window firing: Map.Clear
// and Map.Drain of a small map (a purged window's count_distinct values)
// must delete its entries one by one on Pebble, not write a range
// tombstone, because Pebble re-fragments all range tombstones of the
// memtable for the next iterator after each one (n purged windows cost
// O(n^2)). A map larger than pointDeleteMax still gets one range
// tombstone. On both backends, what Drain yields and what the store holds
// afterwards are checked against a Go map; on Pebble, the range tombstones
// are counted in the SSTables after a flush.
func TestClearAndDrain(t *testing.T) {
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			s, err := bc.make(t, nil).Open(context.Background(), StoreOptions{Name: "clear", MaxParallelism: 8, KeyGroupHi: 8})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			testClearAndDrain(t, s)
		})
	}
}

func testClearAndDrain(t *testing.T, s Store) {
	m := must(NewMap(s, MapDescriptor[int64, string]{Name: "m", KeyCodec: Int64, ValueCodec: String}))
	type entry struct {
		key, ns string
		mapKey  int64
	}
	want := map[entry]string{}
	put := func(hash uint64, key, ns []byte, mk int64) {
		v := fmt.Sprint(hash, mk)
		if err := m.Put(hash, key, ns, mk, v); err != nil {
			t.Fatal(err)
		}
		want[entry{string(key), string(ns), mk}] = v
	}
	// remove clears (key, ns) or drains it, checking what Drain yields.
	remove := func(hash uint64, key, ns []byte, drain bool) {
		of := map[int64]string{}
		for e, v := range want {
			if e.key == string(key) && e.ns == string(ns) {
				of[e.mapKey] = v
				delete(want, e)
			}
		}
		if !drain {
			if err := m.Clear(hash, key, ns); err != nil {
				t.Fatal(err)
			}
			return
		}
		got := map[int64]string{}
		var last int64 = -1 << 63
		if err := m.Drain(hash, key, ns, func(mk int64, v string) {
			if mk <= last {
				t.Fatalf("Drain out of order: %d after %d", mk, last)
			}
			last, got[mk] = mk, v
		}); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, of) {
			t.Fatalf("Drain yielded %d entries, want %d", len(got), len(of))
		}
	}
	const windows = 3000
	removed := 0
	for w := int64(0); w < windows; w++ {
		hash, key := uint64(w%40), []byte(fmt.Sprintf("k%02d", w%40))
		ns := AppendWindow(nil, w*60, w*60+60)
		for mk := int64(0); mk < 3; mk++ {
			put(hash, key, ns, w+mk)
		}
		if w%7 != 0 { // every 7th window stays
			remove(hash, key, ns, w%2 == 0)
			removed++
		}
	}
	for i, drain := range []bool{false, true} {
		key := []byte(fmt.Sprint("big", i))
		bigNS := AppendWindow(nil, -60, 0)
		for mk := int64(0); mk < pointDeleteMax+10; mk++ {
			put(3, key, bigNS, mk)
		}
		put(3, key, AppendWindow(nil, 0, 60), 1) // a neighbour that stays
		remove(3, key, bigNS, drain)
	}

	got := map[entry]string{}
	if err := m.Range(func(e Entry, mk int64, v string) bool {
		got[entry{string(e.Key), string(e.Namespace), mk}] = v
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("after Clear and Drain the store holds %d entries, want %d", len(got), len(want))
	}

	pe, ok := s.(*store).eng.(*pebbleEngine)
	if !ok {
		return
	}
	if err := pe.db.Flush(); err != nil {
		t.Fatal(err)
	}
	levels, err := pe.db.SSTables(pebble.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	var rangeDels uint64
	for _, l := range levels {
		for _, tbl := range l {
			rangeDels += tbl.Properties.NumRangeDeletions
		}
	}
	// One per big map; none for the small ones.
	if rangeDels != 2 {
		t.Fatalf("%d range tombstones for %d small and 2 large maps removed, want 2", rangeDels, removed)
	}
}
