package state

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/riffle-dev/riffle/arrowexec"
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
}

// Len returns the number of rows.
func (k *Keys) Len() int { return len(k.Hashes) }

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

// EncodeKeys resets k and fills it with one row per row of the key columns:
// the hash from arrowexec.HashColumns (the one hash exchanges route by) and
// an order-preserving encoding of the column values, with no namespace.
// Supported types: signed and unsigned integers, float32/64, boolean,
// string, binary, timestamp, date32/64. Nulls sort first.
func EncodeKeys(cols []arrow.Array, k *Keys) error {
	if len(cols) == 0 {
		return fmt.Errorf("%w: EncodeKeys: no key columns", ErrInvalidOptions)
	}
	n := cols[0].Len()
	k.Reset()
	if cap(k.Hashes) < n {
		k.Hashes = make([]uint64, n)
	}
	k.Hashes = k.Hashes[:n]
	if err := arrowexec.HashColumns(cols, k.Hashes); err != nil {
		return fmt.Errorf("state: EncodeKeys: %w", err)
	}
	for i := 0; i < n; i++ {
		for _, c := range cols {
			var err error
			k.KeyData, err = appendColumnValue(k.KeyData, c, i)
			if err != nil {
				return err
			}
		}
		k.KeyOffsets = append(k.KeyOffsets, int32(len(k.KeyData)))
		k.NSOffsets = append(k.NSOffsets, 0)
	}
	return nil
}

func appendColumnValue(dst []byte, c arrow.Array, i int) ([]byte, error) {
	if c.IsNull(i) {
		return append(dst, 0), nil
	}
	dst = append(dst, 1)
	switch a := c.(type) {
	case *array.Int64:
		return Int64.Append(dst, a.Value(i)), nil
	case *array.Int32:
		return Int64.Append(dst, int64(a.Value(i))), nil
	case *array.Int16:
		return Int64.Append(dst, int64(a.Value(i))), nil
	case *array.Int8:
		return Int64.Append(dst, int64(a.Value(i))), nil
	case *array.Uint64:
		return binary.BigEndian.AppendUint64(dst, a.Value(i)), nil
	case *array.Uint32:
		return binary.BigEndian.AppendUint64(dst, uint64(a.Value(i))), nil
	case *array.Uint16:
		return binary.BigEndian.AppendUint64(dst, uint64(a.Value(i))), nil
	case *array.Uint8:
		return binary.BigEndian.AppendUint64(dst, uint64(a.Value(i))), nil
	case *array.Float64:
		return Float64.Append(dst, normFloat(a.Value(i))), nil
	case *array.Float32:
		return Float64.Append(dst, normFloat(float64(a.Value(i)))), nil
	case *array.Timestamp:
		return Int64.Append(dst, int64(a.Value(i))), nil
	case *array.Date32:
		return Int64.Append(dst, int64(a.Value(i))), nil
	case *array.Date64:
		return Int64.Append(dst, int64(a.Value(i))), nil
	case *array.Boolean:
		if a.Value(i) {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case *array.String:
		offs := a.ValueOffsets()
		return appendEscaped(dst, a.ValueBytes()[offs[i]-offs[0]:offs[i+1]-offs[0]]), nil
	case *array.Binary:
		return appendEscaped(dst, a.Value(i)), nil
	}
	return nil, fmt.Errorf("%w: EncodeKeys: unsupported key type %s", ErrInvalidOptions, c.DataType())
}

// normFloat makes equal keys encode equally, as arrowexec hashes them:
// -0 as +0, every NaN alike.
func normFloat(f float64) float64 {
	if f == 0 {
		return 0
	}
	if f != f {
		return math.NaN()
	}
	return f
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
