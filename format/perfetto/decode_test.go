package perfetto_test

import (
	"fmt"
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file decodes the writer's output with protowire alone, checking
// the rules trace_processor applies to a sequence of packets, for the
// tests that run without node. Field numbers are Perfetto's
// (protos/perfetto/trace/...).

// decoded is what the checks need from a trace.
type decoded struct {
	packets int
	tracks  map[uint64]dtrack
	events  []devent // instants, slice begins (with their end) and counters, in file order
}

type dtrack struct {
	name, parentName string
	parent           uint64
	counter          bool
	pid              int64 // of a process track
	processName      string
}

type devent struct {
	ts       uint64
	typ      uint64
	track    uint64
	name     string
	category string
	args     []darg
	value    string // of a counter
	end      uint64 // of a slice begin, set when its end is found
}

type darg struct{ name, value string }

// fields splits a message into its fields; varints and fixed64 values
// are in v, bytes in b.
type field struct {
	num protowire.Number
	v   uint64
	b   []byte
}

func fields(t *testing.T, msg []byte) []field {
	t.Helper()
	var out []field
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		msg = msg[n:]
		f := field{num: num}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(msg)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(msg)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(msg)
		default:
			t.Fatalf("field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(n))
		}
		msg = msg[n:]
		out = append(out, f)
	}
	return out
}

// dclock is a clock of a sequence's clock snapshot: its value at the
// snapshot (the base of the first delta if it is incremental, then the
// last value), and BOOTTIME's then.
type dclock struct {
	incremental bool
	value, boot int64
}

// Clock ids (BuiltinClock, and the sequence-scoped ones from 64).
const (
	clockBoottime    = 6
	firstSeqClock    = 64
	clockIDField     = 58 // TracePacket.timestamp_clock_id, TracePacketDefaults too
	packetDefaults   = 59 // TracePacket.trace_packet_defaults
	packetClockSnap  = 6  // TracePacket.clock_snapshot
	stateCleared     = 1  // SEQ_INCREMENTAL_STATE_CLEARED
	needsIncremental = 2  // SEQ_NEEDS_INCREMENTAL_STATE
)

// decode checks out and returns its content: every packet is on sequence
// 1, the first one clears the incremental state and the others need it;
// every interned id is defined before (or in the packet of) its first
// use and never redefined; every track is declared before use, once;
// slices begin and end on the same track, in order. Timestamps are read
// as trace_processor reads them: on the packet's timestamp_clock_id, else
// the one of the sequence's packet defaults (incremental state), else
// BOOTTIME, the trace clock; a clock of the sequence's clock snapshot
// maps to BOOTTIME by the snapshot, and an incremental one adds each
// packet's timestamp, as a signed delta, to its last value.
func decode(t *testing.T, out []byte) decoded {
	t.Helper()
	d := decoded{tracks: map[uint64]dtrack{}}
	interned := map[int]map[uint64]string{1: {}, 2: {}, 3: {}, 29: {}}
	open := map[uint64][]int{} // track → indexes of open slice begins
	clocks := map[uint64]*dclock{}
	var defaultClock uint64 // of the packet defaults
	for i, pf := range fields(t, out) {
		if pf.num != 1 || pf.b == nil {
			t.Fatalf("top-level field %d is not Trace.packet", pf.num)
		}
		d.packets++
		var ts, seq, flags, clockID uint64
		var hasTS bool
		var te, td, defaults, snapshot []byte
		pfs := fields(t, pf.b)
		for _, f := range pfs {
			switch f.num {
			case 8:
				ts, hasTS = f.v, true
			case 10:
				seq = f.v
			case 13:
				flags = f.v
			case 11:
				te = f.b
			case 60:
				td = f.b
			case clockIDField:
				clockID = f.v
			case packetDefaults:
				defaults = f.b
			case packetClockSnap:
				snapshot = f.b
			case 12:
				for _, e := range fields(t, f.b) {
					tab := interned[int(e.num)]
					if tab == nil {
						t.Fatalf("packet %d: unexpected interned data field %d", i, e.num)
					}
					var iid uint64
					var name string
					for _, g := range fields(t, e.b) {
						switch g.num {
						case 1:
							iid = g.v
						case 2:
							name = string(g.b)
						}
					}
					if _, dup := tab[iid]; dup || iid == 0 {
						t.Fatalf("packet %d: interned table %d: iid %d redefined or zero", i, e.num, iid)
					}
					tab[iid] = name
				}
			}
		}
		if seq != 1 {
			t.Fatalf("packet %d: trusted_packet_sequence_id %d, want 1", i, seq)
		}
		if i == 0 && flags != stateCleared {
			t.Fatalf("first packet: sequence_flags %d, want SEQ_INCREMENTAL_STATE_CLEARED", flags)
		}
		if flags&stateCleared != 0 {
			defaultClock = 0
		}
		if defaults != nil {
			if flags&stateCleared == 0 {
				t.Fatalf("packet %d: packet defaults outside the packet that clears the incremental state", i)
			}
			for _, f := range fields(t, defaults) {
				if f.num == clockIDField {
					defaultClock = f.v
				}
			}
		}
		if snapshot != nil {
			if te != nil || td != nil {
				t.Fatalf("packet %d: a clock snapshot and a track event or descriptor, which trace_processor ignores", i)
			}
			var boot *int64
			snap := map[uint64]*dclock{}
			for _, f := range fields(t, snapshot) {
				if f.num != 1 {
					t.Fatalf("packet %d: clock snapshot field %d", i, f.num)
				}
				var id uint64
				c := &dclock{}
				for _, g := range fields(t, f.b) {
					switch g.num {
					case 1:
						id = g.v
					case 2:
						c.value = int64(g.v)
					case 3:
						c.incremental = g.v != 0
					default:
						t.Fatalf("packet %d: clock field %d", i, g.num)
					}
				}
				if snap[id] != nil {
					t.Fatalf("packet %d: clock %d twice in a snapshot", i, id)
				}
				if id == clockBoottime {
					boot = &c.value
				} else if id < firstSeqClock || id >= 128 {
					t.Fatalf("packet %d: clock %d in the snapshot: want sequence-scoped clocks, once, and BOOTTIME", i, id)
				}
				snap[id] = c
			}
			if boot == nil {
				t.Fatalf("packet %d: a clock snapshot without BOOTTIME, the trace clock", i)
			}
			for id, c := range snap {
				c.boot = *boot
				clocks[id] = c
			}
		}
		if clockID == 0 {
			clockID = defaultClock
		}
		var abs int64 // ts on BOOTTIME
		switch c := clocks[clockID]; {
		case clockID == 0 || clockID == clockBoottime:
			abs = int64(ts)
		case c == nil:
			t.Fatalf("packet %d: timestamp on clock %d, of no snapshot", i, clockID)
		case c.incremental:
			if hasTS {
				c.value += int64(ts)
				c.boot += int64(ts)
			}
			abs = c.boot
		default:
			abs = int64(ts) - c.value + c.boot
		}
		if td != nil {
			var uuid uint64
			var tr dtrack
			for _, f := range fields(t, td) {
				switch f.num {
				case 1:
					uuid = f.v
				case 2:
					tr.name = string(f.b)
				case 5:
					tr.parent = f.v
				case 8:
					tr.counter = true
				case 3:
					for _, g := range fields(t, f.b) {
						switch g.num {
						case 1:
							tr.pid = int64(g.v)
						case 6:
							tr.processName = string(g.b)
						}
					}
				}
			}
			if _, dup := d.tracks[uuid]; dup || uuid == 0 {
				t.Fatalf("packet %d: track %d declared twice or zero", i, uuid)
			}
			if tr.parent != 0 {
				p, ok := d.tracks[tr.parent]
				if !ok {
					t.Fatalf("packet %d: track %q has undeclared parent %d", i, tr.name, tr.parent)
				}
				tr.parentName = p.name
			}
			d.tracks[uuid] = tr
		}
		if te == nil {
			continue
		}
		if flags != needsIncremental {
			t.Fatalf("packet %d: sequence_flags %d, want SEQ_NEEDS_INCREMENTAL_STATE", i, flags)
		}
		if !hasTS {
			t.Fatalf("packet %d: a track event without a timestamp", i)
		}
		if abs < 0 {
			t.Fatalf("packet %d: timestamp %d before 1970", i, abs)
		}
		ev := devent{ts: uint64(abs)}
		lookup := func(tab int, iid uint64) string {
			s, ok := interned[tab][iid]
			if !ok {
				t.Fatalf("packet %d: iid %d of table %d used before it is defined", i, iid, tab)
			}
			return s
		}
		for _, f := range fields(t, te) {
			switch f.num {
			case 9:
				ev.typ = f.v
			case 11:
				ev.track = f.v
			case 10:
				ev.name = lookup(2, f.v)
			case 3:
				ev.category = lookup(1, f.v)
			case 30:
				ev.value = fmt.Sprint(int64(f.v))
			case 44:
				ev.value = fmt.Sprint(math.Float64frombits(f.v))
			case 4:
				var a darg
				for _, g := range fields(t, f.b) {
					switch g.num {
					case 1:
						a.name = lookup(3, g.v)
					case 3:
						a.value = fmt.Sprintf("uint:%d", g.v)
					case 4:
						a.value = fmt.Sprintf("int:%d", int64(g.v))
					case 5:
						a.value = fmt.Sprintf("real:%v", math.Float64frombits(g.v))
					case 6:
						a.value = "string:" + string(g.b)
					case 17:
						a.value = "string:" + lookup(29, g.v)
					default:
						t.Fatalf("packet %d: unexpected debug annotation field %d", i, g.num)
					}
				}
				ev.args = append(ev.args, a)
			default:
				t.Fatalf("packet %d: unexpected track event field %d", i, f.num)
			}
		}
		tr, ok := d.tracks[ev.track]
		if !ok {
			t.Fatalf("packet %d: event on undeclared track %d", i, ev.track)
		}
		if tr.counter != (ev.typ == 4) {
			t.Fatalf("packet %d: event of type %d on track %q (counter %v)", i, ev.typ, tr.name, tr.counter)
		}
		switch ev.typ {
		case 1:
			open[ev.track] = append(open[ev.track], len(d.events))
			d.events = append(d.events, ev)
		case 2:
			o := open[ev.track]
			if len(o) == 0 {
				t.Fatalf("packet %d: slice end on track %q without a begin", i, tr.name)
			}
			b := &d.events[o[len(o)-1]]
			if ev.ts < b.ts {
				t.Fatalf("packet %d: slice %q ends at %d before it begins at %d", i, b.name, ev.ts, b.ts)
			}
			b.end = ev.ts
			open[ev.track] = o[:len(o)-1]
		case 3, 4:
			d.events = append(d.events, ev)
		default:
			t.Fatalf("packet %d: event type %d", i, ev.typ)
		}
	}
	for tr, o := range open {
		if len(o) > 0 {
			t.Fatalf("track %q: %d slices never end", d.tracks[tr].name, len(o))
		}
	}
	return d
}
