package arrowtext

import (
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
)

// appendCSVString appends s as one CSV field in format f, quoted (RFC
// 4180, with f's quote character) when it contains the delimiter, the
// quote, CR or LF, is empty (an unquoted empty field is a null) or is the
// text of a null.
func appendCSVString(buf []byte, s string, f *format) []byte {
	needs := len(s) == 0 || len(f.nullStr) > 0 && s == f.nullStr
	for i := 0; i < len(s) && !needs; i++ {
		switch s[i] {
		case f.delim, f.quote, '\n', '\r':
			needs = true
		}
	}
	if !needs {
		return append(buf, s...)
	}
	buf = append(buf, f.quote)
	for i := 0; i < len(s); i++ {
		if s[i] == f.quote {
			buf = append(buf, f.quote, f.quote)
		} else {
			buf = append(buf, s[i])
		}
	}
	return append(buf, f.quote)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string, escaped as encoding/json
// does without HTML escaping: invalid UTF-8 becomes U+FFFD, U+2028 and
// U+2029 are escaped.
func AppendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse).
func civil(days int64) (y int64, m, d int) {
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func append2(buf []byte, v int) []byte {
	return append(buf, byte('0'+v/10), byte('0'+v%10))
}

func appendDate(buf []byte, days int64) []byte {
	y, m, d := civil(days)
	if y < 0 || y > 9999 {
		return time.Unix(days*86400, 0).UTC().AppendFormat(buf, "2006-01-02")
	}
	yy := int(y)
	buf = append2(buf, yy/100)
	buf = append2(buf, yy%100)
	buf = append(buf, '-')
	buf = append2(buf, m)
	buf = append(buf, '-')
	return append2(buf, d)
}

var unitScale = [...]struct {
	perSec int64
	digits int
}{
	arrow.Second:      {1, 0},
	arrow.Millisecond: {1e3, 3},
	arrow.Microsecond: {1e6, 6},
	arrow.Nanosecond:  {1e9, 9},
}

// AppendTimestamp appends t (in unit since the epoch) as ISO 8601 with the
// unit's number of fraction digits, and "Z" when zulu.
func AppendTimestamp(buf []byte, t int64, unit arrow.TimeUnit, zulu bool) []byte {
	sc := unitScale[unit]
	sec := floorDiv(t, sc.perSec)
	frac := t - sec*sc.perSec
	days := floorDiv(sec, 86400)
	sod := int(sec - days*86400)
	buf = appendDate(buf, days)
	buf = append(buf, 'T')
	buf = append2(buf, sod/3600)
	buf = append(buf, ':')
	buf = append2(buf, sod/60%60)
	buf = append(buf, ':')
	buf = append2(buf, sod%60)
	if sc.digits > 0 {
		buf = append(buf, '.')
		var tmp [9]byte
		for i := sc.digits - 1; i >= 0; i-- {
			tmp[i] = byte('0' + frac%10)
			frac /= 10
		}
		buf = append(buf, tmp[:sc.digits]...)
	}
	if zulu {
		buf = append(buf, 'Z')
	}
	return buf
}
