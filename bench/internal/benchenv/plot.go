package benchenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/chart"
)

// Rate samples a growing counter (rows read so far) every interval from
// StartRate until Stop, and turns the samples into a throughput curve.
type Rate struct {
	poll  func() int64
	start time.Time
	stop  chan struct{}
	done  sync.WaitGroup
	t     []float64 // seconds since start
	n     []int64   // counter at t
}

// StartRate starts sampling poll every interval.
func StartRate(poll func() int64, interval time.Duration) *Rate {
	r := &Rate{poll: poll, start: time.Now(), stop: make(chan struct{})}
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				r.sample()
			case <-r.stop:
				return
			}
		}
	}()
	return r
}

func (r *Rate) sample() {
	r.t = append(r.t, time.Since(r.start).Seconds())
	r.n = append(r.n, r.poll())
}

// Stop ends the sampling with a last sample and returns the curve named
// name: point j is at the end of interval j (seconds since the start) and
// its value is the counter's increase over the interval divided by the
// interval's length and by scale (1e6 for millions per second). Intervals
// are the sampling period, merged with their successors up to a fortieth
// of the whole run at least, so that a counter advancing in large steps
// (a row group at a time) reads as a rate rather than as spikes. The
// curve's integral, Σ y_j·(x_j − x_{j−1})·scale with x_{−1} = 0, is the
// counter's final value less its value at the start (taken as 0).
func (r *Rate) Stop(name string, scale float64) chart.Series {
	close(r.stop)
	r.done.Wait()
	r.sample()
	s := chart.Series{Name: name}
	minWidth := r.t[len(r.t)-1] / 40
	prevT, prevN := 0.0, int64(0)
	for j := range r.t {
		last := j == len(r.t)-1
		if r.t[j] <= prevT || (!last && r.t[j]-prevT < minWidth) {
			continue
		}
		s.X = append(s.X, r.t[j])
		s.Y = append(s.Y, float64(r.n[j]-prevN)/(r.t[j]-prevT)/scale)
		prevT, prevN = r.t[j], r.n[j]
	}
	return s
}

// Output is where a benchmark program prints its Markdown tables: standard
// output and, with --plot DIR, also DIR/NAME.md, so that the charts drawn
// beside it can be checked against the table.
type Output struct {
	io.Writer
	Dir  string // --plot directory, "" for none
	file *os.File
}

// NewOutput returns the program's output; with dir set it creates dir and
// dir/name.md.
func NewOutput(dir, name string) (*Output, error) {
	if dir == "" {
		return &Output{Writer: os.Stdout}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--plot: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, name+".md"))
	if err != nil {
		return nil, fmt.Errorf("--plot: %w", err)
	}
	return &Output{Writer: io.MultiWriter(os.Stdout, f), Dir: dir, file: f}, nil
}

// Close closes the Markdown file and, when *err is nil, sets it to the
// close's error: defer out.Close(&err) in a function with a named error
// result.
func (o *Output) Close(err *error) {
	if o.file == nil {
		return
	}
	if cerr := o.file.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("--plot: %w", cerr)
	}
}

// Plot writes c into the --plot directory as name.png and name.csv (no-op
// without --plot).
func (o *Output) Plot(c interface {
	Write(dir, name string) (string, error)
}, name string) error {
	if o.Dir == "" {
		return nil
	}
	if _, err := c.Write(o.Dir, name); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	return nil
}

// StartSourceRate starts sampling the rows node's subtasks of job j
// received, every 100 ms.
func StartSourceRate(j *arrowexec.Job, node string) *Rate {
	tasks := j.Metrics(node)
	return StartRate(func() int64 {
		var n int64
		for _, m := range tasks {
			n += m.RowsIn.Load()
		}
		return n
	}, 100*time.Millisecond)
}

// Run runs job j; with curve set it samples the rows node's subtasks
// received meanwhile into *curve (StartSourceRate; million rows per second
// over seconds since the start, see Rate.Stop; curve.Name kept).
func Run(j *arrowexec.Job, node string, curve *chart.Series) error {
	if curve == nil {
		return j.Run(context.Background())
	}
	rate := StartSourceRate(j, node)
	err := j.Run(context.Background())
	*curve = rate.Stop(curve.Name, 1e6)
	return err
}
