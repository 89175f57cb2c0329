package nexmark

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
)

// BenchmarkBatch measures generation alone, one goroutine, one table per
// run, in batches of 8192 event numbers (the default; bids also at other
// sizes), read from a source's Reader as a job does (so buffers are
// recycled from batch to batch; every batch is released before the next):
// rows/s counts the table's rows, events/s the event numbers covered (all
// three tables), rows/cpu-s the rows per CPU-second of the whole process
// (garbage collection included), the figure that holds best on a loaded
// machine. Memory comes from memory.DefaultAllocator, as in a job.
//
//	go test -run '^$' -bench BenchmarkBatch -cpu 1 -count 3 -benchmem ./sources/nexmark
func BenchmarkBatch(b *testing.B) {
	type run struct {
		t  Table
		be int
	}
	runs := []run{{Person, 8192}, {Auction, 8192}, {Bid, 8192}, {Bid, 1024}, {Bid, 65536}}
	for _, r := range runs {
		b.Run(fmt.Sprintf("%s/batch=%d", r.t, r.be), func(b *testing.B) {
			src, err := NewSource(Options{Table: r.t, BatchEvents: r.be})
			if err != nil {
				b.Fatal(err)
			}
			rd, err := src.Open(context.Background(), &arrowexec.Task{Parallelism: 1, Mem: memory.DefaultAllocator})
			if err != nil {
				b.Fatal(err)
			}
			defer rd.Close()
			b.ReportAllocs()
			var rows int64
			start, cpu0 := time.Now(), cpuSelf()
			for b.Loop() {
				rec, err := rd.Next(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				rows += rec.NumRows()
				rec.Release()
			}
			el, cpu := time.Since(start).Seconds(), (cpuSelf() - cpu0).Seconds()
			b.ReportMetric(float64(rows)/el, "rows/s")
			b.ReportMetric(float64(b.N)*float64(r.be)/el, "events/s")
			b.ReportMetric(float64(rows)/cpu, "rows/cpu-s")
		})
	}
}
