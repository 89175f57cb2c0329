package ml

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// BenchmarkExportLookup measures what riffle recommend does for one
// user of an export of 1M users × 20k items × 64 factors (5 items seen per
// user, 10 recommendations each): open LATEST, read every item's factors,
// read the one row group of user factors that may hold the user, score it
// against all items with the user's items excluded. The export is built
// once from random factors (no training); RIFFLE_LOOKUP_USERS overrides
// the user count.
//
//	go test -run '^$' -bench ExportLookup -benchtime 20x ./ml
func BenchmarkExportLookup(b *testing.B) {
	nu, ni, k := 1_000_000, 20_000, 64
	if s := os.Getenv("RIFFLE_LOOKUP_USERS"); s != "" {
		nu, _ = strconv.Atoi(s)
	}
	root := b.TempDir()
	start := time.Now()
	buildSyntheticExport(b, root, nu, ni, k)
	b.Logf("export of %d users written in %v", nu, time.Since(start))
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		id := strconv.Itoa(rng.IntN(nu))
		e, err := OpenLatest(root)
		if err != nil {
			b.Fatal(err)
		}
		items, err := e.ReadFactors(ctx, ItemFactorsDir, nil)
		if err != nil {
			b.Fatal(err)
		}
		us, err := e.ReadFactors(ctx, UserFactorsDir, []string{id})
		if err != nil || len(us.IDs) != 1 {
			b.Fatalf("user %s: %v (%d found)", id, err, len(us.IDs))
		}
		var ri []int32
		for _, it := range us.Seen[0] {
			ri = append(ri, items.Index[it])
		}
		ex, err := NewInteractions(1, len(items.IDs), make([]int32, len(ri)), ri, nil)
		if err != nil {
			b.Fatal(err)
		}
		m := &Model{Factors: k, NumUsers: 1, NumItems: len(items.IDs), UserFactors: us.Factors, ItemFactors: items.Factors}
		if err := m.TopK(ctx, nil, 10, ex, 1, func(int32, []int32, []float32) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

func buildSyntheticExport(b *testing.B, root string, nu, ni, k int) {
	rng := rand.New(rand.NewPCG(3, 4))
	res := &trainResult{version: 1, k: 10, model: &Model{Factors: k, NumUsers: nu, NumItems: ni,
		UserFactors: make([]float32, nu*k), ItemFactors: make([]float32, ni*k)}}
	for i := range res.model.UserFactors {
		res.model.UserFactors[i] = rng.Float32()
	}
	for i := range res.model.ItemFactors {
		res.model.ItemFactors[i] = rng.Float32()
	}
	res.userKeys = make([][]byte, nu)
	for u := range res.userKeys {
		res.userKeys[u] = int64Key(int64(u))
	}
	res.itemKeys = make([][]byte, ni)
	for i := range res.itemKeys {
		res.itemKeys[i] = int64Key(int64(i))
	}
	us, is := make([]int32, 0, 5*nu), make([]int32, 0, 5*nu)
	for u := 0; u < nu; u++ {
		for j := 0; j < 5; j++ {
			us, is = append(us, int32(u)), append(is, int32(rng.IntN(ni)))
		}
	}
	var err error
	if res.ui, err = NewInteractions(nu, ni, us, is, nil); err != nil {
		b.Fatal(err)
	}
	res.recItems, res.recScore, res.recCount = make([]int32, nu*10), make([]float32, nu*10), make([]int32, nu)
	for u := range res.recCount {
		res.recCount[u] = 10
		for j := 0; j < 10; j++ {
			res.recItems[u*10+j] = int32((u + j) % ni)
			res.recScore[u*10+j] = float32(10 - j)
		}
	}
	spec := &RecommendSpec{opts: RecommendOptions{Config: Config{Factors: k}.EnsureDefaults(), K: 10,
		Export: &ExportOptions{Path: root, Embeddings: true}}}
	bd := &bound{userKind: idInt64, itemKind: idInt64, out: RecommendSchema(arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int64)}
	if err := spec.export(context.Background(), res, bd); err != nil {
		b.Fatal(err)
	}
}
