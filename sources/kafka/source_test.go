package kafka

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/kafkatest"
)

func TestBoundedGraphOracle(t *testing.T) {
	brokers, topic, want := setup(t, 4, 3000)
	for _, tc := range []struct{ par, rows int }{{1, 8192}, {3, 97}, {6, 1}} {
		t.Run(fmt.Sprintf("par%d_rows%d", tc.par, tc.rows), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			o := testOptions(brokers, topic)
			o.MaxBatchRows = tc.rows
			src, err := New(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := runGraph(t, mem, src, tc.par)
			if err != nil {
				t.Fatal(err)
			}
			diffRows(t, got, want)
			if st := src.Stats(); st.Rows != int64(len(want)) || st.Messages != int64(len(want)) {
				t.Errorf("stats %+v, want %d rows", st, len(want))
			}
		})
	}
}

// TestRestoreNoGapNoDuplicate reads part of the topic, snapshots every
// reader, and resumes with a different parallelism: the rows before and
// after the snapshot together are the topic, exactly once.
func TestRestoreNoGapNoDuplicate(t *testing.T) {
	brokers, topic, want := setup(t, 5, 2000)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := testOptions(brokers, topic)
	o.MaxBatchRows = 50
	src, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var before []arrow.RecordBatch
	var blobs [][]byte
	for sub := range 2 {
		r, err := src.Open(ctx, task(mem, sub, 2, nil))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 + sub*4 {
			b, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if b != nil {
				before = append(before, b)
			}
		}
		snap, err := r.(arrowexec.Checkpointer).SnapshotState(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, snap.Operator)
		// read on past the snapshot: these rows must not count
		if b, err := r.Next(ctx); err == nil && b != nil {
			b.Release()
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(before) == 0 {
		t.Fatal("nothing read before the snapshot")
	}
	src2, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	restore := &arrowexec.RestoreState{CheckpointID: 1, Operator: blobs}
	var after []arrow.RecordBatch
	for sub := range 3 {
		r, err := src2.Open(ctx, task(mem, sub, 3, restore))
		if err != nil {
			t.Fatal(err)
		}
		after = append(after, readAll(t, r)...)
		r.Close()
	}
	got := rowsOf(t, append(before, after...))
	release(before)
	release(after)
	diffRows(t, got, want)
}

func TestDeadLetter(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, t.Name(), 3)
	msgs, want := genMessages(600, 3)
	bad := []struct {
		value  string
		reason string
	}{
		{`{"id":1,"name":"x"`, "invalid JSON"},
		{`{"id":"abc"}`, `cannot convert string "abc" to int64`},
		{`{"name":"no id"}`, `missing required field "id"`},
		{`{"id":null}`, `missing required field "id"`},
		{`{"id":1.5}`, "cannot convert number 1.5 to int64"},
		{`[1,2]`, "not a JSON object"},
		{"\xff\xfe{", "invalid JSON"},
		{`{"id":1,"price":true}`, "cannot convert true to float64"},
		{`{"id":1} x`, "data after the object"},
		{``, "empty message"},
	}
	type badAt struct {
		p      int
		off    int64
		value  string
		reason string
	}
	var bads []badAt
	offs := make([]int64, 3)
	for _, m := range msgs {
		offs[m.Partition]++
	}
	for i, b := range bad {
		p := i % 3
		msgs = append(msgs, kafkago.Message{Partition: p, Value: []byte(b.value)})
		bads = append(bads, badAt{p, offs[p], b.value, b.reason})
		offs[p]++
		// good messages after the bad ones too
		v := fmt.Sprintf(`{"id":%d}`, 10000+i)
		msgs = append(msgs, kafkago.Message{Partition: p, Value: []byte(v)})
		want = append(want, row{Partition: p, Offset: offs[p], ID: int64(10000 + i), PriceNull: true})
		offs[p]++
	}
	kafkatest.Produce(t, brokers, topic, msgs)

	// fail: the first bad message stops the job, naming it.
	t.Run("fail", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		src, err := New(context.Background(), testOptions(brokers, topic))
		if err != nil {
			t.Fatal(err)
		}
		_, err = runGraph(t, mem, src, 1)
		var me *MessageError
		if !errors.As(err, &me) {
			t.Fatalf("got %v, want a *MessageError", err)
		}
		msg := err.Error()
		if !strings.Contains(msg, fmt.Sprintf("kafka: topic %q partition %d offset %d: ", topic, me.Partition, me.Offset)) {
			t.Errorf("error %q does not name topic/partition/offset", msg)
		}
		found := false
		for _, b := range bads {
			if b.p == me.Partition && b.off == me.Offset && strings.Contains(msg, b.reason) {
				found = true
			}
		}
		if !found {
			t.Errorf("error %q is not one of the bad messages", msg)
		}
	})
	t.Run("skip", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		o := testOptions(brokers, topic)
		o.OnError = OnErrorSkip
		src, err := New(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := runGraph(t, mem, src, 2)
		if err != nil {
			t.Fatal(err)
		}
		diffRows(t, got, want)
		if st := src.Stats(); st.Skipped != int64(len(bad)) || st.Rows != int64(len(want)) {
			t.Errorf("stats %+v, want %d skipped, %d rows", st, len(bad), len(want))
		}
	})
	t.Run("dead-letter", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		o := testOptions(brokers, topic)
		o.OnError = OnErrorDeadLetter
		o.DeadLetterPath = filepath.Join(t.TempDir(), "dead.jsonl")
		o.MaxBatchRows = 64
		src, err := New(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := runGraph(t, mem, src, 3)
		if err != nil {
			t.Fatal(err)
		}
		diffRows(t, got, want)
		if st := src.Stats(); st.DeadLettered != int64(len(bad)) || st.Rows != int64(len(want)) {
			t.Errorf("stats %+v, want %d dead-lettered, %d rows", st, len(bad), len(want))
		}
		f, err := os.Open(o.DeadLetterPath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		type line struct {
			Topic         string  `json:"topic"`
			Partition     int     `json:"partition"`
			Offset        int64   `json:"offset"`
			Reason        string  `json:"reason"`
			Payload       *string `json:"payload"`
			PayloadBase64 *string `json:"payload_base64"`
		}
		seen := map[[2]int64]line{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("dead-letter line %q: %v", sc.Text(), err)
			}
			seen[[2]int64{int64(l.Partition), l.Offset}] = l
		}
		if len(seen) != len(bad) {
			t.Fatalf("dead-letter file has %d records, want %d", len(seen), len(bad))
		}
		for _, b := range bads {
			l, ok := seen[[2]int64{int64(b.p), b.off}]
			if !ok {
				t.Errorf("partition %d offset %d missing from the dead-letter file", b.p, b.off)
				continue
			}
			if l.Topic != topic || !strings.Contains(l.Reason, b.reason) {
				t.Errorf("dead letter %+v, want topic %q reason containing %q", l, topic, b.reason)
			}
			switch {
			case l.Payload != nil && *l.Payload == b.value:
			case l.PayloadBase64 != nil && b.value == "\xff\xfe{" && *l.PayloadBase64 == "//57":
			default:
				t.Errorf("dead letter %+v: payload does not match %q", l, b.value)
			}
		}
	})
}

func TestStartModes(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, t.Name(), 2)
	msgs, want := genMessages(400, 2)
	kafkatest.Produce(t, brokers, topic, msgs)
	ctx := context.Background()

	t.Run("timestamp", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		o := testOptions(brokers, topic)
		o.Start, o.StartTime = StartTimestamp, baseTime.Add(250*time.Second)
		src, err := New(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := runGraph(t, mem, src, 2)
		if err != nil {
			t.Fatal(err)
		}
		diffRows(t, got, want[250:])
	})
	t.Run("timestamp-past-end", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		o := testOptions(brokers, topic)
		o.Start, o.StartTime = StartTimestamp, baseTime.Add(time.Hour)
		src, err := New(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := runGraph(t, mem, src, 1)
		if err != nil || len(got) != 0 {
			t.Fatalf("got %d rows, %v; want none", len(got), err)
		}
	})
	t.Run("committed", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		group := kafkatest.UniqueName("riffle-test")
		o := testOptions(brokers, topic)
		o.GroupID = group
		o.MaxBatchRows = 30
		src, err := New(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		// Subtask 0 of 2 owns partition 0 only; read 3 batches (90 rows),
		// checkpoint, complete: partition 0 is committed at 90.
		r, err := src.Open(ctx, task(mem, 0, 2, nil))
		if err != nil {
			t.Fatal(err)
		}
		var before []arrow.RecordBatch
		for len(before) < 3 {
			b, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if b != nil {
				before = append(before, b)
			}
		}
		if _, err := r.(arrowexec.Checkpointer).SnapshotState(ctx, 7); err != nil {
			t.Fatal(err)
		}
		if err := r.(arrowexec.CheckpointListener).NotifyCheckpointComplete(ctx, 7); err != nil {
			t.Fatal(err)
		}
		r.Close()
		release(before)
		if st := src.Stats(); st.Commits != 1 || st.CommitErrors != 0 {
			t.Fatalf("stats %+v, want one commit", st)
		}
		o.Start = StartCommitted
		src2, err := New(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := runGraph(t, mem, src2, 1)
		if err != nil {
			t.Fatal(err)
		}
		var exp []row
		for _, w := range want {
			if w.Partition == 1 || w.Offset >= 90 { // partition 1 has no commit: earliest
				exp = append(exp, w)
			}
		}
		diffRows(t, got, exp)
	})
	t.Run("latest", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		o := testOptions(brokers, topic)
		o.Start, o.Bounded = StartLatest, false
		src, err := New(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		r, err := src.Open(ctx, task(mem, 0, 1, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		// Nothing old is read.
		b, err := r.Next(ctx)
		if err != nil || b != nil {
			t.Fatalf("Next before new messages = %v, %v; want nil, nil", b, err)
		}
		more := []kafkago.Message{{Partition: 0, Value: []byte(`{"id":-1}`)}, {Partition: 1, Value: []byte(`{"id":-2}`)}}
		kafkatest.Produce(t, brokers, topic, more)
		var bs []arrow.RecordBatch
		deadline := time.Now().Add(20 * time.Second)
		for n := 0; n < 2 && time.Now().Before(deadline); {
			b, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if b != nil {
				n += int(b.NumRows())
				bs = append(bs, b)
			}
		}
		got := rowsOf(t, bs)
		release(bs)
		diffRows(t, got, []row{{Partition: 0, Offset: 200, ID: -1, PriceNull: true}, {Partition: 1, Offset: 200, ID: -2, PriceNull: true}})
	})
}

func TestUnknownTopic(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	_, err := New(context.Background(), testOptions(brokers, "riffle-no-such-topic-x"))
	want := fmt.Sprintf(`kafka: topic "riffle-no-such-topic-x" does not exist (brokers %s)`, brokers)
	if err == nil || err.Error() != want || !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("got %v, want %q", err, want)
	}
	t.Log(err)
}

func TestUnreachableBroker(t *testing.T) {
	o := testOptions("127.0.0.1:1", "t")
	o.Retries, o.RetryBackoff, o.ConnectTimeout = 3, 10*time.Millisecond, time.Second
	_, err := New(context.Background(), o)
	// The error names the step and what failed in it (dial), not a vague
	// "unreachable".
	if err == nil || !strings.HasPrefix(err.Error(), "kafka: metadata request: dial failed after 3 attempts (brokers 127.0.0.1:1): ") {
		t.Fatalf("got %v", err)
	}
	t.Log(err)
}

func TestWatermarksPerPartition(t *testing.T) {
	brokers, topic, want := setup(t, 3, 300)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := testOptions(brokers, topic)
	o.Watermark = arrowexec.WatermarkStrategy{Column: "ts", MaxOutOfOrderness: time.Second}
	o.Bounded = false
	src, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := src.Open(ctx, task(mem, 0, 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for n < len(want) {
		b, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b != nil {
			n += int(b.NumRows())
			b.Release()
		}
	}
	maxBy := map[int]int64{}
	for _, w := range want {
		maxBy[w.Partition] = max(maxBy[w.Partition], w.TS)
	}
	exp := int64(1 << 62)
	for _, v := range maxBy {
		exp = min(exp, v-1000-1)
	}
	wm, idle := r.(arrowexec.WatermarkSource).CurrentWatermark()
	if wm != exp || idle {
		t.Fatalf("watermark %d idle %v, want %d (min over partitions of max - 1s - 1ms)", wm, idle, exp)
	}
}

func TestFormatsCSVAndRaw(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, t.Name(), 1)
	kafkatest.Produce(t, brokers, topic, []kafkago.Message{
		{Key: []byte("k1"), Value: []byte("1,\"a,\"\"b\",2.5,true\n")},
		{Value: []byte("2,,,false")},
		{Value: []byte("3,x")},
	})
	ctx := context.Background()
	t.Run("csv", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		o := Options{Brokers: []string{brokers}, Topics: []string{topic}, Bounded: true, Format: FormatCSV, OnError: OnErrorSkip,
			Fields:   []Field{{Name: "id", Type: Int64}, {Name: "s", Type: String}, {Name: "f", Type: Float64}, {Name: "b", Type: Bool}},
			Metadata: []string{MetaKey}}
		src, err := New(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		r, err := src.Open(ctx, task(mem, 0, 1, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		bs := readAll(t, r)
		defer release(bs)
		got := fmt.Sprint(tableString(bs))
		want := `[1 "a,\"b" 2.5 true "k1"] [2 null null false null]`
		if got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
		if st := src.Stats(); st.Skipped != 1 {
			t.Errorf("skipped %d, want 1", st.Skipped)
		}
	})
	t.Run("raw", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		o := Options{Brokers: []string{brokers}, Topics: []string{topic}, Bounded: true, Format: FormatRaw, Metadata: []string{MetaOffset, MetaTopic}}
		src, err := New(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		r, err := src.Open(ctx, task(mem, 0, 1, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		bs := readAll(t, r)
		defer release(bs)
		got := tableString(bs)
		want := fmt.Sprintf(`[%q 0 %q] [%q 1 %q] [%q 2 %q]`, "1,\"a,\"\"b\",2.5,true\n", topic, "2,,,false", topic, "3,x", topic)
		if got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
}

// tableString renders rows as [v v v] with strings and binaries quoted.
func tableString(bs []arrow.RecordBatch) string {
	var rows []string
	for _, b := range bs {
		for i := range int(b.NumRows()) {
			var vs []string
			for _, c := range b.Columns() {
				switch {
				case c.IsNull(i):
					vs = append(vs, "null")
				case c.DataType().ID() == arrow.STRING:
					vs = append(vs, fmt.Sprintf("%q", c.(*array.String).Value(i)))
				case c.DataType().ID() == arrow.BINARY:
					vs = append(vs, fmt.Sprintf("%q", c.(*array.Binary).Value(i)))
				default:
					vs = append(vs, c.ValueStr(i))
				}
			}
			rows = append(rows, "["+strings.Join(vs, " ")+"]")
		}
	}
	return strings.Join(rows, " ")
}

// TestIdlePartition: a partition without data holds the watermark back
// until IdleTimeout, then is left out of the minimum.
func TestIdlePartition(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, t.Name(), 2)
	ts := baseTime.UnixMilli()
	kafkatest.Produce(t, brokers, topic, []kafkago.Message{
		{Partition: 0, Value: []byte(fmt.Sprintf(`{"id":1,"ts":%d}`, ts))},
		{Partition: 0, Value: []byte(fmt.Sprintf(`{"id":2,"ts":%d}`, ts+5000))},
	})
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := testOptions(brokers, topic)
	o.Bounded = false
	o.MaxBatchDelay = 20 * time.Millisecond
	o.Watermark = arrowexec.WatermarkStrategy{Column: "ts", IdleTimeout: 300 * time.Millisecond}
	src, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := src.Open(ctx, task(mem, 0, 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wms := r.(arrowexec.WatermarkSource)
	rows := 0
	for rows < 2 {
		b, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b != nil {
			rows += int(b.NumRows())
			b.Release()
		}
	}
	if wm, idle := wms.CurrentWatermark(); wm != arrowexec.MinWatermark || idle {
		t.Fatalf("before the idle timeout: watermark %d idle %v, want MinWatermark (partition 1 holds it)", wm, idle)
	}
	// Wait until partition 1 is idle (the watermark is partition 0's
	// alone: its last event time ts+5000, minus 1), then new data on
	// partition 0 moves the watermark alone.
	for {
		if wm, _ := wms.CurrentWatermark(); wm == ts+5000-1 {
			break
		} else if wm != arrowexec.MinWatermark {
			t.Fatalf("waiting for partition 1 to go idle: watermark %d", wm)
		}
		b, err := r.Next(ctx) // returns nil within MaxBatchDelay when quiet
		if err != nil {
			t.Fatal(err)
		}
		if b != nil {
			t.Fatalf("unexpected batch of %d rows", b.NumRows())
		}
	}
	kafkatest.Produce(t, brokers, topic, []kafkago.Message{{Partition: 0, Value: []byte(fmt.Sprintf(`{"id":3,"ts":%d}`, ts+9000))}})
	for rows < 3 {
		b, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b != nil {
			rows += int(b.NumRows())
			b.Release()
		}
	}
	if wm, idle := wms.CurrentWatermark(); wm != ts+9000-1 || idle {
		t.Fatalf("partition 1 idle: watermark %d idle %v, want %d", wm, idle, ts+9000-1)
	}
}

func TestMultipleTopics(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	a := kafkatest.CreateTopic(t, brokers, t.Name()+"-a", 3)
	b := kafkatest.CreateTopic(t, brokers, t.Name()+"-b", 2)
	ma, _ := genMessages(300, 3)
	mb, _ := genMessages(200, 2)
	kafkatest.Produce(t, brokers, a, ma)
	kafkatest.Produce(t, brokers, b, mb)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	o := testOptions(brokers, a)
	o.Topics = []string{b, a}
	o.Metadata = []string{MetaTopic, MetaPartition, MetaOffset}
	src, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	// Partitions are sorted by (topic, partition) whatever the order given.
	var got []string
	for _, p := range src.Partitions() {
		got = append(got, fmt.Sprintf("%s/%d", p.Topic, p.ID))
	}
	first, second := a, b
	if b < a {
		first, second = b, a
	}
	if want := []string{first + "/0", first + "/1"}; !strings.HasPrefix(strings.Join(got, " "), strings.Join(want, " ")) || len(got) != 5 || !strings.HasPrefix(got[len(got)-1], second) {
		t.Fatalf("partitions %v", got)
	}
	ctx := context.Background()
	counts := map[string]int{}
	seen := map[string]bool{}
	for sub := range 3 {
		r, err := src.Open(ctx, task(mem, sub, 3, nil))
		if err != nil {
			t.Fatal(err)
		}
		for _, batch := range readAll(t, r) {
			topics := batch.Column(batch.Schema().FieldIndices(MetaTopic)[0]).(*array.String)
			parts := batch.Column(batch.Schema().FieldIndices(MetaPartition)[0]).(*array.Int32)
			offs := batch.Column(batch.Schema().FieldIndices(MetaOffset)[0]).(*array.Int64)
			for i := range int(batch.NumRows()) {
				k := fmt.Sprintf("%s/%d/%d", topics.Value(i), parts.Value(i), offs.Value(i))
				if seen[k] {
					t.Errorf("%s read twice", k)
				}
				seen[k] = true
				counts[topics.Value(i)]++
			}
			batch.Release()
		}
		r.Close()
	}
	if counts[a] != 300 || counts[b] != 200 {
		t.Fatalf("rows per topic %v, want %s:300 %s:200", counts, a, b)
	}
}

func TestValidate(t *testing.T) {
	ok := Options{Brokers: []string{"b:1"}, Topics: []string{"t"}, Fields: []Field{{Name: "x", Type: Int64}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mod  func(*Options)
		want string
	}{
		{func(o *Options) { o.Brokers = nil }, "no brokers"},
		{func(o *Options) { o.Topics = nil }, "no topics"},
		{func(o *Options) { o.Topics = []string{"t", "t"} }, `topic "t" listed twice`},
		{func(o *Options) { o.Start = StartTimestamp }, "needs StartTime"},
		{func(o *Options) { o.Start = StartCommitted }, "needs GroupID"},
		{func(o *Options) { o.Start = "middle" }, `unknown start mode "middle"`},
		{func(o *Options) { o.Format = "xml" }, `unknown format "xml"`},
		{func(o *Options) { o.Fields = nil }, "needs declared fields"},
		{func(o *Options) { o.Fields = []Field{{Name: "x", Type: "decimal"}} }, `field "x": unknown type "decimal"`},
		{func(o *Options) { o.Fields = append(o.Fields, Field{Name: "x", Type: String}) }, `field "x" declared twice`},
		{func(o *Options) { o.Metadata = []string{"_nope"} }, `unknown metadata column "_nope"`},
		{func(o *Options) { o.OnError = OnErrorDeadLetter }, "needs DeadLetterPath"},
		{func(o *Options) { o.OnError = "ignore" }, `unknown error policy "ignore"`},
		{func(o *Options) { o.Watermark.Column = "x"; o.Fields[0].Type = String }, "want timestamp or int64"},
		{func(o *Options) { o.Format = FormatRaw }, "format raw takes no fields"},
	} {
		o := ok
		o.Fields = append([]Field(nil), ok.Fields...)
		c.mod(&o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "kafka: ") {
			t.Errorf("got %v, want an error containing %q", err, c.want)
		}
	}
	// Defaults.
	d := Options{}.EnsureDefaults()
	if d.MaxBatchRows != 8192 || d.MaxBatchDelay != 100*time.Millisecond || d.Start != StartEarliest || d.Format != FormatJSON || d.OnError != OnErrorFail {
		t.Errorf("defaults %+v", d)
	}
	// Watermark on the record timestamp metadata column.
	o := ok
	o.Metadata = []string{MetaTimestamp}
	o.Watermark.Column = MetaTimestamp
	if err := o.Validate(); err != nil {
		t.Error(err)
	}
}
