package joins

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/state"
	"github.com/riffle-dev/riffle/windows"
)

// stored counts the rows a subtask keeps per side.
func stored(t *testing.T, o *operator) [2]int {
	var n [2]int
	for side := range 2 {
		if err := o.lists[side].Range(func(_ state.Entry, vals [][]byte) bool {
			n[side] += len(vals)
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// feed sends one row to a one-subtask cluster.
func feed(c *cluster, e ev) {
	b := batch(c.mem, []ev{e})
	defer b.Release()
	c.process(e.side, b)
}

// lateRows returns the late rows of side as (id, start, end, reason,
// watermark) strings.
func lateRows(c *cluster, side int) []string {
	var out []string
	for _, b := range c.out.late[side] {
		n := int(b.NumCols())
		for i := 0; i < int(b.NumRows()); i++ {
			out = append(out, b.Column(2).ValueStr(i)+" "+b.Column(n-4).ValueStr(i)+" "+b.Column(n-3).ValueStr(i)+" "+b.Column(n-2).ValueStr(i)+" "+b.Column(n-1).ValueStr(i))
		}
	}
	return out
}

// TestIntervalBounds pins the interval join's boundaries: a pair at
// exactly upper (and lower) still matches when its second row arrives
// at the last watermark that allows it, the state is dropped at the
// first watermark that rules out any further match, and a row at or
// behind the watermark goes to the late output, not into the join.
func TestIntervalBounds(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := Options{Type: Interval, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "rt", Lower: -30 * time.Millisecond, Upper: 50 * time.Millisecond}
	c := newCluster(t, mem, o, 1, nil, "")
	defer c.out.release()
	c.out.wire = true
	op := c.ops[0]

	// Left row kept until the watermark reaches t + upper.
	feed(c, ev{side: 0, k: 1, t: 1000, id: 1})
	c.watermark(1049)
	feed(c, ev{side: 1, k: 1, t: 1050, id: 1_000_001}) // d = 50 = upper
	if got := stored(t, op); got != [2]int{1, 1} {
		t.Fatalf("stored %v, want [1 1]", got)
	}
	c.watermark(1050) // left: 1000+50 <= 1050 dropped; right: 1050+30 > 1050 kept
	if got := stored(t, op); got != [2]int{0, 1} {
		t.Fatalf("after watermark 1050: stored %v, want [0 1]", got)
	}
	// Right row kept until the watermark reaches t - lower.
	feed(c, ev{side: 1, k: 2, t: 2000, id: 1_000_002})
	c.watermark(2029)
	feed(c, ev{side: 0, k: 2, t: 2030, id: 2}) // d = -30 = lower
	c.watermark(2030)
	if got := stored(t, op); got != [2]int{1, 0} {
		t.Fatalf("after watermark 2030: stored %v, want [1 0] (the left row at 2030 until 2080)", got)
	}
	// Late: at the watermark, and without an event time.
	c.watermark(3000)
	feed(c, ev{side: 0, k: 3, t: 3000, id: 3})
	feed(c, ev{side: 1, k: 3, t: 3001, id: 1_000_003})
	feed(c, ev{side: 1, k: 3, t: 2999, id: 1_000_004})
	c.watermark(arrowexec.MaxWatermark)
	if got := stored(t, op); got != [2]int{0, 0} {
		t.Fatalf("after the final watermark: stored %v, want none", got)
	}
	c.finish()
	want := []string{evString(mem, ev{side: 0, k: 1, t: 1000, id: 1}) + "|" + evString(mem, ev{side: 1, k: 1, t: 1050, id: 1_000_001}),
		evString(mem, ev{side: 0, k: 2, t: 2030, id: 2}) + "|" + evString(mem, ev{side: 1, k: 2, t: 2000, id: 1_000_002})}
	got := slices.Clone(c.out.rows)
	slices.Sort(got)
	slices.Sort(want)
	sameRows(t, got, want)
	if l := lateRows(c, 0); !slices.Equal(l, []string{"3 (null) (null) late 3000"}) {
		t.Fatalf("late left rows %q", l)
	}
	if l := lateRows(c, 1); !slices.Equal(l, []string{"1000004 (null) (null) late 3000"}) {
		t.Fatalf("late right rows %q", l)
	}
}

// TestWindowLate: a row whose window already fired goes to the late
// output with that window (each late window of a sliding window once); a
// window's state is dropped when it fires.
func TestWindowLate(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := Options{Type: Window, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "rt", Size: 100 * time.Millisecond, Slide: 50 * time.Millisecond}
	c := newCluster(t, mem, o, 1, nil, "")
	defer c.out.release()
	c.out.wire = true
	feed(c, ev{side: 0, k: 1, t: 160, id: 1})         // windows [100,200), [150,250)
	feed(c, ev{side: 1, k: 1, t: 120, id: 1_000_001}) // [50,150), [100,200)
	if got := stored(t, c.ops[0]); got != [2]int{2, 2} {
		t.Fatalf("stored %v, want [2 2] (one row per window)", got)
	}
	c.watermark(199) // fires [50,150) and [100,200)
	if got := stored(t, c.ops[0]); got != [2]int{1, 0} {
		t.Fatalf("after the first windows fired: stored %v, want [1 0]", got)
	}
	feed(c, ev{side: 1, k: 1, t: 160, id: 1_000_002}) // late for [100,200), joins in [150,250)
	c.watermark(arrowexec.MaxWatermark)
	if got := stored(t, c.ops[0]); got != [2]int{0, 0} {
		t.Fatalf("after the final watermark: stored %v, want none", got)
	}
	c.finish()
	w := func(v int64) string { return winStr(mem, v) }
	want := []string{
		evString(mem, ev{side: 0, k: 1, t: 160, id: 1}) + "|" + evString(mem, ev{side: 1, k: 1, t: 120, id: 1_000_001}) + "|" + w(100) + "|" + w(200),
		evString(mem, ev{side: 0, k: 1, t: 160, id: 1}) + "|" + evString(mem, ev{side: 1, k: 1, t: 160, id: 1_000_002}) + "|" + w(150) + "|" + w(250),
	}
	got := slices.Clone(c.out.rows)
	slices.Sort(got)
	slices.Sort(want)
	sameRows(t, got, want)
	if l := lateRows(c, 1); !slices.Equal(l, []string{"1000002 " + w(100) + " " + w(200) + " late 199"}) {
		t.Fatalf("late right rows %q", l)
	}
}

// TestSchemaErrors: keys of different types, unknown columns and name
// clashes fail at plan time; a right column named like a left one gets
// RightPrefix.
func TestSchemaErrors(t *testing.T) {
	base := Options{Type: Regular, LeftKeys: []string{"k"}, RightKeys: []string{"k"}}
	s, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Schema([]*arrow.Schema{leftSchema, rightSchema})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range out.Fields() {
		names = append(names, f.Name)
	}
	if want := []string{"k", "lt", "id", "s", "b", "right_k", "rt", "right_id", "f", "n", "bin"}; !slices.Equal(names, want) {
		t.Fatalf("output columns %v, want %v", names, want)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Type: Regular, LeftKeys: []string{"k"}, RightKeys: []string{"n"}}, "different types (int64 and int32)"},
		{Options{Type: Regular, LeftKeys: []string{"nope"}, RightKeys: []string{"k"}}, `no key column "nope"`},
		{Options{Type: Interval, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "f"}, "event-time column"},
	} {
		s, err := New(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Schema([]*arrow.Schema{leftSchema, rightSchema}); err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.o, err, tc.want)
		}
	}
	clash := arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.PrimitiveTypes.Int64}, {Name: "right_k", Type: arrow.PrimitiveTypes.Int64}}, nil)
	if _, err := s.Schema([]*arrow.Schema{clash, rightSchema}); err == nil || !contains(err.Error(), `"right_k"`) {
		t.Errorf("clash after the prefix: error %v", err)
	}
	ws := arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.PrimitiveTypes.Int64}, {Name: "lt", Type: windows.WindowTime}, {Name: "window_end", Type: arrow.PrimitiveTypes.Int64}}, nil)
	wj, err := New(Options{Type: Window, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "rt", Size: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wj.Schema([]*arrow.Schema{ws, rightSchema}); err == nil || !contains(err.Error(), "window_end") {
		t.Errorf("window column clash: error %v", err)
	}
	for _, bad := range []Options{
		{Type: Interval, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "rt", Lower: time.Second, Upper: 0},
		{Type: Window, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "rt"},
		{Type: Regular, LeftKeys: []string{"k"}, RightKeys: []string{"k", "id"}},
		{Type: Interval, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, LeftTime: "lt", RightTime: "rt", TTL: time.Hour},
		{Type: "outer", LeftKeys: []string{"k"}, RightKeys: []string{"k"}},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestRegularTTL: a regular join's rows expire TTL after they arrived
// (the backend's clock), and rows that expired match nothing.
func TestRegularTTL(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	now := time.Unix(1_700_000_000, 0)
	be := state.NewMemoryBackend(state.Options{Clock: func() time.Time { return now }})
	o := Options{Type: Regular, LeftKeys: []string{"k"}, RightKeys: []string{"k"}, TTL: time.Hour, Backend: be}
	c := newCluster(t, mem, o, 1, nil, "")
	defer c.out.release()
	l1 := ev{side: 0, k: 1, t: 5, id: 1}
	feed(c, l1)
	now = now.Add(59 * time.Minute)
	r1 := ev{side: 1, k: 1, t: 6, id: 1_000_001}
	feed(c, r1) // l1 is 59m old: joins
	now = now.Add(2 * time.Minute)
	r2 := ev{side: 1, k: 1, t: 7, id: 1_000_002}
	feed(c, r2) // l1 is 61m old: expired
	l2 := ev{side: 0, k: 1, t: 8, id: 2}
	feed(c, l2) // r1 (2m old) and r2 (0m) are live
	if got := stored(t, c.ops[0]); got != [2]int{1, 2} {
		t.Fatalf("live rows %v, want [1 2] (l1 expired)", got)
	}
	c.finish()
	want := []string{
		evString(mem, l1) + "|" + evString(mem, r1),
		evString(mem, l2) + "|" + evString(mem, r1),
		evString(mem, l2) + "|" + evString(mem, r2),
	}
	got := slices.Clone(c.out.rows)
	slices.Sort(got)
	slices.Sort(want)
	sameRows(t, got, want)
}
