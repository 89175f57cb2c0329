package expr

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Time functions. Calendar fields are computed in UTC whatever the column's
// time zone (timestamps are instants; DuckDB with TimeZone 'UTC' agrees).
var timeFunctions = map[string]*function{
	"date_trunc":   {minArgs: 2, maxArgs: 2, bind: bindDateTrunc},
	"date_part":    {minArgs: 2, maxArgs: 2, bind: bindDatePart},
	"epoch_ms":     {minArgs: 1, maxArgs: 1, bind: bindEpochMs},
	"to_timestamp": {minArgs: 1, maxArgs: 1, bind: bindToTimestamp},
}

// Civil calendar conversions (proleptic Gregorian), after the well-known
// days-from-civil algorithm: exact for every int32 day.
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := m + 9
	if m > 2 {
		mp = m - 3
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

const nsPerDay = 86400 * int64(1e9)

// truncUnits are the units of date_trunc, with the length of a fixed unit
// in nanoseconds (0: a calendar unit).
var truncUnits = map[string]int64{
	"microsecond": 1e3, "millisecond": 1e6, "second": 1e9, "minute": 60e9, "hour": 3600e9,
	"day": nsPerDay, "week": 0, "month": 0, "quarter": 0, "year": 0, "decade": 0, "century": 0,
}

func unitList(m map[string]int64) string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// temporalArg checks that argument i is a timestamp or a date.
func temporalArg(e *CallExpr, args []node, i int) (kind, error) {
	k := kindOf(args[i].dataType())
	if k != kTimestamp && k != kDate32 && k != kNull {
		return k, argError(e, i, args[i], "must be a timestamp or a date")
	}
	return k, nil
}

// truncDays truncates a day number to the start of a calendar unit.
func truncDays(days int64, unit string) int64 {
	if unit == "week" { // ISO weeks start on Monday; day 4 (1970-01-05) is one
		q, _ := floorDiv(days-4, 7)
		return q*7 + 4
	}
	if unit == "day" {
		return days
	}
	y, m, _ := civilFromDays(days)
	switch unit {
	case "month":
	case "quarter":
		m = (m-1)/3*3 + 1
	case "year":
		m = 1
	case "decade":
		y, _ = floorDiv(y, 10)
		y, m = y*10, 1
	case "century":
		// 1900 to 1999 (DuckDB's choice, not the 1901 of the calendar).
		y, _ = floorDiv(y, 100)
		y, m = y*100, 1
	}
	return daysFromCivil(y, m, 1)
}

// bindDateTrunc: date_trunc(unit, x) truncates a timestamp or date to the
// start of its unit; the result has x's type (DuckDB gives a TIMESTAMP for
// a date: the values agree).
func bindDateTrunc(e *CallExpr, args []node) (node, error) {
	unit, null, err := constString(e, args, 0)
	if err != nil {
		return nil, err
	}
	unit = lower(unit)
	fixed, ok := truncUnits[unit]
	if !ok && !null {
		return nil, argError(e, 0, args[0], "unknown unit %q (known: %s)", unit, unitList(truncUnits))
	}
	k, err := temporalArg(e, args, 1)
	if err != nil {
		return nil, err
	}
	x := args[1]
	t := x.dataType()
	if null || k == kNull || isNullConst(x) {
		return nullOf(t), nil
	}
	if k == kDate32 {
		if fixed != 0 && fixed < nsPerDay {
			return x, nil
		}
		return unaryNum(e, x, t, func(mem memory.Allocator, a arrow.Array, out []byte) error {
			o := viewAs[int32](out)
			for i, d := range values[int32](a) {
				o[i] = int32(truncDays(int64(d), unit))
			}
			return nil
		}), nil
	}
	tick := unitNanos(t.(*arrow.TimestampType).Unit)
	if fixed != 0 && fixed <= tick {
		return x, nil
	}
	perDay := nsPerDay / tick
	return unaryNum(e, x, t, func(mem memory.Allocator, a arrow.Array, out []byte) error {
		o := viewAs[int64](out)
		v := values[int64](a)
		if fixed != 0 {
			step := fixed / tick
			for i, x := range v {
				q, _ := floorDiv(x, step)
				o[i] = q * step
			}
			return nil
		}
		for i, x := range v {
			d, _ := floorDiv(x, perDay)
			o[i] = truncDays(d, unit) * perDay
		}
		return nil
	}), nil
}

// partFields are the fields of date_part and extract.
var partFields = map[string]int64{
	"year": 0, "quarter": 0, "month": 0, "day": 0, "hour": 0, "minute": 0, "second": 0,
	"millisecond": 0, "microsecond": 0, "dow": 0, "isodow": 0, "doy": 0, "week": 0, "epoch": 0,
}

// bindDatePart: date_part(field, x) and extract(field FROM x): a calendar
// field of a timestamp or date as int64 (epoch: seconds as float64).
// second is the whole seconds, millisecond and microsecond include the
// seconds (12.5 s gives 12500 ms), dow counts from Sunday = 0, isodow
// from Monday = 1, week is the ISO week.
func bindDatePart(e *CallExpr, args []node) (node, error) {
	field, null, err := constString(e, args, 0)
	if err != nil {
		return nil, err
	}
	field = lower(field)
	if _, ok := partFields[field]; !ok && !null {
		return nil, argError(e, 0, args[0], "unknown field %q (known: %s)", field, unitList(partFields))
	}
	k := kindOf(args[1].dataType())
	if k == kTime {
		if _, ok := timeFields[field]; !ok && !null {
			return nil, argError(e, 0, args[0], "field %q of a time (known: %s)", field, unitList(timeFields))
		}
	} else if k, err = temporalArg(e, args, 1); err != nil {
		return nil, err
	}
	t := arrow.DataType(arrow.PrimitiveTypes.Int64)
	if field == "epoch" {
		t = arrow.PrimitiveTypes.Float64
	}
	x := args[1]
	if null || k == kNull || isNullConst(x) {
		return nullOf(t), nil
	}
	tick := nsPerDay // a date: whole days
	switch k {
	case kTimestamp:
		tick = unitNanos(x.dataType().(*arrow.TimestampType).Unit)
	case kTime:
		tick = 1000 // microseconds
	}
	return unaryNum(e, x, t, func(mem memory.Allocator, a arrow.Array, out []byte) error {
		var v []int64
		if k == kDate32 {
			d := values[int32](a)
			v = make([]int64, len(d))
			for i, x := range d {
				v[i] = int64(x)
			}
		} else {
			v = values[int64](a)
		}
		if field == "epoch" {
			o := viewAs[float64](out)
			for i, x := range v {
				o[i] = float64(x) * float64(tick) / 1e9
			}
			return nil
		}
		o := viewAs[int64](out)
		perDay := nsPerDay / tick
		for i, x := range v {
			o[i] = datePart(field, x, perDay, tick)
		}
		return nil
	}), nil
}

// datePart computes a field of the instant x ticks of tick ns each.
func datePart(field string, x, perDay, tick int64) int64 {
	days, rem := floorDiv(x, perDay)
	ns := rem * tick // within the day
	switch field {
	case "hour":
		return ns / 3600e9
	case "minute":
		return ns / 60e9 % 60
	case "second":
		return ns / 1e9 % 60
	case "millisecond":
		return ns / 1e6 % 60000
	case "microsecond":
		return ns / 1e3 % 60000000
	case "dow":
		_, r := floorDiv(days+4, 7) // 1970-01-01 was a Thursday
		return r
	case "isodow":
		_, r := floorDiv(days+3, 7)
		return r + 1
	}
	y, m, d := civilFromDays(days)
	switch field {
	case "year":
		return y
	case "quarter":
		return (m-1)/3 + 1
	case "month":
		return m
	case "day":
		return d
	case "doy":
		return days - daysFromCivil(y, 1, 1) + 1
	case "week":
		// ISO week: the week (Monday based) holding this day's Thursday.
		_, r := floorDiv(days+3, 7)
		thu := days - r + 3
		ty, _, _ := civilFromDays(thu)
		return (thu-daysFromCivil(ty, 1, 1))/7 + 1
	}
	return 0
}

// bindEpochMs: epoch_ms(timestamp) is the milliseconds since the epoch as
// int64, truncated toward zero as in DuckDB (-1.5 ms gives -1); epoch_ms(integer) is the timestamp[ms] of that many
// milliseconds.
func bindEpochMs(e *CallExpr, args []node) (node, error) {
	x := args[0]
	k := kindOf(x.dataType())
	switch {
	case k.isInt():
		return newCast(x, arrow.FixedWidthTypes.Timestamp_ms, &CastExpr{X: e.Args[0], To: "timestamp"})
	case k == kTimestamp:
		tick := unitNanos(x.dataType().(*arrow.TimestampType).Unit)
		t := arrow.PrimitiveTypes.Int64
		return unaryNum(e, x, t, func(mem memory.Allocator, a arrow.Array, out []byte) error {
			o := viewAs[int64](out)
			v := values[int64](a)
			if tick >= 1e6 {
				m := tick / 1e6
				for i, x := range v {
					o[i] = x * m
				}
				return nil
			}
			d := 1e6 / tick
			for i, x := range v {
				o[i] = x / d // toward zero, as DuckDB
			}
			return nil
		}), nil
	case k == kNull:
		return nullOf(arrow.PrimitiveTypes.Int64), nil
	}
	return nil, argError(e, 0, x, "must be a timestamp or an integer")
}

// bindToTimestamp: to_timestamp(seconds) is the timestamp[us, UTC] of a
// number of seconds since the epoch (rounded to the microsecond); a value
// outside the timestamp range is a runtime error, as in DuckDB.
func bindToTimestamp(e *CallExpr, args []node) (node, error) {
	if _, err := numArg(e, args, 0); err != nil {
		return nil, err
	}
	t := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	return unaryNum(e, args[0], t, func(mem memory.Allocator, a arrow.Array, out []byte) error {
		o := viewAs[int64](out)
		v, rel := asFloat64(mem, a)
		defer rel()
		for i, x := range v {
			us := math.Round(x * 1e6)
			if !(us >= -9.2e18 && us <= 9.2e18) {
				if a.IsValid(i) {
					return errorf("to_timestamp: %g seconds at row %d is out of the timestamp range", x, i)
				}
				us = 0
			}
			o[i] = int64(us)
		}
		return nil
	}), nil
}

// parseInterval reads an INTERVAL literal's text: one or more "<integer>
// <unit>" pairs (microsecond, millisecond, second, minute, hour, day, week,
// singular or plural). Months and years have no fixed length and are
// refused.
func parseInterval(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f)%2 != 0 {
		return 0, fmt.Errorf("want '<number> <unit>' pairs")
	}
	var total time.Duration
	for i := 0; i < len(f); i += 2 {
		var n int64
		if _, err := fmt.Sscan(f[i], &n); err != nil {
			return 0, fmt.Errorf("%q is not an integer", f[i])
		}
		u := strings.TrimSuffix(lower(f[i+1]), "s")
		var d time.Duration
		switch u {
		case "nanosecond", "n":
			d = time.Nanosecond
		case "microsecond", "u":
			d = time.Microsecond
		case "millisecond", "m":
			d = time.Millisecond
		case "second", "sec":
			d = time.Second
		case "minute", "min":
			d = time.Minute
		case "hour", "h":
			d = time.Hour
		case "day", "d":
			d = 24 * time.Hour
		case "week", "w":
			d = 7 * 24 * time.Hour
		case "month", "year", "mon", "y":
			return 0, fmt.Errorf("unit %q has no fixed length (use days)", f[i+1])
		default:
			return 0, fmt.Errorf("unknown unit %q (known: microsecond, millisecond, second, minute, hour, day, week)", f[i+1])
		}
		total += time.Duration(n) * d
	}
	return total, nil
}

// newShift binds ts + interval and ts - interval: the timestamp moved by a
// fixed duration, in its own unit and zone. An interval finer than the
// timestamp's unit is an error (cast the timestamp first).
func newShift(op BinaryOp, ts node, d time.Duration, e Expr) (node, error) {
	t := ts.dataType()
	if kindOf(t) != kTimestamp {
		return nil, errorf("INTERVAL can only be added to or subtracted from a timestamp, in %s", e)
	}
	tick := unitNanos(t.(*arrow.TimestampType).Unit)
	if int64(d)%tick != 0 {
		return nil, errorf("in %s: the interval is finer than %s", e, typeName(t))
	}
	delta := int64(d) / tick
	if op == OpSub {
		delta = -delta
	}
	c := &CallExpr{Name: op.String() + " INTERVAL"}
	return unaryNum(c, ts, t, func(mem memory.Allocator, a arrow.Array, out []byte) error {
		o := viewAs[int64](out)
		for i, x := range values[int64](a) {
			o[i] = x + delta
		}
		return nil
	}), nil
}

// finer returns the finer of two time units and the factors that convert
// values of a and of b into it.
func finer(a, b arrow.TimeUnit) (u arrow.TimeUnit, ma, mb int64) {
	if unitNanos(a) <= unitNanos(b) {
		return a, 1, unitNanos(b) / unitNanos(a)
	}
	return b, unitNanos(a) / unitNanos(b), 1
}

// newTimeDiff binds ts1 - ts2: the duration between two instants, in the
// finer of their units (DuckDB gives an INTERVAL).
func newTimeDiff(l, r node) node {
	lu, ru := l.dataType().(*arrow.TimestampType).Unit, r.dataType().(*arrow.TimestampType).Unit
	u, ml, mr := finer(lu, ru)
	t := &arrow.DurationType{Unit: u}
	return &fnNode{name: "-", t: t, args: []node{l, r}, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		return combineInt64(c, t, in, func(x, y int64) int64 { return x*ml - y*mr }), nil
	}}
}

// newShiftBy binds ts ± duration (a column): a timestamp in the finer of
// the two units, in ts's zone.
func newShiftBy(op BinaryOp, ts, dur node) node {
	tt := ts.dataType().(*arrow.TimestampType)
	u, mt, md := finer(tt.Unit, dur.dataType().(*arrow.DurationType).Unit)
	t := &arrow.TimestampType{Unit: u, TimeZone: tt.TimeZone}
	if op == OpSub {
		md = -md
	}
	return &fnNode{name: op.String(), t: t, args: []node{ts, dur}, run: func(c *evalCtx, in []arrow.Array) (arrow.Array, error) {
		return combineInt64(c, t, in, func(x, y int64) int64 { return x*mt + y*md }), nil
	}}
}

// combineInt64 applies f to the int64 values of two arrays, NULL when
// either is NULL. Overflow wraps, as integer arithmetic does.
func combineInt64(c *evalCtx, t arrow.DataType, in []arrow.Array, f func(x, y int64) int64) arrow.Array {
	x, y := values[int64](in[0]), values[int64](in[1])
	out := newBufUninit(c.mem, c.n*8)
	o := viewAs[int64](out.Bytes())
	for i := range o {
		o[i] = f(x[i], y[i])
	}
	return makeArray(t, c.n, andValidity(c.mem, c.n, false, in...), out)
}
