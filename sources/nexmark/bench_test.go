package nexmark

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BenchmarkBatch measures generation alone, one goroutine, one table per
// run, in batches of 8192 event numbers: rows/s counts the table's rows,
// events/s the event numbers covered (all three tables), rows/cpu-s the
// rows per CPU-second of the whole process (garbage collection included),
// the figure that holds on a loaded machine.
func BenchmarkBatch(b *testing.B) {
	for _, t := range Tables {
		b.Run(t.String(), func(b *testing.B) {
			g, err := New(Options{Table: t})
			if err != nil {
				b.Fatal(err)
			}
			const be = 8192
			b.ReportAllocs()
			var rows int64
			start, cpu0 := time.Now(), cpuSelf()
			for i := 0; b.Loop(); i++ {
				rec, err := g.Batch(memory.DefaultAllocator, t, int64(i)*be, int64(i+1)*be)
				if err != nil {
					b.Fatal(err)
				}
				rows += rec.NumRows()
				rec.Release()
			}
			el, cpu := time.Since(start).Seconds(), (cpuSelf() - cpu0).Seconds()
			b.ReportMetric(float64(rows)/el, "rows/s")
			b.ReportMetric(float64(b.N)*be/el, "events/s")
			b.ReportMetric(float64(rows)/cpu, "rows/cpu-s")
		})
	}
}
