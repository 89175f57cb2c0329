package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/bench/internal/benchenv"
	"github.com/riffle-dev/riffle/internal/metrics"
)

// blockRuns is the number of queries run back to back in one block.
const blockRuns = 10

// runScrape runs every query in blocks of blockRuns back to back, runs
// blocks without and runs with a scraper that GETs /metrics every second
// across the block, alternating, and prints a Markdown table of the
// medians of the blocks' per-query wall and CPU time; then the CPU time
// of one scrape of a finished job's metrics (the collector reads them the
// same way while a job runs). With placebo the scraper does not scrape:
// the two columns then differ by noise only.
func runScrape(rows int64, threads, runs int, dir string, placebo bool) error {
	env, stop, err := benchenv.Setup(rows, threads, dir, "")
	if err != nil {
		return err
	}
	defer stop()
	c := &metrics.Collector{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := metrics.Serve(ctx, "127.0.0.1:0", c, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	url := "http://" + addr + "/metrics"
	fmt.Printf("%s\n\n", env.Header(threads, runs))
	fmt.Println("| query | wall, no scraper | wall, 1 s scraper | wall Δ | CPU, no scraper | CPU, 1 s scraper | CPU Δ | scrapes (rate) |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	var last *arrowexec.Job
	for _, q := range queries {
		var wOff, wOn, cOff, cOn []time.Duration
		scrapes, onTime := 0, time.Duration(0)
		for i := 0; i < runs; i++ {
			for _, on := range []bool{i%2 == 1, i%2 == 0} { // alternate which goes first
				// A block of queries back to back, the scraper (if on)
				// running across it at its own pace.
				var stopScraper func() int
				if on {
					stopScraper = scraper(url, time.Second, placebo)
				}
				c0, t0 := benchenv.CPUSelf(), time.Now()
				for k := 0; k < blockRuns; k++ {
					if _, err := timeRiffleWith(env.Input, env.Dir, q, threads, nil, func(j *arrowexec.Job) {
						c.SetJob("bench", j)
						last = j
					}); err != nil {
						return fmt.Errorf("riffle %s: %w", q.name, err)
					}
				}
				wall, cpu := time.Since(t0)/blockRuns, (benchenv.CPUSelf()-c0)/blockRuns
				if on {
					scrapes += stopScraper()
					onTime += wall * blockRuns
					wOn, cOn = append(wOn, wall), append(cOn, cpu)
				} else {
					wOff, cOff = append(wOff, wall), append(cOff, cpu)
				}
			}
		}
		a, b := benchenv.Median(wOff), benchenv.Median(wOn)
		ca, cb := benchenv.Median(cOff), benchenv.Median(cOn)
		fmt.Printf("| %s | %.3f s | %.3f s | %+.1f%% | %.3f s | %.3f s | %+.1f%% | %d (%.2f/s) |\n", q.name, a.Seconds(), b.Seconds(), 100*(b.Seconds()/a.Seconds()-1),
			ca.Seconds(), cb.Seconds(), 100*(cb.Seconds()/ca.Seconds()-1), scrapes, float64(scrapes)/onTime.Seconds())
	}
	// The cost of one scrape, measured over many.
	c.SetJob("bench", last)
	const n = 200
	size := 0
	c0 := benchenv.CPUSelf()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		b, err := get(url)
		if err != nil {
			return err
		}
		size = len(b)
	}
	cpu := (benchenv.CPUSelf() - c0) / n
	fmt.Printf("\none scrape (%d bytes of text, the job of the last run): %.2f ms CPU, %.2f ms wall; at one per second %.3f%% of one core\n",
		size, float64(cpu.Microseconds())/1000, float64(time.Since(t0).Microseconds())/1000/n, 100*cpu.Seconds())
	fmt.Printf("wall, CPU: per query, medians over %d blocks of %d queries each way; CPU is the process's user+system time, the scraper's included; Δ: with the scraper over without.\n", runs, blockRuns)
	return nil
}

// scraper GETs url at once and then every period until stopped (with
// placebo it only counts the ticks); stop returns the number of scrapes.
func scraper(url string, period time.Duration, placebo bool) (stop func() int) {
	done := make(chan struct{})
	count := make(chan int, 1)
	go func() {
		n := 0
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			if placebo {
				n++
			} else if _, err := get(url); err == nil {
				n++
			}
			select {
			case <-done:
				count <- n
				return
			case <-t.C:
			}
		}
	}()
	return func() int { close(done); return <-count }
}

func get(url string) ([]byte, error) {
	res, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}
