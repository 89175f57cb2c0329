package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/metrics"
)

// TestScrape runs a small job and scrapes /metrics: the row counters equal
// the rows that went through each node.
func TestScrape(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	var batches []arrow.RecordBatch
	for i := 0; i < 3; i++ {
		b := array.NewInt64Builder(mem)
		b.AppendValues(make([]int64, 100), nil)
		col := b.NewArray()
		batches = append(batches, array.NewRecordBatch(schema, []arrow.Array{col}, 100))
		col.Release()
		b.Release()
	}
	src := exectest.NewSource(schema, batches)
	for _, b := range batches {
		b.Release()
	}
	defer src.Release()
	sink := exectest.NewSink()
	defer sink.Release()
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 1)
	g.Add("sink", sink, 1, s.Forward())
	j, err := g.Compile(arrowexec.RunOptions{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := &metrics.Collector{}
	c.SetJob("demo", j)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := metrics.Serve(ctx, "127.0.0.1:0", c, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`riffle_rows_in_total{job="demo",node="src",subtask="0"} 300`,
		`riffle_rows_out_total{job="demo",node="src",subtask="0"} 300`,
		`riffle_rows_in_total{job="demo",node="sink",subtask="0"} 300`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
