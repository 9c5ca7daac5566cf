package main

import (
	"bytes"
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
	"github.com/tracemark/tracemark/internal/evctx"
	"github.com/tracemark/tracemark/internal/wire"
)

// Context fields that record --context adds to every event, in the CTF
// stream event context, as lttng add-context does. The traced process
// records them (wire.RecordRequest.Context), after each record's header,
// where the stream event context goes: pid, procname and cpu from a block
// its session builds once per shard, the thread id read per event. So
// tracemark writes the packets as they come, except for tid in a process
// of another PID namespace, whose thread ids it maps to the host's in
// place (the process writes its own, vtid).
const (
	ctxPID      = evctx.PID
	ctxProcname = evctx.Procname
	ctxCPU      = evctx.CPU
	ctxTID      = evctx.TID
	ctxVTID     = evctx.VTID
)

// contextHelp lists the context fields for --context's help and errors.
const contextHelp = "pid (the process id it sees), procname (its program name), cpu (the Go P, the shard, that recorded the event: the trace's stream), " +
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

// errContextAgent explains the refusal of context fields by an agent of
// protocol 1.1 or older, which does not know RecordRequest.Context.
func errContextAgent(err error) error {
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeUnknownField && strings.Contains(we.Message, `"context"`) {
		return fmt.Errorf("--context: the process's agent predates context fields (it speaks tracemark protocol 1.1 or older; "+
			"they need 1.2): rebuild the program with this version of tracemark, or record without --context: %w", err)
	}
	return err
}

// eventContext is the stream event context of one trace: the context
// fields the records carry (wire.Hello.Context).
type eventContext struct {
	names   []string
	fields  []ctf.Field
	err     error             // the records' context is not the one asked for
	classes []*ctf.EventClass // by id, to walk the records (host)
	// host maps thread ids as the process sees them to the host's; nil
	// for a process in tracemark's PID namespace, where they are equal,
	// or without tid.
	host *tidMap
}

// newEventContext returns the context of a stream's trace, or nil for
// none: the fields its records carry, which must be those asked for
// (names) unless nothing was asked (a snapshot of a named session made
// with a context gets it).
func newEventContext(names []string, h wire.Hello) *eventContext {
	if len(names) == 0 && len(h.Context) == 0 {
		return nil
	}
	c := &eventContext{names: h.Context}
	if len(names) > 0 && !slices.Equal(names, h.Context) {
		c.err = fmt.Errorf("--context %s: process %d records the context %q", strings.Join(names, ","), h.PID, h.Context)
		return c
	}
	if c.fields, c.err = evctx.Fields(h.Context); c.err != nil {
		c.err = fmt.Errorf("process %d: %w", h.PID, c.err)
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

// check fails if the records' context is not the one asked for.
func (c *eventContext) check(wire.Hello) error {
	if c != nil {
		return c.err
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

// insert returns the records of a packet as the trace holds them: as they
// come, but for tid in a process of another PID namespace, which it maps
// to the host's id in place.
func (c *eventContext) insert(_ uint32, recs []byte) ([]byte, error) {
	if c.host == nil {
		return recs, nil
	}
	for pos := 0; pos < len(recs); {
		tid, fields, err := c.contextEnd(recs, pos)
		if err != nil {
			return nil, err
		}
		end, err := c.recordEnd(recs, pos, fields)
		if err != nil {
			return nil, err
		}
		p := recs[pos+tid:]
		binary.LittleEndian.PutUint32(p, c.host.tid(binary.LittleEndian.Uint32(p)))
		pos = end
	}
	return recs, nil
}

// contextEnd returns, for the record at recs[pos:], the offset of its tid
// and that of its first field, after the context.
func (c *eventContext) contextEnd(recs []byte, pos int) (tid, fields int, err error) {
	off := ctf.EventHeaderSize
	for _, n := range c.names {
		if n == ctxTID {
			tid = off
		}
		if n == ctxProcname {
			z := -1
			if pos+off < len(recs) {
				z = bytes.IndexByte(recs[pos+off:], 0)
			}
			if z < 0 {
				return 0, 0, fmt.Errorf("context: record at %d: procname without its NUL", pos)
			}
			off += z + 1
			continue
		}
		off += 4
	}
	if len(recs)-pos < off {
		return 0, 0, fmt.Errorf("context: truncated record context at %d", pos)
	}
	return tid, off, nil
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
// thread id not looked up before makes it read the task directory again
// at once; a thread that ended before any scan saw it maps to 0, and is
// looked for again at most every tidRescan.
type tidMap struct {
	task    string // /proc/PID/task
	ids     map[uint32]uint32
	missed  map[uint32]bool // looked up and not found by a scan
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
	// A thread never looked up is read at once: it may have started
	// since the last scan. One that a scan missed (it ended before any
	// scan saw it) is looked for again at most every tidRescan.
	if !t.missed[vtid] || time.Since(t.scanned) >= tidRescan {
		t.scan()
		if id, ok := t.ids[vtid]; ok {
			return id
		}
		if t.missed == nil {
			t.missed = map[uint32]bool{}
		}
		t.missed[vtid] = true
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
