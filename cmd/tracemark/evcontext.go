package main

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/wire"
)

// Context fields that record --context adds to every event, in the CTF
// stream event context. They are the same for every event of a packet
// (the process, and the shard the packet comes from), so tracemark adds
// them as it writes the packet: they cost the traced process nothing.
const (
	ctxPID      = "pid"
	ctxProcname = "procname"
	ctxCPU      = "cpu"
)

// contextHelp lists the context fields for --context's help and errors.
const contextHelp = "pid (the process id it sees), procname (its program name), cpu (the Go P, the shard, that recorded the event)"

// errNoTID explains why --context tid and vtid are refused, and what to
// use instead.
func errNoTID(name string) error {
	return fmt.Errorf("--context %s: not available: an event fires on a goroutine, which the Go scheduler moves "+
		"between OS threads, so the thread says little about the event's origin; reading it would cost a gettid "+
		"system call per event (Go keeps no thread id the marker could read cheaply), and the goroutine id needs the "+
		"runtime's internals. Instead: record with --go-trace, whose execution trace shows each event on the "+
		"goroutine that fired it and the thread that goroutine ran on (go tool trace); give events a request, trace "+
		"or span id field to follow one request; or add cpu, the Go P that recorded the event (choose from %s)", name, contextHelp)
}

// parseContext interprets --context: a comma-separated list (repeatable).
func parseContext(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		for name := range strings.SplitSeq(a, ",") {
			name = strings.TrimSpace(name)
			switch name {
			case "":
				continue
			case ctxPID, ctxProcname, ctxCPU:
			case "tid", "vtid":
				return nil, usagef("%w", errNoTID(name))
			default:
				return nil, usagef("--context %q: unknown field (choose from %s)", name, contextHelp)
			}
			for _, o := range out {
				if o == name {
					return nil, usagef("--context %s: given twice", name)
				}
			}
			out = append(out, name)
		}
	}
	return out, nil
}

// eventContext adds the context fields to the records of one trace.
type eventContext struct {
	names   []string
	fields  []ctf.Field
	pid     int32
	program string
	classes []*ctf.EventClass // by id
	block   []byte            // the context of the current packet
	buf     []byte            // the rewritten records, reused
}

// newEventContext returns the context of a stream's trace, or nil for no
// fields.
func newEventContext(names []string, h wire.Hello) *eventContext {
	if len(names) == 0 {
		return nil
	}
	c := &eventContext{names: names, pid: int32(h.PID), program: clean(h.Program)}
	for _, n := range names {
		switch n {
		case ctxPID:
			c.fields = append(c.fields, ctf.Field{Name: n, Type: ctf.FieldType{Kind: ctf.Int, Bits: 32}})
		case ctxProcname:
			c.fields = append(c.fields, ctf.Field{Name: n, Type: ctf.FieldType{Kind: ctf.String}})
		case ctxCPU:
			c.fields = append(c.fields, ctf.Field{Name: n, Type: ctf.FieldType{Kind: ctf.Uint, Bits: 32}})
		}
	}
	return c
}

func (c *eventContext) addClasses(ecs []ctf.EventClass) {
	for i := range ecs {
		ec := ecs[i]
		ids := []uint16{ec.ID}
		if ec.Twin() {
			ids = append(ids, ec.TruncatedID) // truncated records
		}
		for _, id := range ids {
			if int(id) >= len(c.classes) {
				c.classes = append(c.classes, make([]*ctf.EventClass, int(id)+1-len(c.classes))...)
			}
			c.classes[id] = &ec
		}
	}
}

// insert returns the records of a packet with the context after each
// record's header.
func (c *eventContext) insert(stream uint32, recs []byte) ([]byte, error) {
	c.block = c.block[:0]
	for _, n := range c.names {
		switch n {
		case ctxPID:
			c.block = binary.LittleEndian.AppendUint32(c.block, uint32(c.pid))
		case ctxProcname:
			c.block = append(append(c.block, c.program...), 0)
		case ctxCPU:
			c.block = binary.LittleEndian.AppendUint32(c.block, stream)
		}
	}
	// One pass; the records keep their bytes, so the output grows by the
	// context alone (a tenth per field is a guess that spares most
	// reallocations).
	c.buf = slices.Grow(c.buf[:0], len(recs)+len(recs)/8*len(c.block)/ctf.EventHeaderSize+len(c.block))
	for pos := 0; pos < len(recs); {
		end, err := c.recordEnd(recs, pos)
		if err != nil {
			return nil, err
		}
		c.buf = append(c.buf, recs[pos:pos+ctf.EventHeaderSize]...)
		c.buf = append(c.buf, c.block...)
		c.buf = append(c.buf, recs[pos+ctf.EventHeaderSize:end]...)
		pos = end
	}
	return c.buf, nil
}

// recordEnd returns where the record at recs[pos:] ends.
func (c *eventContext) recordEnd(recs []byte, pos int) (int, error) {
	if len(recs)-pos < ctf.EventHeaderSize {
		return 0, fmt.Errorf("context: truncated record header at %d", pos)
	}
	id := binary.LittleEndian.Uint16(recs[pos:])
	var ec *ctf.EventClass
	if int(id) < len(c.classes) {
		ec = c.classes[id]
	}
	if ec == nil {
		return 0, fmt.Errorf("context: record of unknown class %d", id)
	}
	n, err := ctf.RecordSize(recs[pos:], ec)
	if err != nil {
		return 0, fmt.Errorf("context: record of %s at %d: %w", ec.Name, pos, err)
	}
	return pos + n, nil
}
