package kafka

import (
	"errors"

	"github.com/riffle-dev/riffle/internal/deadletter"
)

// deadLetterRecord is one line of the dead-letter file (internal/deadletter).
type deadLetterRecord struct {
	Topic         string  `json:"topic"`
	Partition     int     `json:"partition"`
	Offset        int64   `json:"offset"`
	Reason        string  `json:"reason"`
	Class         string  `json:"class"`
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 *string `json:"payload_base64,omitempty"`
}

func writeDeadLetter(d *deadletter.File, topic string, partition int, offset int64, reason error, payload []byte) error {
	rec := deadLetterRecord{Topic: topic, Partition: partition, Offset: offset, Reason: reason.Error(), Class: reasonClass(reason)}
	rec.Payload, rec.PayloadBase64 = deadletter.Payload(payload)
	return d.Write(rec.Class, rec)
}

// classedError is a decode error with its reason class.
type classedError struct {
	class string
	err   error
}

func (e *classedError) Error() string { return e.err.Error() }
func (e *classedError) Unwrap() error { return e.err }

// reasonClass is the dead-letter reason class of a decode error:
// deadletter.Malformed unless the decoder said otherwise.
func reasonClass(err error) string {
	var ce *classedError
	if errors.As(err, &ce) {
		return ce.class
	}
	return deadletter.Malformed
}
