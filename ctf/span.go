package ctf

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Span says how the events of a class make spans: either each event is a
// span that ends at the event and lasted as long as its Duration field
// says, or the class's events end the spans that the events of class
// Start began, an end pairing with the latest unpaired start whose Keys
// fields hold the same values. It describes the events; records are
// unchanged.
type Span struct {
	// Duration names a field of meaning Duration.
	Duration string `json:"duration,omitempty"`
	// Start names the event class (by name) whose events start the spans;
	// Keys are fields that both classes have.
	Start string   `json:"start,omitempty"`
	Keys  []string `json:"keys,omitempty"`
}

func (s *Span) equal(o *Span) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.Duration == o.Duration && s.Start == o.Start && slices.Equal(s.Keys, o.Keys)
}

// validate checks the declaration against the class's own fields (the
// start class may be added later, so its fields are not checked).
func (s *Span) validate(ec *EventClass) error {
	if s == nil {
		return nil
	}
	field := func(name string) *Field {
		for i := range ec.Fields {
			if ec.Fields[i].Name == name {
				return &ec.Fields[i]
			}
		}
		return nil
	}
	switch {
	case s.Duration == "" && s.Start == "":
		return errors.New("span declaration names neither a duration field nor a start class")
	case s.Duration != "" && s.Start != "":
		return errors.New("span declaration names both a duration field and a start class")
	case s.Duration != "":
		if f := field(s.Duration); f == nil || f.Type != (FieldType{Int, 64}) {
			return fmt.Errorf("span duration field %q is not an int64 field of the class", s.Duration)
		}
		if len(s.Keys) > 0 {
			return errors.New("span keys are only for start/end pairs")
		}
	}
	if err := checkText("span start class", s.Start); err != nil {
		return err
	}
	for _, k := range s.Keys {
		if field(k) == nil {
			return fmt.Errorf("span key %q is not a field of the class", k)
		}
	}
	return nil
}

// notePrefix starts the structured comment that carries what TSDL cannot
// say about an event class; the rest of the comment is a JSON object.
// Babeltrace, like any TSDL reader, skips comments.
const notePrefix = "/* tracemark: "

// classNote is the JSON of an event block's note.
type classNote struct {
	Span   *Span  `json:"span,omitempty"`
	Module string `json:"module,omitempty"`
	// TruncatedOf, in the block of a class's truncated twin, is the id
	// of the class.
	TruncatedOf *uint16 `json:"truncated_of,omitempty"`
}

// noteText returns the comment of a note, or "" for an empty one.
func noteText(n classNote) string {
	if n.Span == nil && n.TruncatedOf == nil && n.Module == "" {
		return ""
	}
	b, _ := json.Marshal(n) // cannot fail
	// Names may hold "*/", which would end the comment: JSON lets a
	// solidus be escaped.
	return notePrefix + strings.ReplaceAll(string(b), "*/", `*\/`) + " */"
}

// parseNote reads the JSON of a note into ec, and returns the id of the
// class ec is the truncated twin of, if it is one. Unknown members are
// ignored, so that later writers can add some.
func parseNote(text string, ec *EventClass) (twinOf int, err error) {
	var n classNote
	if err := json.Unmarshal([]byte(text), &n); err != nil {
		return -1, fmt.Errorf("tracemark note: %v", err)
	}
	if n.Span != nil {
		ec.Span = n.Span
	}
	if n.Module != "" {
		ec.Module = n.Module
	}
	if n.TruncatedOf != nil {
		return int(*n.TruncatedOf), nil
	}
	return -1, nil
}

// declaredClass is an event block as declared, before twins are merged.
type declaredClass struct {
	ec     *EventClass
	twinOf int // -1, or the id of the class whose truncated records this block declares
	line   int
}

// mergeTwins folds each truncated twin into its class: one EventClass
// with both ids. A note that names no such class, or one that does not
// match, is ignored with a warning.
func mergeTwins(decls []declaredClass, md *parsedMetadata) []*EventClass {
	byID := map[uint16]*EventClass{}
	for _, d := range decls {
		if d.twinOf < 0 {
			byID[d.ec.ID] = d.ec
		}
	}
	var out []*EventClass
	for _, d := range decls {
		if d.twinOf < 0 {
			out = append(out, d.ec)
			continue
		}
		// A twin that does not match its class is read as a class of its
		// own, as Babeltrace reads every block: its records still decode.
		c := byID[uint16(d.twinOf)]
		switch {
		case c == nil:
			md.warn(d.line, "event %q (id %d) is the truncated twin of id %d, which is not declared", d.ec.Name, d.ec.ID, d.twinOf)
			out = append(out, d.ec)
		case c.Truncation || !d.ec.Truncation || c.Name != d.ec.Name || !slices.Equal(c.Fields, d.ec.Fields):
			md.warn(d.line, "event %q (id %d) is not a truncated twin of event %q (id %d): the names and fields must be equal, and only the twin has the trailer",
				d.ec.Name, d.ec.ID, c.Name, c.ID)
			out = append(out, d.ec)
		default:
			c.Truncation, c.TruncatedID = true, d.ec.ID
		}
	}
	return out
}
