package sinks_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/internal/arrowtext/texttest"
	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/sinks"
)

// TestJSONLAllTypesOracle writes every Arrow type riffle writes (nulls,
// NaN and infinities, extremes, timestamps in every unit with and without
// a zone, dates, decimals, a dictionary, nested lists, a struct) as JSON
// Lines and reads the file back with pyarrow and with DuckDB: every cell
// must read as the value texttest.Expected computes from the Arrow values
// (NaN and infinities as null, riffle's policy; timestamps to the
// microsecond where the reader holds microseconds).
func TestJSONLAllTypesOracle(t *testing.T) {
	py := oracle.Python(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := texttest.AllTypes(mem)
	defer rec.Release()
	dir := t.TempDir()
	spec, err := sinks.NewFile(sinks.FileOptions{Dir: dir, Format: sinks.JSONL, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := runSubtask(t, spec, task(mem, texttest.Schema(), 0, 1), []arrow.RecordBatch{rec}, true); err != nil {
		t.Fatal(err)
	}
	want, err := texttest.ExpectedJSON()
	if err != nil {
		t.Fatal(err)
	}
	expected := filepath.Join(t.TempDir(), "expected.json")
	if err := os.WriteFile(expected, want, 0o644); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, "part-00000-00000.jsonl")
	out, err := exec.Command(py, filepath.Join("testdata", "jsonl_oracle.py"), part, expected).CombinedOutput()
	if err != nil {
		data, _ := os.ReadFile(part)
		t.Fatalf("%v\n%s\nfile:\n%s", err, out, data)
	}
}
