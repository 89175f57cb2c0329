package crashtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// timeRolls is the rolling test's sink setting: part_size stays at its
// default (128 MiB, which this job never reaches), so every part published
// before the job stops is one the roll interval closed.
const timeRolls = "roll_interval: 200ms"

// rollingKills is how many SIGKILLs TestCrashRecoveryRolling adds after its
// fallback (RIFFLE_CRASH_KILLS overrides it too).
const rollingKills = 8

// TestCrashRecoveryRolling: the crash test's job with parts rolled on time
// instead of size. First, parts appear in the output directory while the
// job runs (an event the test waits for; without rolling nothing is
// published before the job stops). Then a run is killed once a checkpoint
// N has published parts and an older complete checkpoint N-1 exists, and
// N's manifest is corrupted: the next run falls back to N-1, which must
// keep every part published after it byte for byte (its log says so) and
// drop the replay's copies of their rows. Then random kills and graceful
// stops as in TestCrashRecoveryExactlyOnce, and a last run to the end of
// the data: published files never change, and the output equals DuckDB's
// windows with no window twice.
func TestCrashRecoveryRolling(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short (builds riffle, runs it for about a minute)")
	}
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	began := time.Now()
	seed := crashSeed(t)
	kills := rollingKills
	if s := os.Getenv(envKills); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			t.Fatalf("%s=%q: want a count", envKills, s)
		}
		kills = v
	}
	t.Logf("crash seed %d (replay with %s=%d), %d kills", seed, envSeed, seed, kills)
	rng := rand.New(rand.NewPCG(seed, 0x726f6c6c))

	dir, bin, input, topic := prepare(t, brokers, 8, "crash-roll")
	jobFile := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(jobFile, fmt.Appendf(nil, jobYAML, brokers, topic, timeRolls), 0o644); err != nil {
		t.Fatal(err)
	}
	produced := make(chan error, 1)
	go func() { produced <- produce(brokers, topic, input) }()

	crash := newRunner(t, bin, jobFile, filepath.Join(dir, "crash"))
	seen := map[string]string{}
	crash.publishedWhileRunning()
	t.Logf("run %d: parts appeared while the job ran (%d published)", crash.runs, crash.checkPublished(seen))
	crash.fallback(rng, seen)
	for done := 0; done < kills; {
		var m killMode
		if rng.IntN(6) == 0 {
			m = crash.stopOnce(rng)
		} else {
			m = crash.killOnce(rng)
			done++
		}
		n := crash.checkPublished(seen)
		t.Logf("run %2d (parallelism %d): %-24s %3d files published", crash.runs, crash.lastPar, m, n)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	sentinels(t, brokers, topic)
	ends := endOffsets(t, brokers, topic)
	crash.finish(topic, ends, true)
	crash.checkPublished(seen)
	t.Logf("%d files published in all", len(seen))
	// TestCrashRecoveryExactlyOnce also compares with a fault-free run;
	// here DuckDB is the oracle.
	compare(t, input, crash.out, crash.out)
	t.Logf("rolling crash test passed: seed %d, %d runs, %v", seed, crash.runs, time.Since(began).Round(time.Second))
}

// publishedWhileRunning starts a run and waits until a part is published
// while it runs, then kills it.
func (r *runner) publishedWhileRunning() {
	r.t.Helper()
	before := names(r.out)
	p := r.start(2)
	deadline := time.After(finishTimeout)
	for !appeared(r.out, before, isPart) {
		select {
		case err := <-p.done:
			r.failf("run %d exited before publishing a part: %v", r.runs, err)
		case <-deadline:
			r.failf("run %d published no part within %v while running (%s)", r.runs, finishTimeout, timeRolls)
		case <-time.After(time.Millisecond):
		}
	}
	r.kill(p)
}

// kill SIGKILLs p and waits for it.
func (r *runner) kill(p *proc) {
	r.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		r.failf("kill: %v", err)
	}
	if err := <-p.done; err == nil {
		r.failf("run %d exited cleanly before its kill", r.runs)
	}
}

// completeCheckpoints lists the ids of the complete checkpoints in dir,
// ascending.
func completeCheckpoints(dir string) []uint64 {
	var ids []uint64
	for n := range names(dir) {
		if isCheckpoint(n) {
			if id, err := strconv.ParseUint(strings.TrimPrefix(n, "chk-"), 10, 64); err == nil {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// publishedBy returns the checkpoints that published a part: the sink's
// publish log names it and the part is in out under its published name
// (the log line is written before the publishing rename, so a kill in
// between leaves a logged part that was never published).
func publishedBy(out string) map[uint64]bool {
	data, _ := os.ReadFile(filepath.Join(out, "_part-published.log"))
	ids := map[uint64]bool{}
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		_, rec, ok := bytes.Cut(line, []byte{' '})
		var v struct {
			File       string `json:"file"`
			Checkpoint uint64 `json:"checkpoint"`
		}
		if !ok || json.Unmarshal(rec, &v) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(out, v.File)); err == nil {
			ids[v.Checkpoint] = true
		}
	}
	return ids
}

// fallback kills a run once its newest complete checkpoint N published
// parts and an older complete one exists, corrupts N's manifest, and runs
// the job again until its log says it kept the parts published after the
// older checkpoint; every published file must be unchanged.
func (r *runner) fallback(rng *rand.Rand, seen map[string]string) {
	r.t.Helper()
	var newest uint64
	for attempt := 1; ; attempt++ {
		p := r.start(1 + rng.IntN(3))
		began := time.Now()
		for {
			ids := completeCheckpoints(r.ck)
			if len(ids) >= 2 && publishedBy(r.out)[ids[len(ids)-1]] {
				break
			}
			select {
			case err := <-p.done:
				r.failf("run %d exited by itself: %v", r.runs, err)
			case <-time.After(time.Millisecond):
			}
			if time.Since(began) > finishTimeout {
				r.failf("run %d: no checkpoint published a part within %v", r.runs, finishTimeout)
			}
		}
		r.kill(p)
		r.checkPublished(seen)
		// Another checkpoint may have completed before the kill.
		ids := completeCheckpoints(r.ck)
		if newest = ids[len(ids)-1]; len(ids) >= 2 && publishedBy(r.out)[newest] {
			break
		}
		if attempt == 5 {
			r.failf("5 runs killed without their newest checkpoint having published a part")
		}
	}
	manifest := filepath.Join(r.ck, fmt.Sprintf("chk-%d", newest), "MANIFEST")
	data, err := os.ReadFile(manifest)
	if err != nil {
		r.failf("read %s: %v", manifest, err)
	}
	data[len(data)/2] ^= 0x5a
	if err := os.WriteFile(manifest, data, 0o644); err != nil {
		r.failf("corrupt %s: %v", manifest, err)
	}
	p := r.start(1 + rng.IntN(3))
	const kept = "restored a checkpoint older than published parts"
	began := time.Now()
	for {
		log, _ := os.ReadFile(r.lastLog)
		if bytes.Contains(log, []byte(kept)) {
			break
		}
		select {
		case err := <-p.done:
			r.failf("run %d (after corrupting checkpoint %d) exited: %v", r.runs, newest, err)
		case <-time.After(time.Millisecond):
		}
		if time.Since(began) > finishTimeout {
			r.failf("run %d did not log %q within %v of restoring past corrupt checkpoint %d", r.runs, kept, finishTimeout, newest)
		}
	}
	r.kill(p)
	n := r.checkPublished(seen)
	r.t.Logf("run %d (parallelism %d): fell back past corrupt checkpoint %d, kept every published part (%d)", r.runs, r.lastPar, newest, n)
}
