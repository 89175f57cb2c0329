package coerce

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/internal/arrowtext"
)

// TestParseMillisReadsWrittenTimestamps: every timestamp text riffle
// writes (internal/arrowtext: each unit, with and without a zone) reads
// back as its instant, truncated to milliseconds; a naive one as UTC.
func TestParseMillisReadsWrittenTimestamps(t *testing.T) {
	per := map[arrow.TimeUnit]int64{arrow.Second: 1, arrow.Millisecond: 1e3, arrow.Microsecond: 1e6, arrow.Nanosecond: 1e9}
	for _, ns := range []int64{0, -1, 1_700_000_000_123_456_789, -2_208_988_800_000_000_001} {
		for unit, p := range per {
			v := ns / (1e9 / p)
			if ns%(1e9/p) != 0 && ns < 0 {
				v-- // floor
			}
			want := time.Unix(0, v*(1e9/p)).UnixMilli() // floors
			for _, zulu := range []bool{false, true} {
				text := arrowtext.AppendTimestamp(nil, v, unit, zulu)
				got, ok := ParseMillis(Str, text, false)
				if !ok || got != want {
					t.Errorf("%s (%d %v): got %d %v, want %d", text, v, unit, got, ok, want)
				}
			}
		}
	}
	if _, ok := ParseMillis(Str, []byte("2026-01-02 03:04:05"), false); ok {
		t.Error("a space instead of T parsed")
	}
}
