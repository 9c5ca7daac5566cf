package module

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

func TestModinfoRoundTrip(t *testing.T) {
	m := &Modinfo{Name: "classifier", Version: "v1.2.3", Description: "classifies requests — fast", Author: "Ann <ann@example.com>",
		License: "Dual MIT/GPL", ABI: 1, Extra: map[string]string{"url": "https://example.com", "build": "42"}}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := "name=classifier\x00version=v1.2.3\x00description=classifies requests — fast\x00author=Ann <ann@example.com>\x00license=Dual MIT/GPL\x00abi=1\x00build=42\x00url=https://example.com\x00"
	if string(b) != want {
		t.Errorf("encoding\n got %q\nwant %q", b, want)
	}
	back, err := ParseModinfo(b)
	if err != nil || !reflect.DeepEqual(back, m) {
		t.Errorf("round trip: %+v %v", back, err)
	}
	if !back.GPLCompatible() {
		t.Error("Dual MIT/GPL is GPL-compatible")
	}
	min, _ := (&Modinfo{Name: "x", ABI: 1}).MarshalBinary()
	if string(min) != "name=x\x00abi=1\x00" {
		t.Errorf("minimal %q", min)
	}
}

func TestModinfoMalformed(t *testing.T) {
	long := strings.Repeat("x", MaxModinfoValue+1)
	var many string
	for i := range MaxModinfoEntries {
		many += "k" + strconv.Itoa(i) + "=v\x00"
	}
	tests := []struct {
		name, payload, want string
	}{
		{"empty", "", "empty section"},
		{"no NUL", "name=x\x00abi=1", "not NUL-terminated"},
		{"no =", "name=x\x00abi\x00", "entry 2 has no '='"},
		{"bad key", "Name=x\x00abi=1\x00", `bad key "Name"`},
		{"empty key", "=x\x00", `bad key ""`},
		{"duplicate", "name=x\x00name=y\x00abi=1\x00", `key "name" appears twice`},
		{"no name", "abi=1\x00", "no name"},
		{"bad name", "name=Bad-Name\x00abi=1\x00", `name "Bad-Name" is not`},
		{"no abi", "name=x\x00", "no abi"},
		{"abi text", "name=x\x00abi=one\x00", `abi "one" is not a version number`},
		{"abi zero", "name=x\x00abi=0\x00", "is not a version number"},
		{"abi leading zero", "name=x\x00abi=01\x00", "is not a version number"},
		{"invalid UTF-8", "name=x\x00abi=1\x00author=\xff\x00", `value of "author" is not valid UTF-8`},
		{"control character", "name=x\x00abi=1\x00description=\x1b[31mred\x00", `contains control character U+001B`},
		{"C1 control", "name=x\x00abi=1\x00description=a\u009bb\x00", `contains control character U+009B`},
		{"long value", "name=x\x00abi=1\x00description=" + long + "\x00", "is 1025 bytes, over the limit of 1024"},
		{"too many entries", "name=x\x00abi=1\x00" + many, "more than 64 entries"},
		{"huge", "name=x\x00abi=1\x00" + strings.Repeat("a", MaxModinfoBytes), "over the limit of 16384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseModinfo([]byte(tt.payload))
			if !errors.Is(err, ErrBadModinfo) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrBadModinfo with %q", err, tt.want)
			}
		})
	}
	if _, err := (&Modinfo{Name: "x", ABI: 1, Extra: map[string]string{"name": "y"}}).MarshalBinary(); !errors.Is(err, ErrBadModinfo) {
		t.Errorf("extra known key: %v", err)
	}
	if _, err := (&Modinfo{Name: "x"}).MarshalBinary(); !errors.Is(err, ErrBadModinfo) {
		t.Errorf("abi 0: %v", err)
	}
}

func FuzzParseModinfo(f *testing.F) {
	f.Add([]byte("name=x\x00abi=1\x00"))
	f.Add([]byte("name=x\x00abi=1\x00license=GPL\x00extra=\xff\x00"))
	f.Add([]byte("=\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseModinfo(b)
		if err != nil {
			return
		}
		// What parses re-encodes to something that parses the same.
		enc, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", m, err)
		}
		back, err := ParseModinfo(enc)
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip %+v: %+v %v", m, back, err)
		}
	})
}

// testModule builds a small module: one hook, importing fire from ns.
func testModule(ns string) []byte {
	b := wasmbin.NewBuilder()
	fire := b.ImportFunc(ns, "fire", wasmbin.Sig([]byte{wasmbin.I32, wasmbin.I32, wasmbin.I32}, wasmbin.I32))
	b.Memory(1, 0)
	fn := b.Func(wasmbin.Sig([]byte{wasmbin.I32, wasmbin.I32}, wasmbin.I64), nil,
		wasmbin.I32Const(1), wasmbin.I32Const(0), wasmbin.I32Const(0), wasmbin.Call(fire), wasmbin.Op(wasmbin.OpDrop), wasmbin.I64Const(0))
	b.Export("on_request", fn)
	b.Custom("name", []byte("\x00\x04test")) // another custom section, kept as is
	return b.Bytes()
}

func TestSetModinfo(t *testing.T) {
	wasm := testModule(ABINamespace)
	if _, err := ReadModinfo(wasm); !errors.Is(err, ErrNoModinfo) {
		t.Fatalf("no metadata: %v", err)
	}
	m := &Modinfo{Name: "one", ABI: 1}
	w1, err := SetModinfo(wasm, m)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ReadModinfo(w1); err != nil || got.Name != "one" {
		t.Fatalf("read back %+v %v", got, err)
	}
	w2, _ := SetModinfo(w1, &Modinfo{Name: "two", ABI: 1})
	if got, _ := ReadModinfo(w2); got.Name != "two" || len(w2) != len(w1) {
		t.Errorf("replace: %+v, %d bytes vs %d", got, len(w2), len(w1))
	}
	// The code is untouched: stripping the metadata gives the original.
	if s, _ := StripMetadata(w2); string(s) != string(wasm) {
		t.Error("StripMetadata did not give back the original module")
	}
	// Setting the metadata drops a signature it would invalidate.
	key, _ := GenerateKey("k", nil)
	signed, _ := Sign(w2, key)
	w3, _ := SetModinfo(signed, &Modinfo{Name: "three", ABI: 1})
	if v := Verify(w3, nil); v.State != Unsigned {
		t.Errorf("signature after SetModinfo: %v", v)
	}
	twice := wasmbin.AppendCustom(w1, SectionModinfo, []byte("name=x\x00abi=1\x00"))
	if _, err := ReadModinfo(twice); !errors.Is(err, ErrBadModinfo) {
		t.Errorf("two sections: %v", err)
	}
	if _, err := ReadModinfo([]byte("garbage!")); !errors.Is(err, ErrNotWasm) {
		t.Errorf("not wasm: %v", err)
	}
}
