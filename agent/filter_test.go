package agent_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/internal/celfilter"
	"github.com/tracemark/tracemark/internal/filterform"
	"github.com/tracemark/tracemark/internal/wire"
)

// checked returns the checked form of src for agenttest:tick, as the CLI
// sends it.
func checked(t *testing.T, src string) wire.CheckedFilter {
	t.Helper()
	m := tick.Info()
	form, err := celfilter.Check(src, m.Name(), m.Fields(), 1024)
	if err != nil {
		t.Fatal(err)
	}
	b, err := filterform.Encode(form)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckedFiltersThroughTheAgent records with filters in their checked
// form, as the CLI sends them, in an agent that does not link CEL: it
// keeps exactly the events the expression is true for, whatever their
// order across shards.
func TestCheckedFiltersThroughTheAgent(t *testing.T) {
	keys := []string{"a", "b", "c"}
	for _, tc := range []struct {
		src  string
		want func(i int, key string) bool
	}{
		{`key != "c"`, func(i int, key string) bool { return key != "c" }},
		{`i % 7 == 3 || key == "b" && i > 250`, func(i int, key string) bool { return i%7 == 3 || key == "b" && i > 250 }},
		{`i * 2 - 1 in [1, 9, 99, 599]`, func(i int, key string) bool { return i == 1 || i == 5 || i == 50 || i == 300 }},
		{`(key.startsWith("a") || key.endsWith("b")) && !(i < 290)`, func(i int, key string) bool { return key != "c" && i >= 290 }},
		{`i > 0 ? 1000 / i >= 10 : false`, func(i int, key string) bool { return i > 0 && 1000/i >= 10 }},
		{`size(key) == 1 && double(i) / 2.0 > 140.5`, func(i int, key string) bool { return float64(i)/2 > 140.5 }},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, c := startAgent(t)
			s, err := c.Record(ctx(t), wire.RecordRequest{
				Rules:         []wire.Rule{{Pattern: "agenttest:tick", Filter: tc.src, Checked: checked(t, tc.src)}},
				FlushInterval: "10ms", Client: "test",
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			fireTicks(300)
			if err := c.Stop(ctx(t), s.Hello.Recording); err != nil {
				t.Fatal(err)
			}
			got := collect(t, s)
			var want []string
			for i := range 300 {
				if key := keys[i%3]; tc.want(i, key) {
					want = append(want, fmt.Sprintf("agenttest:tick %d %q", i, key))
				}
			}
			// Which events, not their order: a goroutine that moves
			// between Ps leaves its events in two shards, drained one
			// after the other.
			slices.Sort(got.records)
			slices.Sort(want)
			if strings.Join(got.records, "\n") != strings.Join(want, "\n") {
				t.Errorf("got %d records, want %d:\n%v\nwant\n%v", len(got.records), len(want), got.records, want)
			}
			if st := got.end.Stats; st.Filtered != uint64(300-len(want)) || st.OverCost != 0 {
				t.Errorf("stats %+v, want %d filtered", st, 300-len(want))
			}
		})
	}
}

// TestFilterSourceNeedsCEL sends a filter without its checked form to an
// agent that does not link CEL: a clear bad_filter error that says what
// to import.
func TestFilterSourceNeedsCEL(t *testing.T) {
	_, c := startAgent(t)
	_, err := c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick", Filter: `i > 3`}}})
	if !wire.IsCode(err, wire.CodeBadFilter) || !strings.Contains(err.Error(), `import _ "github.com/tracemark/tracemark/session/celfilter"`) {
		t.Fatalf("got %v, want a bad_filter error naming session/celfilter", err)
	}
}

// TestHostileCheckedFilters sends malformed and hostile checked forms:
// each gets a bad_filter error saying what is wrong, and the agent keeps
// serving.
func TestHostileCheckedFilters(t *testing.T) {
	_, c := startAgent(t)
	field := `{"op":"field","field":"i"}`
	deep := strings.Repeat(`{"op":"not","args":[`, 200) + `{"op":"bool","bool":true}` + strings.Repeat(`]}`, 200)
	var many []string
	for range 2100 {
		many = append(many, `{"op":"int"}`)
	}
	wide := `{"op":"in","args":[` + field + `,{"op":"list","args":[` + strings.Join(many, ",") + `]}]}`
	var searches []string
	for j := range 5 {
		searches = append(searches, fmt.Sprintf(`{"op":"contains","args":[{"op":"field","field":"key"},{"op":"string","str":"aaaaaaaaaaaaaaa%c"}]}`, 'b'+j))
	}
	costly := searches[0]
	for _, s := range searches[1:] {
		costly = `{"op":"or","args":[` + costly + `,` + s + `]}`
	}
	for _, tc := range []struct{ name, form, want string }{
		{"not an object", `"status >= 500"`, "malformed checked form"},
		{"wrong version", `{"v":2,"expr":{"op":"bool","bool":true}}`, "version 2"},
		{"no expression", `{"v":1}`, "without an expression"},
		{"null node", `{"v":1,"expr":{"op":"and","args":[null,{"op":"bool"}]}}`, "a null node"},
		{"bad opcode", `{"v":1,"expr":{"op":"exec","args":[]}}`, `unknown operator "exec"`},
		{"unknown key", `{"v":1,"expr":{"op":"bool","code":"x"}}`, `unknown field "code"`},
		{"wrong arity", `{"v":1,"expr":{"op":"ge","args":[` + field + `]}}`, "ge takes 2 operands, not 1"},
		{"wrong JSON type", `{"v":1,"expr":{"op":"int","int":"500"}}`, "malformed checked form"},
		{"deep nesting", `{"v":1,"expr":` + deep + `}`, "nested more than 64 deep"},
		{"huge constant", `{"v":1,"expr":{"op":"eq","args":[{"op":"field","field":"key"},{"op":"string","str":"` + strings.Repeat("x", 5000) + `"}]}}`, "a constant of more than 4096 bytes"},
		{"huge form", `{"v":1,"expr":{"op":"bool","str":"` + strings.Repeat("x", 40000) + `"}}`, "checked filter of 40037 bytes exceeds 32768"},
		{"wrong types", `{"v":1,"expr":{"op":"ge","args":[` + field + `,{"op":"string","str":"x"}]}}`, ">= does not apply to (int, string)"},
		{"not bool", `{"v":1,"expr":` + field + `}`, "the expression is int, not bool"},
		{"unknown field", `{"v":1,"expr":{"op":"ge","args":[{"op":"field","field":"nokey"},{"op":"int","int":1}]}}`, `no field "nokey"`},
		{"list outside in", `{"v":1,"expr":{"op":"eq","args":[{"op":"list"},{"op":"list"}]}}`, "a list outside the right operand of in"},
		{"list of fields", `{"v":1,"expr":{"op":"in","args":[` + field + `,{"op":"list","args":[` + field + `]}]}}`, "list elements must be constants"},
		{"bad regex", `{"v":1,"expr":{"op":"matches","args":[{"op":"field","field":"key"},{"op":"string","str":"("}]}}`, "missing closing )"},
		{"regex over a field", `{"v":1,"expr":{"op":"matches","args":[{"op":"field","field":"key"},{"op":"string","str":"^a+b$"}]}}`, "too expensive"},
		{"too many nodes", `{"v":1,"expr":` + wide + `}`, "more than 2048 nodes"},
		{"too costly", `{"v":1,"expr":` + costly + `}`, "too expensive: estimated cost up to 42"},
		{"without source", ``, "without its source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rule := wire.Rule{Pattern: "agenttest:tick", Filter: "x", Checked: wire.CheckedFilter(tc.form)}
			if tc.form == "" {
				rule = wire.Rule{Pattern: "agenttest:tick", Checked: wire.CheckedFilter(`{"v":1,"expr":{"op":"bool","bool":true}}`)}
			}
			_, err := c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{rule}})
			if !wire.IsCode(err, wire.CodeBadFilter) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a bad_filter error with %q", err, tc.want)
			}
			if _, err := c.Info(ctx(t)); err != nil {
				t.Fatalf("the agent stopped serving: %v", err)
			}
		})
	}
}
