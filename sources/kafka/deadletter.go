package kafka

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"unicode/utf8"
)

// deadLetter is the JSON-lines file bad messages go to under
// OnErrorDeadLetter. It is shared by every reader of a source: lines are
// written whole under a mutex, buffered, and flushed and fsynced at every
// checkpoint and when the last reader closes.
type deadLetter struct {
	path string
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	refs int
}

// deadLetterRecord is one line of the dead-letter file.
type deadLetterRecord struct {
	Topic         string  `json:"topic"`
	Partition     int     `json:"partition"`
	Offset        int64   `json:"offset"`
	Reason        string  `json:"reason"`
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 *string `json:"payload_base64,omitempty"`
}

func (d *deadLetter) open() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refs == 0 {
		f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("kafka: dead-letter file: %w", err)
		}
		d.f, d.w = f, bufio.NewWriterSize(f, 64<<10)
	}
	d.refs++
	return nil
}

func (d *deadLetter) write(topic string, partition int, offset int64, reason string, payload []byte) error {
	rec := deadLetterRecord{Topic: topic, Partition: partition, Offset: offset, Reason: reason}
	if utf8.Valid(payload) {
		p := string(payload)
		rec.Payload = &p
	} else {
		p := base64.StdEncoding.EncodeToString(payload)
		rec.PayloadBase64 = &p
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.w.Write(line); err != nil {
		return fmt.Errorf("kafka: dead-letter file %s: %w", d.path, err)
	}
	return nil
}

func (d *deadLetter) sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.syncLocked()
}

func (d *deadLetter) syncLocked() error {
	if d.f == nil {
		return nil
	}
	if err := d.w.Flush(); err != nil {
		return fmt.Errorf("kafka: dead-letter file %s: %w", d.path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("kafka: dead-letter file %s: %w", d.path, err)
	}
	return nil
}

func (d *deadLetter) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refs--
	if d.refs > 0 || d.f == nil {
		return nil
	}
	err := d.syncLocked()
	if cerr := d.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("kafka: dead-letter file %s: %w", d.path, cerr)
	}
	d.f, d.w = nil, nil
	return err
}
