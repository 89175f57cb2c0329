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

// runScrape times every query runs times without and with a scraper that
// GETs /metrics every second, alternating, and prints a Markdown table of
// the medians; then the CPU time of one scrape of a finished job's
// metrics (the collector reads them the same way while a job runs).
func runScrape(rows int64, threads, runs int, dir string) error {
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
	fmt.Println("| query | wall, no scraper | wall, 1 s scraper | wall Δ | CPU, no scraper | CPU, 1 s scraper | CPU Δ | scrapes |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	var last *arrowexec.Job
	for _, q := range queries {
		var wOff, wOn, cOff, cOn []time.Duration
		scrapes := 0
		for i := 0; i < runs; i++ {
			for _, on := range []bool{i%2 == 1, i%2 == 0} { // alternate which goes first
				var (
					stopScraper func() int
					c0          = benchenv.CPUSelf()
				)
				d, err := timeRiffleWith(env.Input, env.Dir, q, threads, func(j *arrowexec.Job) {
					c.SetJob("bench", j)
					last = j
					if on {
						stopScraper = scraper(url, time.Second)
					}
				})
				n := 0
				if stopScraper != nil {
					n = stopScraper()
				}
				if err != nil {
					return fmt.Errorf("riffle %s: %w", q.name, err)
				}
				cpu := benchenv.CPUSelf() - c0
				if on {
					wOn, cOn, scrapes = append(wOn, d), append(cOn, cpu), scrapes+n
				} else {
					wOff, cOff = append(wOff, d), append(cOff, cpu)
				}
			}
		}
		a, b := benchenv.Median(wOff), benchenv.Median(wOn)
		ca, cb := benchenv.Median(cOff), benchenv.Median(cOn)
		fmt.Printf("| %s | %.2f s | %.2f s | %+.1f%% | %.2f s | %.2f s | %+.1f%% | %d |\n", q.name, a.Seconds(), b.Seconds(), 100*(b.Seconds()/a.Seconds()-1),
			ca.Seconds(), cb.Seconds(), 100*(cb.Seconds()/ca.Seconds()-1), scrapes)
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
	fmt.Println("wall: elapsed time of the query; CPU: user+system time of the process during it, the scraper's included; Δ: with the scraper over without (medians).")
	return nil
}

// scraper GETs url at once and then every period until stopped; stop
// returns the number of scrapes.
func scraper(url string, period time.Duration) (stop func() int) {
	done := make(chan struct{})
	count := make(chan int, 1)
	go func() {
		n := 0
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			if _, err := get(url); err == nil {
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
