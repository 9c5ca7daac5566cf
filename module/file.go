package module

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// ErrNotWasm is wrapped by errors about bytes that are not a well-formed
// WebAssembly module.
var ErrNotWasm = errors.New("not a wasm module")

func sections(wasm []byte) ([]wasmbin.Section, error) {
	secs, err := wasmbin.Sections(wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotWasm, err)
	}
	return secs, nil
}

// removeSections returns wasm without the custom sections of the given
// names.
func removeSections(wasm []byte, names ...string) ([]byte, error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(wasm))
	last := 0
	for _, s := range secs {
		if s.ID == wasmbin.SectionCustom && slices.Contains(names, s.Name) {
			out = append(out, wasm[last:s.Start]...)
			last = s.End
		}
	}
	return append(out, wasm[last:]...), nil
}

// StripMetadata returns wasm without its tracemark.modinfo and
// tracemark.sig sections: the code the sandbox compiles, so that changing
// the metadata or the signature does not defeat the compilation cache.
func StripMetadata(wasm []byte) ([]byte, error) {
	return removeSections(wasm, SectionModinfo, SectionSignature)
}

// ReadModinfo returns a module's metadata. It fails with ErrNoModinfo if
// there is none and ErrBadModinfo if it is malformed, oversized or given
// twice.
func ReadModinfo(wasm []byte) (*Modinfo, error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, err
	}
	return modinfoOf(secs)
}

func modinfoOf(secs []wasmbin.Section) (*Modinfo, error) {
	var found *wasmbin.Section
	for i := range secs {
		if secs[i].ID == wasmbin.SectionCustom && secs[i].Name == SectionModinfo {
			if found != nil {
				return nil, fmt.Errorf("%w: more than one %s section", ErrBadModinfo, SectionModinfo)
			}
			found = &secs[i]
		}
	}
	if found == nil {
		return nil, ErrNoModinfo
	}
	return ParseModinfo(found.Payload)
}

// SetModinfo returns wasm with its metadata section replaced by m (added
// at the end). It removes any signature, which the change would
// invalidate: sign after setting the metadata.
func SetModinfo(wasm []byte, m *Modinfo) ([]byte, error) {
	p, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	out, err := removeSections(wasm, SectionModinfo, SectionSignature)
	if err != nil {
		return nil, err
	}
	return wasmbin.AppendCustom(out, SectionModinfo, p), nil
}

// FileInfo is what `tracemark modinfo FILE.wasm` shows: a module file's
// metadata, licence class, signature, ABI and the taint it would bring.
// It is JSON-friendly for --json.
type FileInfo struct {
	Path   string `json:"path,omitempty"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
	// Modinfo is nil if the metadata is missing or malformed; ModinfoError
	// then says why.
	Modinfo       *Modinfo  `json:"modinfo,omitempty"`
	ModinfoError  string    `json:"modinfo_error,omitempty"`
	GPLCompatible bool      `json:"gpl_compatible"`
	Signature     Signature `json:"signature"`
	// ABIError says why the host could not load the module without
	// forcing it ("" if it can).
	ABIError string   `json:"abi_error,omitempty"`
	Imports  []Import `json:"imports"`
	Exports  []string `json:"exports"`
	// MemoryPages is the memory the module needs at start, in 64 KiB pages.
	MemoryPages uint32 `json:"memory_pages"`
	// Taint is what loading the module would taint it with, except O,
	// which depends on where it is loaded from.
	Taint Taint `json:"taint"`
}

// InspectFile reads and inspects a module file of at most MaxFileBytes
// (see ReadFile).
func InspectFile(path string, keys Keyring) (*FileInfo, error) {
	b, err := ReadFile(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("reading module: %w", err)
	}
	fi, err := Inspect(b, keys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	fi.Path = path
	return fi, nil
}

// Inspect describes a module. It fails only if wasm is not a module (or
// its type, import or export section is malformed); problems with the
// metadata, signature or ABI are reported in the FileInfo.
func Inspect(wasm []byte, keys Keyring) (*FileInfo, error) {
	a, err := Analyze(wasm, keys)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(wasm)
	fi := &FileInfo{
		Size:      len(wasm),
		SHA256:    hex.EncodeToString(sum[:]),
		Modinfo:   a.Modinfo,
		Signature: a.Signature,
		Imports:   a.Imports,
		Exports:   a.Exports,
		Taint:     a.Taint,

		MemoryPages: a.MemoryPages,
	}
	if a.ModinfoErr != nil {
		fi.ModinfoError = a.ModinfoErr.Error()
	}
	if a.ABIErr != nil {
		fi.ABIError = a.ABIErr.Error()
	}
	if a.Modinfo != nil {
		fi.GPLCompatible = a.Modinfo.GPLCompatible()
	}
	if fi.Imports == nil {
		fi.Imports = []Import{}
	}
	if fi.Exports == nil {
		fi.Exports = []string{}
	}
	return fi, nil
}

// Analysis is what the loader needs to know about a module before it runs
// any of its code.
type Analysis struct {
	Modinfo    *Modinfo
	ModinfoErr error // ErrNoModinfo or ErrBadModinfo, with Modinfo nil
	Signature  Signature
	Imports    []Import
	Exports    []string
	// ABIErr wraps ErrABIMismatch if the module was not built for ABI v1:
	// metadata missing or malformed, another abi version, or imports the
	// host does not offer.
	ABIErr error
	// MemoryPages is the initial size of the module's memory, in 64 KiB
	// pages (0 if it defines none).
	MemoryPages uint32
	// Taint is P, E and F (if ABIErr is set) as they would apply at load.
	Taint Taint
}

// Analyze parses a module's metadata, signature, imports and exports
// without compiling it. It fails only if wasm is not a well-formed module
// at the level it reads.
func Analyze(wasm []byte, keys Keyring) (*Analysis, error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, err
	}
	a := &Analysis{}
	a.Modinfo, a.ModinfoErr = modinfoOf(secs)
	a.Signature = verify(wasm, secs, keys)
	var types []wasmbin.FuncType
	var imports []wasmbin.Import
	for _, s := range secs {
		var err error
		switch s.ID {
		case wasmbin.SectionType:
			types, err = wasmbin.Types(s.Payload)
		case wasmbin.SectionImport:
			imports, err = wasmbin.Imports(s.Payload)
		case wasmbin.SectionMemory:
			var mems []wasmbin.Limits
			mems, err = wasmbin.Memories(s.Payload)
			if len(mems) > 0 {
				a.MemoryPages = mems[0].Min
			}
		case wasmbin.SectionExport:
			var exps []wasmbin.Export
			exps, err = wasmbin.Exports(s.Payload)
			for _, e := range exps {
				if e.Kind == wasmbin.KindFunc {
					a.Exports = append(a.Exports, e.Name)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotWasm, err)
		}
	}
	a.Imports, a.ABIErr = checkImports(types, imports)
	switch {
	case a.ModinfoErr != nil:
		a.ABIErr = errors.Join(fmt.Errorf("%w: ABI version unknown: %w", ErrABIMismatch, a.ModinfoErr), a.ABIErr)
	case a.Modinfo.ABI != ABIVersion:
		a.ABIErr = errors.Join(fmt.Errorf("%w: built for ABI v%d, the host offers v%d", ErrABIMismatch, a.Modinfo.ABI, ABIVersion), a.ABIErr)
	}
	if a.Modinfo == nil || !a.Modinfo.GPLCompatible() {
		a.Taint |= TaintProprietary
	}
	a.Taint |= a.Signature.Taint()
	if a.ABIErr != nil {
		a.Taint |= TaintForced
	}
	return a, nil
}

// String renders the file info as an aligned table, like modinfo(8).
func (fi *FileInfo) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
	if fi.Path != "" {
		row("filename", fi.Path)
	}
	if m := fi.Modinfo; m != nil {
		row("name", m.Name)
		row("version", orDash(m.Version))
		row("description", orDash(m.Description))
		row("author", orDash(m.Author))
		class := "GPL-compatible"
		if !fi.GPLCompatible {
			class = "proprietary"
		}
		row("license", fmt.Sprintf("%s (%s)", orDash(m.License), class))
		row("abi", fmt.Sprint(m.ABI))
		for _, k := range slices.Sorted(maps.Keys(m.Extra)) {
			row(k, m.Extra[k])
		}
	} else {
		row("modinfo", fi.ModinfoError)
	}
	row("signature", fi.Signature.String())
	if fi.ABIError != "" {
		row("abi check", fi.ABIError)
	} else {
		row("abi check", "ok")
	}
	row("taint", orDash(fi.Taint.String())+" (O depends on where it is loaded from)")
	row("size", fmt.Sprintf("%d bytes", fi.Size))
	row("memory", fmt.Sprintf("%d pages (%d KiB) at start", fi.MemoryPages, fi.MemoryPages*64))
	row("sha256", fi.SHA256)
	imp := map[string]int{}
	var order []string
	for _, im := range fi.Imports {
		if imp[im.Module] == 0 {
			order = append(order, im.Module)
		}
		imp[im.Module]++
	}
	for _, ns := range order {
		row("imports", fmt.Sprintf("%s (%d functions)", ns, imp[ns]))
	}
	for _, im := range fi.Imports {
		if im.Problem != "" {
			row("bad import", fmt.Sprintf("%s.%s %s: %s", im.Module, im.Name, im.Type, im.Problem))
		}
	}
	if len(fi.Exports) > 0 {
		row("exports", strings.Join(fi.Exports, " "))
	}
	w.Flush()
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
