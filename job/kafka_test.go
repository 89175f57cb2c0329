package job_test

import (
	"context"
	"fmt"
	"iter"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/internal/gen"
	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
	ksink "github.com/riffle-dev/riffle/sinks/kafka"
	"github.com/riffle-dev/riffle/sources/parquet"
)

const kafkaFields = `
    fields:
      - {name: user_id, type: int64, required: true}
      - {name: item_id, type: int64, required: true}
      - {name: event_type, type: string, required: true}
      - {name: weight, type: float64, required: true}
      - {name: event_time, type: timestamp, required: true}`

// parquetRows iterates over every row of a Parquet file, batch by batch.
func parquetRows(t *testing.T, path string) iter.Seq2[arrow.RecordBatch, error] {
	src, err := parquet.New(parquet.Options{Paths: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	return src.Batches(context.Background(), nil, 0)
}

// TestBatchStreamEquivalence runs one job over a Parquet file and over a
// Kafka topic holding the same rows (bounded mode): both outputs must equal
// DuckDB's answer on the file.
func TestBatchStreamEquivalence(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	oracle.Python(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "events.parquet")
	if err := gen.WriteFile(context.Background(), input, gen.Options{Rows: 40_000, Users: 500, Items: 200, Seed: 3, RowGroupRows: 10_000}, nil); err != nil {
		t.Fatal(err)
	}
	topic := kafkatest.CreateTopic(t, brokers, "equiv", 3)
	if _, err := ksink.Produce(context.Background(), ksink.ProduceOptions{Brokers: []string{brokers}, Topic: topic, KeyColumn: "item_id", TimestampColumn: "event_time"}, parquetRows(t, input)); err != nil {
		t.Fatal(err)
	}
	steps := `
steps:
  - filter: "event_type <> 'view' OR weight > 1"
  - aggregate:
      group_by: [item_id, event_type]
      aggs: ["count(*) AS n", "sum(weight) AS w", "min(event_time) AS first", "count_distinct(user_id) AS users"]`
	sql := `SELECT item_id, event_type, count(*) AS n, sum(weight) AS w, min(event_time) AS first, count(DISTINCT user_id) AS users
FROM read_parquet('%s') WHERE event_type <> 'view' OR weight > 1 GROUP BY ALL`
	want := canon(oracle.DuckDB(t, fmt.Sprintf(sql, input)).Strings())
	sources := map[string]string{
		"parquet": "source:\n  parquet:\n    path: " + input,
		"kafka":   "source:\n  kafka:\n    brokers: " + brokers + "\n    topic: " + topic + "\n    bounded: true" + kafkaFields,
	}
	for name, src := range sources {
		for _, p := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/p=%d", name, p), func(t *testing.T) {
				out := filepath.Join(dir, fmt.Sprintf("out-%s-%d", name, p))
				yml := fmt.Sprintf("name: equiv\n%s\n%s\nsink:\n  file: {path: %s}\n", src, steps, out)
				runAndCompare(t, yml, p, out, want)
			})
		}
	}
}
