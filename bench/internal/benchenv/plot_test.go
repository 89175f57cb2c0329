package benchenv

import (
	"math"
	"testing"
	"time"
)

// TestRateStop: a counter sampled every 100 ms that advances in large
// steps (a row group at a time) becomes a curve of merged intervals, each
// at least a fortieth of the run but the last, whose integral is the
// counter's final value and whose values are the steps' rates.
func TestRateStop(t *testing.T) {
	const final = 1_000_000
	r := &Rate{stop: make(chan struct{}), start: time.Now().Add(-10 * time.Second), poll: func() int64 { return final }}
	// 99 samples at 0.1 s … 9.9 s; the counter jumps by 50,000 every
	// 0.5 s, and reaches final with the last sample (Stop's, at ≥ 10 s).
	for j := 1; j < 100; j++ {
		r.t = append(r.t, float64(j)/10)
		r.n = append(r.n, int64(j/5)*50_000)
	}
	s := r.Stop("rows", 1)
	if s.Name != "rows" || len(s.X) < 30 || len(s.X) > 41 {
		t.Fatalf("%q: %d points", s.Name, len(s.X))
	}
	end := s.X[len(s.X)-1]
	if end < 10 {
		t.Fatalf("last point at %v s, want Stop's sample at ≥ 10 s", end)
	}
	area, prev := 0.0, 0.0
	for j := range s.X {
		w := s.X[j] - prev
		if w <= 0 || (j < len(s.X)-1 && w < end/40-1e-9) {
			t.Errorf("interval %d: [%v, %v] narrower than %v", j, prev, s.X[j], end/40)
		}
		area += s.Y[j] * w
		prev = s.X[j]
	}
	if math.Abs(area-final) > 1e-6*final {
		t.Errorf("curve integrates to %v, counter ended at %d", area, final)
	}
	got, err := Area(s)
	if err != nil || math.Abs(got-area) > 1e-9*area {
		t.Errorf("Area %v (%v), want %v", got, err, area)
	}
	// Away from the ends, every interval of 0.3 s holds 0 or 1 steps of
	// 50,000 rows, so the rate is 0 or 50,000 / 0.3 s.
	for j := 1; j < len(s.X)-1; j++ {
		w := s.X[j] - s.X[j-1]
		if steps := s.Y[j] * w / 50_000; math.Abs(steps-math.Round(steps)) > 1e-6 {
			t.Errorf("interval %d holds %v steps", j, steps)
		}
	}
}
