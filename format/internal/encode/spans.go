package encode

import (
	"encoding/binary"
	"math"

	"github.com/tracemark/tracemark/ctf"
)

// MaxPendingStarts bounds the span starts that Spans remembers while they
// wait for their end (as the OTLP exporter does): further starts are not
// remembered, and their ends become instants.
const MaxPendingStarts = 1 << 16

// Spans pairs the events that end spans with the events that started
// them, by the span declarations of a trace's classes
// (ctf.EventClass.Span): an end pairs with the latest unpaired start of
// its start class whose key fields hold the same values. A Spans is not
// safe for concurrent use.
type Spans struct {
	startKeys map[string][]string // start class name -> key field names
	classes   map[*ctf.EventClass]*spanClass
	pending   map[string]int64 // pairing key -> start time
	key       []byte
	// Unpaired counts the ends without a start and the starts not
	// remembered because MaxPendingStarts were waiting.
	Unpaired uint64
}

type spanClass struct {
	duration int  // index of the declared duration field, or -1
	ends     bool // the class's events end spans of class start
	start    string
	endKeys  []int // the key fields of an end, in the order of the declaration
	starts   bool  // the class's events start spans
	keys     []int // the key fields of a start
	pairs    bool  // starts or ends
}

// NewSpans returns the pairing of the span declarations of classes.
func NewSpans(classes []ctf.EventClass) *Spans {
	s := &Spans{startKeys: map[string][]string{}, classes: map[*ctf.EventClass]*spanClass{}, pending: map[string]int64{}}
	for i := range classes {
		if sp := classes[i].Span; sp != nil && sp.Start != "" {
			s.startKeys[sp.Start] = sp.Keys
		}
	}
	return s
}

func fieldIndexes(ec *ctf.EventClass, names []string) ([]int, bool) {
	idx := make([]int, len(names))
	for i, n := range names {
		idx[i] = -1
		for j := range ec.Fields {
			if ec.Fields[j].Name == n {
				idx[i] = j
			}
		}
		if idx[i] < 0 {
			return nil, false
		}
	}
	return idx, true
}

func (s *Spans) class(ec *ctf.EventClass) *spanClass {
	if c := s.classes[ec]; c != nil {
		return c
	}
	c := &spanClass{duration: -1}
	if sp := ec.Span; sp != nil {
		if sp.Duration != "" {
			if idx, ok := fieldIndexes(ec, []string{sp.Duration}); ok && ec.Fields[idx[0]].Type == (ctf.FieldType{Kind: ctf.Int, Bits: 64}) {
				c.duration = idx[0]
			}
		}
		if sp.Start != "" {
			c.endKeys, c.ends = fieldIndexes(ec, sp.Keys)
			c.start = sp.Start
		}
	}
	if keys, ok := s.startKeys[ec.Name]; ok {
		c.keys, c.starts = fieldIndexes(ec, keys)
	}
	c.pairs = c.starts || c.ends
	s.classes[ec] = c
	return c
}

// Duration returns the index of the duration field that ec's span
// declaration names, or -1.
func (s *Spans) Duration(ec *ctf.EventClass) int { return s.class(ec).duration }

// Ends reports whether ec's events end spans that events of another class
// start.
func (s *Spans) Ends(ec *ctf.EventClass) bool { return s.class(ec).ends }

// SpanClass is what a class's events do in spans, for PairIn: a writer
// that keeps a description of each class keeps this too, and spares
// Pair's lookup per event.
type SpanClass = spanClass

// Class returns what ec's events do in spans.
func (s *Spans) Class(ec *ctf.EventClass) *SpanClass { return s.class(ec) }

// Pair handles ev, an event of a class: if it starts spans, it is
// remembered; if it ends one, Pair returns the time of the start it pairs
// with, which is forgotten, and true.
func (s *Spans) Pair(ev *ctf.Event) (start int64, ok bool) {
	return s.PairIn(s.class(ev.Class), ev)
}

// PairIn is Pair for an event of the class c describes (Class). It
// inlines: most classes neither start nor end spans.
func (s *Spans) PairIn(c *SpanClass, ev *ctf.Event) (start int64, ok bool) {
	if !c.pairs {
		return 0, false
	}
	return s.pair(c, ev)
}

// pair is PairIn for a class that starts or ends spans.
func (s *Spans) pair(c *SpanClass, ev *ctf.Event) (start int64, ok bool) {
	if c.starts {
		s.key = appendPairKey(s.key[:0], ev.Class.Name, c.keys, ev.Fields)
		if _, dup := s.pending[string(s.key)]; !dup && len(s.pending) >= MaxPendingStarts {
			s.Unpaired++
		} else {
			s.pending[string(s.key)] = ev.Time
		}
	}
	if !c.ends {
		return 0, false
	}
	s.key = appendPairKey(s.key[:0], c.start, c.endKeys, ev.Fields)
	start, ok = s.pending[string(s.key)]
	if !ok {
		s.Unpaired++
		return 0, false
	}
	delete(s.pending, string(s.key))
	return start, true
}

// appendPairKey appends the pairing key of an event: the start class's
// name and the kinds and values of the key fields, each with its length
// so that no two different lists of values make the same key.
func appendPairKey(b []byte, start string, idx []int, vals []ctf.Value) []byte {
	b = binary.AppendUvarint(b, uint64(len(start)))
	b = append(b, start...)
	for _, i := range idx {
		if i >= len(vals) {
			continue
		}
		v := vals[i]
		b = append(b, byte(v.Kind))
		switch v.Kind {
		case ctf.Int:
			b = binary.LittleEndian.AppendUint64(b, uint64(v.Int))
		case ctf.Uint:
			b = binary.LittleEndian.AppendUint64(b, v.Uint)
		case ctf.Float:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float))
		default:
			b = binary.AppendUvarint(b, uint64(len(v.Bytes)))
			b = append(b, v.Bytes...)
		}
	}
	return b
}
