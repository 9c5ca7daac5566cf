package session

import (
	"fmt"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/marker"
)

// Class is a marker as recorded by one session: the event class of the
// trace, with a session-local id that appears in every record.
type Class struct {
	ID     uint16
	Marker *marker.Info

	layout layout
	ec     ctf.EventClass            // for walking records (EventClassOf)
	owner  atomic.Pointer[Rule]      // the rule whose probe records this marker
	filt   atomic.Pointer[filterSet] // nil: record everything

	rules []classRule // under Session.classMu

	filtered, overCost, truncated, discarded atomic.Uint64
	delivered                                atomic.Uint64 // counted by the reader
}

// classRule is one rule's interest in a class.
type classRule struct {
	rule   *Rule
	filter *filter // nil: no filter
}

// filterSet is the published OR of the filters of a class's rules.
type filterSet struct {
	filters []*filter
	// unpinned is set if some filter allocates (a CEL program, a
	// regular expression), and so cannot run while the recording probe
	// is pinned.
	unpinned bool
}

// accept reports whether any rule's filter accepts e; if none does, and
// one was stopped at its cost limit, the verdict is overCost.
func (fs *filterSet) accept(e *marker.Event) (v verdict) {
	for _, f := range fs.filters {
		switch f.accept(e) {
		case accepted:
			return accepted
		case overCost:
			v = overCost
		}
	}
	return v
}

// publish recomputes owner and filters from rules. Called with classMu held.
func (c *Class) publish() {
	if len(c.rules) == 0 {
		c.owner.Store(nil)
		return
	}
	if o := c.owner.Load(); o == nil || !slices.ContainsFunc(c.rules, func(cr classRule) bool { return cr.rule == o }) {
		c.owner.Store(c.rules[0].rule)
	}
	fs := &filterSet{}
	for _, cr := range c.rules {
		if cr.filter == nil {
			c.filt.Store(nil) // one rule takes everything
			return
		}
		fs.filters = append(fs.filters, cr.filter)
		fs.unpinned = fs.unpinned || cr.filter.unpinned
	}
	c.filt.Store(fs)
}

// classOf is the data function of the rule's pinned probe (see
// internal/probeabi): the class of marker m, which bind has just created,
// reaches the probe with every event of m.
func (r *Rule) classOf(m *marker.Info) unsafe.Pointer {
	id := int(m.ID())
	if byMarker := *r.s.byMarker.Load(); id < len(byMarker) {
		return unsafe.Pointer(byMarker[id])
	}
	return nil
}

// bind runs when the rule's probe connects to m (with the marker registry
// locked): type-check the filter and attach the rule to m's class.
func (r *Rule) bind(m *marker.Info) error {
	var f *filter
	if r.Filter != "" || r.form != nil {
		var err error
		if f, err = compileFilter(r.Filter, r.form, m, r.s.filterLimits()); err != nil {
			return leaveOut(err, r.Filter, r.form, m)
		}
	}
	s := r.s
	s.classMu.Lock()
	defer s.classMu.Unlock()
	c, err := s.classForLocked(m)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(c.rules, func(cr classRule) bool { return cr.rule == r })
	if i >= 0 {
		c.rules[i].filter = f
	} else {
		c.rules = append(c.rules, classRule{rule: r, filter: f})
	}
	c.publish()
	return nil
}

// unbind detaches a rule from every class.
func (s *Session) unbind(r *Rule) {
	s.classMu.Lock()
	defer s.classMu.Unlock()
	for _, c := range *s.classList.Load() {
		n := len(c.rules)
		c.rules = slices.DeleteFunc(c.rules, func(cr classRule) bool { return cr.rule == r })
		if len(c.rules) != n {
			c.publish()
		}
	}
}

// maxClasses keeps class ids below twinBit, which marks truncated records.
const maxClasses = twinBit - 1

// classForLocked returns m's class, creating it. Called with classMu held.
func (s *Session) classForLocked(m *marker.Info) (*Class, error) {
	byMarker := *s.byMarker.Load()
	id := int(m.ID())
	if id < len(byMarker) && byMarker[id] != nil {
		return byMarker[id], nil
	}
	list := *s.classList.Load()
	if len(list) >= maxClasses {
		return nil, fmt.Errorf("session %q: more than %d markers", s.cfg.Name, maxClasses)
	}
	c := &Class{ID: uint16(len(list) + 1), Marker: m, layout: newLayout(m, s.cfg.MaxStringLen, s.cx)}
	c.ec = EventClassOf(c)
	grown := make([]*Class, max(len(byMarker), id+1))
	copy(grown, byMarker)
	grown[id] = c
	newList := append(slices.Clone(list), c)
	// Publish the list first: a reader that finds a record of class c
	// must find c in the list.
	s.classList.Store(&newList)
	s.byMarker.Store(&grown)
	return c, nil
}

// Classes returns the session's event classes in id order. The list only
// grows: markers stay classes after their rules are gone, so ids are stable
// for the life of the session.
func (s *Session) Classes() []*Class {
	return slices.Clone(*s.classList.Load())
}

// class returns the class with the given id (or twin id), or nil.
func (s *Session) class(id uint16) *Class {
	if id&twinBit != 0 {
		if c := s.class(id &^ twinBit); c != nil && c.layout.variable {
			return c
		}
		return nil
	}
	list := *s.classList.Load()
	if id == 0 || int(id) > len(list) {
		return nil
	}
	return list[id-1]
}
