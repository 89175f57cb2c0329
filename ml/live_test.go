package ml

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestScorerSetItem grows a Scorer item by item across panel and tile
// boundaries, overwrites random items in place, and checks every answer of
// TopKOf against a full sort of a plain copy of the same items (bruteTopK).
// Integer factors keep every dot product exact, so answers must be equal,
// ties included.
func TestScorerSetItem(t *testing.T) {
	for _, f := range []int{8, 16, 40} {
		rng := rand.New(rand.NewPCG(41, uint64(f)))
		s, err := NewItemScorer(f)
		if err != nil {
			t.Fatal(err)
		}
		vec := func() []float32 {
			v := make([]float32, f)
			for j := range v {
				v[j] = float32(rng.IntN(5) - 2)
			}
			return v
		}
		var plain []float32 // the oracle's copy of the items
		check := func(step string) {
			n := len(plain) / f
			for q := 0; q < 5; q++ {
				x := vec()
				var ex []int32
				for i := 0; i < n; i++ {
					if rng.IntN(7) == 0 {
						ex = append(ex, int32(i))
					}
				}
				k := 1 + rng.IntN(30)
				if q == 0 {
					k = n + 3 // more than there are
				}
				items, scores, err := s.TopKOf(x, k, ex, []int32{-1}, []float32{-1})
				if err != nil {
					t.Fatal(err)
				}
				m := &Model{Factors: f, NumUsers: 1, NumItems: n, UserFactors: x, ItemFactors: plain}
				exm, err := NewInteractions(1, n, make([]int32, len(ex)), ex, nil)
				if err != nil {
					t.Fatal(err)
				}
				wi, ws := bruteTopK(m, 0, k, exm)
				if items[0] != -1 || scores[0] != -1 || !slices.Equal(items[1:], wi) || !slices.Equal(scores[1:], ws) {
					t.Fatalf("f=%d %s, %d items, k=%d: got %v %v, want [-1 %v] [-1 %v]", f, step, n, k, items, scores, wi, ws)
				}
			}
		}
		for round := 0; round < 16; round++ {
			for add := rng.IntN(300); add > 0; add-- {
				v := vec()
				if err := s.SetItem(s.NumItems(), v); err != nil {
					t.Fatal(err)
				}
				plain = append(plain, v...)
			}
			for upd := rng.IntN(50); upd > 0 && s.NumItems() > 0; upd-- {
				i := rng.IntN(s.NumItems())
				v := vec()
				if err := s.SetItem(i, v); err != nil {
					t.Fatal(err)
				}
				copy(plain[i*f:], v)
			}
			check("round")
		}
		if s.NumItems() < 2*topkItemTile {
			t.Fatalf("only %d items: the test should span several tiles", s.NumItems())
		}
		if err := s.SetItem(s.NumItems()+1, vec()); err == nil {
			t.Fatal("SetItem accepted an item past the end")
		}
		if err := s.SetItem(0, make([]float32, f+1)); err == nil {
			t.Fatal("SetItem accepted a vector of the wrong length")
		}
		if _, _, err := s.TopKOf(make([]float32, f-1), 3, nil, nil, nil); err == nil {
			t.Fatal("TopKOf accepted a query of the wrong length")
		}
	}
}
