package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/evctx"
)

// ContextField is a field of the stream event context: what a session
// records after every record's header, as LTTng's add-context does, so
// that every trace reader sees it with the event (WithEventContext). Its
// value is the field's name in the trace metadata.
type ContextField string

// The context fields.
const (
	// ContextPID is the process id as the process sees it (getpid(2)),
	// an int32.
	ContextPID ContextField = evctx.PID
	// ContextProcname is the program name (the base name of os.Args[0],
	// at most MaxProcname bytes), a NUL-terminated string.
	ContextProcname ContextField = evctx.Procname
	// ContextCPU is the number of the shard, hence of the trace stream,
	// that recorded the event: the Go P (GOMAXPROCS shards, then the
	// overflow shard for Ps added later), a uint32.
	ContextCPU ContextField = evctx.CPU
	// ContextVTID is the id of the OS thread that fired the event as the
	// process sees it (gettid(2)), a uint32, LTTng's vtid.
	ContextVTID ContextField = evctx.VTID
	// ContextTID is the thread's id on the host, a uint32, LTTng's tid.
	// The process writes the id it sees, the same in the host's PID
	// namespace; a reader of a process in another namespace maps it
	// (tracemark record does, through /proc).
	ContextTID ContextField = evctx.TID
)

// MaxProcname caps ContextProcname, in bytes.
const MaxProcname = 64

// WithEventContext records fields after every record's header, in that
// order: the trace's stream event context. The process id, program name
// and shard are the same for every event of a shard, so the session
// builds that block once per shard and each event copies it: a
// nanosecond or less per field. A thread id costs each event one or two
// nanoseconds more on linux/amd64 and linux/arm64, where the id is read
// from the Go runtime's record of the thread (its M) at an offset that a
// self-check finds and verifies when the first such session is created;
// a system call elsewhere on Linux. New fails with an error wrapping
// ErrNoThreadID where the id cannot be had (other systems, or a Go
// runtime whose layout the self-check does not recognise). A field
// unknown or given twice is invalid; no fields records no context.
//
// A goroutine is not a thread: the scheduler moves goroutines between
// threads, so the thread id says which thread ran the event, which is
// what tools that match events with the kernel's view (perf, LTTng's
// kernel tracer, /proc) need; a goroutine locked to its thread
// (runtime.LockOSThread) keeps one id.
func WithEventContext(fields ...ContextField) Option {
	fields = slices.Clone(fields)
	return optionFunc(func(c *config) {
		if _, err := evctx.Fields(contextNames(fields)); err != nil {
			c.invalid("WithEventContext", "%v", err)
			return
		}
		c.Context = fields
	})
}

// contextNames returns the names of fields.
func contextNames(fields []ContextField) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = string(f)
	}
	return out
}

// ThreadID reports whether the context holds a thread id.
func (c *config) ThreadID() bool {
	return slices.ContainsFunc(c.Context, func(f ContextField) bool { return evctx.IsThread(string(f)) })
}

// contextFields returns the stream event context of the session's traces.
func (c *config) contextFields() []ctf.Field {
	fs, _ := evctx.Fields(contextNames(c.Context)) // checked by WithEventContext
	return fs
}

// procname is the program name that ContextProcname records, without
// NULs.
var procname = func() string {
	p := strings.ReplaceAll(filepath.Base(os.Args[0]), "\x00", "")
	if len(p) > MaxProcname {
		p = p[:MaxProcname]
	}
	return p
}()

// contextSize returns the size of the context block of fields.
func contextSize(fields []ContextField) int {
	n := 0
	for _, f := range fields {
		if f == ContextProcname {
			n += len(procname) + 1
		} else {
			n += 4
		}
	}
	return n
}

// ctxLayout is where the context block's thread ids go, which encode
// writes per event; the rest of the block is the shard's constant.
type ctxLayout struct {
	size uint8    // the block's size, after the header
	ntid uint8    // thread id slots
	tid  [2]uint8 // their offsets in the block
}

// errContextTooLong is not reached: fields are distinct, so the block
// holds at most four words and a capped name.
var errContextTooLong = errors.New("context block too long")

// newCtxLayout returns the layout of the context block of fields.
func newCtxLayout(fields []ContextField) (ctxLayout, error) {
	var l ctxLayout
	off := 0
	for _, f := range fields {
		if evctx.IsThread(string(f)) {
			l.tid[l.ntid] = uint8(off)
			l.ntid++
		}
		if f == ContextProcname {
			off += len(procname) + 1
		} else {
			off += 4
		}
	}
	if off > 255 {
		return ctxLayout{}, fmt.Errorf("%w: %d bytes", errContextTooLong, off)
	}
	l.size = uint8(off)
	return l, nil
}

// contextBlocks holds each shard's context block: constant fields filled
// in, thread id slots zero.
type contextBlocks struct {
	b    []byte
	size int
	last int // the overflow shard, where higher Ps record
}

// newContextBlocks returns the blocks of shards shards (the last one the
// overflow shard).
func newContextBlocks(fields []ContextField, shards int) contextBlocks {
	size := contextSize(fields)
	cb := contextBlocks{size: size, last: shards - 1}
	if size == 0 {
		return cb
	}
	cb.b = make([]byte, 0, size*shards)
	for i := range shards {
		for _, f := range fields {
			switch f {
			case ContextPID:
				cb.b = binary.LittleEndian.AppendUint32(cb.b, uint32(os.Getpid()))
			case ContextProcname:
				cb.b = append(append(cb.b, procname...), 0)
			case ContextCPU:
				cb.b = binary.LittleEndian.AppendUint32(cb.b, uint32(i))
			default: // thread ids, written per event
				cb.b = append(cb.b, 0, 0, 0, 0)
			}
		}
	}
	return cb
}

// block returns the context block of the shard that P p records into.
func (cb *contextBlocks) block(p int) []byte {
	if cb.size == 0 {
		return nil
	}
	p = min(p, cb.last)
	return cb.b[p*cb.size : (p+1)*cb.size]
}
