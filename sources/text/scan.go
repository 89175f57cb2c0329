package text

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Records and splits.
//
// A record ends at the first '\n' outside quotes: for CSV, the first '\n'
// after which the record holds an even number of '"' (a doubled quote
// inside a quoted field counts twice, so parity is all it takes); for
// JSONL, the first '\n' (JSON strings cannot hold a raw newline). The
// pre-scan that cuts files into splits and the readers use this same rule,
// so every split starts and ends on a record boundary. A record that is
// not valid RFC 4180 (a quote inside an unquoted field, text after a
// closing quote, an unterminated quote at the end of the file) is bad as a
// whole; the next record starts after its '\n' all the same.

var bom = []byte{0xEF, 0xBB, 0xBF}

// recordEnd finds the end of the record starting at buf[i]: the index of
// its '\n' and the number of '\n' inside quotes before it. found is false
// when buf holds no complete record.
func recordEnd(buf []byte, i int, quoting bool) (nl, inner int, found bool) {
	p, odd := i, false
	for {
		k := bytes.IndexByte(buf[p:], '\n')
		if k < 0 {
			return len(buf), inner, false
		}
		if quoting && bytes.Count(buf[p:p+k], quote)&1 == 1 {
			odd = !odd
		}
		if !odd {
			return p + k, inner, true
		}
		inner++
		p += k + 1
	}
}

var quote = []byte{'"'}

// field is one CSV field: buf[off:off+n], or arena[-1-off:][:n] when off is
// negative (a quoted field with doubled quotes). n is -1 for an unquoted
// empty field.
type field struct {
	off, n int32
}

// splitCSV splits the record buf[s:e] (no line break) into fields, appended
// to out[:0]. Doubled quotes are undone into arena.
func splitCSV(buf []byte, s, e int, delim byte, out []field, arena []byte) ([]field, []byte, error) {
	out = out[:0]
	if bytes.IndexByte(buf[s:e], '"') < 0 {
		for {
			k := bytes.IndexByte(buf[s:e], delim)
			if k < 0 {
				out = append(out, mkField(s, e))
				return out, arena, nil
			}
			out = append(out, mkField(s, s+k))
			s += k + 1
		}
	}
	i := s
	for {
		if i < e && buf[i] == '"' {
			i++
			start, esc, closed := i, false, false
			for i < e {
				if buf[i] == '"' {
					if i+1 < e && buf[i+1] == '"' {
						esc = true
						i += 2
						continue
					}
					closed = true
					break
				}
				i++
			}
			if !closed {
				return out, arena, fmt.Errorf("%w: unterminated quoted field %d", ErrMalformed, len(out)+1)
			}
			if esc {
				o := len(arena)
				for j := start; j < i; j++ {
					arena = append(arena, buf[j])
					if buf[j] == '"' {
						j++
					}
				}
				out = append(out, field{off: int32(-1 - o), n: int32(len(arena) - o)})
			} else {
				out = append(out, field{off: int32(start), n: int32(i - start)})
			}
			i++ // closing quote
			if i < e && buf[i] != delim {
				return out, arena, fmt.Errorf("%w: text after the closing quote of field %d", ErrMalformed, len(out))
			}
		} else {
			end := e
			if k := bytes.IndexByte(buf[i:e], delim); k >= 0 {
				end = i + k
			}
			if bytes.IndexByte(buf[i:end], '"') >= 0 {
				return out, arena, fmt.Errorf("%w: quote inside unquoted field %d", ErrMalformed, len(out)+1)
			}
			out = append(out, mkField(i, end))
			i = end
		}
		if i >= e {
			return out, arena, nil
		}
		i++ // delimiter
		if i == e {
			out = append(out, mkField(e, e))
			return out, arena, nil
		}
	}
}

func mkField(s, e int) field {
	if s == e {
		return field{off: int32(s), n: -1}
	}
	return field{off: int32(s), n: int32(e - s)}
}

// trimCR drops a '\r' before the end of a record (CRLF line breaks).
func trimCR(buf []byte, s, e int) int {
	if e > s && buf[e-1] == '\r' {
		return e - 1
	}
	return e
}

// split is one unit of work: the records of file in [start, end), the first
// of them on line line.
type split struct {
	file       int
	start, end int64
	line       int64
}

// scanBlock is the read size of the pre-scan.
const scanBlock = 1 << 20

// scanFile cuts one file into splits of about size bytes that start and end
// on record boundaries, after the header when there is one. It reads the
// file once, counting line breaks (and quotes, for CSV), so each split
// knows the line it starts on. It returns the header's fields (nil without
// header), the splits and the file's size.
func (s *Source) scanFile(fi int, path string) (header []string, splits []split, size int64, err error) {
	o := &s.opts
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, 0, s.fileErr(path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, 0, s.fileErr(path, err)
	}
	if st.IsDir() {
		return nil, nil, 0, &Error{Format: o.Format, File: path, Err: fmt.Errorf("is a directory")}
	}
	size = st.Size()
	quoting := o.Format == FormatCSV
	var start, lines int64 // first byte of the data; line breaks before it
	head := make([]byte, min(size, scanBlock))
	if _, err := io.ReadFull(f, head); err != nil {
		return nil, nil, 0, s.fileErr(path, err)
	}
	if bytes.HasPrefix(head, bom) {
		start = int64(len(bom))
	}
	if o.Header {
		// The header must fit in the first block.
		nl, inner, found := recordEnd(head, int(start), quoting)
		if !found && int64(len(head)) < size {
			return nil, nil, 0, &Error{Format: o.Format, File: path, Line: 1, Err: fmt.Errorf("header longer than %d bytes", scanBlock)}
		}
		e := trimCR(head, int(start), nl)
		fields, arena, err := splitCSV(head, int(start), e, o.Delimiter, nil, nil)
		if err != nil {
			return nil, nil, 0, &Error{Format: o.Format, File: path, Line: 1, Err: fmt.Errorf("header: %w", err)}
		}
		if e > int(start) {
			for _, fl := range fields {
				header = append(header, string(fieldBytes(head, arena, fl)))
			}
		}
		start, lines = int64(nl), int64(inner)
		if found {
			start, lines = start+1, lines+1
		}
	}
	// Scan from start, cutting at the first record boundary past each
	// target.
	segStart, segLine := start, lines+1
	target := segStart + o.SplitSize
	odd := false
	buf := make([]byte, scanBlock)
	for off := start; off < size; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && err != io.EOF {
			return nil, nil, 0, s.fileErr(path, err)
		}
		if n == 0 {
			return nil, nil, 0, &Error{Format: o.Format, File: path, Err: fmt.Errorf("file shrank while reading (size %d, read %d)", size, off)}
		}
		b := buf[:n]
		for i := 0; i < len(b); {
			if off+int64(len(b)) <= target { // no cut in the rest of the block
				if quoting && bytes.Count(b[i:], quote)&1 == 1 {
					odd = !odd
				}
				lines += int64(bytes.Count(b[i:], nl))
				break
			}
			if j := int(max(target-off, int64(i))); j > i { // up to the target
				if quoting && bytes.Count(b[i:j], quote)&1 == 1 {
					odd = !odd
				}
				lines += int64(bytes.Count(b[i:j], nl))
				i = j
			}
			k := bytes.IndexByte(b[i:], '\n')
			if k < 0 {
				if quoting && bytes.Count(b[i:], quote)&1 == 1 {
					odd = !odd
				}
				break
			}
			if quoting && bytes.Count(b[i:i+k], quote)&1 == 1 {
				odd = !odd
			}
			lines++
			i += k + 1
			if !odd {
				cut := off + int64(i)
				if cut < size {
					splits = append(splits, split{file: fi, start: segStart, end: cut, line: segLine})
					segStart, segLine = cut, lines+1
				}
				target = segStart + o.SplitSize
			}
		}
		off += int64(n)
	}
	if segStart < size {
		splits = append(splits, split{file: fi, start: segStart, end: size, line: segLine})
	}
	return header, splits, size, nil
}

var nl = []byte{'\n'}

func fieldBytes(buf, arena []byte, f field) []byte {
	if f.n < 0 {
		return nil
	}
	if f.off < 0 {
		o := -1 - f.off
		return arena[o : o+f.n]
	}
	return buf[f.off : f.off+f.n]
}
