package main

import (
	"context"
	"errors"
	"strings"

	"github.com/tracemark/tracemark/internal/celfilter"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/filterform"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/marker"
)

// Filters are compiled here, not in the traced program: the CLI
// type-checks each rule's CEL filter against the target's markers that
// its glob matches, with CEL's errors ("undeclared reference to
// 'statsu'"), bounds its cost, and sends its checked form with the
// source; the agent evaluates the form without linking CEL (see
// internal/filterform).

// checkedMaxString is the MaxStringLen the CLI checks costs with: that of
// the sessions the agent creates for it (session's default). The agent
// bounds the cost again with its own.
const checkedMaxString = 1024

// checkFilters returns rules with the checked form of each filter,
// compiled against the markers of the target that the rule's glob
// matches. As the agent does, markers that lack a field the filter names
// are left out (the agent reports them), unless every marker is; any
// other error refuses the rule, with code bad_filter. A glob that matches
// no marker yet gets the form of the parsed expression, which the agent
// type-checks when markers appear.
func checkFilters(ctx context.Context, c *client.Client, rules []wire.Rule) ([]wire.Rule, error) {
	out := make([]wire.Rule, len(rules))
	for i, r := range rules {
		out[i] = r
		if strings.TrimSpace(r.Filter) == "" || len(r.Checked) > 0 {
			continue
		}
		ms, err := c.Markers(ctx, r.Pattern)
		if err != nil {
			return nil, err
		}
		form, err := checkFilter(r.Filter, ms)
		if err != nil {
			return nil, wire.Errorf(wire.CodeBadFilter, "%v", err)
		}
		b, err := filterform.Encode(form)
		if err != nil {
			return nil, wire.Errorf(wire.CodeBadFilter, "filter %q: %v", r.Filter, err)
		}
		out[i].Checked = b
	}
	return out, nil
}

// checkFilter compiles src for each of ms and returns its checked form.
func checkFilter(src string, ms []wire.Marker) (*filterform.Node, error) {
	var form *filterform.Node
	var firstLeftOut error
	for _, m := range ms {
		fields := schema(m)
		f, err := celfilter.Check(src, m.Name, fields, checkedMaxString)
		switch {
		case err != nil && len(celfilter.MissingFields(src, fields)) > 0:
			if firstLeftOut == nil {
				firstLeftOut = err
			}
		case err != nil:
			return nil, err
		case form == nil:
			form = f
		}
	}
	if form != nil {
		return form, nil
	}
	if firstLeftOut != nil {
		return nil, firstLeftOut // no marker has the fields: a typo, most likely
	}
	return celfilter.Parse(src)
}

// schema returns a marker's fields as the agent reported them; fields of
// a kind this CLI does not know are left out (a filter naming them gets
// "undeclared reference").
func schema(m wire.Marker) []marker.FieldInfo {
	out := make([]marker.FieldInfo, 0, len(m.Fields))
	for _, f := range m.Fields {
		if k, err := marker.ParseKind(f.Kind); err == nil {
			out = append(out, marker.FieldInfo{Name: f.Name, Kind: k})
		}
	}
	return out
}

// withoutChecked drops the checked forms, for an agent older than them
// (it refuses the unknown field; it compiles the source itself).
func withoutChecked(rules []wire.Rule) []wire.Rule {
	out := make([]wire.Rule, len(rules))
	for i, r := range rules {
		out[i] = wire.Rule{Pattern: r.Pattern, Filter: r.Filter}
	}
	return out
}

func refusedChecked(err error) bool {
	var we *wire.Error
	return errors.As(err, &we) && we.Code == wire.CodeUnknownField && strings.Contains(we.Message, "checked")
}

// recordChecked is c.Record with the rules' filters checked.
func recordChecked(ctx context.Context, c *client.Client, req wire.RecordRequest) (*client.Stream, error) {
	rules, err := checkFilters(ctx, c, req.Rules)
	if err != nil {
		return nil, err
	}
	req.Rules = rules
	s, err := c.Record(ctx, req)
	if refusedChecked(err) {
		req.Rules = withoutChecked(rules)
		s, err = c.Record(ctx, req)
	}
	if len(req.Context) > 0 {
		err = errContextAgent(err)
	}
	return s, err
}

// enableChecked is c.Enable with the rules' filters checked.
func enableChecked(ctx context.Context, c *client.Client, name string, req wire.EnableRequest) (*wire.SessionInfo, error) {
	rules, err := checkFilters(ctx, c, req.Rules)
	if err != nil {
		return nil, err
	}
	req.Rules = rules
	si, err := c.Enable(ctx, name, req)
	if refusedChecked(err) {
		req.Rules = withoutChecked(rules)
		si, err = c.Enable(ctx, name, req)
	}
	if len(req.Context) > 0 {
		err = errContextAgent(err)
	}
	return si, err
}
