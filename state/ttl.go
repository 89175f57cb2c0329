package state

import (
	"encoding/binary"
	"fmt"
	"time"
)

func durationOf(ns int64) time.Duration { return time.Duration(ns) }

const expiryLen = 8

// appendExpiry writes the expiry header of a TTL state.
func appendExpiry(dst []byte, expireAt int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(expireAt))
}

// splitValue strips the expiry header of a value or map entry; live is false
// when it expired.
func splitValue(ttl bool, raw []byte, now int64) (payload []byte, live bool, err error) {
	if !ttl {
		return raw, true, nil
	}
	if len(raw) < expiryLen {
		return nil, false, fmt.Errorf("%w: value shorter than its expiry header", ErrCodec)
	}
	return raw[expiryLen:], int64(binary.BigEndian.Uint64(raw)) > now, nil
}

// appendFrame appends one list element frame: uvarint(n) | [expiry] | payload.
func appendFrame(dst []byte, ttl bool, expireAt int64, payload []byte) []byte {
	n := len(payload)
	if ttl {
		n += expiryLen
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	if ttl {
		dst = appendExpiry(dst, expireAt)
	}
	return append(dst, payload...)
}

// nextFrame splits the first frame off a list value.
func nextFrame(ttl bool, raw []byte, now int64) (payload []byte, live bool, rest []byte, err error) {
	n, w := binary.Uvarint(raw)
	if w <= 0 || uint64(len(raw)-w) < n {
		return nil, false, nil, fmt.Errorf("%w: malformed list frame", ErrCodec)
	}
	frame, rest := raw[w:w+int(n)], raw[w+int(n):]
	payload, live, err = splitValue(ttl, frame, now)
	return payload, live, rest, err
}

// liveBytes returns the stored form of raw without its expired parts (nil if
// nothing is live), and how many entries or list elements expired. It
// returns raw itself when nothing expired; otherwise the result lives in
// *scratch.
func liveBytes(info StateInfo, raw []byte, now int64, scratch *[]byte) ([]byte, int, error) {
	ttl := info.TTL > 0
	if !ttl {
		return raw, 0, nil
	}
	switch info.Kind {
	case KindList:
		expired := 0
		out := (*scratch)[:0]
		for rest := raw; len(rest) > 0; {
			start := rest
			_, live, r, err := nextFrame(true, rest, now)
			if err != nil {
				return nil, 0, err
			}
			rest = r
			if live {
				out = append(out, start[:len(start)-len(rest)]...)
			} else {
				expired++
			}
		}
		*scratch = out
		switch {
		case expired == 0:
			return raw, 0, nil
		case len(out) == 0:
			return nil, expired, nil
		}
		return out, expired, nil
	default:
		_, live, err := splitValue(true, raw, now)
		if err != nil {
			return nil, 0, err
		}
		if !live {
			return nil, 1, nil
		}
		return raw, 0, nil
	}
}
