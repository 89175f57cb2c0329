package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/metrics"
)

// TestScrape runs a small job and scrapes /metrics: the row counters equal
// the rows that went through each node.
func TestScrape(t *testing.T) {
	mem := checkedMem(t)
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	batches := zeroBatches(mem, schema, 100, 100, 100)
	src := ownedSource(t, schema, batches)
	sink := testSink(t)
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 1)
	g.Add("sink", sink, 1, s.Forward())
	j := compile(t, g, arrowexec.RunOptions{Mem: mem})
	runToEnd(t, j)
	body := scrape(t, "demo", j)
	for _, want := range []string{
		`riffle_rows_in_total{job="demo",node="src",subtask="0"} 300`,
		`riffle_rows_out_total{job="demo",node="src",subtask="0"} 300`,
		`riffle_rows_in_total{job="demo",node="sink",subtask="0"} 300`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// TestScrapeIdle: a source subtask with nothing to read, held at the end
// of its input, and the operator behind it on a forward edge, are scraped
// as idle; the others are not.
func TestScrapeIdle(t *testing.T) {
	mem := checkedMem(t)
	schema := arrow.NewSchema([]arrow.Field{{Name: "t", Type: arrow.PrimitiveTypes.Int64}}, nil)
	src := ownedSource(t, schema, []arrow.RecordBatch{int64Batch(mem, schema, []int64{1000, 2000, 3000})}) // subtask 1 reads nothing
	src.EventTime = 0
	sink := testSink(t)
	g := arrowexec.NewGraph()
	s := g.AddSource("src", src, 2)
	id := g.Add("id", exectest.Identity(), 2, s.Forward())
	g.Add("sink", sink, 1, id.Rebalance())
	j := compile(t, g, arrowexec.RunOptions{Mem: mem, HoldAtEnd: true})
	done := start(j)
	<-j.SourcesAtEnd()
	// The sink's watermark is the one of the subtask that read rows: the
	// idle one no longer holds it back, so every idle message has passed.
	for sink.LastWatermark(0) != 3000 {
		select {
		case err := <-done:
			t.Fatalf("job ended: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	body := scrape(t, "demo", j)
	j.Stop(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`riffle_idle{job="demo",node="src",subtask="0"} 0`,
		`riffle_idle{job="demo",node="src",subtask="1"} 1`,
		`riffle_idle{job="demo",node="id",subtask="0"} 0`,
		`riffle_idle{job="demo",node="id",subtask="1"} 1`,
		`riffle_idle{job="demo",node="sink",subtask="0"} 0`,
		`riffle_watermark_seconds{job="demo",node="sink",subtask="0"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// scrape serves j's metrics under the job label name and returns one
// scrape of /metrics.
func scrape(t *testing.T, name string, j *arrowexec.Job) string {
	t.Helper()
	c := &metrics.Collector{}
	c.SetJob(name, j)
	body := get(t, c)
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// get serves c on a loopback port and returns the body of one GET
// /metrics.
func get(t *testing.T, c *metrics.Collector) io.ReadCloser {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, err := metrics.Serve(ctx, "127.0.0.1:0", c, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return res.Body
}

// TestListenAddr: an address without a host listens on loopback only;
// a named host is kept.
func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		":9464":          "127.0.0.1:9464",
		"0.0.0.0:9464":   "0.0.0.0:9464",
		"10.1.2.3:80":    "10.1.2.3:80",
		"[::1]:9464":     "[::1]:9464",
		"localhost:9464": "localhost:9464",
	} {
		if got := metrics.ListenAddr(in); got != want {
			t.Errorf("ListenAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
