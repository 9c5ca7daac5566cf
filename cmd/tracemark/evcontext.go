package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/wire"
)

// Context fields that record --context adds to every event, in the CTF
// stream event context. pid, procname and cpu are the same for every event
// of a packet (the process, and the shard the packet comes from), so
// tracemark adds them as it writes the packet: they cost the traced
// process nothing. tid and vtid, the thread that fired the event, are
// recorded by the process (wire.RecordRequest.ThreadID), after each
// record's header, where the stream event context goes.
const (
	ctxPID      = "pid"
	ctxProcname = "procname"
	ctxCPU      = "cpu"
	ctxTID      = "tid"
	ctxVTID     = "vtid"
)

// contextHelp lists the context fields for --context's help and errors.
const contextHelp = "pid (the process id it sees), procname (its program name), cpu (the Go P, the shard, that recorded the event), " +
	"vtid (the id of the thread that fired the event, as the process sees it: gettid) and tid (that thread's id on the host, " +
	"where tracemark runs: vtid mapped through /proc for a process in a container)"

// parseContext interprets --context: a comma-separated list (repeatable).
func parseContext(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		for name := range strings.SplitSeq(a, ",") {
			name = strings.TrimSpace(name)
			switch name {
			case "":
				continue
			case ctxPID, ctxProcname, ctxCPU, ctxTID, ctxVTID:
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

// wantsThreadID reports whether the context fields need the process to
// record thread ids.
func wantsThreadID(names []string) bool {
	return slices.Contains(names, ctxTID) || slices.Contains(names, ctxVTID)
}

// errThreadIDAgent explains the refusal of thread ids by an agent of
// protocol 1.1 or older, which does not know RecordRequest.ThreadID.
func errThreadIDAgent(err error) error {
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeUnknownField && strings.Contains(we.Message, "thread_id") {
		return fmt.Errorf("--context tid and vtid: the process's agent predates thread ids (it speaks tracemark protocol 1.1 or older; "+
			"they need 1.2): rebuild the program with this version of tracemark, or record without tid and vtid: %w", err)
	}
	return err
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
	// tid: the records carry the thread id after their header
	// (wire.Hello.ThreadID); asis: and it is the whole context, so the
	// records are written as they come.
	tid, asis bool
	slots     []tidSlot // where tid and vtid go in block
	// host maps thread ids as the process sees them to the host's; nil
	// for a process in tracemark's PID namespace, where they are equal.
	host *tidMap
}

// newEventContext returns the context of a stream's trace, or nil for no
// fields. A stream whose records carry thread ids (a named session made
// with them) gets vtid if it asked for nothing else.
func newEventContext(names []string, h wire.Hello) *eventContext {
	if h.ThreadID && !wantsThreadID(names) {
		names = append(slices.Clone(names), ctxVTID)
	}
	if len(names) == 0 {
		return nil
	}
	c := &eventContext{names: names, pid: int32(h.PID), program: clean(h.Program), tid: h.ThreadID}
	c.asis = c.tid && len(names) == 1 && names[0] == ctxVTID
	for _, n := range names {
		switch n {
		case ctxPID:
			c.fields = append(c.fields, ctf.Field{Name: n, Type: ctf.FieldType{Kind: ctf.Int, Bits: 32}})
		case ctxProcname:
			c.fields = append(c.fields, ctf.Field{Name: n, Type: ctf.FieldType{Kind: ctf.String}})
		case ctxCPU, ctxTID, ctxVTID:
			c.fields = append(c.fields, ctf.Field{Name: n, Type: ctf.FieldType{Kind: ctf.Uint, Bits: 32}})
		}
	}
	return c
}

// inNamespace says where the process is: hostPID is its pid in
// tracemark's PID namespace (0 if unknown: taken to be the same
// namespace), nsPID the one it sees. In another namespace, tid maps the
// thread ids it records through /proc/hostPID/task.
func (c *eventContext) inNamespace(hostPID, nsPID int) *eventContext {
	if c != nil && c.host == nil && hostPID != 0 && hostPID != nsPID && slices.Contains(c.names, ctxTID) {
		c.host = newTIDMap(hostPID)
	}
	return c
}

// check fails if the context needs thread ids that the stream's records
// do not carry (an agent that ignored the request).
func (c *eventContext) check(h wire.Hello) error {
	if c != nil && wantsThreadID(c.names) && !h.ThreadID {
		return fmt.Errorf("--context tid and vtid: process %d did not record thread ids", h.PID)
	}
	return nil
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
	if c.asis {
		return recs, nil
	}
	c.block = c.block[:0]
	c.slots = c.slots[:0]
	for _, n := range c.names {
		switch n {
		case ctxPID:
			c.block = binary.LittleEndian.AppendUint32(c.block, uint32(c.pid))
		case ctxProcname:
			c.block = append(append(c.block, c.program...), 0)
		case ctxCPU:
			c.block = binary.LittleEndian.AppendUint32(c.block, stream)
		case ctxTID, ctxVTID:
			c.slots = append(c.slots, tidSlot{off: len(c.block), host: n == ctxTID})
			c.block = append(c.block, 0, 0, 0, 0)
		}
	}
	// One pass; the records keep their bytes, so the output grows by the
	// context alone (a tenth per field is a guess that spares most
	// reallocations).
	c.buf = slices.Grow(c.buf[:0], len(recs)+len(recs)/8*len(c.block)/ctf.EventHeaderSize+len(c.block))
	if !c.tid {
		for pos := 0; pos < len(recs); {
			end, err := c.recordEnd(recs, pos, ctf.EventHeaderSize)
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
	// The records carry the thread id, which moves into the block: as
	// vtid, and as tid mapped to the host's.
	const fields = ctf.EventHeaderSize + 4
	for pos := 0; pos < len(recs); {
		end, err := c.recordEnd(recs, pos, fields)
		if err != nil {
			return nil, err
		}
		vtid := binary.LittleEndian.Uint32(recs[pos+ctf.EventHeaderSize:])
		c.buf = append(c.buf, recs[pos:pos+ctf.EventHeaderSize]...)
		b := len(c.buf)
		c.buf = append(c.buf, c.block...)
		for _, sl := range c.slots {
			id := vtid
			if sl.host {
				id = c.host.tid(vtid)
			}
			binary.LittleEndian.PutUint32(c.buf[b+sl.off:], id)
		}
		c.buf = append(c.buf, recs[pos+fields:end]...)
		pos = end
	}
	return c.buf, nil
}

// tidSlot is where a thread id goes in the context block.
type tidSlot struct {
	off  int
	host bool // tid, the host's; else vtid
}

// recordEnd returns where the record at recs[pos:] ends; its fields start
// at offset fields.
func (c *eventContext) recordEnd(recs []byte, pos, fields int) (int, error) {
	if len(recs)-pos < fields {
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
	n, err := ctf.RecordSizeFrom(recs[pos:], ec, 0, fields)
	if err != nil {
		return 0, fmt.Errorf("context: record of %s at %d: %w", ec.Name, pos, err)
	}
	return pos + n, nil
}

// tidMap maps the thread ids that a process in another PID namespace sees
// to those of tracemark's namespace: the NSpid line of
// /proc/PID/task/TID/status lists a thread's id in each namespace it is
// in, from tracemark's (the TID of the path) to the process's own. A
// thread unknown to the map makes it read the task directory again, at
// most every tidRescan; a thread that ended before it was seen maps to 0.
type tidMap struct {
	task    string // /proc/PID/task
	ids     map[uint32]uint32
	scanned time.Time
}

// tidRescan bounds how often a tidMap reads the task directory again for
// threads it does not know.
const tidRescan = 100 * time.Millisecond

func newTIDMap(hostPID int) *tidMap {
	return newTIDMapAt(filepath.Join("/proc", strconv.Itoa(hostPID), "task"))
}

// newTIDMapAt returns the map of the threads in task, a /proc/PID/task.
func newTIDMapAt(task string) *tidMap {
	t := &tidMap{task: task, ids: map[uint32]uint32{}}
	t.scan()
	return t
}

// tid returns the host's id of the thread the process calls vtid; a nil
// map returns vtid (the same namespace).
func (t *tidMap) tid(vtid uint32) uint32 {
	if t == nil {
		return vtid
	}
	if id, ok := t.ids[vtid]; ok {
		return id
	}
	if time.Since(t.scanned) >= tidRescan {
		t.scan()
		if id, ok := t.ids[vtid]; ok {
			return id
		}
	}
	return 0
}

// scan reads the NSpid line of every thread of the process.
func (t *tidMap) scan() {
	t.scanned = time.Now()
	ents, err := os.ReadDir(t.task)
	if err != nil {
		return
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(t.task, e.Name(), "status"))
		if err != nil {
			continue // ended meanwhile
		}
		host, inner, ok := parseNSpid(b)
		if ok {
			t.ids[inner] = host
		}
	}
}

// parseNSpid returns the first and last ids of the NSpid line of a
// /proc status file.
func parseNSpid(status []byte) (first, last uint32, ok bool) {
	for line := range strings.SplitSeq(string(status), "\n") {
		rest, found := strings.CutPrefix(line, "NSpid:")
		if !found {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, 0, false
		}
		a, err1 := strconv.ParseUint(f[0], 10, 32)
		b, err2 := strconv.ParseUint(f[len(f)-1], 10, 32)
		return uint32(a), uint32(b), err1 == nil && err2 == nil
	}
	return 0, 0, false
}
