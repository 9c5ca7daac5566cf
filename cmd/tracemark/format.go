package main

import (
	"encoding/hex"
	"strconv"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/wire"
)

// clockConv turns record timestamps into wall-clock time.
type clockConv struct {
	offsetNS int64 // wall time of timestamp 0, in ns since the epoch
	freq     uint64
}

func newClockConv(c wire.Clock) clockConv {
	freq := c.Frequency
	if freq == 0 {
		freq = 1e9
	}
	return clockConv{offsetNS: c.OffsetSeconds*1e9 + int64(c.Offset*1e9/freq), freq: freq}
}

// wallNS is wall(ts).UnixNano(), without the time.Time for nanosecond
// clocks.
func (cc clockConv) wallNS(ts uint64) int64 {
	if cc.freq == 1e9 {
		return cc.offsetNS + int64(ts)
	}
	return cc.wall(ts).UnixNano()
}

func (cc clockConv) wall(ts uint64) time.Time {
	ns := int64(ts)
	if cc.freq != 1e9 {
		ns = int64(float64(ts) * 1e9 / float64(cc.freq))
	}
	return time.Unix(0, cc.offsetNS+ns)
}

// formatRecord renders a record as one line, in the spirit of trace_pipe:
//
//	15:04:05.123456 http:request_done: method="GET" status=200 latency=1.2ms
//
// String values are quoted, so that whatever the process put in them
// cannot fake other lines or drive the terminal.
func formatRecord(b []byte, cc clockConv, r *wire.Record) []byte {
	b = cc.wall(r.TS).AppendFormat(b, "15:04:05.000000")
	b = append(b, ' ')
	b = append(b, r.Class.Name...)
	b = append(b, ':')
	for i, f := range r.Class.Fields {
		b = append(b, ' ')
		b = append(b, f.Name...)
		b = append(b, '=')
		b = appendValue(b, f.Kind, r.Fields[i])
		if r.Truncated&(1<<i) != 0 {
			b = append(b, "[cut]"...)
		}
	}
	return append(b, '\n')
}

// appendValue formats a value according to its marker kind, which says
// more than its CTF type (durations and bools are integers in CTF).
func appendValue(b []byte, kind string, v ctf.Value) []byte {
	switch {
	case kind == "duration":
		return append(b, time.Duration(v.Int).String()...)
	case kind == "bool":
		return strconv.AppendBool(b, v.Uint != 0)
	case v.Kind == ctf.String:
		return strconv.AppendQuote(b, string(v.Bytes))
	case v.Kind == ctf.Bytes:
		const maxShown = 32
		b = append(b, "0x"...)
		b = hex.AppendEncode(b, v.Bytes[:min(len(v.Bytes), maxShown)])
		if len(v.Bytes) > maxShown {
			b = append(b, "..."...)
		}
		return b
	case v.Kind == ctf.Int:
		return strconv.AppendInt(b, v.Int, 10)
	case v.Kind == ctf.Uint:
		return strconv.AppendUint(b, v.Uint, 10)
	}
	return strconv.AppendFloat(b, v.Float, 'g', -1, 64)
}

// keyString formats a value as a key of a stats table: strings bare (but
// made safe), the rest as in lines.
func keyString(kind string, v ctf.Value) string {
	if v.Kind == ctf.String {
		return clean(string(v.Bytes))
	}
	return string(appendValue(nil, kind, v))
}

// fieldIndex returns the index of a field in a class, or -1.
func fieldIndex(c *wire.EventClass, name string) int {
	for i, f := range c.Fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}
