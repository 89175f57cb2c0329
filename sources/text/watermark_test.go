package text

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/coerce"
)

// TestWatermark: a reader reports no watermark while reading (text files
// bound no event times still to come) and, for a hand-over, the bounded
// out-of-orderness watermark of the rows it read: the largest event time
// minus the bound minus one.
func TestWatermark(t *testing.T) {
	p := filepath.Join(t.TempDir(), "e.csv")
	os.WriteFile(p, []byte("ts,v\n2025-01-01T00:00:10Z,1\n2025-01-01T00:00:30Z,2\n2025-01-01T00:00:20Z,3\n,4\n"), 0o644)
	cols := []Column{{Name: "ts", Type: coerce.Timestamp}, {Name: "v", Type: coerce.Int64}}
	if _, err := New(Options{Paths: []string{p}, Header: true, Columns: cols, Watermark: arrowexec.WatermarkStrategy{Column: "v2"}}); err == nil {
		t.Fatal("watermark on an undeclared column accepted")
	}
	src, err := New(Options{Paths: []string{p}, Header: true, Columns: cols, Watermark: arrowexec.WatermarkStrategy{Column: "ts", MaxOutOfOrderness: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	r, err := src.Open(context.Background(), &arrowexec.Task{Parallelism: 1, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rd := r.(*Reader)
	if wm := rd.SuspendWatermark(); wm != arrowexec.MinWatermark {
		t.Fatalf("suspend watermark before any row: %d", wm)
	}
	for {
		b, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b.Release()
		if wm, idle := rd.CurrentWatermark(); wm != arrowexec.MinWatermark || idle {
			t.Fatalf("watermark %d idle %v while reading", wm, idle)
		}
	}
	want := time.Date(2025, 1, 1, 0, 0, 30, 0, time.UTC).UnixMilli() - 5000 - 1
	if wm := rd.SuspendWatermark(); wm != want {
		t.Fatalf("suspend watermark %d, want %d", wm, want)
	}
}
