package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"testing"
)

// sealManifest turns body into a MANIFEST whose checksum member is right,
// so the fuzzer gets past the checksum into the JSON and the checks.
func sealManifest(body []byte) []byte {
	out := append(bytes.Clone(body), checksumMember...)
	return fmt.Appendf(out, "%08x\"\n}\n", crc32.Checksum(body, castagnoli))
}

// manifestBody returns the part of an encoded manifest the checksum covers.
func manifestBody(data []byte) []byte {
	return data[:bytes.LastIndex(data, []byte(checksumMember))]
}

// FuzzManifest: decoding any MANIFEST (as read from disk) returns a
// corruption or incompatibility error or a manifest whose use by Load,
// RestoreState, Summary and WriteSummary cannot panic: in particular every
// key group blob it accepts lies within its file. With seal set, the
// input is the body and the harness appends a valid checksum.
func FuzzManifest(f *testing.F) {
	good, err := encodeManifest(testManifest())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, false)
	f.Add(good[:len(good)/2], false)
	f.Add(manifestBody(good), true)
	kg := testManifest()
	kg.Nodes[0].Subtasks[0].Files = append(kg.Nodes[0].Subtasks[0].Files, FileInfo{Name: KeyGroupFileName, Size: 10})
	kg.Nodes[0].Subtasks[0].KeyGroups = []KeyGroupBlob{{KeyGroup: 3, Offset: 2, Size: 8}, {KeyGroup: 4, Offset: 0, Size: 0}}
	kgData, _ := encodeManifest(kg)
	f.Add(manifestBody(kgData), true)
	// Regression: an offset near MaxInt64 made offset+size overflow past
	// the bounds check, and Load then sliced out of range.
	kg.Nodes[0].Subtasks[0].KeyGroups = []KeyGroupBlob{{KeyGroup: 1, Offset: 1<<63 - 1, Size: 1}}
	kgData, _ = encodeManifest(kg)
	f.Add(manifestBody(kgData), true)
	f.Add([]byte(`{"format_version": 1, "max_parallelism": 4, "nodes": [{"name": "a", "dir": "a", "parallelism": 1, "subtasks": [{"subtask": 0, "dir": "a/0"}]}]`), true)
	f.Add([]byte(`{"nodes": null, "sources": [{"position": 1e999}]`), true)
	f.Fuzz(func(t *testing.T, data []byte, seal bool) {
		if seal {
			data = sealManifest(data)
		}
		m, err := decodeManifest("MANIFEST", data)
		if err != nil {
			if !IsCorruption(err) && !errors.Is(err, ErrIncompatible) {
				t.Fatalf("error %v is neither corruption nor incompatibility", err)
			}
			return
		}
		// What Load does with the files it lists, given files of the
		// listed sizes (bounded here to keep the fuzzer fast).
		c := &Checkpoint{Path: "chk-1", Manifest: *m, subs: map[subKey]*loadedSubtask{}}
		for _, nm := range m.Nodes {
			for _, sm := range nm.Subtasks {
				ls := &loadedSubtask{}
				for _, fi := range sm.Files {
					if fi.Name == KeyGroupFileName && len(sm.KeyGroups) > 0 && fi.Size <= 1<<16 {
						ls.keyGroups = splitKeyGroups(make([]byte, fi.Size), sm.KeyGroups)
					}
				}
				c.subs[subKey{nm.Name, sm.Subtask}] = ls
			}
			for p := 1; p <= 3; p++ {
				for s := 0; s < p; s++ {
					c.RestoreState(nm.Name, s, p)
				}
			}
		}
		m.Bytes()
		m.FileCount()
		if err := WriteSummary(io.Discard, c.Summary()); err != nil {
			t.Fatal(err)
		}
		// A manifest that decodes encodes again and decodes the same.
		again, err := encodeManifest(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := decodeManifest("MANIFEST", again); err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v", err)
		}
	})
}
