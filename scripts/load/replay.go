package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/session"
)

// -producer replay stands an agent in for the traced program: it serves
// the agent's socket for this process, and its recording stream carries
// one real packet of the load event, recorded once by a session of this
// process, again and again at the rate, each copy with its timestamps
// rewritten. Firing and recording then cost the machine nothing, so what
// is measured is tracemark record alone (and the collector's stand-in):
// whether it keeps up at rates that the traced program and the CLI
// together could not reach on a machine with two cores.
//
// The stream's buffer behaves as a session's in discard mode: as many
// sub-buffers as the session's default buffer holds (16 of 256 KiB);
// the replay fills one per packet, and when all are filled and not yet
// sent, the next packet's events are discarded and counted in the next
// packet's header and in the stats and end frames, as a session does.
var replayProducer bool

// replayAgent is the stand-in agent.
type replayAgent struct {
	srv    *http.Server
	socket string

	packet  []byte // the records of the packet replayed
	events  int    // how many it holds
	recSize int    // the size of each (the load event's records are all alike)
	class   wire.EventClass
	bufSize int // as the session's default: bytes per shard
	subBuf  int // and per sub-buffer

	origin time.Time // the clock's origin: timestamps are ns since
	free   chan []byte
	filled chan replayPacket
	stop   chan struct{} // closed when the client asks to stop
	once   sync.Once

	discarded atomic.Uint64 // read by the stream's stats
}

// replayPacket is a filled sub-buffer: its records and header.
type replayPacket struct {
	data []byte
	h    wire.PacketHeader
}

// startReplay records a packet of the load event and serves the socket.
func startReplay() (*replayAgent, error) {
	r := &replayAgent{origin: time.Now(), stop: make(chan struct{})}
	if err := r.recordPacket(); err != nil {
		return nil, err
	}
	slots := r.bufSize / r.subBuf
	r.free, r.filled = make(chan []byte, slots), make(chan replayPacket, slots)
	for range slots {
		r.free <- make([]byte, len(r.packet))
	}
	dir := wire.SocketDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r.socket = filepath.Join(dir, wire.SocketName(os.Getpid()))
	os.Remove(r.socket)
	ln, err := net.Listen("unix", r.socket)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.Prefix+"/info", r.info)
	mux.HandleFunc("POST "+wire.Prefix+"/record", r.record)
	mux.HandleFunc("POST "+wire.Prefix+"/recordings/{id}/stop", func(w http.ResponseWriter, _ *http.Request) {
		r.once.Do(func() { close(r.stop) })
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"state":"stopping"}`)
	})
	r.srv = &http.Server{Handler: mux}
	go r.srv.Serve(ln)
	return r, nil
}

// recordPacket fires the load event into a session of its own and keeps
// the first full packet, and the session's class and buffer sizes.
func (r *replayAgent) recordPacket() error {
	s, err := session.New("replay")
	if err != nil {
		return err
	}
	defer s.Destroy()
	if _, err := s.Enable("load:event", ""); err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	r.bufSize, r.subBuf = s.BufferSize(), s.SubBufSize()
	for i := range 3 * r.subBuf / 28 {
		ev.Fire(int32(i), 0, "hello")
	}
	if err := s.Stop(); err != nil {
		return err
	}
	err = s.Drain(func(p session.Packet) error {
		if p.Events > r.events {
			r.packet, r.events = append([]byte(nil), p.Data...), p.Events
		}
		return nil
	})
	if err != nil {
		return err
	}
	cs := s.Classes()
	if r.events == 0 || len(cs) != 1 || len(r.packet)%r.events != 0 {
		return fmt.Errorf("replay: the recorded packet holds %d events in %d bytes (%d classes): not the records of one class of one size", r.events, len(r.packet), len(cs))
	}
	r.recSize = len(r.packet) / r.events
	ec := session.EventClassOf(cs[0])
	kinds := make([]string, cs[0].Marker.NumFields())
	for i := range kinds {
		kinds[i] = cs[0].Marker.Field(i).Kind.String()
	}
	r.class = wire.ClassFromCTF(ec, kinds)
	return nil
}

// fire fills sub-buffers at rate events per second for d, discarding a
// packet's events when every sub-buffer is full, and returns how many
// events it fired, discarded ones included.
func (r *replayAgent) fire(d time.Duration, rate float64) uint64 {
	per := time.Duration(float64(r.events) / rate * 1e9) // one packet's worth
	start := time.Now()
	var fired, seq, discarded, lastEnd uint64
	for n := 0; ; n++ {
		due := start.Add(time.Duration(n) * per)
		if due.Sub(start) >= d {
			break
		}
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		fired += uint64(r.events)
		select {
		case buf := <-r.free:
			begin := uint64(due.Sub(r.origin))
			step := uint64(per) / uint64(r.events)
			copy(buf, r.packet)
			for i := range r.events {
				binary.LittleEndian.PutUint64(buf[i*r.recSize+2:], begin+uint64(i)*step)
			}
			h := wire.PacketHeader{Events: uint32(r.events), Seq: seq, BeginTS: begin,
				EndTS: begin + uint64(r.events-1)*step, Discarded: discarded}
			seq++
			lastEnd = h.EndTS
			r.filled <- replayPacket{data: buf, h: h}
		default:
			discarded += uint64(r.events)
			r.discarded.Store(discarded)
		}
	}
	// The events discarded after the last packet filled are told by an
	// empty one, as a session's last drain does.
	now := max(uint64(time.Since(r.origin)), lastEnd)
	r.filled <- replayPacket{h: wire.PacketHeader{Seq: seq, BeginTS: now, EndTS: now, Discarded: discarded}}
	close(r.filled)
	return fired
}

// info serves GET /v1/info.
func (r *replayAgent) info(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(wire.Info{Protocol: wire.Version, Revision: wire.Revision, PID: os.Getpid(),
		UID: os.Getuid(), Program: filepath.Base(os.Args[0]), Started: r.origin, Socket: r.socket, Markers: 1})
}

// record serves POST /v1/record: the replay's packets, as frames.
func (r *replayAgent) record(w http.ResponseWriter, req *http.Request) {
	var rr wire.RecordRequest
	if err := json.NewDecoder(req.Body).Decode(&rr); err != nil || len(rr.Rules) != 1 || rr.Rules[0].Pattern != "load:event" {
		http.Error(w, "replay: record load:event, and nothing else", http.StatusBadRequest)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", wire.ContentTypeFrames)
	w.WriteHeader(http.StatusOK)
	fw := wire.NewFrameWriter(w)
	host, _ := os.Hostname()
	hello := wire.Hello{Protocol: wire.Version, Revision: wire.Revision, Recording: "replay", Session: "replay",
		Mode: "discard", PID: os.Getpid(), Program: filepath.Base(os.Args[0]), Streams: 1, Started: r.origin,
		Clock:   wire.Clock{Name: "monotonic", Frequency: 1e9, OffsetSeconds: r.origin.Unix(), Offset: uint64(r.origin.Nanosecond())},
		Env:     map[string]string{"domain": "go", "tracer_name": "tracemark", "trace_name": "replay", "hostname": host},
		Matched: []string{"load:event"}, Buffer: r.bufSize, SubBuffer: r.subBuf}
	err := errors.Join(fw.WriteJSON(wire.FrameHello, hello), fw.WriteJSON(wire.FrameClasses, wire.Classes{Classes: []wire.EventClass{r.class}}), rc.Flush())
	stats := time.NewTicker(wire.DefaultStatsInterval)
	defer stats.Stop()
	var delivered, bytes uint64
	send := func(p replayPacket) error {
		delivered += uint64(p.h.Events)
		bytes += uint64(len(p.data))
		err := fw.WritePacket(p.h, p.data)
		if p.data != nil {
			r.free <- p.data
		}
		return err
	}
	counters := func() *wire.Stats {
		return &wire.Stats{Recorded: delivered, Discarded: r.discarded.Load(), Delivered: delivered, Bytes: bytes}
	}
	// Packets until the replay has stopped filling (filled is closed) and
	// the client asked to stop, then the end frame.
	filled, stopping := r.filled, r.stop
	for err == nil {
		if filled == nil && stopping == nil {
			err = errors.Join(fw.WriteJSON(wire.FrameEnd, wire.End{Reason: wire.EndStopped, Stats: counters()}), rc.Flush())
			break
		}
		select {
		case p, ok := <-filled:
			if !ok {
				filled = nil
				continue
			}
			// A drain: every packet filled so far, then a sync frame.
			err = send(p)
			for more := true; more && err == nil; {
				select {
				case p, ok := <-filled:
					if !ok {
						filled, more = nil, false
						continue
					}
					err = send(p)
				default:
					more = false
				}
			}
			err = errors.Join(err, fw.WriteEmpty(wire.FrameSync), rc.Flush())
		case <-stats.C:
			err = errors.Join(fw.WriteJSON(wire.FrameStats, counters()), rc.Flush())
		case <-stopping:
			stopping = nil
		case <-req.Context().Done():
			return
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load: replay:", err)
	}
}

func (r *replayAgent) close() {
	r.srv.Shutdown(context.Background())
	os.Remove(r.socket)
}
