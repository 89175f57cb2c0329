package checkpoint

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func testManifest() *Manifest {
	return &Manifest{
		FormatVersion: FormatVersion, JobFingerprint: "fp", CheckpointID: 7,
		Time: time.Date(2026, 11, 23, 23, 0, 0, 0, time.UTC), Watermark: 42, MaxParallelism: 16,
		Nodes: []NodeManifest{{
			Name: "src", Dir: "src", Parallelism: 1, Source: true,
			Subtasks: []SubtaskManifest{{
				Subtask: 0, Dir: "src/0", Operator: OperatorFileName,
				Files: []FileInfo{{Name: OperatorFileName, Size: 12, CRC32C: 99}},
			}},
		}},
		Sources: []SourcePosition{sourcePosition("src", 0, []byte(`{"t": {"0": 12}}`))},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	data, err := encodeManifest(testManifest())
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatalf("manifest is not valid JSON:\n%s", data)
	}
	if !bytes.Contains(data, []byte(`"checksum": "crc32c:`)) {
		t.Fatalf("no checksum member:\n%s", data)
	}
	m, err := decodeManifest("MANIFEST", data)
	if err != nil {
		t.Fatal(err)
	}
	if m.CheckpointID != 7 || string(m.Sources[0].Position) != `{"t":{"0":12}}` || m.Nodes[0].Subtasks[0].Files[0].CRC32C != 99 {
		t.Fatalf("decoded %+v", m)
	}
	// Every single-byte change and every truncation is detected.
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x01
		if _, err := decodeManifest("MANIFEST", bad); err == nil {
			t.Fatalf("byte %d (%q) flipped: not detected", i, data[i])
		}
		if _, err := decodeManifest("MANIFEST", data[:i]); !IsCorruption(err) {
			t.Fatalf("truncated to %d bytes: %v", i, err)
		}
	}
}

func TestManifestChecks(t *testing.T) {
	m := testManifest()
	m.Nodes[0].Subtasks[0].Operator = "nope"
	data, _ := encodeManifest(m)
	if _, err := decodeManifest("MANIFEST", data); !IsCorruption(err) || !strings.Contains(err.Error(), "operator file") {
		t.Fatalf("got %v", err)
	}
	m = testManifest()
	m.FormatVersion = 99
	data, _ = encodeManifest(m)
	if _, err := decodeManifest("MANIFEST", data); err == nil || IsCorruption(err) {
		t.Fatalf("got %v, want an incompatibility error", err)
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"src": "src", "a/b": "a%2Fb", "..": "%2E.", ".": "%2E", "_x": "%5Fx", "a b": "a%20b", "ünï": "%C3%BCn%C3%AF",
	} {
		if got := nodeDirName(in); got != want {
			t.Errorf("nodeDirName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]struct {
		id     uint64
		inProg bool
		ok     bool
	}{
		"chk-7": {7, false, true}, "chk-12.inprogress": {12, true, true}, "chk-": {}, "chk-07": {},
		"chk-x": {}, "chk-7.tmp": {}, "MANIFEST": {},
	} {
		id, ip, ok := parseCheckpointDirName(in)
		if id != want.id || ip != want.inProg || ok != want.ok {
			t.Errorf("parseCheckpointDirName(%q) = %d %v %v, want %+v", in, id, ip, ok, want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	o := Options{}
	o.EnsureDefaults()
	err := o.Validate()
	if err == nil || !strings.Contains(err.Error(), "Dir is required") || !strings.Contains(err.Error(), "JobFingerprint is required") {
		t.Fatalf("got %v", err)
	}
	o = Options{Dir: "d", JobFingerprint: "f"}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil || o.Interval != DefaultInterval || o.Retain != DefaultRetain {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
}
