package parquet

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// storedSchemaFixture is a schema touching every vector checkStoredSchema
// walks: fields, nested children, field and schema metadata, a union's
// type ids.
func storedSchemaFixture() *arrow.Schema {
	md := arrow.NewMetadata([]string{"k"}, []string{"v"})
	return arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "Europe/Paris"}, Metadata: md},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "s", Type: arrow.StructOf(
			arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Float64},
			arrow.Field{Name: "b", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		)},
		{Name: "u", Type: arrow.SparseUnionOf([]arrow.Field{
			{Name: "i", Type: arrow.PrimitiveTypes.Int32},
			{Name: "f", Type: arrow.PrimitiveTypes.Float32},
		}, []arrow.UnionTypeCode{3, 7})},
	}, &md)
}

func storedKV(msg []byte) metadata.KeyValueMetadata {
	kv := metadata.NewKeyValueMetadata()
	_ = kv.Append("ARROW:schema", base64.StdEncoding.EncodeToString(msg))
	return kv
}

// TestCheckStoredSchemaMutations: every mutation of the stored schema
// message that makes arrow-go's decoder allocate much more than the
// message could describe is refused by the check, and the unmutated
// message passes. Each 4-byte window of the message is set to 2^20-1 (a
// length the decoder survives, so the test can measure what it allocates)
// and to 2^31-1 and 2^32-1 (lengths that would kill the process: the check
// must refuse those wherever 2^20-1 was found to allocate).
func TestCheckStoredSchemaMutations(t *testing.T) {
	msg := flight.SerializeSchema(storedSchemaFixture(), memory.DefaultAllocator)
	if err := checkStoredSchema(storedKV(msg)); err != nil {
		t.Fatalf("valid schema refused: %v", err)
	}
	if _, err := flight.DeserializeSchema(msg, memory.DefaultAllocator); err != nil {
		t.Fatal(err)
	}
	decodeAlloc := func(b []byte) (n uint64) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		func() {
			defer func() { _ = recover() }()
			_, _ = flight.DeserializeSchema(b, memory.DefaultAllocator)
		}()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	const limit = 32 << 20
	refused, dangerous := 0, 0
	for at := 0; at+4 <= len(msg); at++ {
		b := append([]byte(nil), msg...)
		binary.LittleEndian.PutUint32(b[at:], 1<<20-1)
		if checkStoredSchema(storedKV(b)) != nil {
			refused++
			continue
		}
		if n := decodeAlloc(b); n > limit {
			t.Fatalf("length 2^20-1 at byte %d passes the check but makes the decoder allocate %d MiB", at, n>>20)
		}
	}
	// Lengths that would kill the process: every mutation the check lets
	// through is decoded in a child process, which must exit cleanly.
	for _, v := range []uint32{1<<31 - 1, 1<<32 - 1} {
		var passed []string
		for at := 0; at+4 <= len(msg); at++ {
			b := append([]byte(nil), msg...)
			binary.LittleEndian.PutUint32(b[at:], v)
			if checkStoredSchema(storedKV(b)) != nil {
				dangerous++
				continue
			}
			passed = append(passed, base64.StdEncoding.EncodeToString(b))
		}
		list := filepath.Join(t.TempDir(), "schemas")
		if err := os.WriteFile(list, []byte(strings.Join(passed, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestDecodeStoredSchemaChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "RIFFLE_STORED_SCHEMAS="+list)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "decoded ") {
			t.Fatalf("length %d: decoding the %d mutations the check passes failed (%v); the last lines name the one:\n%s", v, len(passed), err, tail(string(out), 2000))
		}
	}
	t.Logf("%d-byte message: %d of %d mutations to 2^20-1 refused, %d to 2^31-1 or 2^32-1", len(msg), refused, len(msg)-3, dangerous)
	if refused == 0 || dangerous == 0 {
		t.Fatalf("no mutation refused: the check checks nothing")
	}
}

// TestDecodeStoredSchemaChild is TestCheckStoredSchemaMutations' child
// process: it decodes the messages listed (base64, one a line) in the file
// $RIFFLE_STORED_SCHEMAS names, printing each one's index first, so a crash
// names the message that caused it.
func TestDecodeStoredSchemaChild(t *testing.T) {
	path := os.Getenv("RIFFLE_STORED_SCHEMAS")
	if path == "" {
		t.Skip("child process of TestCheckStoredSchemaMutations")
	}
	list, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, m := range strings.Split(string(list), "\n") {
		b, err := base64.StdEncoding.DecodeString(m)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("decoding %d\n", i)
		func() {
			defer func() { _ = recover() }()
			_, _ = flight.DeserializeSchema(b, memory.DefaultAllocator)
		}()
		n++
	}
	fmt.Printf("decoded %d\n", n)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestCorruptStoredSchemaFile: a file whose ARROW:schema metadata claims a
// huge field count fails to open with ErrCorrupt naming the file, with
// either decoder, instead of killing the process.
func TestCorruptStoredSchemaFile(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	msg := flight.SerializeSchema(schema, memory.DefaultAllocator)
	// The fields vector is the only vector of this message whose length
	// is 1: set every such length to 2^31-1.
	hit := 0
	for at := 0; at+4 <= len(msg); at++ {
		if binary.LittleEndian.Uint32(msg[at:]) == 1 {
			b := append([]byte(nil), msg...)
			binary.LittleEndian.PutUint32(b[at:], 1<<31-1)
			if checkStoredSchema(storedKV(b)) != nil {
				msg, hit = b, at
				break
			}
		}
	}
	if hit == 0 {
		t.Fatal("found no length to corrupt")
	}
	p := filepath.Join(t.TempDir(), "bad-schema.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(parquet.WithAllocator(mem)), pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem)))
	if err != nil {
		t.Fatal(err)
	}
	bld := array.NewInt64Builder(mem)
	bld.AppendValues([]int64{1, 2, 3}, nil)
	col := bld.NewArray()
	bld.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 3)
	col.Release()
	err = w.Write(rec)
	rec.Release()
	if err == nil {
		err = w.AppendKeyValueMetadata("ARROW:schema", base64.StdEncoding.EncodeToString(msg))
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, dec := range []string{DecoderArrow, DecoderParquetGo} {
		err := readErr([]string{p}, dec, mem)
		if !errors.Is(err, ErrCorrupt) || !strings.HasPrefix(err.Error(), "parquet: file "+p) || !strings.Contains(err.Error(), "ARROW:schema") {
			t.Errorf("%s: got %v, want a corrupt ARROW:schema error naming the file", dec, err)
		}
	}
}
