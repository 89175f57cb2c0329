package kafka

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzCSVDecoder feeds arbitrary message values to the CSV decoder. With
// three string fields, a value it accepts must split as encoding/csv
// splits it (an empty unquoted field is NULL, "" an empty string); with
// fields of every type it must return a row or an error, never panic or
// leak. (The JSON decoder's target is FuzzScanner.) Seeds: f.Add below
// and testdata/fuzz/FuzzCSVDecoder.
func FuzzCSVDecoder(f *testing.F) {
	for _, s := range []string{
		"", ",", ",,", "a,b,c", "a,b,c\n", "a,b,c\r\n", `"a","b","c"`, `"a""b",,"c,d"`, `"",x,""`,
		`"a`, `a"b,c,d`, `"a"b,c,d`, "a,b,c,", "\"a\nb\",c,d", "1,2.5,true", "-9223372036854775808,1e400,false",
		"12,x,2026-03-04T05:06:07.891Z,1772600767891,\xff\xfe,true,\"\"",
	} {
		f.Add([]byte(s))
	}
	str := Options{Format: FormatCSV, Fields: []Field{{Name: "a", Type: String}, {Name: "b", Type: String}, {Name: "c", Type: String}}}
	typed := Options{Format: FormatCSV, Fields: allTypes}
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)

		d := newDecoder(typed, typed.schema(), mem)
		if err := d.add(&record{value: data}, "t", 0); err == nil {
			b := d.finish()
			if b.NumRows() != 1 {
				t.Fatalf("%q: accepted, %d rows", data, b.NumRows())
			}
			b.Release()
		}
		d.release()

		d = newDecoder(str, str.schema(), mem)
		defer d.release()
		err := d.add(&record{value: data}, "t", 0)
		b := d.finish()
		defer b.Release()
		// encoding/csv reads records across lines and ignores a leading
		// empty input; compare single-line records only.
		body := data
		if bytes.HasSuffix(body, []byte("\n")) { // the decoder drops one line end
			body = bytes.TrimSuffix(body[:len(body)-1], []byte("\r"))
		}
		if len(body) == 0 || bytes.ContainsAny(body, "\r\n") {
			return
		}
		r := csv.NewReader(bytes.NewReader(body))
		r.FieldsPerRecord = -1
		want, werr := r.ReadAll()
		if werr != nil || len(want) != 1 || len(want[0]) != 3 {
			if err == nil {
				t.Fatalf("%q: decoder accepted it, encoding/csv: %v %q", data, werr, want)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: decoder: %v, encoding/csv: %q", data, err, want[0])
		}
		for i, w := range want[0] {
			col := b.Column(i).(*array.String)
			if col.IsNull(0) && w != "" {
				t.Fatalf("%q: field %d is NULL, encoding/csv %q", data, i, w)
			}
			if got := col.Value(0); got != w {
				t.Fatalf("%q: field %d is %q, encoding/csv %q", data, i, got, w)
			}
		}
	})
}
