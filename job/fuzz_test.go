package job_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/examples"
	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/job"
)

// FuzzJob parses arbitrary job files and plans the ones that parse against
// a fixed schema: the source becomes one small generated Parquet file of
// internal/gen's events, the sink a file sink in a temporary directory,
// window state memory and late output temporary (so the planner touches no
// network and no path of the input). Any error is fine if it is a
// *job.Error naming the file; a panic is not. Seeds: the shipped examples,
// the cases below, errorCases and testdata/fuzz/FuzzJob.
func FuzzJob(f *testing.F) {
	ents, err := fs.Glob(examples.Jobs, "*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range ents {
		b, err := fs.ReadFile(examples.Jobs, e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "name: [x\n", "source:\n  parquet: {path: in}\nsink:\n  file: {path: out}\n",
		"source:\n  parquet: {path: in}\nsteps:\n  - window: {type: session, gap: 1s, time: event_time, aggs: [\"count_distinct(user_id) AS u\"], allowed_lateness: 1m, late_output: {path: late}}\n  - filter: \"u > 1\"\nsink:\n  file: {path: out, format: jsonl}\n",
		"source:\n  kafka: {topic: t, fields: [{name: a, type: int64}]}\n  watermark: {column: a}\nsteps:\n  - project: {b: a * 2}\n  - aggregate: {group_by: [b], aggs: [\"sum(b)\"]}\nsink:\n  kafka: {topic: o, key: b}\n",
		"source:\n  hybrid: {parquet: {path: p}, kafka: {topic: t}, boundary: {offsets: {t: {0: 5}}}}\nsink:\n  file: {path: o, part_size: 1KiB}\n",
		"a: &a [*a, *a]\n", "source: !!binary AAAA\n",
	} {
		f.Add([]byte(s))
	}
	for _, c := range errorCases {
		f.Add([]byte(c.yaml))
	}
	dir := f.TempDir()
	in := filepath.Join(dir, "in.parquet")
	if err := gen.WriteFile(context.Background(), in, gen.Options{Rows: 500, Seed: 1}, nil); err != nil {
		f.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := job.Parse("fuzz.yaml", data)
		if err != nil {
			checkJobError(t, data, err)
			return
		}
		tmp := t.TempDir()
		spec.Source = job.SourceSpec{Parquet: &job.ParquetSpec{Path: in}, Watermark: spec.Source.Watermark, Line: spec.Source.Line}
		format := ""
		if spec.Sink.File != nil {
			format = spec.Sink.File.Format
		}
		spec.Sink = job.SinkSpec{File: &job.FileSinkSpec{Path: filepath.Join(tmp, "out"), Format: format}, Line: spec.Sink.Line}
		for _, st := range spec.Steps {
			if w := st.Window; w != nil {
				w.Options.Backend = nil
				if w.Late != nil && w.Late.File != nil {
					w.Late.File.Path = filepath.Join(tmp, "late")
				}
			}
		}
		par := 1 + spec.Parallelism%3
		if _, err := spec.Plan(job.Options{Parallelism: par, NoSync: true, Logger: quiet}); err != nil {
			checkJobError(t, data, err)
		}
	})
}

func checkJobError(t *testing.T, data []byte, err error) {
	var je *job.Error
	if !errors.As(err, &je) || !strings.HasPrefix(err.Error(), "fuzz.yaml") {
		t.Fatalf("%q: error %T %v does not name the job file", data, err, err)
	}
}
