package metrics_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/agg"
	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/coerce"
	"github.com/riffle-dev/riffle/internal/deadletter"
	"github.com/riffle-dev/riffle/internal/metrics"
	"github.com/riffle-dev/riffle/sources/text"
	"github.com/riffle-dev/riffle/windows"
)

// TestLateRowsBruteForce: a tumbling window over batches of out-of-order
// event times (the source's watermark is the running maximum minus a
// lag, after every batch) counts as late exactly the rows a brute-force
// replay of that watermark finds late.
func TestLateRowsBruteForce(t *testing.T) {
	mem := checkedMem(t)
	const (
		size     = 100 // ms
		lateness = 30
		lag      = 50
	)
	schema := arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.PrimitiveTypes.Int64}, {Name: "t", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rnd := rand.New(rand.NewPCG(7, 8))
	var batches []arrow.RecordBatch
	var times [][]int64
	clock := int64(1000)
	for i := 0; i < 60; i++ {
		n := 1 + rnd.IntN(40)
		ts := make([]int64, n)
		for r := range ts {
			clock += int64(rnd.IntN(7))
			ts[r] = clock - int64(rnd.IntN(300)) // up to 300 ms out of order
		}
		kb := array.NewInt64Builder(mem)
		tb := array.NewInt64Builder(mem)
		for range ts {
			kb.Append(int64(rnd.IntN(5)))
		}
		tb.AppendValues(ts, nil)
		k, tc := kb.NewArray(), tb.NewArray()
		batches = append(batches, array.NewRecordBatch(schema, []arrow.Array{k, tc}, int64(n)))
		k.Release()
		tc.Release()
		kb.Release()
		tb.Release()
		times = append(times, ts)
	}
	// Brute force: the window operator sees batch i with the watermark of
	// batches 0..i-1; a row is late when its window's end-1 plus the
	// allowed lateness is at or below it.
	var want int64
	wm := arrowexec.MinWatermark
	for _, ts := range times {
		for _, v := range ts {
			end := (v/size)*size + size
			if end-1+lateness <= wm {
				want++
			}
		}
		for _, v := range ts {
			wm = max(wm, v-lag)
		}
	}
	if want == 0 {
		t.Fatal("the input has no late rows: the test would prove nothing")
	}
	src := ownedSource(t, schema, batches)
	src.EventTime, src.Lag = 1, lag
	win, err := windows.New(windows.Options{Kind: windows.Tumbling, Size: size * time.Millisecond, Keys: []string{"k"}, Time: "t",
		Aggs: []windows.Agg{{Func: windows.Count, As: "n"}}, AllowedLateness: lateness * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sink := testSink(t)
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 1)
	w := g.Add("window", win, 1, s.Forward())
	g.Add("sink", sink, 1, w.Forward())
	j := compile(t, g, arrowexec.RunOptions{Mem: mem})
	runToEnd(t, j)
	c := &metrics.Collector{}
	c.SetJob("late", j)
	fams := families(t, c)
	if v, ok := value(fams, "riffle_window_late_rows_total", map[string]string{"job": "late", "node": "window"}); !ok || v != float64(want) {
		t.Errorf("riffle_window_late_rows_total = %v (%v), brute force %d", v, ok, want)
	}
	// Every window fired and was purged at the final watermark: the
	// subtask's cache is empty; the memory backend keeps no files.
	for _, name := range []string{"riffle_window_cached_windows", "riffle_state_disk_bytes"} {
		if v, ok := value(fams, name, map[string]string{"node": "window", "subtask": "0"}); !ok || v != 0 {
			t.Errorf("%s{subtask=0} = %v (%v), want 0", name, v, ok)
		}
	}
	lint(t, c)
}

// TestDeadLettersByReason: a CSV source with bad rows of every reason
// class reports riffle_dead_letters_total per class equal to the
// dead-letter file's lines per class field.
func TestDeadLettersByReason(t *testing.T) {
	mem := checkedMem(t)
	dir := t.TempDir()
	rnd := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	b.WriteString("a,b\n")
	for i := 0; i < 2000; i++ {
		switch rnd.IntN(10) {
		case 0:
			b.WriteString("x" + fmt.Sprint(i) + ",1.5\n") // a is not an integer
		case 1:
			fmt.Fprintf(&b, ",%d\n", i) // a is required
		case 2:
			fmt.Fprintf(&b, "%d,\"unterminated\n", i) // broken quoting
		default:
			fmt.Fprintf(&b, "%d,%d.25\n", i, i)
		}
	}
	input := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(input, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	dlPath := filepath.Join(dir, "dead.jsonl")
	src, err := text.New(text.Options{Paths: []string{input}, Header: true, SplitSize: 4096,
		Columns: []text.Column{{Name: "a", Type: coerce.Int64, Required: true}, {Name: "b", Type: coerce.Float64}},
		OnError: text.OnErrorDeadLetter, DeadLetterPath: dlPath})
	if err != nil {
		t.Fatal(err)
	}
	sink := testSink(t)
	g := arrowexec.NewGraph()
	s := g.AddSource("csv", src, 2)
	g.Add("sink", sink, 1, s.Rebalance())
	j := compile(t, g, arrowexec.RunOptions{Mem: mem})
	runToEnd(t, j)
	f, err := os.Open(dlPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct{ Class string }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("dead-letter line %q: %v", sc.Text(), err)
		}
		lines[line.Class]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{deadletter.Malformed, deadletter.MissingField, deadletter.BadValue} {
		if lines[class] == 0 {
			t.Errorf("no %s line in the dead-letter file: the input should have some", class)
		}
	}
	c := &metrics.Collector{}
	c.SetJob("dl", j)
	fams := families(t, c)
	total := 0.0
	for _, m := range fams["riffle_dead_letters_total"].GetMetric() {
		for _, l := range m.Label {
			if l.GetName() == "reason" {
				if want := lines[l.GetValue()]; m.Counter.GetValue() != float64(want) {
					t.Errorf("riffle_dead_letters_total{reason=%q} = %v, the file has %d lines", l.GetValue(), m.Counter.GetValue(), want)
				}
			}
		}
		total += m.Counter.GetValue()
	}
	fileTotal := 0
	for _, n := range lines {
		fileTotal += n
	}
	if total != float64(fileTotal) {
		t.Errorf("riffle_dead_letters_total sums to %v, the file has %d lines", total, fileTotal)
	}
	lint(t, c)
}

// endless is an unbounded source: a few batches, then nothing, with the
// latency bound of an unbounded reader, until the job stops it.
type endless struct {
	schema *arrow.Schema
	mem    memory.Allocator
}

func (e *endless) Schema() *arrow.Schema { return e.schema }
func (e *endless) Open(context.Context, *arrowexec.Task) (arrowexec.SourceReader, error) {
	return &endlessReader{e: e}, nil
}

type endlessReader struct {
	e *endless
	n int
}

func (r *endlessReader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if r.n < 5 {
		r.n++
		b := array.NewInt64Builder(r.e.mem)
		defer b.Release()
		b.AppendValues([]int64{1, 2, 3}, nil)
		col := b.NewArray()
		defer col.Release()
		return array.NewRecordBatch(r.e.schema, []arrow.Array{col}, 3), nil
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Millisecond):
	}
	return nil, nil
}

func (r *endlessReader) Close() error { return nil }

// TestCheckpointCount: a job with checkpoints every few milliseconds,
// stopped once it completed a few: the scraped count of completed
// checkpoints, of durations in the histogram and the last id equal the
// complete checkpoints in the checkpoint directory (retention keeps them
// all).
func TestCheckpointCount(t *testing.T) {
	mem := checkedMem(t)
	dir := t.TempDir()
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	c := &metrics.Collector{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan *checkpoint.Coordinator, 1)
	sink := testSink(t)
	cfg := checkpoint.RunConfig{
		Options:    checkpoint.Options{Dir: dir, Interval: 5 * time.Millisecond, Retain: 1000, JobFingerprint: "metrics-test"},
		RunOptions: arrowexec.RunOptions{Mem: mem},
		OnStart: func(co *checkpoint.Coordinator, j *arrowexec.Job) {
			c.SetJob("ck", j)
			c.SetCoordinator(co)
			started <- co
		},
	}
	done := make(chan error, 1)
	go func() {
		done <- checkpoint.Run(ctx, cfg, func(*checkpoint.Checkpoint) (*arrowexec.Graph, error) {
			g := arrowexec.NewGraph()
			s := g.AddSource("src", &endless{schema: schema, mem: mem}, 2)
			g.Add("sink", sink, 1, s.Rebalance())
			return g, nil
		})
	}()
	var co *checkpoint.Coordinator
	select {
	case co = <-started:
	case err := <-done:
		t.Fatalf("job ended before it started: %v", err)
	}
	giveUp := time.After(2 * time.Minute)
	for co.Stats().Completed < 3 {
		select {
		case err := <-done:
			t.Fatalf("job ended: %v", err)
		case <-giveUp:
			t.Fatalf("only %d checkpoints completed within 2 minutes, want 3", co.Stats().Completed)
		case <-time.After(time.Millisecond):
		}
	}
	cancel() // graceful stop: a final checkpoint
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	chks, err := filepath.Glob(filepath.Join(dir, "chk-*"))
	if err != nil {
		t.Fatal(err)
	}
	var complete, last int
	for _, p := range chks {
		var id int
		if _, err := fmt.Sscanf(filepath.Base(p), "chk-%d", &id); err != nil || strings.HasSuffix(p, ".inprogress") {
			continue
		}
		if _, err := os.Stat(filepath.Join(p, "MANIFEST")); err != nil {
			continue
		}
		complete++
		last = max(last, id)
	}
	fams := families(t, c)
	for name, want := range map[string]float64{
		"riffle_checkpoints_completed_total": float64(complete),
		"riffle_checkpoint_duration_seconds": float64(complete), // the histogram's count
		"riffle_checkpoint_last_id":          float64(last),
	} {
		if v, ok := value(fams, name, map[string]string{"job": "ck"}); !ok || v != want {
			t.Errorf("%s = %v (%v), the directory says %v", name, v, ok, want)
		}
	}
	if v, _ := value(fams, "riffle_checkpoint_alignments_total", map[string]string{"node": "sink"}); v != float64(complete) {
		t.Errorf("the sink aligned %v barriers, %d checkpoints completed", v, complete)
	}
	lint(t, c)
}

// TestAggGroups: a hash aggregate whose input is held at its end reports
// per subtask the groups it holds, equal to the distinct keys hashed to
// it (counted here from the input), and a non-zero state size.
func TestAggGroups(t *testing.T) {
	mem := checkedMem(t)
	schema := arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.PrimitiveTypes.Int64}, {Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rnd := rand.New(rand.NewPCG(11, 12))
	distinct := map[int64]bool{}
	var batches []arrow.RecordBatch
	for i := 0; i < 30; i++ {
		n := 1 + rnd.IntN(300)
		kb, vb := array.NewInt64Builder(mem), array.NewInt64Builder(mem)
		for r := 0; r < n; r++ {
			k := int64(rnd.IntN(2000))
			distinct[k] = true
			kb.Append(k)
			vb.Append(int64(r))
		}
		k, v := kb.NewArray(), vb.NewArray()
		batches = append(batches, array.NewRecordBatch(schema, []arrow.Array{k, v}, int64(n)))
		k.Release()
		v.Release()
		kb.Release()
		vb.Release()
	}
	src := ownedSource(t, schema, batches)
	spec, err := agg.New(agg.Options{GroupBy: []string{"k"}, Aggs: []agg.Agg{{Func: agg.Count, As: "n"}}})
	if err != nil {
		t.Fatal(err)
	}
	sink := testSink(t)
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 2)
	a := g.Add("agg", spec, 2, s.HashBy("k"))
	g.Add("sink", sink, 1, a.Rebalance())
	j := compile(t, g, arrowexec.RunOptions{Mem: mem, HoldAtEnd: true})
	done := start(j)
	<-j.SourcesAtEnd()
	// The sources' idle status follows their last batch: once both
	// aggregate subtasks passed it on, they processed every row.
	giveUp := time.After(2 * time.Minute)
	for i, m := range j.Metrics("agg") {
		for !m.Idle.Load() {
			select {
			case err := <-done:
				t.Fatalf("job ended: %v", err)
			case <-giveUp:
				t.Fatalf("aggregate subtask %d not idle within 2 minutes", i)
			case <-time.After(time.Millisecond):
			}
		}
	}
	c := &metrics.Collector{}
	c.SetJob("agg", j)
	fams := families(t, c)
	j.Stop(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Which subtask owns a key: the exchange's own partitioner, used as
	// the reference for the split of the independent distinct count.
	var keys []int64
	for k := range distinct {
		keys = append(keys, k)
	}
	kb := array.NewInt64Builder(mem)
	kb.AppendValues(keys, nil)
	kc := kb.NewArray()
	kb.Release()
	defer kc.Release()
	kbatch := array.NewRecordBatch(arrow.NewSchema(schema.Fields()[:1], nil), []arrow.Array{kc}, int64(len(keys)))
	defer kbatch.Release()
	parts, err := arrowexec.PartitionRecord(mem, kbatch, []int{0}, arrowexec.DefaultMaxParallelism, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for sub, p := range parts {
		want := 0.0
		if p != nil {
			want = float64(p.NumRows())
			p.Release()
		}
		v, ok := value(fams, "riffle_agg_groups", map[string]string{"node": "agg", "subtask": fmt.Sprint(sub)})
		if !ok || v != want {
			t.Errorf("riffle_agg_groups{subtask=%d} = %v (%v), want %v", sub, v, ok, want)
		}
		total += v
		if b, _ := value(fams, "riffle_agg_state_bytes", map[string]string{"node": "agg", "subtask": fmt.Sprint(sub)}); want > 0 && b <= 0 {
			t.Errorf("riffle_agg_state_bytes{subtask=%d} = %v with %v groups", sub, b, want)
		}
	}
	if total != float64(len(distinct)) {
		t.Errorf("groups sum to %v, the input has %d distinct keys", total, len(distinct))
	}
	lint(t, c)
}
