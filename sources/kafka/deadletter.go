package kafka

import "github.com/riffle-dev/riffle/internal/deadletter"

// deadLetterRecord is one line of the dead-letter file (internal/deadletter).
type deadLetterRecord struct {
	Topic         string  `json:"topic"`
	Partition     int     `json:"partition"`
	Offset        int64   `json:"offset"`
	Reason        string  `json:"reason"`
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 *string `json:"payload_base64,omitempty"`
}

func writeDeadLetter(d *deadletter.File, topic string, partition int, offset int64, reason string, payload []byte) error {
	rec := deadLetterRecord{Topic: topic, Partition: partition, Offset: offset, Reason: reason}
	rec.Payload, rec.PayloadBase64 = deadletter.Payload(payload)
	return d.Write(rec)
}
