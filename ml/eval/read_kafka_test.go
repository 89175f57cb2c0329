package eval

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/internal/kafkatest"
	"github.com/riffle-dev/riffle/ml"
)

// TestReadKafka: a log produced to a one-partition topic as JSON comes
// back from ReadKafka as the same Dataset in offset order, and the
// prequential protocol gives the same figures on both.
func TestReadKafka(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, "eval-read", 1)
	want := randomLog(t, 4, 600)
	msgs := make([]kafkago.Message, want.Len())
	for r := range msgs {
		msgs[r].Value = fmt.Appendf(nil, `{"u":%d,"i":%d,"rating":%g,"ts":%d,"extra":"x"}`,
			want.UserIDs.Ints[want.Users[r]], want.ItemIDs.Ints[want.Items[r]], want.Weights[r], want.Times[r])
	}
	kafkatest.Produce(t, brokers, topic, msgs)
	ctx := context.Background()
	got, err := ReadKafka(ctx, []string{brokers}, topic, Columns{User: "u", Item: "i", Weight: "rating", Time: "ts"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %d rows, differing from the %d produced", got.Len(), want.Len())
	}
	o := PrequentialOptions{Batch: 10, RetrainEvery: 50, Config: ml.Config{Factors: 4, Iterations: 3, Regularization: 0.1, Alpha: 1, Seed: 1, Threads: 1}}
	a, err := Prequential(ctx, got, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Prequential(ctx, want, o)
	if err != nil {
		t.Fatal(err)
	}
	a.Models[0].UpdateSeconds, b.Models[0].UpdateSeconds = 0, 0
	if !reflect.DeepEqual(a, b) {
		t.Errorf("prequential on the topic %+v, on the log %+v", a.Models, b.Models)
	}
	if _, err := ReadKafka(ctx, []string{brokers}, topic, Columns{User: "u", Item: "i", Weight: "nope", Time: "ts"}, nil); err == nil {
		t.Error("a weight field missing from every message: no error")
	}
}
