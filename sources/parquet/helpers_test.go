package parquet

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/riffle-dev/riffle/arrowexec"
)

// allTypesSchema has one column of every supported type. id is the row's
// global index, so a test can find the oracle row of any decoded row.
func allTypesSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
		{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "u8", Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: "u16", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
		{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
		{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},    // low cardinality: dictionary pages
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true}, // high cardinality: plain pages
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "ts_ms", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "ts_us", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		{Name: "ts_ns", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "req_s", Type: arrow.BinaryTypes.String},
		{Name: "all_null", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
}

var words = []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "", "ünïcødé"}

// randomRecord builds n rows of sc with ids starting at id0. nullRate is the
// probability of a null in a nullable column.
func randomRecord(rng *rand.Rand, mem memory.Allocator, sc *arrow.Schema, id0 int64, n int, nullRate float64) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := 0; i < n; i++ {
		for c, f := range sc.Fields() {
			fb := b.Field(c)
			if f.Name == "all_null" || (f.Nullable && rng.Float64() < nullRate) {
				fb.AppendNull()
				continue
			}
			switch f.Name {
			case "id":
				fb.(*array.Int64Builder).Append(id0 + int64(i))
				continue
			}
			switch fb := fb.(type) {
			case *array.BooleanBuilder:
				fb.Append(rng.IntN(2) == 1)
			case *array.Int8Builder:
				fb.Append(int8(rng.Uint32()))
			case *array.Int16Builder:
				fb.Append(int16(rng.Uint32()))
			case *array.Int32Builder:
				fb.Append(int32(rng.Uint32()))
			case *array.Int64Builder:
				fb.Append(int64(rng.Uint64()))
			case *array.Uint8Builder:
				fb.Append(uint8(rng.Uint32()))
			case *array.Uint16Builder:
				fb.Append(uint16(rng.Uint32()))
			case *array.Uint32Builder:
				fb.Append(rng.Uint32())
			case *array.Uint64Builder:
				fb.Append(rng.Uint64())
			case *array.Float32Builder:
				fb.Append(float32(rng.NormFloat64() * 1e3))
			case *array.Float64Builder:
				fb.Append(rng.NormFloat64() * 1e6)
			case *array.StringBuilder:
				if f.Name == "text" {
					fb.Append(randString(rng))
				} else {
					fb.Append(words[rng.IntN(len(words))])
				}
			case *array.BinaryBuilder:
				buf := make([]byte, rng.IntN(12))
				for j := range buf {
					buf[j] = byte(rng.Uint32())
				}
				fb.Append(buf)
			case *array.TimestampBuilder:
				ms := base + rng.Int64N(1e10)
				switch f.Type.(*arrow.TimestampType).Unit {
				case arrow.Millisecond:
					fb.Append(arrow.Timestamp(ms))
				case arrow.Microsecond:
					fb.Append(arrow.Timestamp(ms*1000 + rng.Int64N(1000)))
				default:
					fb.Append(arrow.Timestamp(ms*1e6 + rng.Int64N(1e6)))
				}
			case *array.Date32Builder:
				fb.Append(arrow.Date32(19000 + rng.Int32N(2000)))
			default:
				panic("unhandled builder for " + f.Name)
			}
		}
	}
	return b.NewRecordBatch()
}

func randString(rng *rand.Rand) string {
	buf := make([]byte, rng.IntN(20))
	for i := range buf {
		buf[i] = 'a' + byte(rng.IntN(26))
	}
	return string(buf)
}

// writeFile writes each record as one row group of a new Parquet file.
func writeFile(t testing.TB, path string, sc *arrow.Schema, recs []arrow.RecordBatch, opts ...pq.WriterProperty) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]pq.WriterProperty{pq.WithCompression(compress.Codecs.Snappy)}, opts...)
	w, err := pqarrow.NewFileWriter(sc, f, pq.NewWriterProperties(opts...), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// readAll reads every subtask of src with parallelism par and returns the
// batches of each subtask and the reader metrics.
func readAll(t testing.TB, src *Source, mem memory.Allocator, par int) ([][]arrow.RecordBatch, []*arrowexec.TaskMetrics) {
	t.Helper()
	out := make([][]arrow.RecordBatch, par)
	ms := make([]*arrowexec.TaskMetrics, par)
	for i := 0; i < par; i++ {
		ms[i] = &arrowexec.TaskMetrics{}
		r, err := src.Open(context.Background(), &arrowexec.Task{Node: "pq", Subtask: i, Parallelism: par, Mem: mem, Metrics: ms[i]})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = drain(t, r, -1)
		r.Close()
	}
	return out, ms
}

// drain reads up to max batches (all when max < 0).
func drain(t testing.TB, r arrowexec.SourceReader, max int) []arrow.RecordBatch {
	t.Helper()
	var out []arrow.RecordBatch
	for max < 0 || len(out) < max {
		b, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func releaseBatches(bs [][]arrow.RecordBatch) {
	for _, s := range bs {
		for _, b := range s {
			b.Release()
		}
	}
}
