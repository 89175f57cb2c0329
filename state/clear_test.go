package state

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/cockroachdb/pebble"
)

// TestPebbleClearPointDeletes guards the fix for quadratic window firing:
// Map.Clear of a small map (a purged window's count_distinct values) must
// delete its entries one by one, not write a range tombstone, because
// Pebble re-fragments all range tombstones of the memtable for the next
// iterator after each one (n purged windows cost O(n^2)). A map larger
// than pointDeleteMax still gets one range tombstone. The store's contents
// afterwards are checked against a Go map, and the range tombstones
// counted in the SSTables after a flush.
func TestPebbleClearPointDeletes(t *testing.T) {
	ctx := context.Background()
	be, err := NewPebbleBackend(PebbleOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := be.Open(ctx, StoreOptions{Name: "clear", MaxParallelism: 8, KeyGroupHi: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := must(NewMap(s, MapDescriptor[int64, string]{Name: "m", KeyCodec: Int64, ValueCodec: String}))
	type entry struct {
		key    string
		ns     string
		mapKey int64
	}
	want := map[entry]string{}
	put := func(hash uint64, key, ns []byte, mk int64) {
		v := fmt.Sprint(hash, mk)
		if err := m.Put(hash, key, ns, mk, v); err != nil {
			t.Fatal(err)
		}
		want[entry{string(key), string(ns), mk}] = v
	}
	clear := func(hash uint64, key, ns []byte) {
		if err := m.Clear(hash, key, ns); err != nil {
			t.Fatal(err)
		}
		for e := range want {
			if e.key == string(key) && e.ns == string(ns) {
				delete(want, e)
			}
		}
	}
	const windows = 3000
	for w := int64(0); w < windows; w++ {
		hash, key := uint64(w%40), []byte(fmt.Sprintf("k%02d", w%40))
		ns := AppendWindow(nil, w*60, w*60+60)
		for mk := int64(0); mk < 3; mk++ {
			put(hash, key, ns, w+mk)
		}
		if w%7 != 0 { // every 7th window stays
			clear(hash, key, ns)
		}
	}
	bigNS := AppendWindow(nil, -60, 0)
	for mk := int64(0); mk < pointDeleteMax+10; mk++ {
		put(3, []byte("big"), bigNS, mk)
	}
	put(3, []byte("big"), AppendWindow(nil, 0, 60), 1) // a neighbour that stays
	clear(3, []byte("big"), bigNS)

	got := map[entry]string{}
	if err := m.Range(func(e Entry, mk int64, v string) bool {
		got[entry{string(e.Key), string(e.Namespace), mk}] = v
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("after Clear the store holds %d entries, want %d", len(got), len(want))
	}

	db := s.(*store).eng.(*pebbleEngine).db
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	levels, err := db.SSTables(pebble.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	var rangeDels uint64
	for _, l := range levels {
		for _, tbl := range l {
			rangeDels += tbl.Properties.NumRangeDeletions
		}
	}
	// One for the big map; none for the small ones.
	if rangeDels != 1 {
		t.Fatalf("%d range tombstones for %d small and 1 large Clear, want 1", rangeDels, windows-windows/7-1)
	}
}
