package sinks

import (
	"io"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/internal/arrowtext"
)

// textStyle is the arrowtext style of a text format.
func textStyle(f Format) arrowtext.Style {
	if f == JSONL {
		return arrowtext.JSON
	}
	return arrowtext.CSV
}

// textEncoder writes CSV or JSON Lines parts through arrowtext (the one
// Arrow-to-text encoder, shared with the Kafka sink and ml's exports),
// writing to the file once DefaultTextBufferSize bytes are buffered.
type textEncoder struct{ w *arrowtext.Writer }

func newTextEncoder(f Format, csv CSVOptions, schema *arrow.Schema, w io.Writer) (*textEncoder, error) {
	if f == CSV {
		tw, err := arrowtext.NewCSVWriter(schema, w, DefaultTextBufferSize, csv)
		if err != nil {
			return nil, err
		}
		return &textEncoder{tw}, nil
	}
	tw, err := arrowtext.NewWriter(textStyle(f), schema, w, DefaultTextBufferSize)
	if err != nil {
		return nil, err
	}
	return &textEncoder{tw}, nil
}

func (e *textEncoder) write(b arrow.RecordBatch) error { return e.w.Write(b) }
func (e *textEncoder) size() int64                     { return e.w.Size() }
func (e *textEncoder) close() error                    { return e.w.Close() }
func (e *textEncoder) abort()                          { e.w.Abort() }
func (e *textEncoder) flush() error                    { return e.w.Flush() }
