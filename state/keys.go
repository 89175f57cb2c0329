package state

import (
	"encoding/binary"
	"fmt"
)

// Keys is a batch of (hash, key, namespace) triples in Arrow binary layout,
// for the *Many methods: row i has hash Hashes[i], key
// KeyData[KeyOffsets[i]:KeyOffsets[i+1]] and namespace
// NSData[NSOffsets[i]:NSOffsets[i+1]] (empty: no namespace; NSOffsets may be
// left empty when no row has one). Build it with Append or EncodeKeys, or
// fill the slices directly; Reset keeps the buffers for the next batch.
type Keys struct {
	Hashes     []uint64
	KeyOffsets []int32
	KeyData    []byte
	NSOffsets  []int32
	NSData     []byte

	pos []int32 // EncodeKeys scratch
}

// Len returns the number of rows.
func (k *Keys) Len() int {
	if len(k.KeyOffsets) > 0 {
		return len(k.KeyOffsets) - 1
	}
	return len(k.Hashes)
}

// Key returns the key of row i.
func (k *Keys) Key(i int) []byte { return k.KeyData[k.KeyOffsets[i]:k.KeyOffsets[i+1]] }

// Namespace returns the namespace of row i (nil when NSOffsets is empty: no
// row has a namespace).
func (k *Keys) Namespace(i int) []byte {
	if len(k.NSOffsets) == 0 {
		return nil
	}
	return k.NSData[k.NSOffsets[i]:k.NSOffsets[i+1]]
}

// Reset empties k, keeping its buffers.
func (k *Keys) Reset() {
	k.Hashes = k.Hashes[:0]
	k.KeyOffsets = append(k.KeyOffsets[:0], 0)
	k.KeyData = k.KeyData[:0]
	k.NSOffsets = append(k.NSOffsets[:0], 0)
	k.NSData = k.NSData[:0]
}

// Append adds one row.
func (k *Keys) Append(hash uint64, key, ns []byte) {
	if len(k.KeyOffsets) == 0 {
		k.KeyOffsets = append(k.KeyOffsets, 0)
	}
	if len(k.NSOffsets) == 0 {
		k.NSOffsets = append(k.NSOffsets, 0)
	}
	k.Hashes = append(k.Hashes, hash)
	k.KeyData = append(k.KeyData, key...)
	k.KeyOffsets = append(k.KeyOffsets, int32(len(k.KeyData)))
	k.NSData = append(k.NSData, ns...)
	k.NSOffsets = append(k.NSOffsets, int32(len(k.NSData)))
}

func (k *Keys) check() error {
	n := len(k.Hashes)
	keysOK := len(k.KeyOffsets) == n+1 || n == 0 && len(k.KeyOffsets) == 0
	nsOK := len(k.NSOffsets) == n+1 || len(k.NSOffsets) == 0
	if !keysOK || !nsOK {
		return fmt.Errorf("%w: Keys: %d hashes, %d key offsets, %d namespace offsets", ErrInvalidOptions, n, len(k.KeyOffsets), len(k.NSOffsets))
	}
	return nil
}

// AppendWindow appends the namespace of the window [start, end) to dst.
// Windows sort by end, then start, so the windows of a key iterate in firing
// order.
func AppendWindow(dst []byte, start, end int64) []byte {
	dst = Int64.Append(dst, end)
	return Int64.Append(dst, start)
}

// DecodeWindow decodes a namespace written by AppendWindow.
func DecodeWindow(ns []byte) (start, end int64, err error) {
	if len(ns) != 16 {
		return 0, 0, fmt.Errorf("%w: window namespace: %d bytes, want 16", ErrCodec, len(ns))
	}
	end, _ = Int64.Decode(ns[:8])
	start, _ = Int64.Decode(ns[8:])
	return start, end, nil
}

// Escaping: 0x00 -> 0x00 0xff, terminator 0x00 0x01. Order preserving and
// self-delimiting.
const (
	escByte   = 0x00
	escEscape = 0xff
	escTerm   = 0x01
)

func appendEscaped(dst, b []byte) []byte {
	for {
		i := indexZero(b)
		if i < 0 {
			dst = append(dst, b...)
			break
		}
		dst = append(dst, b[:i]...)
		dst = append(dst, escByte, escEscape)
		b = b[i+1:]
	}
	return append(dst, escByte, escTerm)
}

func indexZero(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// decodeEscaped decodes one escaped component from the front of b, appending
// the raw bytes to dst; it returns the extended dst and the rest of b.
func decodeEscaped(dst, b []byte) ([]byte, []byte, error) {
	for {
		i := indexZero(b)
		if i < 0 || i+1 >= len(b) {
			return dst, nil, fmt.Errorf("%w: malformed key component", ErrCorrupt)
		}
		dst = append(dst, b[:i]...)
		switch b[i+1] {
		case escTerm:
			return dst, b[i+2:], nil
		case escEscape:
			dst = append(dst, 0)
			b = b[i+2:]
		default:
			return dst, nil, fmt.Errorf("%w: malformed key component", ErrCorrupt)
		}
	}
}

// Entry key layout: kg(2) | id(4) | esc(key) | esc(ns) | mapkey.
const prefixLen = 6

func appendPrefix(dst []byte, kg int, id uint32) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(kg))
	return binary.BigEndian.AppendUint32(dst, id)
}

func appendEntryKey(dst []byte, kg int, id uint32, key, ns []byte) []byte {
	dst = appendPrefix(dst, kg, id)
	dst = appendEscaped(dst, key)
	return appendEscaped(dst, ns)
}

// parsedKey is an entry key split into its parts; Key and NS alias a
// scratch buffer.
type parsedKey struct {
	kg     int
	id     uint32
	key    []byte
	ns     []byte
	mapKey []byte
}

func parseEntryKey(scratch []byte, k []byte) (parsedKey, []byte, error) {
	var p parsedKey
	if len(k) < prefixLen {
		return p, scratch, fmt.Errorf("%w: short entry key", ErrCorrupt)
	}
	p.kg = int(binary.BigEndian.Uint16(k))
	p.id = binary.BigEndian.Uint32(k[2:])
	scratch = scratch[:0]
	var rest []byte
	var err error
	scratch, rest, err = decodeEscaped(scratch, k[prefixLen:])
	if err != nil {
		return p, scratch, err
	}
	keyLen := len(scratch)
	scratch, rest, err = decodeEscaped(scratch, rest)
	if err != nil {
		return p, scratch, err
	}
	p.key = scratch[:keyLen:keyLen]
	p.ns = scratch[keyLen:]
	p.mapKey = rest
	return p, scratch, nil
}

// prefixEnd returns the smallest key greater than every key with prefix p
// (p is never all 0xff in this layout: it starts with a uint16 key group
// below 65536 followed by more bytes, or ends in a terminator).
func prefixEnd(dst, p []byte) []byte {
	dst = append(dst, p...)
	for i := len(dst) - 1; i >= 0; i-- {
		if dst[i] != 0xff {
			dst[i]++
			return dst[:i+1]
		}
	}
	return nil // unbounded
}
