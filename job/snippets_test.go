package job_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/riffle-dev/riffle/internal/gen"
)

// docSnippet is a job-file example found in the documentation.
type docSnippet struct {
	where string // file:line
	text  string
}

// jobSnippets returns the YAML job examples of README.md (```yaml blocks)
// and of docs/JOBS.md (its indented code blocks, which come from the doc
// comments of package job: the package doc and the step kinds) that start
// like a job file or a part of one.
func jobSnippets(t *testing.T) []docSnippet {
	t.Helper()
	var out []docSnippet
	starts := []string{"name:", "source:", "sources:", "steps:"}
	isJob := func(text string) bool {
		if strings.HasPrefix(strings.TrimLeft(text, " "), "- ") {
			return true // a list of steps
		}
		for _, s := range starts {
			if strings.HasPrefix(text, s) {
				return true
			}
		}
		return false
	}
	scan := func(path string, fenced bool) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		var cur []string
		in, start, n := false, 0, 0
		flush := func() {
			text := strings.Join(cur, "\n") + "\n"
			if isJob(text) {
				out = append(out, docSnippet{where: fmt.Sprintf("%s:%d", filepath.Base(path), start), text: text})
			}
			cur, in = nil, false
		}
		for sc.Scan() {
			n++
			line := sc.Text()
			switch {
			case fenced && !in && strings.HasPrefix(line, "```yaml"):
				in, start = true, n+1
			case fenced && in && strings.HasPrefix(line, "```"):
				flush()
			case fenced && in:
				cur = append(cur, line)
			case !fenced && strings.HasPrefix(line, "\t"):
				if !in {
					in, start = true, n
				}
				cur = append(cur, strings.TrimPrefix(line, "\t"))
			case !fenced && in:
				flush()
			}
		}
		if in {
			flush()
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	scan("../README.md", true)
	scan("../docs/JOBS.md", false)
	return out
}

// TestDocumentedExamplesRun: every job example of the README and of the
// job-file reference parses, plans and runs to the end over generated
// events. A part of a job (steps only, a source with elided fields) is
// completed into a job: its sources read the generated file (a Kafka
// source becomes that Parquet file, keeping the watermark), its paths are
// moved into a temporary directory, and a linear job gets price and qty
// columns (from the generated ones) for the examples that use them.
func TestDocumentedExamplesRun(t *testing.T) {
	snippets := jobSnippets(t)
	if len(snippets) < 8 {
		t.Fatalf("found %d job examples in README.md and docs/JOBS.md; the scan is broken", len(snippets))
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "events.parquet")
	if err := gen.WriteFile(context.Background(), data, gen.Options{Rows: 3000, Users: 60, Items: 40, Seed: 7}, nil); err != nil {
		t.Fatal(err)
	}
	for i, sn := range snippets {
		t.Run(sn.where, func(t *testing.T) {
			text := sn.text
			if strings.HasPrefix(strings.TrimLeft(text, " "), "- ") {
				text = "steps:\n" + text
			}
			var doc map[string]any
			if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
				t.Fatalf("%s: not YAML: %v\n%s", sn.where, err, sn.text)
			}
			out := filepath.Join(dir, fmt.Sprintf("ex%d", i))
			completeExample(doc, data, out)
			b, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s as run:\n%s", sn.where, b)
			runJob(t, string(b), 2)
		})
	}
}

// completeExample turns a documented job or part of one into a job over
// data writing under out.
func completeExample(doc map[string]any, data, out string) {
	if doc["name"] == nil {
		doc["name"] = "example"
	}
	parquet := func(old any) map[string]any {
		src := map[string]any{"parquet": map[string]any{"path": data}}
		if m, ok := old.(map[string]any); ok && m["watermark"] != nil {
			src["watermark"] = m["watermark"]
		}
		return src
	}
	// Steps that read inputs no step defines: those are named sources.
	if doc["sources"] == nil {
		steps, _ := doc["steps"].([]any)
		defined := map[string]bool{}
		for _, st := range steps {
			if m, ok := st.(map[string]any); ok && m["name"] != nil {
				defined[fmt.Sprint(m["name"])] = true
			}
		}
		named := map[string]any{}
		for _, st := range steps {
			m, _ := st.(map[string]any)
			ins, _ := m["inputs"].([]any)
			for _, in := range ins {
				if name := fmt.Sprint(in); !defined[name] {
					named[name] = nil
				}
			}
		}
		if len(named) > 0 {
			doc["sources"] = named
			delete(doc, "source")
		}
	}
	if named, ok := doc["sources"].(map[string]any); ok {
		for name, s := range named {
			named[name] = parquet(s)
		}
	} else {
		doc["source"] = parquet(doc["source"])
		steps, _ := doc["steps"].([]any)
		extra := map[string]any{"project": map[string]any{
			"user_id": "user_id", "item_id": "item_id", "event_type": "event_type", "weight": "weight",
			"event_time": "event_time", "price": "weight * 2.5", "qty": "item_id % 7",
		}}
		doc["steps"] = append([]any{extra}, steps...)
	}
	n := 0
	next := func() string { n++; return filepath.Join(out, fmt.Sprint(n)) }
	fileSink := func(s any) map[string]any {
		m, _ := s.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		f, _ := m["file"].(map[string]any)
		if f == nil {
			f = map[string]any{}
		}
		f["path"] = next()
		delete(m, "kafka")
		m["file"] = f
		return m
	}
	if sinks, ok := doc["sinks"].([]any); ok {
		for i, s := range sinks {
			sinks[i] = fileSink(s)
		}
	} else {
		doc["sink"] = fileSink(doc["sink"])
	}
	steps, _ := doc["steps"].([]any)
	for _, st := range steps {
		m, _ := st.(map[string]any)
		if w, ok := m["window"].(map[string]any); ok && w["late_output"] != nil {
			w["late_output"] = map[string]any{"path": next(), "format": "jsonl"}
		}
		if r, ok := m["recommend"].(map[string]any); ok {
			if e, ok := r["export"].(map[string]any); ok {
				e["path"] = next()
			}
		}
	}
}
