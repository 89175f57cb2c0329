package arrowtext

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
)

// TestAppendTimestamp checks the hand-written ISO-8601 formatter against
// package time over random instants from year 1 to 9999, in every unit.
func TestAppendTimestamp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	layouts := map[arrow.TimeUnit]string{
		arrow.Second:      "2006-01-02T15:04:05",
		arrow.Millisecond: "2006-01-02T15:04:05.000",
		arrow.Microsecond: "2006-01-02T15:04:05.000000",
		arrow.Nanosecond:  "2006-01-02T15:04:05.000000000",
	}
	lo := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	for i := 0; i < 200000; i++ {
		sec := lo + rng.Int64N(hi-lo)
		if i%2 == 0 { // dense around the epoch
			sec = rng.Int64N(200*365*86400) - 100*365*86400
		}
		nanos := rng.Int64N(1e9)
		for unit, layout := range layouts {
			if unit == arrow.Nanosecond && (sec > 9e9 || sec < -9e9) {
				continue // out of int64 nanoseconds
			}
			per := unitScale[unit].perSec
			v := sec*per + nanos/(1e9/per)
			want := time.Unix(sec, nanos/(1e9/per)*(1e9/per)).UTC().Format(layout) + "Z"
			if got := string(AppendTimestamp(nil, v, unit, true)); got != want {
				t.Fatalf("AppendTimestamp(%d, %v) = %s, want %s", v, unit, got, want)
			}
		}
	}
}

// TestAppendJSONString compares the JSON string encoder with
// encoding/json (HTML escaping off), byte for byte, on random strings
// (invalid UTF-8 included).
func TestAppendJSONString(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := []string{"a", "\"", "\\", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "é", "€", "😀", "\xff", "\xe2\x82", "\u2028", "\u2029", "<", "&", "/"}
	for range 20000 {
		var b strings.Builder
		for range r.IntN(10) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		s := b.String()
		var want strings.Builder
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := string(AppendJSONString(nil, s)); got != strings.TrimSuffix(want.String(), "\n") {
			t.Fatalf("%q: got %s, want %s", s, got, want.String())
		}
	}
}

func TestAppendCSVString(t *testing.T) {
	for in, want := range map[string]string{
		"":        `""`,
		"a":       "a",
		"a,b":     `"a,b"`,
		`"`:       `""""`,
		"x\ny":    "\"x\ny\"",
		"x\ry":    "\"x\ry\"",
		" sp ":    " sp ",
		"ünïcødé": "ünïcødé",
	} {
		if got := string(appendCSVString(nil, in, newFormat(CSV, CSVOptions{}))); got != want {
			t.Errorf("appendCSVString(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzStrings round-trips strings through the CSV and JSON encoders and the
// standard library's decoders.
func FuzzStrings(f *testing.F) {
	for _, s := range []string{"", "a", `"`, "a,b", "x\r\ny", "\xff", "日本", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got string
		if err := json.Unmarshal(AppendJSONString(nil, s), &got); err != nil {
			t.Fatalf("json %q: %v", s, err)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("json %q: got %q", s, got)
		}
		// Two fields so that an empty first field is not an empty line.
		line := append(appendCSVString(nil, s, newFormat(CSV, CSVOptions{})), ",x\n"...)
		rec, err := csv.NewReader(bytes.NewReader(line)).Read()
		if err != nil {
			t.Fatalf("csv %q (%q): %v", s, line, err)
		}
		// encoding/csv drops a \r before \n, also inside quotes.
		if want := strings.ReplaceAll(s, "\r\n", "\n"); len(rec) != 2 || rec[0] != want || rec[1] != "x" {
			t.Fatalf("csv %q: got %q", s, rec)
		}
	})
}
