package windows

import (
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestApproxDistinctLargeWindow: a window with many distinct values (dense
// sketch, reached batch by batch) estimates within 3% of the exact count.
func TestApproxDistinctLargeWindow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := newDriver(t, mem, Options{Kind: Tumbling, Size: time.Second, Keys: []string{"k"}, Time: "t", Aggs: testAggs})
	var evs []ev
	for i := 0; i < 30_000; i++ {
		evs = append(evs, ev{k: "a", t: int64(i % 1000), v: 1, u: int64(i * 7919)})
	}
	bs := toBatches(mem, evs, 4096)
	for _, b := range bs {
		d.process(b)
	}
	releaseBatches(bs)
	d.finish()
	r := d.out.final()[winKey{"a", 0, 1000}]
	if r.users != 30_000 || math.Abs(float64(r.approx-30_000)) > 900 {
		t.Fatalf("users %d, approx %d", r.users, r.approx)
	}
}
