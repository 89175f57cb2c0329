// Package nexbench runs the Nexmark queries of examples/nexmark on riffle:
// from the generator, or from Parquet files or a Kafka topic holding the
// same events, timed (wall and process CPU time) into a counting sink, or
// into Parquet files that Check compares with DuckDB running the query's
// SQL over the same events written to Parquet. `riffle bench nexmark` is
// its command line; bench/nexmark runs it beside Apache Flink.
package nexbench

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/bench/internal/benchenv"
	queries "github.com/riffle-dev/riffle/examples/nexmark"
	"github.com/riffle-dev/riffle/job"
	"github.com/riffle-dev/riffle/sources/nexmark"
)

// Sources a query can read: the generator in the job, or Parquet files
// written by the generator before the timed run (or a Kafka topic,
// SourceKafka).
const (
	SourceGen     = "gen"
	SourceParquet = "parquet"
)

// Config is one run of one query.
type Config struct {
	Query       string // q0, q1, ...
	Events      int64  // event numbers over all tables (the query reads its table's share)
	Seed        int64
	Parallelism int    // 0: the job file's (2)
	Source      string // gen (default), parquet or kafka
	// Dir holds the Parquet input (source parquet) and is where
	// RunToFiles writes the query's output; required for those.
	Dir string
	// Brokers are the Kafka bootstrap brokers, comma-separated (source
	// kafka).
	Brokers string
	Log     *slog.Logger
}

// Result is what a run measured. Events counts event numbers of all three
// tables, as Flink's side counts them: events/s is Events/Wall.
type Result struct {
	Query  string        `json:"query"`
	Source string        `json:"source"`
	Events int64         `json:"events"`
	Rows   int64         `json:"rows"`
	Wall   time.Duration `json:"-"`
	CPU    time.Duration `json:"-"`
	WallS  float64       `json:"wall_s"`
	CPUS   float64       `json:"cpu_s"`
}

// EventsPerSec and EventsPerCPUSec are the throughput figures.
func (r Result) EventsPerSec() float64    { return float64(r.Events) / r.Wall.Seconds() }
func (r Result) EventsPerCPUSec() float64 { return float64(r.Events) / r.CPU.Seconds() }

// Queries returns the names of the queries riffle has as job files, in
// order.
func Queries() []string {
	names, _ := fs.Glob(queries.Queries, "q*.yaml")
	for i, n := range names {
		names[i] = strings.TrimSuffix(n, ".yaml")
	}
	slices.SortFunc(names, func(a, b string) int { return len(a) - len(b) + 16*strings.Compare(a, b) })
	return names
}

// Load parses the query's job file with the run's events and seed (set
// on every source: each is a nexmark: table of the same event stream).
func Load(query string, events, seed int64) (*job.Spec, error) {
	name := query + ".yaml"
	data, err := queries.Queries.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("nexbench: no query %q (have %s)", query, strings.Join(Queries(), ", "))
	}
	spec, err := job.Parse("examples/nexmark/"+name, data)
	if err != nil {
		return nil, err
	}
	for _, src := range sources(spec) {
		if src.Nexmark == nil {
			return nil, fmt.Errorf("nexbench: examples/nexmark/%s: a source is not nexmark:", name)
		}
		src.Nexmark.Events, src.Nexmark.Seed = events, seed
	}
	return spec, nil
}

// sources are the job's sources: the one of a linear job, or a DAG's.
func sources(spec *job.Spec) []*job.SourceSpec {
	if len(spec.Sources) == 0 {
		return []*job.SourceSpec{&spec.Source}
	}
	out := make([]*job.SourceSpec, len(spec.Sources))
	for i := range spec.Sources {
		out[i] = &spec.Sources[i].SourceSpec
	}
	return out
}

// genOptions are the generator options of a source's events.
func genOptions(src *job.SourceSpec) (nexmark.Options, error) {
	n := src.Nexmark
	t, err := nexmark.ParseTable(n.Table)
	if err != nil {
		return nexmark.Options{}, err
	}
	return nexmark.Options{Table: t, Events: n.Events, Seed: n.Seed, Rate: n.Rate}, nil
}

// WriteInputs writes each table the query reads, of the configured
// events, to DIR/TABLE-EVENTS-SEED.parquet (once: an existing file is
// kept) and returns the paths by table name.
func WriteInputs(ctx context.Context, cfg Config) (map[string]string, error) {
	spec, err := Load(cfg.Query, cfg.Events, cfg.Seed)
	if err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, src := range sources(spec) {
		path, err := writeInput(ctx, cfg, src)
		if err != nil {
			return nil, err
		}
		paths[src.Nexmark.Table] = path
	}
	return paths, nil
}

func writeInput(ctx context.Context, cfg Config, src *job.SourceSpec) (string, error) {
	o, err := genOptions(src)
	if err != nil {
		return "", err
	}
	path := filepath.Join(cfg.Dir, fmt.Sprintf("%s-%d-%d.parquet", o.Table, cfg.Events, cfg.Seed))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return "", err
	}
	return path, nexmark.WriteParquet(ctx, path, o, nil)
}

// plan loads the query and points it at its input; drop removes an input
// made for this run only (a topic).
func plan(ctx context.Context, cfg Config, o job.Options) (_ *job.Plan, drop func(), err error) {
	drop = func() {}
	spec, err := Load(cfg.Query, cfg.Events, cfg.Seed)
	if err != nil {
		return nil, drop, err
	}
	switch cfg.Source {
	case "", SourceGen:
	case SourceParquet:
		for _, src := range sources(spec) {
			path, err := writeInput(ctx, cfg, src)
			if err != nil {
				return nil, drop, err
			}
			// The generator's watermark trails by 4 s: the same bound here.
			*src = job.SourceSpec{Parquet: &job.ParquetSpec{Path: path},
				Watermark: &job.WatermarkSpec{Column: "date_time", MaxOutOfOrderness: nexmark.DefaultWatermarkDelay}}
		}
	case SourceKafka:
		if drop, err = kafkaInput(ctx, cfg, spec); err != nil {
			return nil, func() {}, err
		}
	default:
		return nil, drop, fmt.Errorf("nexbench: source %q: want gen, parquet or kafka", cfg.Source)
	}
	o.Parallelism = cfg.Parallelism
	o.Logger = cfg.Log
	p, err := spec.PlanContext(ctx, o)
	return p, drop, err
}

// Run runs the query into a counting sink and measures it: wall time
// from the job's start to its end, CPU time of this whole process over
// that span (every goroutine, GC included). Input files or topics are
// prepared before the clock starts.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cs := &countSink{}
	p, drop, err := plan(ctx, cfg, job.Options{Sink: cs})
	defer drop()
	if err != nil {
		return Result{}, err
	}
	res, err := run(ctx, cfg, p)
	res.Rows = cs.rows.Load()
	return res, err
}

// RunToFiles runs the query into Parquet files under DIR/out-QUERY and
// returns that directory.
func RunToFiles(ctx context.Context, cfg Config) (string, error) {
	out := filepath.Join(cfg.Dir, "out-"+cfg.Query)
	if err := os.RemoveAll(out); err != nil {
		return "", err
	}
	p, drop, err := plan(ctx, cfg, job.Options{OutputDir: out, NoSync: true})
	defer drop()
	if err != nil {
		return "", err
	}
	if _, err := run(ctx, cfg, p); err != nil {
		return "", err
	}
	if _, err := p.Commit(); err != nil {
		return "", err
	}
	return out, nil
}

func run(ctx context.Context, cfg Config, p *job.Plan) (Result, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	j, err := p.Graph.Compile(arrowexec.RunOptions{Log: log})
	if err != nil {
		return Result{}, err
	}
	cpu0, t0 := benchenv.CPUSelf(), time.Now()
	err = j.Run(ctx)
	wall, cpu := time.Since(t0), benchenv.CPUSelf()-cpu0
	if err != nil {
		if aerr := p.Abort(); aerr != nil {
			log.Warn("removing staged output", "err", aerr)
		}
		return Result{}, fmt.Errorf("nexbench: %s: %w", cfg.Query, err)
	}
	src := cfg.Source
	if src == "" {
		src = SourceGen
	}
	return Result{Query: cfg.Query, Source: src, Events: cfg.Events, Wall: wall, CPU: cpu, WallS: wall.Seconds(), CPUS: cpu.Seconds()}, nil
}

// countSink counts the rows it receives and drops them (Flink's side has
// the same counting discard sink).
type countSink struct{ rows atomic.Int64 }

func (s *countSink) Schema([]*arrow.Schema) (*arrow.Schema, error) { return nil, nil }
func (s *countSink) New(*arrowexec.Task) (arrowexec.Operator, error) {
	return &countOp{s: s}, nil
}

type countOp struct {
	s    *countSink
	rows int64
}

func (o *countOp) Open(context.Context) error { return nil }
func (o *countOp) Process(_ context.Context, _ int, b arrow.RecordBatch, _ arrowexec.Emitter) error {
	o.rows += b.NumRows()
	return nil
}
func (o *countOp) Finish(context.Context, arrowexec.Emitter) error {
	o.s.rows.Add(o.rows)
	o.rows = 0
	return nil
}
func (o *countOp) Close() error { return nil }
