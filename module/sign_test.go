package module

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

func TestSignVerify(t *testing.T) {
	alice, err := GenerateKey("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	mallory, _ := GenerateKey("mallory", nil)
	keys := Keyring{alice.Public()}
	wasm, _ := SetModinfo(testModule(ABINamespace), &Modinfo{Name: "m", ABI: 1, License: "MIT"})
	signed, err := Sign(wasm, alice)
	if err != nil {
		t.Fatal(err)
	}
	// The signed bytes are the module as it was: the section is appended.
	if !bytes.HasPrefix(signed, wasm) {
		t.Error("Sign changed the module's bytes")
	}
	fp := alice.Public().Fingerprint()
	if v := Verify(signed, keys); v.State != Trusted || v.Signer != "alice" || v.Fingerprint != fp || v.Taint() != 0 || v.String() != "alice ("+fp+")" {
		t.Errorf("trusted: %+v", v)
	}
	if v := Verify(signed, nil); v.State != UnknownKey || v.Taint() != TaintUnsigned || v.String() != "unknown key "+fp {
		t.Errorf("no keyring: %+v", v)
	}
	if v := Verify(wasm, keys); v.State != Unsigned || v.Taint() != TaintUnsigned {
		t.Errorf("unsigned: %+v", v)
	}
	// Re-signing replaces the signature.
	resigned, _ := Sign(signed, mallory)
	if v := Verify(resigned, Keyring{mallory.Public()}); v.State != Trusted || v.Signer != "mallory" || len(resigned) != len(signed) {
		t.Errorf("re-signed: %+v", v)
	}

	// Changing any byte outside the signature breaks it; so does adding
	// a section after signing.
	sigStart := len(wasm)
	for _, i := range []int{8, 20, len(wasm) / 2, sigStart - 1} {
		bad := bytes.Clone(signed)
		bad[i] ^= 1
		if v := Verify(bad, keys); v.State == Trusted || v.Taint() != TaintUnsigned {
			t.Errorf("byte %d flipped: %+v", i, v)
		}
	}
	added := wasmbin.AppendCustom(bytes.Clone(signed), "extra", []byte("x"))
	if v := Verify(added, keys); v.State != BadSignature || !strings.Contains(v.Problem, "alice") {
		t.Errorf("section added: %+v", v)
	}
	// Moving the signature section does not matter: the rest is signed.
	moved := append(bytes.Clone(signed[:8]), signed[sigStart:]...)
	moved = append(moved, signed[8:sigStart]...)
	if v := Verify(moved, keys); v.State != Trusted {
		t.Errorf("moved signature: %+v", v)
	}
	for _, p := range [][]byte{nil, make([]byte, sigLen-1), append([]byte{2}, make([]byte, sigLen-1)...)} {
		bad := wasmbin.AppendCustom(bytes.Clone(wasm), SectionSignature, p)
		if v := Verify(bad, keys); v.State != BadSignature || !strings.Contains(v.Problem, "malformed signature section") {
			t.Errorf("malformed %d bytes: %+v", len(p), v)
		}
	}
	two := wasmbin.AppendCustom(bytes.Clone(signed), SectionSignature, signed[sigStart+len(SectionSignature)+3:])
	if v := Verify(two, keys); v.State != BadSignature || v.Problem != "more than one signature section" {
		t.Errorf("two signatures: %+v", v)
	}
}

func TestSignFile(t *testing.T) {
	k, _ := GenerateKey("k", nil)
	path := filepath.Join(t.TempDir(), "m.wasm")
	wasm, _ := SetModinfo(testModule(ABINamespace), &Modinfo{Name: "m", ABI: 1})
	os.WriteFile(path, wasm, 0o640)
	if err := SignFile(path, k); err != nil {
		t.Fatal(err)
	}
	fi, err := InspectFile(path, Keyring{k.Public()})
	if err != nil || fi.Signature.State != Trusted || fi.Path != path {
		t.Fatalf("%+v %v", fi, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	if err := SignFile(filepath.Join(t.TempDir(), "missing.wasm"), k); err == nil {
		t.Error("signed a missing file")
	}
}

func TestKeyFiles(t *testing.T) {
	k, err := GenerateKey("ops team <ops@example.com>", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ops.key")
	if err := WriteKeyPair(path, k); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(path, k); err == nil {
		t.Error("WriteKeyPair overwrote a key")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v", st.Mode())
	}
	back, err := LoadPrivateKey(path)
	if err != nil || !back.Key.Equal(k.Key) || back.Name != k.Name {
		t.Fatalf("private key round trip: %+v %v", back, err)
	}
	pub, _ := os.ReadFile(path + ".pub")
	if !strings.HasPrefix(string(pub), "tracemark-ed25519 ") || !strings.HasSuffix(string(pub), " ops team <ops@example.com>\n") {
		t.Errorf("public key file %q", pub)
	}
	ring, err := LoadKeyring(dir)
	if err != nil || len(ring) != 1 || !ring[0].Key.Equal(k.Public().Key) || ring[0].Name != k.Name {
		t.Fatalf("keyring from directory: %+v %v", ring, err)
	}
	if got, ok := ring.Find(k.Public().Key); !ok || got.Name != k.Name {
		t.Error("Find")
	}
	other, _ := GenerateKey("", nil)
	if _, ok := ring.Find(other.Public().Key); ok {
		t.Error("Find found a stranger")
	}
	good := k.Public().String()
	bad := []string{
		"ssh-ed25519 AAAA x",
		"tracemark-ed25519 !!! x",
		"tracemark-ed25519 " + strings.Repeat("A", 40) + " x",
		good + "\x1b",
	}
	for _, b := range bad {
		if _, err := ParseKeyring([]byte("# comment\n\n" + good + "\n" + b + "\n")); err == nil {
			t.Errorf("ParseKeyring accepted %q", b)
		}
	}
	if r, err := ParseKeyring([]byte("# comment\n\n" + good + "\n")); err != nil || len(r) != 1 {
		t.Errorf("ParseKeyring: %v %v", r, err)
	}
	for _, b := range []string{"", "tracemark-ed25519 x", "tracemark-ed25519-private AAAA", "tracemark-ed25519-private a\nb"} {
		if _, err := ParsePrivateKey([]byte(b)); err == nil {
			t.Errorf("ParsePrivateKey accepted %q", b)
		}
	}
	if _, err := GenerateKey("two\nlines", nil); err == nil {
		t.Error("GenerateKey accepted a newline in the name")
	}
	if len(k.Key) != ed25519.PrivateKeySize {
		t.Error("key size")
	}
}

func TestInspect(t *testing.T) {
	alice, _ := GenerateKey("alice", nil)
	wasm, _ := SetModinfo(testModule(ABINamespace), &Modinfo{Name: "classifier", Version: "v1", License: "Proprietary", Author: "Example", ABI: 1})
	wasm, _ = Sign(wasm, alice)
	fi, err := Inspect(wasm, Keyring{alice.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if fi.Modinfo.Name != "classifier" || fi.GPLCompatible || fi.Signature.State != Trusted || fi.ABIError != "" || fi.Taint.String() != "P" ||
		len(fi.Imports) != 1 || fi.Imports[0].Type != "(i32, i32, i32) -> (i32)" || len(fi.Exports) != 1 || fi.Exports[0] != "on_request" {
		t.Errorf("%+v", fi)
	}
	s := fi.String()
	for _, want := range []string{"name:         classifier", "license:      Proprietary (proprietary)", "signature:    alice (ed25519:", "abi check:    ok", "taint:        P (O depends", "imports:      tracemark_v1 (1 functions)", "exports:      on_request"} {
		if !strings.Contains(s, want) {
			t.Errorf("modinfo output lacks %q:\n%s", want, s)
		}
	}

	tests := []struct {
		name   string
		wasm   []byte
		abiErr string
		taint  string
	}{
		{"other namespace", mustSet(testModule("tracemark_v2"), &Modinfo{Name: "x", ABI: 1, License: "GPL"}), "tracemark_v2.fire: unknown ABI namespace", "FE"},
		{"abi 2", mustSet(testModule(ABINamespace), &Modinfo{Name: "x", ABI: 2, License: "GPL"}), "built for ABI v2, the host offers v1", "FE"},
		{"no metadata", testModule(ABINamespace), "ABI version unknown: no module metadata", "PFE"},
		{"env import", mustSet(testModule("env"), &Modinfo{Name: "x", ABI: 1, License: "MIT"}), "env.fire: unknown ABI namespace", "FE"},
	}
	for _, tt := range tests {
		fi, err := Inspect(tt.wasm, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(fi.ABIError, tt.abiErr) || fi.Taint.String() != tt.taint {
			t.Errorf("%s: abi %q taint %q, want %q %q", tt.name, fi.ABIError, fi.Taint, tt.abiErr, tt.taint)
		}
	}
	// A wrong ABI v1 signature.
	b := wasmbin.NewBuilder()
	b.ImportFunc(ABINamespace, "fire", wasmbin.Sig([]byte{wasmbin.I32}, wasmbin.I32))
	b.ImportFunc(ABINamespace, "log", wasmbin.Sig(nil))
	fi, _ = Inspect(mustSet(b.Bytes(), &Modinfo{Name: "x", ABI: 1}), nil)
	if !strings.Contains(fi.ABIError, "tracemark_v1.fire: ABI v1 type is (i32, i32, i32) -> (i32)") || !strings.Contains(fi.ABIError, "tracemark_v1.log: not a function of ABI v1") {
		t.Errorf("bad imports: %q", fi.ABIError)
	}
	if _, err := Inspect([]byte("\x00asm\x01\x00\x00\x00\x02\x05\x01"), nil); err == nil {
		t.Error("truncated import section accepted")
	}
}

func mustSet(wasm []byte, m *Modinfo) []byte {
	out, err := SetModinfo(wasm, m)
	if err != nil {
		panic(err)
	}
	return out
}

func FuzzAnalyze(f *testing.F) {
	f.Add(testModule(ABINamespace))
	f.Add(mustSet(testModule("env"), &Modinfo{Name: "x", ABI: 1}))
	f.Add([]byte(wasmbin.Header))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Analyze(b, nil)
		if err != nil {
			return
		}
		if a.Modinfo == nil && a.ModinfoErr == nil {
			t.Fatal("no metadata and no error")
		}
		fi, err := Inspect(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = fi.String()
	})
}
