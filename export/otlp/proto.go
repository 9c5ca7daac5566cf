package otlp

import (
	"encoding/binary"
	"math"
)

// The protobuf wire format, as far as OTLP needs it: tags, varints,
// fixed64 and length-delimited fields. Messages are appended to byte
// slices; a nested message whose size is not known in advance is encoded
// into a scratch buffer first.

const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

func appendTag(b []byte, field, wt int) []byte {
	return appendVarint(b, uint64(field)<<3|uint64(wt))
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendFixed64(b []byte, field int, v uint64) []byte {
	b = appendTag(b, field, wireFixed64)
	return binary.LittleEndian.AppendUint64(b, v)
}

func appendUintField(b []byte, field int, v uint64) []byte {
	b = appendTag(b, field, wireVarint)
	return appendVarint(b, v)
}

// appendBytesField appends a length-delimited field: a string, bytes or
// an encoded message.
func appendBytesField[T string | []byte](b []byte, field int, v T) []byte {
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

// bytesFieldLen is the encoded size of a length-delimited field with a
// payload of n bytes and a tag below 16.
func bytesFieldLen(n int) int { return 1 + varintLen(uint64(n)) + n }

// AnyValue fields.
const (
	anyString = 1
	anyBool   = 2
	anyInt    = 3
	anyDouble = 4
	anyArray  = 5
	anyBytes  = 7
)

// appendKeyValue appends a KeyValue (field number field of the enclosing
// message) whose value is the already encoded AnyValue content av.
func appendKeyValue(b []byte, field int, key string, av []byte) []byte {
	kvLen := bytesFieldLen(len(key)) + bytesFieldLen(len(av))
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(kvLen))
	b = appendBytesField(b, 1, key)
	return appendBytesField(b, 2, av)
}

// attribute values, each the content of an AnyValue message.

func anyStr[T string | []byte](b []byte, s T) []byte { return appendBytesField(b, anyString, s) }

func anyBytesVal(b []byte, v []byte) []byte { return appendBytesField(b, anyBytes, v) }

func anyIntVal(b []byte, v int64) []byte {
	b = appendTag(b, anyInt, wireVarint)
	return appendVarint(b, uint64(v))
}

func anyBoolVal(b []byte, v bool) []byte {
	b = appendTag(b, anyBool, wireVarint)
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func anyDoubleVal(b []byte, v float64) []byte {
	return appendFixed64(b, anyDouble, math.Float64bits(v))
}

// readField reads one field from b: its number, wire type, the value of
// a varint or fixed field, or the payload of a length-delimited one, and
// the rest of b. It is used for the collector's answers.
func readField(b []byte) (num int, wt int, v uint64, data, rest []byte, ok bool) {
	tag, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, 0, nil, nil, false
	}
	b = b[n:]
	num, wt = int(tag>>3), int(tag&7)
	switch wt {
	case wireVarint:
		v, n = binary.Uvarint(b)
		if n <= 0 {
			return 0, 0, 0, nil, nil, false
		}
		return num, wt, v, nil, b[n:], true
	case wireFixed64:
		if len(b) < 8 {
			return 0, 0, 0, nil, nil, false
		}
		return num, wt, binary.LittleEndian.Uint64(b), nil, b[8:], true
	case wireFixed32:
		if len(b) < 4 {
			return 0, 0, 0, nil, nil, false
		}
		return num, wt, uint64(binary.LittleEndian.Uint32(b)), nil, b[4:], true
	case wireBytes:
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return 0, 0, 0, nil, nil, false
		}
		b = b[n:]
		return num, wt, 0, b[:l], b[l:], true
	}
	return 0, 0, 0, nil, nil, false
}

// partialSuccess reads the partial_success of an Export*ServiceResponse:
// the number of items the collector rejected and its message. The three
// signals' responses share the layout.
func partialSuccess(b []byte) (rejected int64, msg string) {
	for len(b) > 0 {
		num, wt, _, data, rest, ok := readField(b)
		if !ok {
			return rejected, msg
		}
		b = rest
		if num != 1 || wt != wireBytes {
			continue
		}
		for len(data) > 0 {
			n, w, v, d, r, ok := readField(data)
			if !ok {
				break
			}
			data = r
			switch {
			case n == 1 && w == wireVarint:
				rejected = int64(v)
			case n == 2 && w == wireBytes:
				msg = string(d)
			}
		}
	}
	return rejected, msg
}

// statusMessage reads the message of a google.rpc.Status, the body of an
// OTLP/HTTP error response.
func statusMessage(b []byte) string {
	for len(b) > 0 {
		num, wt, _, data, rest, ok := readField(b)
		if !ok {
			return ""
		}
		if num == 2 && wt == wireBytes {
			return string(data)
		}
		b = rest
	}
	return ""
}
