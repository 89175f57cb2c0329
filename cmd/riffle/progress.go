package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/riffle-dev/riffle/checkpoint"
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

// startProgressLine logs what an unbounded job is doing every
// s.progressEvery (rows in and out with their rates over the interval, the
// watermark, windows fired, parts published, dead letters, and the lag
// behind the topic's end once the source reports it) until the returned
// stop is called. Bounded jobs have the progress bar instead; with
// progressEvery 0 there is no line.
func (s *jobStatus) startProgressLine(log *slog.Logger) (stop func()) {
	if s.progressEvery <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.progressEvery)
		defer t.Stop()
		prev := statusSnapshot{At: s.began}
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			snap, ok := s.snapshot()
			if !ok || s.bounded() {
				continue
			}
			log.Info("progress", progressAttrs(prev, snap)...)
			prev = snap
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// progressAttrs are the attributes of one progress line: s, with rates
// since prev.
func progressAttrs(prev, s statusSnapshot) []any {
	secs := max(s.At.Sub(prev.At).Seconds(), 1e-9)
	attrs := []any{
		"rows_in", s.RowsIn, "rows_in_per_sec", int64(float64(s.RowsIn-prev.RowsIn) / secs),
		"rows_out", s.RowsOut, "rows_out_per_sec", int64(float64(s.RowsOut-prev.RowsOut) / secs),
		"watermark", checkpoint.FormatWatermark(s.Watermark),
		"windows_fired", s.WindowsFired, "parts_published", s.PartsPublished, "dead_letters", s.DeadLetters,
	}
	if s.Skipped > 0 {
		attrs = append(attrs, "skipped", s.Skipped)
	}
	var lag int64
	known := false
	for _, sp := range s.Splits {
		if sp.Lag != nil {
			lag += *sp.Lag
			known = true
		}
	}
	if known {
		attrs = append(attrs, "lag", lag)
	}
	return attrs
}
