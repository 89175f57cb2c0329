package metrics_test

import (
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/arrowexec/exectest"
	"github.com/riffle-dev/riffle/internal/metrics"
)

// BenchmarkGather20x16 gathers the metrics of a compiled job of 20 nodes
// × 16 subtasks (a source, 18 operators, a sink, rebalance edges): what
// one scrape costs the process besides writing the text out.
func BenchmarkGather20x16(b *testing.B) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	src := exectest.NewSource(schema, nil)
	sink := exectest.NewSink()
	defer sink.Release()
	g := arrowexec.NewGraph()
	n := g.AddSource("src", src, 16)
	for i := 0; i < 18; i++ {
		n = g.Add(fmt.Sprintf("op-%d", i), exectest.Identity(), 16, n.Rebalance())
	}
	g.Add("sink", sink, 16, n.Rebalance())
	j, err := g.Compile(arrowexec.RunOptions{})
	if err != nil {
		b.Fatal(err)
	}
	c := &metrics.Collector{}
	c.SetJob("bench", j)
	reg := metrics.Registry(c)
	series := 0
	b.ReportAllocs()
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		series = 0
		for _, mf := range mfs {
			series += len(mf.Metric)
		}
	}
	b.ReportMetric(float64(series), "series")
}
