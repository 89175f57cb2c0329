// Command membw measures this machine's memory bandwidth, the ceiling of
// any scan-bound query (issue 15 asks how far Nexmark q0 is from it):
// sequential read (sum of a buffer far larger than the caches), write
// (fill) and copy, on 1 and on GOMAXPROCS goroutines, best of --runs.
//
//	go run ./bench/membw --mib 1024 --runs 5
//
// Copy counts the bytes read plus the bytes written, as STREAM does.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

func main() {
	mib := flag.Int("mib", 1024, "buffer size per operand in MiB (far above the last-level cache)")
	runs := flag.Int("runs", 5, "repetitions; the best is reported")
	flag.Parse()
	if *mib <= 0 || *runs <= 0 {
		fmt.Fprintln(os.Stderr, "membw: --mib and --runs must be > 0")
		os.Exit(2)
	}
	n := *mib << 20 / 8
	src, dst := make([]uint64, n), make([]uint64, n)
	for i := range src { // touch every page before timing
		src[i], dst[i] = uint64(i), 0
	}
	fmt.Printf("buffers %d MiB, GOMAXPROCS %d\n\n", *mib, runtime.GOMAXPROCS(0))
	fmt.Println("| operation | goroutines | GB/s (best of runs) |")
	fmt.Println("|---|---|---|")
	for _, g := range []int{1, runtime.GOMAXPROCS(0)} {
		for _, op := range []struct {
			name  string
			bytes int
			fn    func(a, b []uint64) uint64
		}{
			{"read", 8 * n, func(a, _ []uint64) uint64 { return sum(a) }},
			{"write", 8 * n, func(_, b []uint64) uint64 { fill(b); return 0 }},
			{"copy", 16 * n, func(a, b []uint64) uint64 { copy(b, a); return 0 }},
		} {
			best := time.Duration(1<<63 - 1)
			for r := 0; r < *runs; r++ {
				d := parallel(g, src, dst, op.fn)
				best = min(best, d)
			}
			fmt.Printf("| %s | %d | %.1f |\n", op.name, g, float64(op.bytes)/best.Seconds()/1e9)
		}
	}
}

var sink uint64

// parallel runs fn over g equal slices of a and b and returns the wall time.
func parallel(g int, a, b []uint64, fn func(a, b []uint64) uint64) time.Duration {
	var wg sync.WaitGroup
	var mu sync.Mutex
	chunk := len(a) / g
	start := time.Now()
	for i := 0; i < g; i++ {
		lo, hi := i*chunk, (i+1)*chunk
		if i == g-1 {
			hi = len(a)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := fn(a[lo:hi], b[lo:hi])
			mu.Lock()
			sink += s
			mu.Unlock()
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// sum reads every word, four independent accumulators deep.
func sum(a []uint64) uint64 {
	var s0, s1, s2, s3 uint64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i]
		s1 += a[i+1]
		s2 += a[i+2]
		s3 += a[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i]
	}
	return s0 + s1 + s2 + s3
}

func fill(b []uint64) {
	for i := range b {
		b[i] = uint64(i)
	}
}
