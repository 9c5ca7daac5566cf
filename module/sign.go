package module

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tracemark/tracemark/internal/clip"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// Key file formats. Both are one line of text, like an OpenSSH key:
//
//	tracemark-ed25519 <base64 public key, 32 bytes> <name>
//	tracemark-ed25519-private <base64 seed, 32 bytes> <name>
//
// The name is free text for operators (the rest of the line). A keyring
// file holds any number of public-key lines; blank lines and lines
// starting with # are ignored.
const (
	publicKeyTag  = "tracemark-ed25519"
	privateKeyTag = "tracemark-ed25519-private"
)

// sigVersion is the first byte of a signature section.
const sigVersion = 1

// sigContext is prepended to the signed bytes so that a module signature
// can never be mistaken for a signature over anything else.
const sigContext = "tracemark-sig-v1\x00"

// sigLen is the size of a signature section payload: version, public key,
// signature.
const sigLen = 1 + ed25519.PublicKeySize + ed25519.SignatureSize

// Errors about keys and signatures.
var (
	ErrBadKey = errors.New("malformed key")
)

// PublicKey is a signer's public key with a name for operators.
type PublicKey struct {
	Name string
	Key  ed25519.PublicKey
}

// Fingerprint identifies the key: "ed25519:" and the first 8 bytes of the
// SHA-256 of the key, in hex.
func (k PublicKey) Fingerprint() string { return fingerprint(k.Key) }

func fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// String returns the key as a line of a keyring file (without newline).
func (k PublicKey) String() string {
	s := publicKeyTag + " " + base64.StdEncoding.EncodeToString(k.Key)
	if k.Name != "" {
		s += " " + k.Name
	}
	return s
}

// PrivateKey is a signing key with a name.
type PrivateKey struct {
	Name string
	Key  ed25519.PrivateKey
}

// GenerateKey makes a new signing key called name (what `tracemark keygen`
// calls). rand may be nil for crypto/rand.
func GenerateKey(name string, random io.Reader) (*PrivateKey, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	if random == nil {
		random = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	return &PrivateKey{Name: name, Key: priv}, nil
}

func checkKeyName(name string) error {
	if strings.ContainsAny(name, "\r\n") || checkText([]byte(name)) != nil {
		return fmt.Errorf("%w: key name %q contains control characters", ErrBadKey, clip.String(name, 40))
	}
	return nil
}

// Public returns the public half of the key.
func (k *PrivateKey) Public() PublicKey {
	return PublicKey{Name: k.Name, Key: k.Key.Public().(ed25519.PublicKey)}
}

// MarshalText encodes the key in the private key file format, with a
// trailing newline.
func (k *PrivateKey) MarshalText() ([]byte, error) {
	s := privateKeyTag + " " + base64.StdEncoding.EncodeToString(k.Key.Seed())
	if k.Name != "" {
		s += " " + k.Name
	}
	return []byte(s + "\n"), nil
}

// ParsePrivateKey decodes a private key file.
func ParsePrivateKey(b []byte) (*PrivateKey, error) {
	line := strings.TrimSpace(string(b))
	if strings.Contains(line, "\n") {
		return nil, fmt.Errorf("%w: a private key file holds one line", ErrBadKey)
	}
	tag, rest, _ := strings.Cut(line, " ")
	if tag != privateKeyTag {
		return nil, fmt.Errorf("%w: not a %s key", ErrBadKey, privateKeyTag)
	}
	enc, name, _ := strings.Cut(rest, " ")
	seed, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: seed is not %d bytes of base64", ErrBadKey, ed25519.SeedSize)
	}
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	return &PrivateKey{Name: name, Key: ed25519.NewKeyFromSeed(seed)}, nil
}

// LoadPrivateKey reads a private key file.
func LoadPrivateKey(path string) (*PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	k, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// WriteKeyPair writes the private key to path (mode 0600, refusing to
// overwrite) and its public key to path+".pub": what `tracemark keygen`
// does.
func WriteKeyPair(path string, k *PrivateKey) error {
	priv, _ := k.MarshalText()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing key: %w", err)
	}
	if _, err := f.Write(priv); err != nil {
		f.Close()
		return fmt.Errorf("writing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing key: %w", err)
	}
	if err := os.WriteFile(path+".pub", []byte(k.Public().String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing public key: %w", err)
	}
	return nil
}

// Keyring is the set of public keys a host trusts.
type Keyring []PublicKey

// ParseKeyring decodes keyring lines.
func ParseKeyring(b []byte) (Keyring, error) {
	var r Keyring
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		tag, rest, _ := strings.Cut(line, " ")
		if tag != publicKeyTag {
			return nil, fmt.Errorf("%w: line %d: not a %s key", ErrBadKey, n, publicKeyTag)
		}
		enc, name, _ := strings.Cut(rest, " ")
		key, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: line %d: key is not %d bytes of base64", ErrBadKey, n, ed25519.PublicKeySize)
		}
		if err := checkKeyName(name); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		r = append(r, PublicKey{Name: name, Key: key})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return r, nil
}

// LoadKeyring reads keyring files; a directory contributes every *.pub
// file in it.
func LoadKeyring(paths ...string) (Keyring, error) {
	var r Keyring
	for _, p := range paths {
		files := []string{p}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			files, _ = filepath.Glob(filepath.Join(p, "*.pub"))
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("reading keyring: %w", err)
			}
			k, err := ParseKeyring(b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			r = append(r, k...)
		}
	}
	return r, nil
}

// Find returns the trusted key equal to key.
func (r Keyring) Find(key ed25519.PublicKey) (PublicKey, bool) {
	for _, k := range r {
		if k.Key.Equal(key) {
			return k, true
		}
	}
	return PublicKey{}, false
}

// SignatureState says what a module's signature proves.
type SignatureState uint8

const (
	// Unsigned: no signature section.
	Unsigned SignatureState = iota
	// Trusted: a valid signature by a key in the host's keyring.
	Trusted
	// UnknownKey: a valid signature by a key the host does not trust.
	UnknownKey
	// BadSignature: the signature does not match the module's bytes (the
	// module was changed after signing) or is malformed.
	BadSignature
)

var sigStateNames = [...]string{Unsigned: "unsigned", Trusted: "trusted", UnknownKey: "unknown-key", BadSignature: "bad-signature"}

// String returns "unsigned", "trusted", "unknown-key" or "bad-signature".
func (s SignatureState) String() string {
	if int(s) < len(sigStateNames) {
		return sigStateNames[s]
	}
	return fmt.Sprintf("signature(%d)", s)
}

// MarshalText encodes the state's name.
func (s SignatureState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Signature is the result of checking a module's signature.
type Signature struct {
	State SignatureState `json:"state"`
	// Signer is the trusted key's name (Trusted only).
	Signer string `json:"signer,omitempty"`
	// Fingerprint identifies the key that signed, if the section could be
	// read.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Problem explains BadSignature.
	Problem string `json:"problem,omitempty"`
}

// Taint returns E unless the signature is Trusted.
func (s Signature) Taint() Taint {
	if s.State == Trusted {
		return 0
	}
	return TaintUnsigned
}

// String describes the signature for lsmod and modinfo: "alice
// (ed25519:...)", "unsigned", "unknown key ed25519:...", "bad signature:
// ...".
func (s Signature) String() string {
	switch s.State {
	case Trusted:
		return s.Signer + " (" + s.Fingerprint + ")"
	case UnknownKey:
		return "unknown key " + s.Fingerprint
	case BadSignature:
		return "bad signature: " + s.Problem
	}
	return "unsigned"
}

// Sign signs a module with key and returns the signed module (what
// `tracemark sign --key` calls). An existing signature is replaced. Sign
// last: changing the metadata afterwards invalidates the signature.
//
// The signature section (tracemark.sig) holds 97 bytes: the version 1, the
// 32-byte ed25519 public key, and the 64-byte ed25519 signature of
// "tracemark-sig-v1\x00" followed by every byte of the file except the
// signature section itself (its id byte, size, name and payload). Sign
// appends the section at the end, so the signed bytes are exactly the
// file as it was before signing.
func Sign(wasm []byte, key *PrivateKey) ([]byte, error) {
	unsigned, err := removeSections(wasm, SectionSignature)
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(key.Key, signedMessage(unsigned))
	p := make([]byte, 0, sigLen)
	p = append(p, sigVersion)
	p = append(p, key.Key.Public().(ed25519.PublicKey)...)
	p = append(p, sig...)
	return wasmbin.AppendCustom(unsigned, SectionSignature, p), nil
}

// SignFile signs the module file at path in place (what `tracemark sign
// --key KEY FILE.wasm` does): it replaces the file atomically.
func SignFile(path string, key *PrivateKey) error {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("signing module: %w", err)
	}
	signed, err := Sign(wasm, key)
	if err != nil {
		return fmt.Errorf("signing %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("signing module: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sign-*")
	if err != nil {
		return fmt.Errorf("signing module: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(signed); err != nil {
		tmp.Close()
		return fmt.Errorf("signing module: %w", err)
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		tmp.Close()
		return fmt.Errorf("signing module: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("signing module: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("signing module: %w", err)
	}
	return nil
}

func signedMessage(unsigned []byte) []byte {
	msg := make([]byte, 0, len(sigContext)+len(unsigned))
	msg = append(msg, sigContext...)
	return append(msg, unsigned...)
}

// Verify checks a module's signature against the trusted keys.
func Verify(wasm []byte, keys Keyring) Signature {
	secs, err := sections(wasm)
	if err != nil {
		return Signature{State: BadSignature, Problem: err.Error()}
	}
	return verify(wasm, secs, keys)
}

func verify(wasm []byte, secs []wasmbin.Section, keys Keyring) Signature {
	var sec *wasmbin.Section
	for i := range secs {
		if secs[i].ID == wasmbin.SectionCustom && secs[i].Name == SectionSignature {
			if sec != nil {
				return Signature{State: BadSignature, Problem: "more than one signature section"}
			}
			sec = &secs[i]
		}
	}
	if sec == nil {
		return Signature{State: Unsigned}
	}
	p := sec.Payload
	if len(p) != sigLen || p[0] != sigVersion {
		return Signature{State: BadSignature, Problem: fmt.Sprintf("malformed signature section (%d bytes, want %d of version %d)", len(p), sigLen, sigVersion)}
	}
	pub := ed25519.PublicKey(p[1 : 1+ed25519.PublicKeySize])
	s := Signature{Fingerprint: fingerprint(pub)}
	unsigned := make([]byte, 0, len(wasm)-(sec.End-sec.Start))
	unsigned = append(unsigned, wasm[:sec.Start]...)
	unsigned = append(unsigned, wasm[sec.End:]...)
	if !ed25519.Verify(pub, signedMessage(unsigned), p[1+ed25519.PublicKeySize:]) {
		s.State = BadSignature
		s.Problem = "signature by " + s.Fingerprint + " does not match the module (changed after signing?)"
		if k, ok := keys.Find(pub); ok {
			s.Problem = fmt.Sprintf("signature by %s (%s) does not match the module (changed after signing?)", k.Name, s.Fingerprint)
		}
		return s
	}
	if k, ok := keys.Find(pub); ok {
		s.State, s.Signer = Trusted, k.Name
		return s
	}
	s.State = UnknownKey
	return s
}
