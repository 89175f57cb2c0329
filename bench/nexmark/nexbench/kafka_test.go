package nexbench

import (
	"context"
	"fmt"
	"testing"

	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// TestQueriesFromKafka runs the queries from a Kafka topic the generator
// filled (against the broker of RIFFLE_KAFKA_BROKERS; skipped without
// one), at parallelism 1 and 2 (as many partitions), and compares their
// output with DuckDB's answer over the same events; the counting run must
// see as many rows.
func TestQueriesFromKafka(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	py := oracle.Python(t)
	dir := t.TempDir()
	for _, q := range []string{"q0", "q1", "q2", "q5", "q7"} {
		for _, par := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/p%d", q, par), func(t *testing.T) {
				cfg := Config{Query: q, Events: 40_000, Seed: 5, Parallelism: par, Source: SourceKafka, Dir: dir, Brokers: brokers}
				rows, err := Check(context.Background(), cfg, py)
				if err != nil {
					t.Fatal(err)
				}
				if rows == 0 {
					t.Fatalf("%s: no rows to compare", q)
				}
				res, err := Run(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				if res.Rows != rows || res.Source != SourceKafka {
					t.Fatalf("%s: the counting run from %s saw %d rows, the checked one %d", q, res.Source, res.Rows, rows)
				}
			})
		}
	}
}

// TestKafkaNeedsBrokers: source kafka without brokers is an error naming
// what is missing, before anything runs.
func TestKafkaNeedsBrokers(t *testing.T) {
	_, err := Run(context.Background(), Config{Query: "q0", Events: 1000, Source: SourceKafka})
	if err == nil {
		t.Fatal("source kafka without brokers ran")
	}
	t.Log(err)
}
