package expr

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Times of day (DuckDB's TIME) are int64 microseconds since midnight, Arrow
// time64[us]. A time32[s], time32[ms] or time64[ns] column is read as
// time64[us] (convNode; nanoseconds rounded to the microsecond, as DuckDB
// casts its TIME_NS to TIME). Times
// compare with times, cast to and from string ('HH:MM:SS[.ffffff]') and
// from a timestamp (its UTC time of day), pass through CASE, coalesce,
// greatest and least, and give hour, minute, second, millisecond,
// microsecond and epoch (seconds since midnight) to extract/date_part.

const microsPerDay = 86400e6

// timeFields are the date_part fields of a time of day.
var timeFields = map[string]int64{"hour": 0, "minute": 0, "second": 0, "millisecond": 0, "microsecond": 0, "epoch": 0}

// isTimeOfDay reports whether t is an Arrow time type other than
// time64[us] (read as time64[us]).
func isTimeOfDay(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.TIME32:
		return true
	case arrow.TIME64:
		return t.(*arrow.Time64Type).Unit != arrow.Microsecond
	}
	return false
}

// timeToMicros converts a time32 or time64 column of another unit into
// time64[us] values.
func timeToMicros(mem memory.Allocator, a arrow.Array, rows int) arrow.Array {
	out := newBufUninit(mem, rows*8)
	o := viewAs[int64](out.Bytes())
	switch t := a.DataType().(type) {
	case *arrow.Time32Type:
		mul := int64(1e6)
		if t.Unit == arrow.Millisecond {
			mul = 1e3
		}
		for i, x := range values[int32](a) {
			o[i] = int64(x) * mul
		}
	case *arrow.Time64Type: // nanoseconds, rounded half up
		for i, x := range values[int64](a) {
			o[i], _ = floorDiv(x+500, 1000)
		}
	}
	return makeArray(arrow.FixedWidthTypes.Time64us, rows, andValidity(mem, rows, false, a), out)
}

// appendTimeOfDay appends micros as DuckDB prints a TIME: HH:MM:SS, then
// the fraction without trailing zeros.
func appendTimeOfDay(dst []byte, micros int64) []byte {
	return time.Unix(0, micros*1000).UTC().AppendFormat(dst, "15:04:05.999999")
}

// parseTimeOfDay parses 'HH:MM[:SS[.ffffff]]'.
func parseTimeOfDay(s string) (int64, bool) {
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return (int64(t.Hour())*3600+int64(t.Minute())*60+int64(t.Second()))*1e6 + int64(t.Nanosecond())/1000, true
		}
	}
	return 0, false
}

// timeOfDay returns the UTC time of day, in microseconds, of timestamp x
// in unit u.
func timeOfDay(x int64, u arrow.TimeUnit) int64 {
	us := x
	switch per := unitNanos(u); {
	case per > 1000:
		us = x * (per / 1000)
	case per < 1000:
		us, _ = floorDiv(x, 1000/per)
	}
	_, r := floorDiv(us, microsPerDay)
	return r
}
