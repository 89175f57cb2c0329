package exectest

import (
	"fmt"
	"testing"
	"time"
)

// WaitTimeout bounds WaitFor: far above any wait a healthy test needs, even
// on a loaded CI machine, yet it fails a stuck test with a message instead
// of letting it hang until the suite's timeout.
const WaitTimeout = 2 * time.Minute

// WaitFor polls cond until it holds and fails t, naming what it waited
// for, if it does not within WaitTimeout. Tests wait with it on an
// observable event (a metric, a snapshot, a source position) rather than
// sleeping for a time assumed to be enough.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", WaitTimeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// ServeUpTo lets the gated source s serve batches below n and waits
// (WaitFor) until it served them.
func (s *Replay) ServeUpTo(t testing.TB, n int) {
	t.Helper()
	s.SetLimit(n)
	WaitFor(t, fmt.Sprintf("the source to serve %d batches", n), func() bool { return s.Served() >= n })
}
