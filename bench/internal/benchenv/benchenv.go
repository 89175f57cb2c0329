// Package benchenv is what riffle's side-by-side benchmark programs share:
// the generated input file (cached by row count and seed), the project's
// Python environment for DuckDB, thread and profile set-up, and timing
// helpers.
package benchenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// Env is a prepared benchmark environment.
type Env struct {
	Dir    string // cache directory: input and scratch outputs
	Input  string // generated Parquet file
	Rows   int64
	Size   int64  // bytes of Input
	Python string // the venv's interpreter with DuckDB, "" when missing
}

// Setup resolves dir (default .cache/bench in the repository), generates
// rows of seeded events into it unless present, sets GOMAXPROCS to threads
// (> 0) and starts a CPU profile when cpuprofile is set. stop ends the
// profile.
func Setup(rows int64, threads int, dir, cpuprofile string) (env *Env, stop func(), err error) {
	root, err := oracle.RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	if dir == "" {
		dir = filepath.Join(root, ".cache", "bench")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	env = &Env{Dir: dir, Rows: rows, Input: filepath.Join(dir, fmt.Sprintf("events-%d-seed1.parquet", rows))}
	if _, err := os.Stat(env.Input); err != nil {
		fmt.Fprintf(os.Stderr, "generating %d rows into %s\n", rows, env.Input)
		if err := gen.WriteFile(context.Background(), env.Input, gen.Options{Rows: rows, Seed: 1}, nil); err != nil {
			return nil, nil, err
		}
	}
	st, err := os.Stat(env.Input)
	if err != nil {
		return nil, nil, err
	}
	env.Size = st.Size()
	if py := filepath.Join(root, ".venv", "bin", "python"); fileExists(py) {
		env.Python = py
	}
	if threads > 0 {
		runtime.GOMAXPROCS(threads)
	}
	stop = func() {}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return nil, nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, nil, err
		}
		stop = func() { pprof.StopCPUProfile(); f.Close() }
	}
	return env, stop, nil
}

// NeedPython fails when DuckDB's environment is missing.
func (e *Env) NeedPython() error {
	if e.Python == "" {
		return fmt.Errorf("no DuckDB: run scripts/python-env.sh first")
	}
	return nil
}

// Header describes the input and machine in one line.
func (e *Env) Header(threads, runs int) string {
	return fmt.Sprintf("input: %s (%d rows, %.1f MiB), threads: %d, runs: %d, %s/%s, %d CPUs", filepath.Base(e.Input), e.Rows,
		float64(e.Size)/(1<<20), threads, runs, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// CPUSelf returns this process's user+system CPU time so far.
func CPUSelf() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Median returns the median of ds.
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
