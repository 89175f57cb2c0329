package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/riffle-dev/riffle/arrowexec"
)

// fuzzKG is the key group the key group fuzz target restores.
const fuzzKG = 3

var fuzzNow = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// fuzzStore opens a memory store of key groups [0, 8) with a value, a map
// and a list state (value and list with a TTL, so their expiry headers and
// list frames are decoded on restore), and returns the handles.
func fuzzStore(t testing.TB) (Store, *Value[int64], *Map[string, float64], *List[int64]) {
	s, err := NewMemoryBackend(Options{Clock: func() time.Time { return fuzzNow }}).Open(context.Background(),
		StoreOptions{Name: "fuzz/0", MaxParallelism: 8, KeyGroupLo: 0, KeyGroupHi: 8})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValue(s, ValueDescriptor[int64]{Name: "v", Codec: Int64, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMap(s, MapDescriptor[string, float64]{Name: "m", KeyCodec: String, ValueCodec: Float64})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewList(s, ListDescriptor[int64]{Name: "l", Codec: Int64, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s, v, m, l
}

// sealKeyGroup frames records as a key group file: header, records,
// count, CRC-32C, magic.
func sealKeyGroup(kg int, recs []byte, count uint64) []byte {
	b := append([]byte(fileMagic), byte(kg>>8), byte(kg))
	b = append(b, recs...)
	b = binary.LittleEndian.AppendUint64(b, count)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return append(b, fileMagic...)
}

// structuredKeyGroup builds a well-framed key group file from fuzz bytes,
// so the fuzzer reaches the entry decoders: each record is a selector
// byte (which state, or a foreign id), a key length byte, the key's rest
// after the key group and state id, a value length byte and the value.
func structuredKeyGroup(data []byte) []byte {
	ids := []uint32{stateID("v"), stateID("m"), stateID("l"), 0xdeadbeef}
	var recs []byte
	var n uint64
	take := func(k int) []byte {
		k = min(k, len(data))
		b := data[:k]
		data = data[k:]
		return b
	}
	for len(data) >= 3 {
		sel := take(1)[0]
		krest := take(int(take(1)[0]))
		if len(data) == 0 {
			break
		}
		val := take(int(take(1)[0]))
		key := appendPrefix(nil, fuzzKG, ids[int(sel)%len(ids)])
		if sel >= 0xf0 { // a record of another key group
			key = appendPrefix(nil, fuzzKG+1, ids[int(sel)%len(ids)])
		}
		key = append(key, krest...)
		recs = binary.AppendUvarint(recs, uint64(len(key)))
		recs = append(recs, key...)
		recs = binary.AppendUvarint(recs, uint64(len(val)))
		recs = append(recs, val...)
		n++
	}
	return sealKeyGroup(fuzzKG, recs, n)
}

// FuzzKeyGroupFile: a key group file or blob (as read from a checkpoint)
// is restored or refused with an error, never a panic, and what it
// restores reads back (values, map entries, list frames, key layout) or
// fails with an error. mode 0 takes the bytes as they are, 1 fixes their
// footer checksum (to reach the record framing), 2 builds well-framed
// records from them (to reach the entry decoders).
func FuzzKeyGroupFile(f *testing.F) {
	// A real blob of the three states.
	s, v, m, l := fuzzStore(f)
	var hash uint64
	for arrowexec.KeyGroupOf(hash, 8) != fuzzKG {
		hash++
	}
	for i, key := range []string{"a", "b\x00c", ""} {
		if err := v.Put(hash, []byte(key), nil, int64(i)); err != nil {
			f.Fatal(err)
		}
		if err := m.Put(hash, []byte(key), AppendWindow(nil, 0, 10), "x"+key, float64(i)/3); err != nil {
			f.Fatal(err)
		}
		if err := l.Append(hash, []byte(key), nil, int64(i)); err != nil {
			f.Fatal(err)
		}
		if err := l.Append(hash, []byte(key), nil, -int64(i)); err != nil {
			f.Fatal(err)
		}
	}
	kgs, err := SnapshotKeyGroups(context.Background(), s)
	if err != nil {
		f.Fatal(err)
	}
	blob := kgs[fuzzKG]
	if len(blob) == 0 {
		f.Fatal("no blob for the fuzzed key group")
	}
	f.Add(blob, uint8(0))
	flipped := bytes.Clone(blob)
	flipped[headerLen+3] ^= 0x10 // a record's bytes, re-sealed by mode 1
	f.Add(flipped, uint8(1))
	f.Add(blob[:len(blob)/2], uint8(0))
	f.Add([]byte{0, 1, 'k', 8, 1, 2, 3, 4, 5, 6, 7, 8, 2, 3, 'k', 0, 1, 1, 5, 0, 0, 0, 0, 0, 0, 0}, uint8(2))
	// Regression: records out of key order (and a duplicate key) restored
	// into the memory backend but failed Pebble's bulk load with an error
	// that was not a corruption error.
	f.Add([]byte{3, 2, 'z', 'z', 1, 1, 3, 2, 'a', 'a', 1, 2, 3, 2, 'a', 'a', 1, 3}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		switch mode % 3 {
		case 1:
			// Fix the footer's checksum over whatever the body is.
			if len(data) >= headerLen+footerLen {
				body := data[:len(data)-footerLen+8]
				data = binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
				data = append(data, fileMagic...)
			}
		case 2:
			data = structuredKeyGroup(data)
		}
		var prev []byte
		if _, err := decodeKeyGroup("kg", data, fuzzKG, func(k, v []byte) error {
			if prev != nil && bytes.Compare(prev, k) >= 0 {
				t.Fatalf("decode accepted key %x after %x", k, prev)
			}
			prev = k
			return nil
		}); err != nil && !IsCorruption(err) {
			t.Fatalf("decode: %v is not a corruption error", err)
		}
		s, v, m, l := fuzzStore(t)
		defer s.Close()
		if err := RestoreKeyGroups(context.Background(), s, map[int][]byte{fuzzKG: data}); err != nil {
			if !IsCorruption(err) && !errors.Is(err, ErrCodec) {
				t.Fatalf("restore: %v is neither a corruption nor a codec error", err)
			}
			return
		}
		// Read everything back through the typed handles.
		_ = v.Range(func(Entry, int64) bool { return true })
		_ = m.Range(func(Entry, string, float64) bool { return true })
		_ = l.Range(func(Entry, []int64) bool { return true })
		if _, err := SnapshotKeyGroups(context.Background(), s); err != nil && !errors.Is(err, ErrCodec) && !IsCorruption(err) {
			t.Fatalf("snapshot of the restored store: %v", err)
		}
	})
}

// FuzzSnapshotManifest: a snapshot MANIFEST (as read from disk) decodes to
// an error or to a manifest Restore can rely on (key groups within range,
// file names that are key group files). With seal set the harness prefixes
// a valid checksum, to reach the JSON and the checks.
func FuzzSnapshotManifest(f *testing.F) {
	seal := func(js []byte) []byte {
		return append(binary.LittleEndian.AppendUint32(nil, crc32.Checksum(js, castagnoli)), js...)
	}
	good, _ := json.Marshal(&Manifest{Version: formatVersion, MaxParallelism: 8, KeyGroupLo: 2, KeyGroupHi: 5,
		States: []StateInfo{{Name: "v", ID: stateID("v"), Kind: KindValue, TTL: time.Hour}},
		Files:  []FileInfo{{Name: KeyGroupFileName(3), KeyGroup: 3, Entries: 2, Bytes: 40, CRC32C: 7}}})
	f.Add(seal(good), false)
	f.Add(good, true)
	f.Add(seal(good)[:10], false)
	// Regressions: a file naming a path outside the snapshot directory,
	// and key groups outside the snapshot's range.
	f.Add([]byte(`{"version":1,"max_parallelism":8,"key_group_lo":0,"key_group_hi":8,"files":[{"name":"../../x","key_group":1}]}`), true)
	f.Add([]byte(`{"version":1,"max_parallelism":8,"key_group_lo":6,"key_group_hi":2}`), true)
	f.Fuzz(func(t *testing.T, data []byte, sealed bool) {
		if sealed {
			data = seal(data)
		}
		m, err := decodeManifest("MANIFEST", data)
		if err != nil {
			if !IsCorruption(err) && !errors.Is(err, ErrIncompatibleSnapshot) {
				t.Fatalf("%v is neither a corruption nor an incompatibility error", err)
			}
			return
		}
		for _, fi := range m.Files {
			if fi.Name != KeyGroupFileName(fi.KeyGroup) || fi.KeyGroup < m.KeyGroupLo || fi.KeyGroup >= m.KeyGroupHi {
				t.Fatalf("accepted file %+v of a snapshot of [%d, %d)", fi, m.KeyGroupLo, m.KeyGroupHi)
			}
		}
		m.Entries()
	})
}

// FuzzCodecs: every codec decodes any bytes (a restored value) to a value
// or an error.
func FuzzCodecs(f *testing.F) {
	f.Add([]byte{})
	f.Add(Int64.Append(nil, -5))
	f.Add(Float64.Append(nil, 2.5))
	f.Add(Float32s.Append(nil, []float32{1, 2}))
	type pair struct {
		A int32
		B float64
	}
	fixed := MustFixed[pair]()
	f.Add(fixed.Append(nil, pair{1, 2}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := Int64.Decode(b); err == nil && !bytes.Equal(Int64.Append(nil, v), b) {
			t.Fatalf("int64 %x does not round-trip", b)
		}
		if _, err := Float64.Decode(b); err != nil && len(b) == 8 {
			t.Fatalf("float64 of 8 bytes: %v", err)
		}
		_, _ = String.Decode(b)
		_, _ = Bytes.Decode(b)
		if v, err := Float32s.Decode(b); err == nil && len(v)*4 != len(b) {
			t.Fatalf("[]float32 of %d bytes has %d elements", len(b), len(v))
		}
		if v, err := Float64s.Decode(b); err == nil && len(v)*8 != len(b) {
			t.Fatalf("[]float64 of %d bytes has %d elements", len(b), len(v))
		}
		_, _ = fixed.Decode(b)
		scratch := []byte{}
		_, _, _ = parseEntryKey(scratch, b)
		_, _, _ = decodeEscaped(nil, b)
	})
}

// TestUnorderedKeyGroupFileIsCorrupt: a well-framed key group blob whose
// records are out of key order is refused as corrupt by both backends
// alike (Pebble's bulk load cannot take it; memory used to).
func TestUnorderedKeyGroupFileIsCorrupt(t *testing.T) {
	data := structuredKeyGroup([]byte{3, 2, 'z', 'z', 1, 1, 3, 2, 'a', 'a', 1, 2})
	pb, err := NewPebbleBackend(PebbleOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	mem, _, _, _ := fuzzStore(t)
	defer mem.Close()
	peb, err := pb.Open(context.Background(), StoreOptions{Name: "p/0", MaxParallelism: 8, KeyGroupLo: 0, KeyGroupHi: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer peb.Close()
	for name, s := range map[string]Store{"memory": mem, "pebble": peb} {
		if err := RestoreKeyGroups(context.Background(), s, map[int][]byte{fuzzKG: data}); !IsCorruption(err) {
			t.Errorf("%s: restore of unordered records: %v, want a corruption error", name, err)
		}
	}
}
