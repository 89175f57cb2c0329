package text

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/coerce"
	"github.com/riffle-dev/riffle/internal/oracle"
)

const benchRows = 1_000_000

// benchFile writes (once, cached in the temporary directory) a 1M-row
// ratings-like CSV: userId, movieId, rating, timestamp and a tag, quoted
// when it holds a comma (1 row in 8) and empty (NULL) in 1 row in 4.
func benchFile(b *testing.B) (string, int64) {
	b.Helper()
	p := filepath.Join(os.TempDir(), fmt.Sprintf("riffle-text-bench-%d.csv", benchRows))
	if st, err := os.Stat(p); err == nil {
		return p, st.Size()
	}
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	rng := rand.New(rand.NewPCG(1, 1))
	tags := []string{"", "", "funny", "dark comedy", `"sci-fi, space"`, "classic", "based on a book", "Oscar (Best Picture)"}
	w.WriteString("userId,movieId,rating,timestamp,tag\n")
	for i := 0; i < benchRows; i++ {
		fmt.Fprintf(w, "%d,%d,%s,%d,%s\n", rng.IntN(200000), rng.IntN(60000), strconv.FormatFloat(float64(1+rng.IntN(10))/2, 'f', 1, 64),
			int64(1e9)+rng.Int64N(6e8), tags[rng.IntN(len(tags))])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if err := os.Rename(tmp, p); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(p)
	return p, st.Size()
}

var benchCols = []Column{{Name: "userId", Type: coerce.Int64}, {Name: "movieId", Type: coerce.Int64},
	{Name: "rating", Type: coerce.Float64}, {Name: "timestamp", Type: coerce.Int64}, {Name: "tag", Type: coerce.String}}

// BenchmarkCSV reads the whole file into Arrow batches (New, which
// pre-scans the file for splits, included) with p subtasks on p
// goroutines.
//
//	go test -run '^$' -bench 'CSV' -benchtime 5x ./sources/text
func BenchmarkCSV(b *testing.B) {
	path, size := benchFile(b)
	for _, p := range []int{1, 2} {
		b.Run(fmt.Sprintf("riffle/p=%d", p), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(size)
			for range b.N {
				src, err := New(Options{Paths: []string{path}, Header: true, Columns: benchCols, SplitSize: 4 << 20})
				if err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				errs := make([]error, p)
				rows := make([]int64, p)
				for i := 0; i < p; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r, err := src.Open(context.Background(), &arrowexec.Task{Subtask: i, Parallelism: p, Mem: memory.DefaultAllocator})
						if err != nil {
							errs[i] = err
							return
						}
						defer r.Close()
						for {
							rec, err := r.Next(context.Background())
							if errors.Is(err, io.EOF) {
								return
							}
							if err != nil {
								errs[i] = err
								return
							}
							rows[i] += rec.NumRows()
							rec.Release()
						}
					}()
				}
				wg.Wait()
				var n int64
				for i := range errs {
					if errs[i] != nil {
						b.Fatal(errs[i])
					}
					n += rows[i]
				}
				if n != benchRows {
					b.Fatalf("%d rows", n)
				}
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
	// New alone: the pre-scan that cuts the file into splits.
	b.Run("riffle/prescan", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		for range b.N {
			if _, err := New(Options{Paths: []string{path}, Header: true, Columns: benchCols, SplitSize: 4 << 20}); err != nil {
				b.Fatal(err)
			}
		}
	})
	// DuckDB reads the same file with the same types and sums every column
	// (so every value is parsed), timed inside its process.
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("duckdb/threads=%d", threads), func(b *testing.B) {
			py := oracle.Python(b)
			script := fmt.Sprintf(`
import duckdb, time, sys
con = duckdb.connect()
con.execute("SET threads = %d")
q = """SELECT count(*), sum(userId), sum(movieId), sum(rating), sum(timestamp), sum(length(tag)) FROM read_csv('%s', header = true, auto_detect = false,
  columns = {'userId': 'BIGINT', 'movieId': 'BIGINT', 'rating': 'DOUBLE', 'timestamp': 'BIGINT', 'tag': 'VARCHAR'})"""
con.execute(q).fetchall()  # warm the page cache and the parser
n = %d
t = time.perf_counter()
for _ in range(n):
    con.execute(q).fetchall()
print((time.perf_counter() - t) / n)
`, threads, path, b.N)
			out, err := exec.Command(py, "-c", script).CombinedOutput()
			if err != nil {
				b.Fatalf("%v: %s", err, out)
			}
			sec, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			if err != nil {
				b.Fatalf("%v: %s", err, out)
			}
			b.ReportMetric(sec*1e3, "duckdb-ms/op")
			b.ReportMetric(float64(benchRows)/sec, "rows/s")
			b.ReportMetric(float64(size)/sec/1e6, "MB/s")
		})
	}
}
