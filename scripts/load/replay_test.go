package main

import (
	"context"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

// The replay's stream balances as a session's does: every event it fired
// is in a packet or counted as discarded, in the packets' cumulative
// count and in the end frame, with a client that reads nothing while the
// replay fires (its buffer fills, then discards) and everything after.
// The packets hold the load event's records, as a wire decoder reads
// them, with timestamps that never go back.
func TestReplayBalances(t *testing.T) {
	r, err := startReplay()
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	c := client.NewClient(r.socket)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := c.Record(ctx, wire.RecordRequest{Rules: []wire.Rule{{Pattern: "load:event"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// 400,000 events, more than the buffer's 16 packets and what the
	// socket holds: some are discarded.
	fired := r.fire(200*time.Millisecond, 2e6)
	if err := c.Stop(ctx, s.Hello.Recording); err != nil {
		t.Fatal(err)
	}
	dec := wire.NewDecoder()
	var delivered, discarded, decoded, lastTS uint64
	var end wire.End
	for end.Reason == "" {
		f, err := s.Next()
		if err != nil {
			t.Fatalf("after %d events: %v", delivered, err)
		}
		switch f.Type {
		case wire.FrameClasses:
			var cs wire.Classes
			if err := f.JSON(&cs); err != nil {
				t.Fatal(err)
			}
			if err := dec.Add(cs.Classes); err != nil {
				t.Fatal(err)
			}
		case wire.FramePacket:
			h, recs, err := f.Packet()
			if err != nil {
				t.Fatal(err)
			}
			if h.Discarded < discarded || h.BeginTS < lastTS {
				t.Fatalf("packet %d: discarded %d after %d, begins at %d after %d", h.Seq, h.Discarded, discarded, h.BeginTS, lastTS)
			}
			delivered += uint64(h.Events)
			discarded, lastTS = h.Discarded, h.EndTS
			err = dec.Decode(recs, func(rec *wire.Record) error {
				if rec.Class.Name != "load:event" || len(rec.Fields) != 3 || string(rec.Fields[2].Bytes) != "hello" {
					t.Fatalf("record %+v is not the load event", rec)
				}
				if rec.TS < h.BeginTS || rec.TS > h.EndTS {
					t.Fatalf("record at %d outside its packet's %d..%d", rec.TS, h.BeginTS, h.EndTS)
				}
				decoded++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		case wire.FrameEnd:
			if err := f.JSON(&end); err != nil {
				t.Fatal(err)
			}
		}
	}
	if discarded == 0 || delivered == 0 {
		t.Fatalf("%d events delivered, %d discarded: want some of each", delivered, discarded)
	}
	if fired != delivered+discarded || decoded != delivered {
		t.Errorf("fired %d, delivered %d (%d decoded) + discarded %d", fired, delivered, decoded, discarded)
	}
	if end.Reason != wire.EndStopped || end.Stats == nil || end.Stats.Discarded != discarded || end.Stats.Delivered != delivered {
		t.Errorf("end frame %+v, stats %+v; want stopped, %d delivered, %d discarded", end, end.Stats, delivered, discarded)
	}
	if _, err := s.Next(); err == nil {
		t.Error("a frame after the end frame")
	}
}

// The replayed packet is the load event's records as a session laid
// them out: all of one size, the class the session announced.
func TestReplayPacket(t *testing.T) {
	var r replayAgent
	if err := r.recordPacket(); err != nil {
		t.Fatal(err)
	}
	ec, err := r.class.CTF()
	if err != nil {
		t.Fatal(err)
	}
	want := ctf.EventHeaderSize + 4 + 8 + len("hello") + 1
	if r.recSize != want || ec.Name != "load:event" || len(ec.Fields) != 3 || r.events*r.recSize != len(r.packet) {
		t.Errorf("%d records of %d bytes in %d, class %+v; want records of %d bytes", r.events, r.recSize, len(r.packet), ec, want)
	}
	if r.subBuf == 0 || r.bufSize/r.subBuf != 16 {
		t.Errorf("buffer %d, sub-buffer %d: want 16 sub-buffers, as a session's default", r.bufSize, r.subBuf)
	}
}
