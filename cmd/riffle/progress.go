package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progressBar redraws one status line on a terminal: done/total rows (and
// bytes when known), a bar, the rate and the time left.
type progressBar struct {
	w      io.Writer
	label  string
	total  int64 // rows
	totalB int64 // bytes, 0 when unknown
	poll   func() (rows, bytes int64)
	start  time.Time
	stop   chan struct{}
	done   sync.WaitGroup
}

func startProgress(w io.Writer, label string, totalRows, totalBytes int64, poll func() (rows, bytes int64)) *progressBar {
	p := &progressBar{w: w, label: label, total: totalRows, totalB: totalBytes, poll: poll, start: time.Now(), stop: make(chan struct{})}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw(false)
			case <-p.stop:
				p.draw(true)
				return
			}
		}
	}()
	return p
}

// Stop draws the final state and ends the line.
func (p *progressBar) Stop() {
	if p == nil {
		return
	}
	close(p.stop)
	p.done.Wait()
}

func (p *progressBar) draw(final bool) {
	rows, bytes := p.poll()
	el := time.Since(p.start)
	frac := 0.0
	switch {
	case p.totalB > 0:
		frac = float64(bytes) / float64(p.totalB)
	case p.total > 0:
		frac = float64(rows) / float64(p.total)
	}
	frac = min(max(frac, 0), 1)
	const width = 24
	filled := int(frac * width)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	rate := float64(rows) / max(el.Seconds(), 1e-9)
	eta := "--"
	if frac > 0 && !final {
		left := time.Duration(float64(el) * (1 - frac) / frac)
		eta = left.Round(time.Second).String()
	}
	line := fmt.Sprintf("\r%s %s %5.1f%% %s/%s rows", p.label, bar, frac*100, human(rows), human(p.total))
	if p.totalB > 0 {
		line += fmt.Sprintf(" %s/%s", humanBytes(bytes), humanBytes(p.totalB))
	}
	line += fmt.Sprintf(" %s rows/s ETA %s ", human(int64(rate)), eta)
	if final {
		line += "\n"
	}
	fmt.Fprint(p.w, line)
}

func human(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
