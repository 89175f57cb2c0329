package windows

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/sinks"
)

// TestLateSideOutput checks that records later than the allowed lateness
// land in the side output files, JSONL and Parquet, with their columns,
// their window and the reason.
func TestLateSideOutput(t *testing.T) {
	for _, format := range []sinks.Format{sinks.JSONL, sinks.Parquet} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		dir := filepath.Join(t.TempDir(), "late")
		opts := Options{Kind: Sliding, Size: 20 * time.Millisecond, Slide: 10 * time.Millisecond, Keys: []string{"k"}, Time: "t",
			Aggs: []Agg{{Func: Count, As: "n"}}, AllowedLateness: 5 * time.Millisecond}
		d := newDriver(t, mem, opts)
		d.attachLate(mem, newLateSink(t, dir, format, 0), 0, 1, nil)
		in := toBatches(mem, []ev{{k: "a", t: 1, v: 1}, {k: "b", t: 2, v: 2}}, 10)
		d.process(in[0])
		releaseBatches(in)
		d.watermark(24) // [-10,10) purged at 9+5=14, [0,20) at 19+5=24
		late := toBatches(mem, []ev{{k: "a", t: 3, v: 7}, {k: "c", t: 15, v: 8}, {k: "c", t: 25, v: 9}}, 10)
		d.process(late[0])
		releaseBatches(late)
		d.finish()
		if st := d.op.s.Stats(); st.LateRows != 3 {
			t.Fatalf("%s: %d late rows, want 3 (a@3 twice, c@15 once)", format, st.LateRows)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "late-*."+string(format)))
		if len(files) != 1 {
			t.Fatalf("%s: files %v", format, files)
		}
		var got []rec
		if format == sinks.JSONL {
			f, err := os.Open(files[0])
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatal(err)
				}
				if m[LateWindowStart] == nil || m[LateWindowEnd] == nil {
					t.Fatalf("no window in %s", sc.Text())
				}
				got = append(got, rec{m["k"].(string), int64(m["t"].(float64)), m[LateReason].(string)})
			}
			f.Close()
		} else {
			eachParquetBatch(t, mem, files, func(b arrow.RecordBatch) { got = append(got, collectedLate(b)...) })
		}
		want := []rec{{"a", 3, ReasonLate}, {"a", 3, ReasonLate}, {"c", 15, ReasonLate}}
		if len(got) != len(want) {
			t.Fatalf("%s: late records %v, want %v", format, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: late records %v, want %v", format, got, want)
			}
		}
		mem.AssertSize(t, 0)
	}
}

func collectedLate(b arrowRecord) []struct {
	k      string
	t      int64
	reason string
} {
	var out []struct {
		k      string
		t      int64
		reason string
	}
	sc := b.Schema()
	k := b.Column(sc.FieldIndices("k")[0]).(*array.String)
	ts := b.Column(sc.FieldIndices("t")[0]).(*array.Int64)
	why := b.Column(sc.FieldIndices(LateReason)[0]).(*array.String)
	for i := 0; i < int(b.NumRows()); i++ {
		out = append(out, struct {
			k      string
			t      int64
			reason string
		}{k.Value(i), ts.Value(i), why.Value(i)})
	}
	return out
}

type arrowRecord = arrow.RecordBatch

type rec = struct {
	k      string
	t      int64
	reason string
}
