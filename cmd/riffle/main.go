// Command riffle runs riffle jobs: batch backfills over Parquet, data
// generation, and (as they land) continuous Kafka jobs.
//
// Run `riffle help` or `riffle COMMAND --help` for usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1 // runtime failure: the job failed, brokers unreachable, ... (exitCode)
	exitUsage       = 2 // usage or configuration: flags, arguments, job file (exitCode)
	exitInterrupted = 130
)

// errInterrupted is returned by commands stopped by a second signal.
var errInterrupted = errors.New("interrupted")

// usageError marks errors that are the caller's to fix (flags, job file).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

type command struct {
	name  string
	short string
	run   func(ctx context.Context, env *env, args []string) error
	// ownSignals: the command handles SIGINT/SIGTERM itself (graceful
	// stops); otherwise the first signal cancels its context.
	ownSignals bool
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// env is what every command shares: output streams and the logger.
type env struct {
	stdout, stderr io.Writer
	log            *slog.Logger
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return run([]string{c.name, "--help"}, stdout, stderr)
			}
		}
		printUsage(stdout)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "riffle: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return exitUsage
	}
	ctx := context.Background()
	if !c.ownSignals {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	e := &env{stdout: stdout, stderr: stderr, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	err := c.run(ctx, e, args[1:])
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errInterrupted) || (ctx.Err() != nil && errors.Is(err, context.Canceled)):
		fmt.Fprintf(stderr, "riffle %s: interrupted\n", c.name)
		return exitInterrupted
	}
	fmt.Fprintf(stderr, "riffle %s: %v\n", c.name, err)
	return exitCode(err)
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "riffle: columnar stream and batch analytics with a streaming recommender.")
	fmt.Fprintln(w, "\nUsage: riffle COMMAND [flags] [args]")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].short)
	}
	fmt.Fprintln(w, "\nRun 'riffle COMMAND --help' for a command's flags.")
	fmt.Fprintln(w, "Exit codes: 0 success, 1 runtime failure (the job, I/O, unreachable brokers, a locked checkpoint\ndirectory), 2 usage or configuration error (flags, the job file, its paths), 130 interrupted.")
}

// flags is a FlagSet with riffle's common flags: logging, and for the
// commands that use them (addProgress, addMetrics) progress and metrics.
// A command does not list a flag it would ignore.
type flags struct {
	*flag.FlagSet
	logLevel    string
	logFormat   string
	progress    string
	metricsAddr string
}

func newFlags(e *env, name, usage, long string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	f := &flags{FlagSet: fs, progress: "never"}
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: riffle %s %s\n\n%s\n\nFlags:\n", name, usage, strings.TrimSpace(long))
		fs.PrintDefaults()
	}
	return f
}

// addProgress adds --progress (a progress bar on a terminal).
func (f *flags) addProgress() {
	f.StringVar(&f.progress, "progress", "auto", "progress bar on stderr: auto (when a terminal), always, never")
}

// addMetrics adds --metrics-addr (Prometheus metrics of the job).
func (f *flags) addMetrics() {
	f.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address: :9464 listens on 127.0.0.1:9464, 0.0.0.0:9464 on every interface")
}

// isSet says whether name was given on the command line.
func (f *flags) isSet(name string) bool {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// parse parses args, whose flags may come before, between or after the
// positional arguments (`riffle run job.yaml --parallelism 4`; everything
// after a "--" is positional), leaves the positional ones as f.Args(), and
// applies the logging flags to e.
func (f *flags) parse(e *env, args []string) error {
	var pos []string
	for {
		if err := f.parseOnce(e, args); err != nil {
			return err
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if err := f.Parse(append([]string{"--"}, pos...)); err != nil {
		return usageError{err}
	}
	return nil
}

// parseOnce parses args up to the first positional argument.
func (f *flags) parseOnce(e *env, args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch f.logFormat {
	case "text":
		e.log = slog.New(slog.NewTextHandler(e.stderr, opts))
	case "json":
		e.log = slog.New(slog.NewJSONHandler(e.stderr, opts))
	default:
		return usageError{fmt.Errorf("--log-format %q: want text or json", f.logFormat)}
	}
	switch f.progress {
	case "auto", "always", "never":
	default:
		return usageError{fmt.Errorf("--progress %q: want auto, always or never", f.progress)}
	}
	return nil
}

// parseInterspersed parses args (see parse) and returns the positional
// ones.
func (f *flags) parseInterspersed(e *env, args []string) ([]string, error) {
	if err := f.parse(e, args); err != nil {
		return nil, err
	}
	return f.Args(), nil
}

// showProgress says whether to draw a progress bar on e.stderr.
func (f *flags) showProgress(e *env) bool {
	switch f.progress {
	case "always":
		return true
	case "never":
		return false
	}
	file, ok := e.stderr.(*os.File)
	if !ok {
		return false
	}
	st, err := file.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
