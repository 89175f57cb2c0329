package arrowexec_test

import (
	"testing"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
)

func TestWatermarksIdleAndFinish(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	w := arrowexec.NewWatermarks(arrowexec.WatermarkStrategy{MaxOutOfOrderness: 10 * time.Millisecond, IdleTimeout: time.Second}, clock)
	w.AddSplit(0)
	w.AddSplit(1)
	check := func(wantWM int64, wantIdle bool) {
		t.Helper()
		wm, idle := w.Current()
		if wm != wantWM || idle != wantIdle {
			t.Fatalf("Current() = %d, %v; want %d, %v", wm, idle, wantWM, wantIdle)
		}
	}
	check(arrowexec.MinWatermark, false) // split 1 has delivered nothing yet
	w.ObserveMax(0, 1000)
	check(arrowexec.MinWatermark, false)
	w.ObserveMax(1, 500)
	check(500-10-1, false)
	w.ObserveMax(1, 400) // out of order: no regression
	check(489, false)
	now = now.Add(500 * time.Millisecond)
	w.ObserveMax(0, 2000)
	now = now.Add(600 * time.Millisecond) // split 1 quiet for 1.1s: idle
	check(2000-11, false)
	now = now.Add(time.Second) // both idle
	check(arrowexec.MinWatermark, true)
	w.ObserveMax(1, 600)
	check(589, false) // split 0 still idle
	w.FinishSplit(1)
	check(arrowexec.MinWatermark, true)
	w.FinishSplit(0)
	check(arrowexec.MaxWatermark, false)
}
