package crashtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
)

// Knobs of the test (the data and the job are fixed; the kills are seeded).
const (
	envSeed  = "RIFFLE_CRASH_SEED"  // replays a run's kills
	envKills = "RIFFLE_CRASH_KILLS" // number of SIGKILLs, default defaultKills

	defaultKills = 24
	partitions   = 3
	dataRows     = 30_000
	produceRate  = 1_500 // messages per second: the data keeps arriving for ~20 s
	interval     = "300ms"
	// eventTimeout bounds the wait for a checkpoint or file event before a
	// kill happens anyway.
	eventTimeout = 4 * time.Second
	// finishTimeout bounds a last run, from its start to its exit.
	finishTimeout = 90 * time.Second
)

var (
	dataStart = gen.DefaultStart
	dataSpan  = 12 * time.Hour
	// sentinelTime is the event time of the per-partition sentinels: a day
	// after the data, so every data window fires and theirs never does.
	sentinelTime = dataStart.Add(dataSpan + 24*time.Hour)
	// doneWatermark: a checkpoint watermark at or past it means every data
	// window fired before the checkpoint's barrier reached the sink.
	doneWatermark = dataStart.Add(dataSpan + time.Hour).UnixMilli()
)

const jobYAML = `# The crash test's job (internal/crashtest).
name: crash-windows
parallelism: 2
source:
  kafka:
    brokers: %s
    topic: %s
    start: earliest
    max_batch_rows: 1000
    max_batch_delay: 50ms
    fields:
      - {name: user_id, type: int64, required: true}
      - {name: item_id, type: int64, required: true}
      - {name: event_type, type: string, required: true}
      - {name: weight, type: float64, required: true}
      - {name: event_time, type: timestamp, required: true}
  watermark: {column: event_time, max_out_of_orderness: 10s}
steps:
  - window:
      type: tumbling
      size: 10m
      key: [item_id]
      time: event_time
      aggs: ["count(*) AS events", "sum(weight) AS total"]
sink:
  file: {path: out, format: parquet, %s}
`

// sizeRolls is the crash test's sink setting: small parts, so a checkpoint
// publishes several.
const sizeRolls = "part_size: 16KiB"

// TestCrashRecoveryExactlyOnce: see the package documentation.
func TestCrashRecoveryExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short (builds riffle, runs it for about a minute)")
	}
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	began := time.Now()
	seed := crashSeed(t)
	kills := defaultKills
	if s := os.Getenv(envKills); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			t.Fatalf("%s=%q: want a count", envKills, s)
		}
		kills = v
	}
	t.Logf("crash seed %d (replay with %s=%d), %d kills", seed, envSeed, seed, kills)
	rng := rand.New(rand.NewPCG(seed, 0x72696666))

	dir, bin, input, topic := prepare(t, brokers, 7, "crash")
	jobFile := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(jobFile, fmt.Appendf(nil, jobYAML, brokers, topic, sizeRolls), 0o644); err != nil {
		t.Fatal(err)
	}

	// The data arrives while the job is being killed.
	produced := make(chan error, 1)
	go func() { produced <- produce(brokers, topic, input) }()

	crash := newRunner(t, bin, jobFile, filepath.Join(dir, "crash"))
	counts := map[killMode]int{}
	seen := map[string]string{} // published file -> content hash
	for done := 0; done < kills; {
		var m killMode
		if rng.IntN(6) == 0 {
			m = crash.stopOnce(rng)
		} else {
			m = crash.killOnce(rng)
			done++
		}
		counts[m]++
		n := crash.checkPublished(seen)
		t.Logf("run %2d (parallelism %d): %-24s %3d files published", crash.runs, crash.lastPar, m, n)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	sentinels(t, brokers, topic)
	ends := endOffsets(t, brokers, topic)
	t.Logf("topic %s end offsets %v; runs by end: %v (%d kills waited %v for their moment in vain)", topic, ends, counts, crash.timeouts, eventTimeout)
	crash.finish(topic, ends, true)
	crash.checkPublished(seen)
	t.Logf("%d files published in all", len(seen))

	clean := newRunner(t, bin, jobFile, filepath.Join(dir, "clean"))
	clean.finish(topic, ends, true)

	compare(t, input, crash.out, clean.out)
	t.Logf("crash test passed: seed %d, %d kills, %d graceful stops, %d runs, %v", seed, kills, counts[stopGraceful], crash.runs, time.Since(began).Round(time.Second))
}

// crashSeed is the seed of the kills: RIFFLE_CRASH_SEED, else the clock.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	s := os.Getenv(envSeed)
	if s == "" {
		return uint64(time.Now().UnixNano())
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", envSeed, s, err)
	}
	return v
}

// prepare builds riffle and writes the input (dataRows generated rows, seed
// dataSeed) into a temporary directory, and creates the topic it goes to.
func prepare(t *testing.T, brokers string, dataSeed int64, topicName string) (dir, bin, input, topic string) {
	t.Helper()
	dir = t.TempDir()
	bin = buildRiffle(t, dir)
	input = filepath.Join(dir, "events.parquet")
	if err := gen.WriteFile(context.Background(), input, gen.Options{
		Rows: dataRows, Users: 5_000, Items: 300, Seed: dataSeed, Span: dataSpan, RowGroupRows: 2048,
	}, nil); err != nil {
		t.Fatal(err)
	}
	return dir, bin, input, kafkatest.CreateTopic(t, brokers, topicName, partitions)
}

// buildRiffle builds cmd/riffle into dir.
func buildRiffle(t *testing.T, dir string) string {
	t.Helper()
	root, err := oracle.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "riffle")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/riffle")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/riffle: %v\n%s", err, out)
	}
	return bin
}

// produce writes the input file's rows to topic, keyed by user_id, stamped
// with their event times, at produceRate.
func produce(brokers, topic, input string) error {
	src, err := parquet.New(parquet.Options{Paths: []string{input}})
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, err := ksink.Produce(ctx, ksink.ProduceOptions{Brokers: []string{brokers}, Topic: topic, Rate: produceRate,
		KeyColumn: "user_id", TimestampColumn: "event_time"}, src.Batches(ctx, nil, 0))
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	if st.Messages != dataRows {
		return fmt.Errorf("produce: %d messages, want %d", st.Messages, dataRows)
	}
	return nil
}

// sentinels writes one late-in-time message (item -1) to every partition.
func sentinels(t *testing.T, brokers, topic string) {
	t.Helper()
	v := fmt.Appendf(nil, `{"user_id":0,"item_id":-1,"event_type":"view","weight":0,"event_time":%q}`, sentinelTime.Format(time.RFC3339Nano))
	msgs := make([]kafkago.Message, partitions)
	for p := range msgs {
		msgs[p] = kafkago.Message{Partition: p, Value: v, Time: sentinelTime}
	}
	kafkatest.Produce(t, brokers, topic, msgs)
}

// endOffsets returns every partition's end offset, checking that the
// topic holds the data and the sentinels.
func endOffsets(t *testing.T, brokers, topic string) map[int]int64 {
	t.Helper()
	return endOffsetsOf(t, brokers, topic, dataRows+partitions)
}

// endOffsetsOf returns every partition's end offset, checking that the
// topic holds want messages.
func endOffsetsOf(t *testing.T, brokers, topic string, want int64) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reqs := make([]kafkago.OffsetRequest, partitions)
	for p := range reqs {
		reqs[p] = kafkago.LastOffsetOf(p)
	}
	resp, err := kafkatest.Client(brokers).ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int]int64{}
	var total int64
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("list offsets of %s/%d: %v", topic, po.Partition, po.Error)
		}
		ends[po.Partition] = po.LastOffset
		total += po.LastOffset
	}
	if len(ends) != partitions || total != want {
		t.Fatalf("end offsets %v: want %d partitions holding %d messages", ends, partitions, want)
	}
	return ends
}

// killMode is the moment a kill aims at.
type killMode int

const (
	killRandom     killMode = iota // a random delay after the start
	killInProgress                 // a checkpoint's staging directory appeared
	killComplete                   // a checkpoint was committed (renamed)
	killPublished                  // the sink published a part
	numKillModes
	// stopGraceful is not a kill: SIGTERM a while after a checkpoint; the
	// run must exit 0 with everything its final checkpoint covers
	// published.
	stopGraceful = numKillModes
)

func (m killMode) String() string {
	return [...]string{"random-delay", "checkpoint-writing", "checkpoint-committed", "part-published", "graceful-stop (SIGTERM)"}[m]
}

// runner starts and stops one job's riffle processes, with their own
// checkpoint and output directories.
type runner struct {
	t             *testing.T
	bin, job      string
	ck, out, logs string
	runs          int
	lastLog       string
	lastPar       int
	timeouts      int
	// modes is how many kill modes killOnce picks from (the first ones);
	// numKillModes unless the job publishes nothing while it runs.
	modes killMode
	// noOutput leaves --output out (a job whose sink writes no files).
	noOutput bool
}

func newRunner(t *testing.T, bin, job, dir string) *runner {
	r := &runner{t: t, bin: bin, job: job, ck: filepath.Join(dir, "checkpoints"), out: filepath.Join(dir, "out"), logs: filepath.Join(dir, "logs"), modes: numKillModes}
	if err := os.MkdirAll(r.logs, 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

type proc struct {
	cmd  *exec.Cmd
	done chan error
}

// start starts a riffle process; par > 0 overrides the job's parallelism.
func (r *runner) start(par int) *proc {
	r.t.Helper()
	r.runs++
	r.lastPar = par
	r.lastLog = filepath.Join(r.logs, fmt.Sprintf("run-%03d.log", r.runs))
	f, err := os.Create(r.lastLog)
	if err != nil {
		r.t.Fatal(err)
	}
	args := []string{"run", "--checkpoint-dir", r.ck, "--checkpoint-interval", interval, "--progress", "never", "--parallelism", strconv.Itoa(par)}
	if !r.noOutput {
		args = append(args, "--output", r.out)
	}
	cmd := exec.Command(r.bin, append(args, r.job)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		r.t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.done <- err
	}()
	r.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
		}
	})
	return p
}

// failf fails the test with the last run's log.
func (r *runner) failf(format string, args ...any) {
	r.t.Helper()
	data, _ := os.ReadFile(r.lastLog)
	if len(data) > 8000 {
		data = append([]byte("...\n"), data[len(data)-8000:]...)
	}
	r.t.Fatalf("%s\n--- %s:\n%s", fmt.Sprintf(format, args...), r.lastLog, data)
}

// names lists dir (nil when it does not exist yet).
func names(dir string) map[string]bool {
	ents, _ := os.ReadDir(dir)
	out := make(map[string]bool, len(ents))
	for _, e := range ents {
		out[e.Name()] = true
	}
	return out
}

// appeared reports whether dir holds a name matching ok that was not in before.
func appeared(dir string, before map[string]bool, ok func(string) bool) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if n := e.Name(); !before[n] && ok(n) {
			return true
		}
	}
	return false
}

func isCheckpoint(n string) bool {
	return strings.HasPrefix(n, "chk-") && !strings.HasSuffix(n, ".inprogress")
}

func isStaging(n string) bool {
	return strings.HasPrefix(n, "chk-") && strings.HasSuffix(n, ".inprogress")
}

func isPart(n string) bool { return strings.HasSuffix(n, ".parquet") && !strings.HasPrefix(n, ".") }

// killOnce starts a process and SIGKILLs it at a moment picked by rng.
func (r *runner) killOnce(rng *rand.Rand) killMode {
	r.t.Helper()
	mode := killMode(rng.IntN(int(r.modes)))
	delay := time.Duration(50+rng.IntN(1500)) * time.Millisecond
	jitter := time.Duration(rng.IntN(3000)) * time.Microsecond
	ckBefore, outBefore := names(r.ck), names(r.out)
	p := r.start(1 + rng.IntN(3))
	began := time.Now()
	var ok func() bool
	switch mode {
	case killInProgress:
		ok = func() bool { return appeared(r.ck, ckBefore, isStaging) }
	case killComplete:
		ok = func() bool { return appeared(r.ck, ckBefore, isCheckpoint) }
	case killPublished:
		ok = func() bool { return appeared(r.out, outBefore, isPart) }
	default:
		ok = func() bool { return time.Since(began) >= delay }
		jitter = 0
	}
	for !ok() {
		select {
		case err := <-p.done:
			r.failf("run %d (%s) exited by itself: %v", r.runs, mode, err)
		case <-time.After(time.Millisecond):
		}
		if time.Since(began) > eventTimeout {
			r.timeouts++
			break
		}
	}
	time.Sleep(jitter)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		r.failf("kill: %v", err)
	}
	if err := <-p.done; err == nil {
		r.failf("run %d exited cleanly before its kill", r.runs)
	}
	return mode
}

// stopOnce starts a process, lets it complete a checkpoint and run a little
// longer, stops it with SIGTERM and checks that it exits 0 leaving no part
// unpublished: the final checkpoint covers them all, so they must be
// published before the process ends, not at the next start.
func (r *runner) stopOnce(rng *rand.Rand) killMode {
	r.t.Helper()
	ckBefore := names(r.ck)
	p := r.start(1 + rng.IntN(3))
	began := time.Now()
	for !appeared(r.ck, ckBefore, isCheckpoint) {
		select {
		case err := <-p.done:
			r.failf("run %d exited by itself: %v", r.runs, err)
		case <-time.After(time.Millisecond):
		}
		if time.Since(began) > eventTimeout {
			r.failf("run %d completed no checkpoint within %v", r.runs, eventTimeout)
		}
	}
	time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.failf("SIGTERM: %v", err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			r.failf("run %d after SIGTERM: %v", r.runs, err)
		}
	case <-time.After(finishTimeout):
		r.failf("run %d did not stop within %v of SIGTERM", r.runs, finishTimeout)
	}
	r.checkAllPublished()
	return stopGraceful
}

// checkAllPublished fails when a gracefully stopped run left a part file
// unpublished.
func (r *runner) checkAllPublished() {
	r.t.Helper()
	ents, _ := os.ReadDir(r.out)
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".inprogress") {
			r.failf("run %d stopped gracefully but left %s unpublished", r.runs, n)
		}
	}
}

// checkPublished checks that published output is final: every file seen
// published before still exists with the same content (a published part of
// a complete checkpoint is never removed nor rewritten, whatever the kills).
// It adds the files published since and returns how many there are.
func (r *runner) checkPublished(seen map[string]string) int {
	r.t.Helper()
	now := map[string]string{}
	ents, _ := os.ReadDir(r.out)
	for _, e := range ents {
		if !isPart(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(r.out, e.Name()))
		if err != nil {
			r.failf("read published %s: %v", e.Name(), err)
		}
		sum := sha256.Sum256(data)
		now[e.Name()] = hex.EncodeToString(sum[:])
	}
	for n, h := range seen {
		switch got, ok := now[n]; {
		case !ok:
			r.failf("published file %s disappeared after run %d", n, r.runs)
		case got != h:
			r.failf("published file %s was rewritten by run %d", n, r.runs)
		}
	}
	for n, h := range now {
		seen[n] = h
	}
	return len(now)
}

// finish runs the job until its newest complete checkpoint, one this run
// wrote, covers every offset in ends (and, with pastData, has its
// watermark past the data), then stops it with SIGTERM and checks it exits
// 0. The newest checkpoint before the run may already cover the data, but
// a SIGTERM that reaches the process before its handler is installed
// kills it: hence a checkpoint of its own.
func (r *runner) finish(topic string, ends map[int]int64, pastData bool) {
	r.t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var before uint64
	if c, err := checkpoint.LatestFS(checkpoint.OSFS, quiet, r.ck); err == nil {
		before = c.ID()
	}
	p := r.start(0)
	deadline := time.After(finishTimeout)
	for {
		select {
		case err := <-p.done:
			r.failf("last run exited by itself: %v", err)
		case <-deadline:
			r.failf("last run did not reach the end of the data within %v", finishTimeout)
		case <-time.After(50 * time.Millisecond):
		}
		c, err := checkpoint.LatestFS(checkpoint.OSFS, quiet, r.ck)
		if err != nil {
			continue // none yet, or one being removed by retention
		}
		if c.ID() > before && (!pastData || c.Manifest.Watermark >= doneWatermark) && covers(c, topic, ends) {
			break
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.failf("SIGTERM: %v", err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			r.failf("last run after SIGTERM: %v", err)
		}
	case <-time.After(finishTimeout):
		r.failf("last run did not stop within %v of SIGTERM", finishTimeout)
	}
	r.checkAllPublished()
}

// covers reports whether c's Kafka positions reach ends.
func covers(c *checkpoint.Checkpoint, topic string, ends map[int]int64) bool {
	pos := map[int]int64{}
	for _, sp := range c.Manifest.Sources {
		var m map[string]map[string]int64
		if json.Unmarshal(sp.Position, &m) != nil {
			return false
		}
		for p, off := range m[topic] {
			n, err := strconv.Atoi(p)
			if err != nil {
				return false
			}
			pos[n] = max(pos[n], off)
		}
	}
	for p, end := range ends {
		if pos[p] < end {
			return false
		}
	}
	return true
}

// compare checks the crash run's output against the fault-free run's and
// DuckDB's windows over the input: equal multisets, no (item, window) twice.
func compare(t *testing.T, input, crashOut, cleanOut string) {
	t.Helper()
	for _, d := range []string{crashOut, cleanOut} {
		if fs, _ := filepath.Glob(filepath.Join(d, "*.parquet")); len(fs) == 0 {
			t.Fatalf("no output in %s", d)
		}
	}
	view := func(name, dir string) string {
		return fmt.Sprintf(`CREATE VIEW %s AS SELECT item_id, epoch_ms(window_start) AS ws, epoch_ms(window_end) AS we, events, total
FROM read_parquet('%s/*.parquet');`, name, dir)
	}
	setup := view("crash", crashOut) + "\n" + view("clean", cleanOut) + "\n" + fmt.Sprintf(`
CREATE VIEW truth AS SELECT item_id, ws, ws + 600000 AS we, count(*) AS events, sum(weight) AS total
FROM (SELECT item_id, weight, (epoch_ms(event_time) // 600000) * 600000 AS ws FROM read_parquet('%s'))
GROUP BY item_id, ws;`, input)
	diff := func(a, b string) string {
		return fmt.Sprintf("(SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s))", a, b)
	}
	q := setup + fmt.Sprintf(`
SELECT (SELECT count(*) FROM crash), (SELECT count(*) FROM clean), (SELECT count(*) FROM truth),
       %s, %s, %s, %s,
       (SELECT count(*) FROM (SELECT item_id, ws FROM crash GROUP BY item_id, ws HAVING count(*) > 1)),
       (SELECT count(*) FROM (SELECT item_id, ws FROM clean GROUP BY item_id, ws HAVING count(*) > 1))`,
		diff("crash", "truth"), diff("truth", "crash"), diff("clean", "truth"), diff("truth", "clean"))
	res := oracle.DuckDB(t, q).Strings()
	if len(res) != 1 || len(res[0]) != 9 {
		t.Fatalf("oracle answered %v", res)
	}
	r := res[0]
	t.Logf("rows: crash %s, fault-free %s, DuckDB %s; crash extra/missing %s/%s; fault-free extra/missing %s/%s; duplicated windows crash %s, fault-free %s",
		r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])
	if r[0] != r[2] || r[1] != r[2] || r[3] != "0" || r[4] != "0" || r[5] != "0" || r[6] != "0" || r[7] != "0" || r[8] != "0" {
		var b bytes.Buffer
		for _, x := range []struct{ name, q string }{
			{"crash rows not in DuckDB's", "SELECT * FROM crash EXCEPT ALL SELECT * FROM truth"},
			{"DuckDB rows missing from crash", "SELECT * FROM truth EXCEPT ALL SELECT * FROM crash"},
		} {
			fmt.Fprintf(&b, "%s (first 10):\n", x.name)
			for _, row := range oracle.DuckDB(t, setup+"\n"+x.q+" ORDER BY ALL LIMIT 10").Strings() {
				fmt.Fprintf(&b, "  %v\n", row)
			}
		}
		t.Fatalf("outputs differ (crash, fault-free, DuckDB rows; crash extra, missing; fault-free extra, missing; duplicates crash, fault-free) = %v\n%s", r, b.String())
	}
}
