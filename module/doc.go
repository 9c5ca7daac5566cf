// Package module describes the code that markers come from: loadable
// modules, their metadata, licence, signature and taint, and the policy
// that decides whether a tainted module's markers are used. The sandbox
// that runs modules is package [github.com/tracemark/tracemark/module/wasm];
// the SDK for module authors is package [github.com/tracemark/tracemark/guest].
//
// This page is for operators too: it says what `tracemark modinfo`,
// `tracemark taint` and the policies mean.
//
// # Modules
//
// Every marker belongs to a module. Code compiled into the program belongs
// to the Go modules named in its build info. A loadable module is a
// WebAssembly file, typically a Go package built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
//
// that runs in a sandbox: it can define markers and fire them, and the host
// can call the functions it exports, but it cannot see host memory, register
// probes or see other modules' events. A binary-only plugin from a third
// party is the case this exists for.
//
// # Metadata
//
// A module file carries its metadata, like the kernel's .modinfo, in a
// custom section named "tracemark.modinfo" ([SectionModinfo]): a sequence
// of UTF-8 "key=value" entries, each ended by a NUL byte:
//
//	name=classifier\0version=v1.0.0\0license=Proprietary\0abi=1\0
//
// Keys are name (required, [a-z][a-z0-9_]*), version, description, author,
// license, abi (required: the host ABI version, 1 today) and any other
// [a-z][a-z0-9_]* key, kept as extra. Values may not contain control
// characters, so printing them is safe. The section is at most 16 KiB, 64
// entries of at most 1 KiB each; anything else is malformed. Go cannot emit
// custom sections, so [SetModinfo] appends the section to a built file
// (guest/build does it as part of the build). [Inspect] reads a file the
// way `tracemark modinfo FILE.wasm` shows it.
//
// # Licence
//
// A module is GPL-compatible if its licence is one of the kernel's strings
// "GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL",
// "Dual MIT/GPL", "Dual MPL/GPL" (matched exactly, as the kernel does), or
// an SPDX identifier of a licence the FSF lists as GPL-compatible (matched
// case-insensitively): the GPL, LGPL and AGPL families, MIT, MIT-0, X11,
// ISC, 0BSD, BSD-2-Clause, BSD-3-Clause, Apache-2.0, MPL-2.0, Zlib,
// BSL-1.0, Artistic-2.0, PSF-2.0, Python-2.0, NCSA, UPL-1.0, Unlicense and
// CC0-1.0 ([GPLCompatibleLicenses] has the exact list). SPDX expressions
// work: "MIT OR Apache-2.0", "GPL-2.0-only WITH Linux-syscall-note". Any
// other licence, or none, is proprietary and taints the module P.
//
// # Taint
//
// Taint flags are letters with the kernel's meaning. A module carries the
// flags of what it is and of what it did; the process carries every flag
// any module ever brought, and process taint is sticky: unloading a module
// does not clear it ([Tainted], [Report]).
//
//	P  proprietary module loaded: its licence is not GPL-compatible, or it declares none
//	F  module force-loaded: its ABI check failed and was overridden
//	R  module force-unloaded while it was in use (probes on its markers) or busy (in a call)
//	U  taint set by the user (an operator marked a module)
//	D  a module died: it trapped (unreachable, bad memory access, a Go panic) or exited during a call
//	W  warning: a module broke the ABI (garbage arguments, bad pointers, unknown markers), or a probe panicked
//	O  out-of-tree module loaded: not from the host's trusted module directory
//	E  unsigned module loaded, or signed by a key the host does not trust, or with a bad signature
//	L  a module call overran its CPU deadline and the module was killed
//
// Letters print in the kernel's bit order, P F R U D W O E L: a GPL module
// loaded unsigned from /tmp is "OE", the example plugin is "POE".
//
// # Policy
//
// A policy decides whether the markers of a module with a given taint are
// used. Policies are named after history, so that operators can reason
// about them:
//
//	strict       Linux 2.6.24: no markers from a module with any taint
//	kernel       today's Linux tracepoint rule: only O and E tolerated
//	proprietary  the 2008 proposal: P, O and E tolerated; F, D, L (and W, R, U) refused
//	open         everything tolerated except a dead module (D)
//
// The policy is set for the process, and may be overridden per module.
// A refused module stays loaded and callable, and its markers stay listed
// (`tracemark list`, lsmod) with the reason, such as
//
//	module classifier tainted POE: policy "kernel" refuses taint P (...)
//
// they are never silently absent; their events are not delivered. Changing
// the policy applies at once, both ways. A dead module's markers are
// refused under every policy: there is no instance left to fire them.
//
// The default is proprietary ([DefaultPolicy]). The kernel refuses markers
// of tainted modules because a module runs in the kernel's address space:
// a binary-only module can corrupt or crash everything, and its bug reports
// cannot be debugged. In the sandbox a module cannot touch host memory and
// every argument it passes is checked, so who wrote it (P), where it came
// from (O) and who signed it (E) no longer say whether it can hurt the
// host. What it did still does: a module that was forced past the ABI check
// (F), died (D), broke the ABI (W) or overran its deadline (L) has shown
// that its events cannot be trusted. The kernel rule would hide the markers
// of every third-party plugin, the very use case modules exist for.
//
// # Signatures
//
// A module may be signed with ed25519 ([Sign], `tracemark sign --key`). The
// signature is a custom section named "tracemark.sig" of 97 bytes: the
// version byte 1, the signer's 32-byte public key, and the 64-byte
// signature of the string "tracemark-sig-v1" and a NUL byte followed by
// every byte of the file except the signature section itself (its id byte,
// size, name and payload). Sign appends the section at the end, so the
// signed bytes are the file exactly as it was before signing; the metadata
// section is among them, so changing it afterwards breaks the signature
// ([SetModinfo] removes the signature for that reason: sign last).
//
// A host trusts the public keys of its [Keyring]. A module signed by one of
// them is not tainted E; an unsigned module, one signed by another key, or
// one whose signature does not match its bytes (changed after signing) is.
// A host may refuse all of those instead (wasm.WithRequireSignature,
// the kernel's module.sig_enforce).
//
// Keys are one-line text files, like OpenSSH keys ([GenerateKey],
// [WriteKeyPair], `tracemark keygen`):
//
//	tracemark-ed25519-private <base64 of the 32-byte seed> <name>     (mode 0600)
//	tracemark-ed25519 <base64 of the 32-byte public key> <name>       (NAME.pub)
//
// A keyring file holds public-key lines; blank lines and # comments are
// ignored. A key is shown by its fingerprint, "ed25519:" and the first 8
// bytes of the SHA-256 of the public key in hex.
//
// # ABI version 1
//
// A module reaches the host only through the functions of the import
// namespace "tracemark_v1" ([ABINamespace]); a later ABI would use
// "tracemark_v2", and a host could offer both. The only other namespace a
// module may import is "wasi_snapshot_preview1", which Go's wasip1 runtime
// needs; the sandbox gives it no files, no environment, no arguments, real
// clocks and random numbers, and captures its output. A module whose
// metadata declares another ABI version, or that imports anything else, or
// a tracemark_v1 function that does not exist or with the wrong signature,
// is refused before any of its code runs, unless force-loaded (taint F;
// the functions the host lacks then trap when called).
//
// All integers are little-endian; pointers are offsets in the module's
// memory. The functions:
//
//	define(buf i32, len i32) -> i32      define a marker; returns its handle (>= 1) or an error
//	fire(handle i32, args i32, len i32) -> i32   fire an event; returns a result or an error
//	enabled(handle i32) -> i32           1 if the marker has probes (and is not refused), else 0
//
// A definition buffer (at most 4096 bytes) is
//
//	u8 name_len, name            "provider:event", each part [a-z][a-z0-9_]*
//	u8 n                         number of fields, at most 8
//	n × (u8 kind, u8 len, name)  kind code and field name [a-z][a-z0-9_]*
//	u8 stability                 0 unstable, 1 stable, 2 internal
//	u16 doc_len, doc             one-line description, at most 1024 bytes
//
// with these kind codes, which never change within ABI v1 ([KindFromCode]):
//
//	1 int8    2 int16   3 int32    4 int64    5 uint8     6 uint16   7 uint32
//	8 uint64  9 float32 10 float64 11 bool    12 string   13 bytes   14 duration (int64 ns)
//
// A string field's kind may have the bit 0x80 ([KindLenient]): the host
// then replaces invalid UTF-8 in it by U+FFFD instead of refusing the event.
// The guest SDK's strings are lenient. A marker name that the host or
// another module already uses is refused: a module cannot fire, or remove,
// anyone else's markers. A module defining its own marker again with the
// same schema gets the same handle.
//
// An argument buffer (at most 64 KiB) holds the fields in schema order with
// no padding: fixed-size kinds in their size (bool is one byte, 0 or 1;
// floats in IEEE 754), strings and bytes as a u32 length followed by that
// many bytes (at most 4096, [MaxFieldBytes]). The buffer must end exactly
// after the last field. The host checks an event only when it is about to
// deliver it: a marker without probes costs the module a host call and
// nothing more. Strings must be valid UTF-8 unless lenient.
//
// Results of fire: 0 delivered (or nobody listens), 1 dropped (over the
// module's event budget, counted), 2 refused by policy. Errors, for which
// the host also records an ABI violation and taints the module W:
//
//	-1 a pointer and length outside the module's memory
//	-2 malformed encoding (truncated, trailing bytes, a bool not 0 or 1, an unknown kind, a bad name)
//	-3 no marker with this handle
//	-4 invalid UTF-8 in a strict string, a name or a doc
//	-5 a field, buffer or doc over its limit
//	-6 a marker name taken by the host or another module, or redefined with another schema
//	-7 more markers than the module's limit
//
// The host calls a module's exports. "_initialize" (Go's reactor
// initializer, which runs package initialization and so defines the
// markers) is called once at load. A hook has the signature
// hook(ptr i32, len i32) -> i64: the host asks "tracemark_alloc(size i32)
// -> i32" for a buffer of len(input) bytes, copies the input there, calls
// the hook, and reads its output at result>>32 with length result&0xffffffff
// (0: no output; at most 1 MiB). The buffer tracemark_alloc returns must
// stay usable until the next tracemark_alloc call: the host reuses it for
// inputs that fit, and asks again only for a larger one.
//
// Enabled flags are a compatible extension of ABI v1 (no new import, so
// the ABI version stays 1): a module may export "tracemark_flags() ->
// i64" ([ExportFlags]), returning ptr<<32 | len of a byte array in its
// memory. The host calls it once after _initialize and keeps byte h of
// the array, for each handle 1 <= h < len, at 1 while marker h has
// probes and is not refused, 0 otherwise, so that a module tests a
// disabled marker with one load and a branch instead of a host call. The
// host writes the flags only while the module is suspended: between
// calls (at the start of each call, if any marker changed) and in the
// module's calls to the host. A probe connected during a call therefore
// sees the module's events from its next host call or its next call;
// a probe connected between calls sees every event of the next call.
// The flags are advice: the host checks every fire as before, so a module
// that writes its own flags, or ignores them, can only lose its own
// events. An array outside the module's memory is an ABI violation (taint
// W), and the module keeps working with host-side checks only; so does a
// module without the export. Events a module skips by its flags do not
// reach the host and are not counted as fired.
//
// Event buffers are another compatible extension of ABI v1: a module may
// export "tracemark_events() -> i64" ([ExportEvents]), returning ptr<<32
// | len of a buffer in its memory (16 bytes to [MaxEventBufferBytes]),
// which the host calls once after tracemark_flags. The module may then
// append events to the buffer instead of calling fire for each:
//
//	u32le used                   bytes of records after this header
//	u32le count                  number of records
//	count × (u32le handle, u32le n, n bytes)   an event: a marker handle and an argument buffer as fire takes it
//
// When the next event might not fit, the module calls fire(0, 0, 0); the
// host also takes the buffer after every call into the module returns
// (or traps). Each time it delivers the records in order, each as fire
// would deliver it, and sets both header words to 0. A record is checked
// as a fire call is (an unknown handle, bad arguments), with one
// difference: a record with an unknown handle is counted as fired and
// dropped, where such a fire call is not counted at all; a header
// whose used is beyond the buffer, a record that runs past used, or a
// count that does not match the records is an ABI violation, and the
// records it makes unreadable (at least one, else as many as count
// claims, at most one per 8 bytes of buffer) are counted as fired and
// dropped. Records of markers without probes, or refused, are counted as
// fired and not delivered. A batched event is delivered, and timestamped,
// when the host takes the buffer, not when the module wrote it. The host
// may decline the buffer (the module is then never asked for it): a
// module must batch only after its tracemark_events was called.
package module
