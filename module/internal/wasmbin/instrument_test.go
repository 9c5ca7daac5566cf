package wasmbin

import (
	"bytes"
	"testing"
)

func TestInstrument(t *testing.T) {
	b := NewBuilder()
	loop := []byte{OpLoop, BlockVoid, OpBr, 0, OpEnd}
	fn := b.Func(Sig(nil), nil, loop)
	b.Start(fn)
	b.Export("f", fn)
	out, err := Instrument(b.Bytes(), "stop", "start")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Check(out, CheckLimits{}); err != nil {
		t.Fatalf("instrumented module does not check: %v", err)
	}
	secs, err := Sections(out)
	if err != nil {
		t.Fatal(err)
	}
	var ids []byte
	var exports []Export
	for _, s := range secs {
		ids = append(ids, s.ID)
		switch s.ID {
		case SectionExport:
			exports, _ = Exports(s.Payload)
		case SectionCode:
			// The loop head now tests global 0 (stop) and counts global 1.
			if !bytes.Contains(s.Payload, []byte{OpLoop, BlockVoid, 0x23, 0, 0x04, BlockVoid, OpUnreachable, OpEnd, 0x23, 1}) {
				t.Errorf("code has no stop check after its loop: % x", s.Payload)
			}
		}
	}
	// type, function, memory (added: the module had none), global, export, code
	if want := []byte{SectionType, SectionFunction, SectionMemory, SectionGlobal, SectionExport, SectionCode}; !bytes.Equal(ids, want) {
		t.Errorf("sections %v, want %v (no start section)", ids, want)
	}
	names := map[string]Export{}
	for _, e := range exports {
		names[e.Name] = e
	}
	if e, ok := names["stop"]; !ok || e.Kind != KindGlobal || e.Index != 0 {
		t.Errorf("stop export %+v", e)
	}
	if e, ok := names["start"]; !ok || e.Kind != KindFunc || e.Index != fn {
		t.Errorf("start export %+v", e)
	}
	if _, ok := names["f"]; !ok {
		t.Error("the module's own export is gone")
	}
	if _, err := Instrument(out, "stop", "start"); err == nil {
		t.Error("a module that exports stop is accepted")
	}
}
