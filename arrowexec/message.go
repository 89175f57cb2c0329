package arrowexec

import "github.com/apache/arrow-go/v18/arrow"

// Kind tells what a Message carries.
type Kind uint8

const (
	// KindBatch carries a data batch.
	KindBatch Kind = iota
	// KindWatermark says every record with event time <= Watermark has
	// been sent on this channel; or, with Idle, that the channel is idle and
	// must not hold the minimum watermark back.
	KindWatermark
	// KindBarrier carries a checkpoint barrier.
	KindBarrier
	// KindEndOfInput says the channel carries nothing more.
	KindEndOfInput
)

// Message is what flows on an edge: a batch or an in-band control event.
type Message struct {
	Kind      Kind
	Batch     arrow.RecordBatch // KindBatch; the receiver owns one reference
	Watermark int64             // KindWatermark
	Idle      bool              // KindWatermark: the sender is idle
	Barrier   Barrier           // KindBarrier
	// bytes is BatchBytes(Batch), computed once by the sender.
	bytes int64
}
