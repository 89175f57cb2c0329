package main

import (
	"os"
	"testing"
	"time"
)

// TestE2E runs the --kafka mode small against the real broker (skipped
// without RIFFLE_KAFKA_BROKERS): every probe is seen changed, none before
// an update that could hold it, and the job's updates are counted.
func TestE2E(t *testing.T) {
	brokers := os.Getenv("RIFFLE_KAFKA_BROKERS")
	if brokers == "" {
		t.Skip("RIFFLE_KAFKA_BROKERS not set")
	}
	c := e2eConfig{brokers: brokers, users: 300, items: 200, factors: 8, warm: 3000, rate: 1000, probes: 15,
		probeGap: 20 * time.Millisecond, maxBatchDelay: 5 * time.Millisecond, sourcePar: 1, partitions: 1}
	for _, s := range []string{"every=300", "interval=50ms"} {
		tr, err := parseTrigger(s)
		if err != nil {
			t.Fatal(err)
		}
		r, err := runTrigger(c, tr)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.lat) != c.probes || r.failedProbe != 0 || r.falseEarly != 0 || r.updates == 0 || r.applied < int64(c.probes) {
			t.Fatalf("%s: %d of %d probes measured, %d failed, %d early; %d updates, %d applied", s, len(r.lat), c.probes, r.failedProbe, r.falseEarly, r.updates, r.applied)
		}
		for _, l := range r.lat {
			if l <= 0 {
				t.Fatalf("%s: latency %v", s, l)
			}
		}
	}
	if _, err := parseTrigger("sometimes"); err == nil {
		t.Fatal("parseTrigger accepted a bad setting")
	}
}
