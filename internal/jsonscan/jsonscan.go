// Package jsonscan is a hand-written scanner for one flat JSON object (a
// Kafka message, a JSONL line), shared by the Kafka source and the JSONL
// file source.
//
// It validates the whole input with encoding/json's grammar (nested values
// of unknown keys are validated and skipped) and hands out each key/value
// pair without allocating: string contents point into the input when they
// have no escapes, or into a scratch buffer that grows per message and is
// reused for the next one. Invalid UTF-8 in strings is replaced by U+FFFD,
// as encoding/json does.
package jsonscan

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/riffle-dev/riffle/internal/coerce"
)

// maxDepth bounds nesting, like encoding/json.
const maxDepth = 10000

// Scanner iterates over the members of one JSON object.
type Scanner struct {
	data []byte
	pos  int
	Buf  []byte // unescaped strings of the current message; reset per message
	Err  error
	done bool

	Key   []byte
	Kind  coerce.Kind
	Val   []byte // number literal, string content, or raw object/array text
	IsInt bool   // number without fraction or exponent
	// Where Val lives, for callers that keep positions instead of slices:
	// at data[ValOff:] or, when ValInBuf, at Buf[ValOff:]. Buf never moves
	// within one message (see slowStr), so positions stay valid.
	ValInBuf bool
	ValOff   int
}

func (s *Scanner) fail(format string, args ...any) bool {
	if s.Err == nil {
		s.Err = fmt.Errorf("invalid JSON at byte %d: %s", s.pos, fmt.Sprintf(format, args...))
	}
	s.done = true
	return false
}

// Reset starts scanning data, which must hold one JSON object.
func (s *Scanner) Reset(data []byte) error {
	s.data, s.pos, s.Err, s.done = data, 0, nil, false
	s.Buf = s.Buf[:0]
	s.ws()
	if s.pos >= len(s.data) {
		s.fail("empty message")
		return s.Err
	}
	if s.data[s.pos] != '{' {
		s.fail("message is not a JSON object")
		return s.Err
	}
	s.pos++
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.end()
	}
	return s.Err
}

func (s *Scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// end checks that only whitespace follows the object.
func (s *Scanner) end() {
	s.ws()
	if s.pos != len(s.data) {
		s.fail("data after the object")
		return
	}
	s.done = true
}

// Next advances to the next member. It returns false at the end of the
// object or on an error (s.Err).
func (s *Scanner) Next() bool {
	if s.done {
		return false
	}
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return s.fail("want object key")
	}
	k, ok := s.str()
	if !ok {
		return false
	}
	s.Key = k
	s.ws()
	if s.pos >= len(s.data) || s.data[s.pos] != ':' {
		return s.fail("want ':' after object key")
	}
	s.pos++
	s.ws()
	if !s.value() {
		return false
	}
	s.ws()
	if s.pos >= len(s.data) {
		return s.fail("unexpected end of input")
	}
	switch s.data[s.pos] {
	case ',':
		s.pos++
		s.ws()
	case '}':
		s.pos++
		s.end()
		return s.Err == nil
	default:
		return s.fail("want ',' or '}' after object value")
	}
	return true
}

// value scans one value into kind/val.
func (s *Scanner) value() bool {
	if s.pos >= len(s.data) {
		return s.fail("unexpected end of input")
	}
	switch c := s.data[s.pos]; {
	case c == '"':
		v, ok := s.str()
		s.Kind, s.Val = coerce.Str, v
		return ok
	case c == '-' || (c >= '0' && c <= '9'):
		s.Kind = coerce.Number
		return s.number()
	case c == 't':
		s.Kind, s.Val = coerce.True, nil
		return s.lit("true")
	case c == 'f':
		s.Kind, s.Val = coerce.False, nil
		return s.lit("false")
	case c == 'n':
		s.Kind, s.Val = coerce.Null, nil
		return s.lit("null")
	case c == '{' || c == '[':
		start := s.pos
		if !s.skip(0) {
			return false
		}
		s.Kind, s.Val = coerce.Array, s.data[start:s.pos]
		if c == '{' {
			s.Kind = coerce.Object
		}
		return true
	default:
		return s.fail("invalid character %q looking for a value", c)
	}
}

func (s *Scanner) lit(w string) bool {
	if len(s.data)-s.pos < len(w) || string(s.data[s.pos:s.pos+len(w)]) != w {
		return s.fail("invalid literal")
	}
	s.pos += len(w)
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (s *Scanner) number() bool {
	start := s.pos
	d := s.data
	if d[s.pos] == '-' {
		s.pos++
	}
	if s.pos >= len(d) || !isDigit(d[s.pos]) {
		return s.fail("invalid number")
	}
	if d[s.pos] == '0' {
		s.pos++
	} else {
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	}
	s.IsInt = true
	if s.pos < len(d) && d[s.pos] == '.' {
		s.IsInt = false
		s.pos++
		if s.pos >= len(d) || !isDigit(d[s.pos]) {
			return s.fail("invalid number")
		}
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.IsInt = false
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if s.pos >= len(d) || !isDigit(d[s.pos]) {
			return s.fail("invalid number")
		}
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	}
	s.Val = d[start:s.pos]
	s.ValInBuf, s.ValOff = false, start
	return true
}

// str scans a string starting at the opening quote and returns its content.
func (s *Scanner) str() ([]byte, bool) {
	d := s.data
	s.pos++ // opening quote
	start := s.pos
	ascii := true
	for s.pos < len(d) {
		c := d[s.pos]
		switch {
		case c == '"':
			v := d[start:s.pos]
			s.pos++
			if !ascii && !utf8.Valid(v) {
				return s.slowStr(start, s.pos-1)
			}
			s.ValInBuf, s.ValOff = false, start
			return v, true
		case c == '\\':
			end, ok := s.findEnd(s.pos)
			if !ok {
				return nil, false
			}
			v, ok := s.slowStr(start, end)
			return v, ok
		case c < 0x20:
			return nil, s.fail("control character in string")
		case c >= 0x80:
			ascii = false
		}
		s.pos++
	}
	return nil, s.fail("unterminated string")
}

// findEnd returns the index of the closing quote of a string with escapes,
// validating the escapes on the way.
func (s *Scanner) findEnd(i int) (int, bool) {
	d := s.data
	for i < len(d) {
		switch c := d[i]; {
		case c == '"':
			return i, true
		case c == '\\':
			if i+1 >= len(d) {
				s.pos = i
				return 0, s.fail("unterminated string")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) {
					s.pos = i
					return 0, s.fail("invalid \\u escape")
				}
				for _, h := range d[i+2 : i+6] {
					if hexVal(h) < 0 {
						s.pos = i
						return 0, s.fail("invalid \\u escape")
					}
				}
				i += 6
			default:
				s.pos = i
				return 0, s.fail("invalid escape")
			}
		case c < 0x20:
			s.pos = i
			return 0, s.fail("control character in string")
		default:
			i++
		}
	}
	s.pos = i
	return 0, s.fail("unterminated string")
}

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func hex4(b []byte) rune {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

// slowStr decodes the validated string content d[start:end] (escapes,
// invalid UTF-8) into s.Buf, with encoding/json's rules, and moves past the
// closing quote.
func (s *Scanner) slowStr(start, end int) ([]byte, bool) {
	d := s.data[start:end]
	if len(s.Buf) == 0 && cap(s.Buf) < 3*len(s.data) {
		// Decoded strings never take more than 3x their encoded size
		// (one invalid byte becomes a 3-byte U+FFFD), so sizing buf once
		// per message keeps earlier positions into it valid.
		s.Buf = make([]byte, 0, 3*len(s.data))
	}
	o := len(s.Buf)
	for i := 0; i < len(d); {
		c := d[i]
		switch {
		case c == '\\':
			switch d[i+1] {
			case '"', '\\', '/':
				s.Buf = append(s.Buf, d[i+1])
			case 'b':
				s.Buf = append(s.Buf, '\b')
			case 'f':
				s.Buf = append(s.Buf, '\f')
			case 'n':
				s.Buf = append(s.Buf, '\n')
			case 'r':
				s.Buf = append(s.Buf, '\r')
			case 't':
				s.Buf = append(s.Buf, '\t')
			case 'u':
				r := hex4(d[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(d) && d[i] == '\\' && d[i+1] == 'u' {
						r2 := hex4(d[i+2:])
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							s.Buf = utf8.AppendRune(s.Buf, dec)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				s.Buf = utf8.AppendRune(s.Buf, r)
				continue
			}
			i += 2
		case c < utf8.RuneSelf:
			s.Buf = append(s.Buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				s.Buf = utf8.AppendRune(s.Buf, utf8.RuneError)
			} else {
				s.Buf = append(s.Buf, d[i:i+size]...)
			}
			i += size
		}
	}
	s.pos = end + 1
	s.ValInBuf, s.ValOff = true, o
	return s.Buf[o:], true
}

// skip validates and moves past one object or array.
func (s *Scanner) skip(depth int) bool {
	if depth >= maxDepth {
		return s.fail("nested too deeply")
	}
	open := s.data[s.pos]
	s.pos++
	s.ws()
	closeCh := byte('}')
	if open == '[' {
		closeCh = ']'
	}
	if s.pos < len(s.data) && s.data[s.pos] == closeCh {
		s.pos++
		return true
	}
	for {
		if open == '{' {
			if s.pos >= len(s.data) || s.data[s.pos] != '"' {
				return s.fail("want object key")
			}
			if _, ok := s.skipStr(); !ok {
				return false
			}
			s.ws()
			if s.pos >= len(s.data) || s.data[s.pos] != ':' {
				return s.fail("want ':' after object key")
			}
			s.pos++
			s.ws()
		}
		if s.pos >= len(s.data) {
			return s.fail("unexpected end of input")
		}
		switch c := s.data[s.pos]; c {
		case '{', '[':
			if !s.skip(depth + 1) {
				return false
			}
		case '"':
			if _, ok := s.skipStr(); !ok {
				return false
			}
		default:
			if !s.value() {
				return false
			}
		}
		s.ws()
		if s.pos >= len(s.data) {
			return s.fail("unexpected end of input")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.ws()
		case closeCh:
			s.pos++
			return true
		default:
			return s.fail("want ',' or %q", closeCh)
		}
	}
}

// skipStr validates a string without decoding it.
func (s *Scanner) skipStr() (int, bool) {
	end, ok := s.findEnd(s.pos + 1)
	if !ok {
		return 0, false
	}
	s.pos = end + 1
	return end, true
}
