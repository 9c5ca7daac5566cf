package module

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTaintLetters(t *testing.T) {
	tests := []struct {
		taint Taint
		want  string
	}{
		{0, ""},
		{TaintProprietary, "P"},
		{TaintForced, "F"},
		{TaintForceUnloaded, "R"},
		{TaintUser, "U"},
		{TaintDied, "D"},
		{TaintWarning, "W"},
		{TaintOutOfTree, "O"},
		{TaintUnsigned, "E"},
		{TaintOverran, "L"},
		{TaintUnsigned | TaintOutOfTree | TaintProprietary, "POE"},
		{AllTaints, "PFRUDWOEL"},
	}
	for _, tt := range tests {
		if got := tt.taint.String(); got != tt.want {
			t.Errorf("%#x.String() = %q, want %q", uint16(tt.taint), got, tt.want)
		}
		back, err := ParseTaint(tt.want)
		if err != nil || back != tt.taint {
			t.Errorf("ParseTaint(%q) = %v, %v", tt.want, back, err)
		}
		if len(tt.want) == 1 {
			if tt.taint.Letter() != tt.want[0] || tt.taint.Meaning() == "" || strings.HasPrefix(tt.taint.Meaning(), "unknown") {
				t.Errorf("%s: letter %c meaning %q", tt.want, tt.taint.Letter(), tt.taint.Meaning())
			}
		}
	}
	if _, err := ParseTaint("PX"); err == nil {
		t.Error("ParseTaint accepted X")
	}
	if got, _ := ParseTaint("EOP"); got.String() != "POE" {
		t.Errorf("order: %q", got)
	}
	if (TaintProprietary | TaintDied).Letter() != '?' {
		t.Error("Letter of two flags")
	}
	js, _ := json.Marshal(struct{ T Taint }{TaintDied | TaintOverran})
	if string(js) != `{"T":"DL"}` {
		t.Errorf("JSON %s", js)
	}
	var back struct{ T Taint }
	if err := json.Unmarshal(js, &back); err != nil || back.T != TaintDied|TaintOverran {
		t.Errorf("JSON round trip: %v %v", back.T, err)
	}
}

func TestProcessTaintIsSticky(t *testing.T) {
	AddTaint(TaintUser, "tainttest", "first")
	AddTaint(TaintUser, "tainttest", "second") // same flag and module: one record
	AddTaint(TaintUser|TaintWarning, "tainttest2", "both")
	AddTaint(0, "nobody", "nothing")
	if !strings.Contains(Tainted().String(), "U") || !strings.Contains(Tainted().String(), "W") {
		t.Fatalf("process taint %q", Tainted())
	}
	var recs []TaintRecord
	for _, r := range TaintLog() {
		if strings.HasPrefix(r.Module, "tainttest") || r.Module == "nobody" {
			recs = append(recs, r)
		}
	}
	if len(recs) != 3 || recs[0].Reason != "first" || recs[1].Flag != TaintUser || recs[2].Flag != TaintWarning {
		t.Errorf("log %+v", recs)
	}
	rep := Report()
	s := rep.String()
	for _, want := range []string{"Tainted: ", "  U  taint set by the user", "tainttest: first", "tainttest2: both"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if (TaintReport{}).String() != "Not tainted\n" {
		t.Error("empty report")
	}
}
