// Package otlpenv exports what a program records to an OpenTelemetry
// collector, from inside the program, configured by its environment: for
// batch jobs and always-on services that export without an operator
// attached.
//
//	TRACEMARK_ENABLE='http:*,storage:*' OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 ./myservice
//
// with, in main:
//
//	x, err := otlpenv.StartFromEnv()
//	if err != nil {
//		log.Print(err) // a bad variable; the program runs on
//	}
//	defer x.Close(context.Background()) // nil-safe
//
// The markers are recorded as by any session (TRACEMARK_FILTER,
// TRACEMARK_BUFFER and TRACEMARK_MEMORY apply, see package session), into
// the per-CPU buffers: firing a marker costs what it costs when recording
// to a trace. A goroutine drains the buffers every 100 ms and hands the
// events to the exporter of package otlp, which batches and sends them on
// its own goroutine: encoding and the network stay off the hot path.
// Events lost in the buffers (a full buffer) and in the exporter (a full
// queue) are counted; the exporter's are reported to the collector as a
// metric, the buffers' in Stats.
//
// This package is separate so that programs that only import
// agent/autostart or session do not link the exporter.
package otlpenv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

// DrainInterval is how often the buffers are drained into the exporter.
const DrainInterval = 100 * time.Millisecond

// Export is an export started from the environment.
type Export struct {
	// Session is the recording session; Exporter sends its events.
	Session  *session.Session
	Exporter *otlp.Exporter

	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
	err     error
	dec     *wire.Decoder // for the records of span classes
	rec     wire.Record
	b       *otlp.LogBuilder
	known   map[uint16]*envClass // by id, twin ids too
	classes int                  // how many of the session's are known
	offset  int64                // wall-clock ns of session timestamp 0
	readErr error
}

// envClass is a session class as the drain encodes its records.
type envClass struct {
	oc    *otlp.Class
	span  bool            // oc makes spans: its records are decoded, for SpanOf
	enc   otlp.CTFEncoder // its records straight from their bytes, if not span
	trunc uint16          // the id of its records that end with the trailer,
	trail bool            // if it has any
	types []ctf.FieldType
}

// StartFromEnv starts exporting if both TRACEMARK_ENABLE (the marker
// globs, separated by commas) and OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_LOGS_ENDPOINT) are set, and returns nil, nil if
// either is not, so that programs can call it unconditionally. The
// OTEL_EXPORTER_OTLP_* variables, OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES apply as in package otlp; the settings it
// ignores (otlp.Exporter.Warnings, such as an unknown compression) are
// printed on standard error, as the OpenTelemetry SDKs log them.
func StartFromEnv() (*Export, error) {
	globs := os.Getenv(session.EnvEnable)
	if strings.TrimSpace(globs) == "" ||
		os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") == "" {
		return nil, nil
	}
	host, _ := os.Hostname()
	exe, _ := os.Executable()
	if exe == "" {
		exe = os.Args[0]
	}
	res, err := otlp.ProcessResource(otlp.Process{PID: os.Getpid(), Executable: exe, Host: host})
	if err != nil {
		return nil, err
	}
	size := 1 << 20
	if v := os.Getenv(session.EnvBuffer); v != "" {
		if size, err = session.ParseSize(v); err != nil {
			return nil, fmt.Errorf("%s: %w", session.EnvBuffer, err)
		}
	}
	s, err := session.New("otlp", session.WithMode(session.Discard), session.WithBufferSize(size))
	if err != nil {
		return nil, err
	}
	filter := os.Getenv(session.EnvFilter)
	for g := range strings.SplitSeq(globs, ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		if _, err := s.Enable(g, filter); err != nil {
			s.Destroy()
			if errors.Is(err, session.ErrFilter) || errors.Is(err, marker.ErrLeftOut) {
				return nil, fmt.Errorf("%s: %w", session.EnvFilter, err)
			}
			return nil, fmt.Errorf("%s: %w", session.EnvEnable, err)
		}
	}
	exp, err := otlp.New("", otlp.WithEnv(), otlp.WithResource(res...))
	if err != nil {
		s.Destroy()
		return nil, err
	}
	for _, w := range exp.Warnings() {
		fmt.Fprintf(os.Stderr, "tracemark: warning: %s\n", w)
	}
	return start(s, exp)
}

// closeBound is how long Close waits for the collector without a
// deadline, given the exporter's timeout: OTEL_EXPORTER_OTLP_TIMEOUT=0
// lifts the bound of requests, not the promise that an exit is not held.
func closeBound(timeout time.Duration) time.Duration {
	if timeout >= otlp.NoTimeout {
		return otlp.DefaultTimeout
	}
	return timeout
}

// start drains s into exp until Close.
func start(s *session.Session, exp *otlp.Exporter) (*Export, error) {
	if err := s.Start(); err != nil {
		s.Destroy()
		exp.Close(context.Background())
		return nil, err
	}
	origin := s.Clock()
	ctx, cancel := context.WithCancel(context.Background())
	x := &Export{
		Session: s, Exporter: exp, cancel: cancel, done: make(chan struct{}),
		dec: wire.NewDecoder(), known: map[uint16]*envClass{}, offset: origin.UnixNano(),
		b: exp.NewLogBuilder(),
	}
	go x.run(ctx)
	return x, nil
}

func (x *Export) run(ctx context.Context) {
	defer close(x.done)
	t := time.NewTicker(DrainInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			x.drain()
		}
	}
}

// drain hands what the buffers hold to the exporter: each packet's
// records are encoded from their bytes into a LogBuilder (CTFEncoder,
// without decoding them into values, as record --otlp does) and committed
// at once, so that the exporter's lock is taken once a packet, not once
// an event. They are observed when drained.
func (x *Export) drain() {
	observed := time.Now().UnixNano()
	err := x.Session.Drain(func(p session.Packet) error {
		x.learn()
		err := x.packet(p.Data, observed)
		x.Exporter.Commit(x.b)
		return err
	})
	if err != nil && x.readErr == nil {
		x.readErr = err
	}
}

// packet adds the records of a packet to x.b.
func (x *Export) packet(data []byte, observed int64) error {
	for off := 0; off < len(data); {
		if len(data)-off < ctf.EventHeaderSize {
			return fmt.Errorf("otlpenv: %d bytes at the end of a packet, too few for a record", len(data)-off)
		}
		id := binary.LittleEndian.Uint16(data[off:])
		c := x.known[id]
		if c == nil {
			return fmt.Errorf("otlpenv: a record of unknown class id %d", id)
		}
		if c.span {
			n, err := x.dec.DecodeRecord(data[off:], &x.rec)
			if err != nil {
				return fmt.Errorf("otlpenv: record at offset %d: %w", off, err)
			}
			ts := x.offset + int64(x.rec.TS)
			x.b.Add(c.oc, ts, observed, x.rec.Fields, x.rec.Truncated)
			x.Exporter.SpanOf(c.oc, ts, x.rec.Fields, x.rec.Truncated)
			off += n
			continue
		}
		lay := otlp.CTFRecords{ID: id, Epoch: x.offset, Observed: observed, Trailer: c.trail && id == c.trunc}
		k, n, err := c.enc.AddRecords(data[off:], &lay)
		if err != nil {
			return fmt.Errorf("otlpenv: record at offset %d: %w", off+n, err)
		}
		if k == 0 {
			return fmt.Errorf("otlpenv: record at offset %d not encoded", off)
		}
		off += n
	}
	return nil
}

// learn adds the session's new classes to the decoder, and describes them
// for the exporter: their module is the scope, their span declaration
// makes spans.
func (x *Export) learn() {
	classes := x.Session.Classes()
	if len(classes) == x.classes {
		return
	}
	x.classes = len(classes)
	var starts map[string][]string
	for m := range marker.All() {
		if s := m.Span(); s != nil && s.Start != "" {
			if starts == nil {
				starts = map[string][]string{}
			}
			starts[s.Start] = s.Keys
		}
	}
	for _, c := range classes {
		if _, ok := x.known[c.ID]; ok {
			continue
		}
		m := c.Marker
		kinds := make([]string, m.NumFields())
		oc := &otlp.Class{Name: m.Name(), Scope: otlp.Scope{Name: m.Module().Path, Version: m.Module().Version}}
		for i := range kinds {
			f := m.Field(i)
			kinds[i] = f.Kind.String()
			oc.Fields = append(oc.Fields, otlp.Field{Name: f.Name, Kind: kinds[i]})
		}
		if s := m.Span(); s != nil {
			oc.Span = &otlp.SpanRule{Duration: s.Duration, Start: s.Start, Keys: s.Keys}
		}
		oc.StartKeys = starts[m.Name()]
		ec := session.EventClassOf(c)
		if err := x.dec.Add([]wire.EventClass{wire.ClassFromCTF(ec, kinds)}); err != nil && x.readErr == nil {
			x.readErr = err
		}
		ic := &envClass{oc: oc, span: oc.Span != nil || oc.StartKeys != nil, trunc: ec.ID, trail: ec.Truncation}
		for _, f := range ec.Fields {
			ic.types = append(ic.types, f.Type)
		}
		if !ic.span {
			ic.enc = x.b.CTFEncoder(oc, ic.types)
		}
		x.known[c.ID] = ic
		if ec.Twin() {
			ic.trunc = ec.TruncatedID
			x.known[ec.TruncatedID] = ic
		}
	}
}

// Stats are the counters of an export.
type Stats struct {
	// Session counts what was recorded, and lost in the buffers.
	Session session.Stats
	// Exporter counts what was sent, and lost on the way.
	Exporter otlp.Stats
}

// Stats returns the export's counters.
func (x *Export) Stats() Stats {
	return Stats{Session: x.Session.Stats(), Exporter: x.Exporter.Stats()}
}

// Close stops recording, exports the rest and stops the exporter, waiting
// for the collector until ctx ends, or, if ctx has no deadline, for at
// most the exporter's timeout (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s by
// default, and 10 s when it is 0, no limit): a program exiting while its
// collector is down is not held there. It returns an error wrapping
// otlp.ErrIncomplete if events were lost on the way (Stats says where),
// is idempotent and safe on a nil *Export.
func (x *Export) Close(ctx context.Context) error {
	if x == nil {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, closeBound(x.Exporter.Timeout()))
		defer cancel()
	}
	x.once.Do(func() {
		x.cancel()
		<-x.done
		x.Session.Stop()
		x.drain()
		lost := x.Session.Stats().Discarded
		err := x.Exporter.Close(ctx)
		x.Session.Destroy()
		if lost > 0 {
			err = errors.Join(err, fmt.Errorf("%w: %d events lost in the recording buffers (a full buffer: raise %s)", otlp.ErrIncomplete, lost, session.EnvBuffer))
		}
		x.err = errors.Join(x.readErr, err)
	})
	return x.err
}
