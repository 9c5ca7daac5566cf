package wasm

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tracemark/tracemark/internal/buildinfo"
)

// DefaultCacheBytes is the default bound of a host's compilation cache on
// disk (Config.CacheBytes).
const DefaultCacheBytes = 256 << 20

// The layout of a cache directory: the host's key, the entries, and a
// private directory per compilation that wazero reads and writes.
const (
	cacheKeyFile   = "key"
	cacheEntries   = "v3"
	cacheStage     = "stage-"
	cacheStaged    = "entry" // an entry in a compilation's directory, being verified
	cacheEntryExt  = ".entry"
	cacheMagic     = "tmcache3"
	cacheKeyBytes  = 32
	cacheNameBytes = 64 // wazero names its entries with 64 hex digits
)

// cacheOld are the entries of earlier layouts, removed.
var cacheOld = []string{"v1", "v2"}

// errCacheEntry is the cause of an entry that the cache refuses.
var errCacheEntry = errors.New("invalid entry")

// errStaged cancels a compilation that began before its entry was
// staged (see compileStaged).
var errStaged = errors.New("compilation cache entry staged")

// CacheStats are the counters of a host's compilation cache on disk.
type CacheStats struct {
	// Dir is the cache's directory, "" if the host has no cache on disk.
	Dir string `json:"dir,omitempty"`
	// Disabled says why the host has no cache on disk (Config.Cache set,
	// Config.NoDiskCache, or the directory cannot be used safely).
	Disabled string `json:"disabled,omitempty"`
	// Hits counts modules whose compiled code came from the cache, and
	// Misses those that were compiled (and offered to the cache).
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
	// Stored counts entries written, Evicted entries removed to keep the
	// cache under Config.CacheBytes, TooBig compilations larger than the
	// whole cache (not stored).
	Stored  uint64 `json:"stored"`
	Evicted uint64 `json:"evicted"`
	TooBig  uint64 `json:"too_big"`
	// Rejected counts entries that failed verification (corrupted,
	// truncated, tampered with, or made with another key): each was
	// removed and its module compiled again.
	Rejected uint64 `json:"rejected"`
	// Errors counts failures to read or write the cache (a full disk, a
	// directory that is not writable); the module was compiled instead.
	Errors uint64 `json:"errors"`
}

// diskCache is a host's compilation cache on disk. wazero's own cache on
// disk executes whatever file it finds under its key, so the host never
// gives wazero its directory: every entry is stored with a MAC (AES-GCM's
// GMAC) under a key only this user can read, verified in memory, and
// handed to wazero in a new private directory for one compilation (see
// docs/design.md).
type diskCache struct {
	dir     string // absolute
	entries string
	max     int64
	aead    cipher.AEAD // AES-256-GCM under the host key
	build   string      // what the compiled code depends on besides the module
	log     io.Writer
	logMu   sync.Mutex
	storeMu sync.Mutex // one store (and eviction) at a time
	// beforeCompile, if set, is called with wazero's directory before it
	// compiles: tests break the directory there. beforePayload and
	// afterPayload, if set, are called before an entry's payload is
	// verified and after it is staged or refused (tests order that with
	// wazero's compilation, see compileHook).
	beforeCompile               func(sub string)
	beforePayload, afterPayload func()
	// concurrentCode is the constant concurrentCode, which tests lower.
	concurrentCode int
	// restaged counts compilations begun again because their entry was
	// staged after wazero looked for it.
	restaged atomic.Uint64

	hits, misses, stored, evicted, tooBig, rejected, errors atomic.Uint64
}

// openDiskCache opens (making it if needed) the cache in dir. It refuses
// a directory that another user owns or may write to, and a key file that
// is not private.
func openDiskCache(dir string, max int64, log io.Writer) (*diskCache, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := checkPrivateDir(dir); err != nil {
		return nil, err
	}
	entries := filepath.Join(dir, cacheEntries)
	if err := os.Mkdir(entries, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	if err := checkPrivateDir(entries); err != nil {
		return nil, err
	}
	key, existed, err := cacheKey(dir)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	c := &diskCache{dir: dir, entries: entries, max: max, aead: aead, build: buildString(), log: log, concurrentCode: concurrentCode}
	if existed {
		// Only a directory that was a cache before holds anything of
		// ours to remove.
		c.removeStale()
	}
	return c, nil
}

// cacheKey reads the host key of the cache in dir, or makes it, and says
// whether it was there. The key file must be a regular file of this user
// that nobody else may read.
func cacheKey(dir string) (_ []byte, existed bool, _ error) {
	path := filepath.Join(dir, cacheKeyFile)
	for n := range 2 {
		key, err := readKey(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return key, n == 0 && err == nil, err
		}
		// Made aside and linked into place: of two processes making it
		// at once, one wins and the other reads its key.
		f, err := os.CreateTemp(dir, cacheKeyFile+".*.tmp")
		if err != nil {
			return nil, false, err
		}
		key = make([]byte, cacheKeyBytes)
		rand.Read(key)
		_, err = f.Write(key)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Link(f.Name(), path)
		}
		os.Remove(f.Name())
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
	}
	key, err := readKey(path)
	return key, false, err
}

func readKey(path string) ([]byte, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkPrivateFile(fi); err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	key := make([]byte, cacheKeyBytes+1)
	n, err := io.ReadFull(f, key)
	if n != cacheKeyBytes || !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("key %s: not %d bytes", path, cacheKeyBytes)
	}
	return key[:cacheKeyBytes], nil
}

// buildString names what an entry depends on besides the module's bytes:
// wazero (the compiler), tracemark (which checks and instruments the
// module and configures the compiler), Go and the platform.
func buildString() string {
	wz := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				wz = d.Version
				if d.Replace != nil {
					wz = d.Replace.Path + "@" + d.Replace.Version
				}
			}
		}
	}
	return cacheBuild(wz, buildinfo.Read(), executableID)
}

// cacheBuild is buildString for wazero's version wz and tracemark's
// build tm. A build that no version names exactly (a work tree with
// changes, a test binary, a replace directive) may check and instrument
// modules differently from the last with the same name, and an entry
// holds the instrumented module: its entries are then the executable's
// (exe names it), else a process's own.
func cacheBuild(wz string, tm buildinfo.Info, exe func() string) string {
	s := fmt.Sprintf("wazero %s; tracemark %s %s %t; %s %s/%s", wz, tm.Version, tm.Commit, tm.Modified, tm.Go, runtime.GOOS, runtime.GOARCH)
	switch tm.Version {
	case "", "(devel)", "unknown":
	default:
		if !tm.Modified && !strings.HasSuffix(tm.Version, "+dirty") {
			return s
		}
	}
	id := exe()
	if id == "" {
		var b [16]byte
		rand.Read(b[:])
		id = "process " + hex.EncodeToString(b[:])
	}
	return s + "; " + id
}

// executableID names the running executable's file and its version (its
// size and modification time), or is "".
func executableID() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("executable %s %d %d", exe, fi.Size(), fi.ModTime().UnixNano())
}

// parallelKeyBytes is the size from which entryKey hashes a module's
// halves on two goroutines.
const parallelKeyBytes = 256 << 10

// entryKey is the key of a module's entry: its bytes and the build. A
// large module's halves are hashed at once on two cores (a Go module of
// 2.7 MB takes SHA-256 2.3 ms); the key says which way it was made, so
// that no module's bytes hashed whole give the key of another's halves.
func (c *diskCache) entryKey(wasm []byte) [sha256.Size]byte {
	h := sha256.New()
	io.WriteString(h, cacheMagic+"\n"+c.build+"\n")
	if len(wasm) < parallelKeyBytes {
		io.WriteString(h, "whole\n")
		h.Write(wasm)
	} else {
		half := len(wasm) / 2
		var first [sha256.Size]byte
		done := make(chan struct{})
		go func() {
			first = sha256.Sum256(wasm[:half])
			close(done)
		}()
		second := sha256.Sum256(wasm[half:])
		<-done
		fmt.Fprintf(h, "halves %d %d\n", half, len(wasm))
		h.Write(first[:])
		h.Write(second[:])
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func (c *diskCache) entryPath(k [sha256.Size]byte) string {
	return filepath.Join(c.entries, hex.EncodeToString(k[:])+cacheEntryExt)
}

// checkedLimits are the limits of compiling (Limits' fields that
// checkCode checks) that a module was checked under. A module within
// some limits is within any that are no smaller.
type checkedLimits [7]uint64

func checkedOf(l Limits) checkedLimits {
	var c checkedLimits
	for i, v := range [...]int{l.MaxFunctions, l.MaxFunctionBytes, l.MaxNesting, l.MaxLocals, l.MaxBrTableTargets, l.MaxTableElements, l.MaxCodeUnits} {
		c[i] = math.MaxUint64 // not checked
		if v > 0 {
			c[i] = uint64(v)
		}
	}
	return c
}

// within reports whether every limit of c is at most that of l.
func (c checkedLimits) within(l checkedLimits) bool {
	for i := range c {
		if c[i] > l[i] {
			return false
		}
	}
	return true
}

// An entry is
//
//	payload             wazero's serialized compiled module, first so that
//	                    the entry is wazero's file as it reads it (wazero
//	                    reads what it wrote and ignores what follows)
//	code                the module checked and instrumented (wazero
//	                    decodes it again, and finds the payload by it)
//	footer:
//	  limits            7 u64le: the checkedLimits it was checked under
//	  name              wazero's name of its compiled module (64 hex digits)
//	  u64le, u64le      the lengths of payload and code
//	  key               32 bytes: the entry's key (entryKey)
//	  "tmcache3"
//	  payload nonce     12 random bytes
//	  payload tag       16 bytes: AES-256-GCM under the host key, with the
//	                    payload nonce, of nothing, authenticating the
//	                    payload (GMAC: the fastest MAC in the standard
//	                    library, see docs/design.md)
//	  nonce             12 random bytes
//	  tag               16 bytes: the same with nonce, authenticating the
//	                    code and the footer before it, and so the payload
//	                    through its tag
//
// Two tags, so that the code, which wazero decodes first, is verified
// before wazero gets it, and the payload, which wazero reads last, while
// wazero decodes the code (see compilation.lookup).
const (
	cacheNonceBytes = 12
	cacheTagBytes   = 16
	cacheFooter     = len(checkedLimits{})*8 + cacheNameBytes + 16 + sha256.Size + len(cacheMagic) + 2*(cacheNonceBytes+cacheTagBytes)
	// cacheRandom is the random end of an entry: its nonces and tags.
	cacheRandom = 2 * (cacheNonceBytes + cacheTagBytes)
)

// entry is an entry whose code and footer are verified; its payload is
// verified by verifyPayload.
type entry struct {
	name    string
	code    []byte // part of the entry's bytes
	checked checkedLimits
	// The payload (part of the entry's bytes), its nonce and tag.
	payload, payloadNonce, payloadTag []byte
}

func (c *diskCache) encode(k [sha256.Size]byte, name string, payload, code []byte, checked checkedLimits) []byte {
	b := make([]byte, 0, len(payload)+len(code)+cacheFooter)
	b = append(b, payload...)
	b = append(b, code...)
	for _, v := range checked {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	b = append(b, name...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(payload)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(code)))
	b = append(b, k[:]...)
	b = append(b, cacheMagic...)
	nonce := make([]byte, cacheNonceBytes)
	rand.Read(nonce)
	b = append(b, nonce...)
	b = c.aead.Seal(b, nonce, nil, b[:len(payload)])
	rand.Read(nonce)
	b = append(b, nonce...)
	return c.aead.Seal(b, nonce, nil, b[len(payload):len(b)-cacheNonceBytes])
}

// decode verifies the code and footer of an entry of key k; the
// payload is verified by verifyPayload.
func (c *diskCache) decode(k [sha256.Size]byte, b []byte) (entry, error) {
	if len(b) < cacheFooter {
		return entry{}, fmt.Errorf("%w: truncated (%d bytes)", errCacheEntry, len(b))
	}
	// The lengths, read before they are verified, only bound what is.
	lengths := b[len(b)-cacheFooter+len(checkedLimits{})*8+cacheNameBytes:]
	payloadLen, codeLen := binary.LittleEndian.Uint64(lengths), binary.LittleEndian.Uint64(lengths[8:])
	if rest := uint64(len(b) - cacheFooter); payloadLen > rest || codeLen != rest-payloadLen {
		return entry{}, fmt.Errorf("%w: bad length (corrupted or truncated)", errCacheEntry)
	}
	n := len(b) - cacheNonceBytes - cacheTagBytes
	body, nonce, tag := b[payloadLen:n], b[n:n+cacheNonceBytes], b[n+cacheNonceBytes:]
	if _, err := c.aead.Open(nil, nonce, tag, body); err != nil {
		return entry{}, fmt.Errorf("%w: authentication failed (corrupted, truncated or not made by this host)", errCacheEntry)
	}
	// Authentic: written by encode, but maybe for another module.
	f := b[len(b)-cacheFooter:]
	var e entry
	for i := range e.checked {
		e.checked[i] = binary.LittleEndian.Uint64(f[8*i:])
	}
	f = f[8*len(e.checked):]
	e.name, f = string(f[:cacheNameBytes]), f[cacheNameBytes+16:]
	if string(f[:sha256.Size]) != string(k[:]) || string(f[sha256.Size:sha256.Size+len(cacheMagic)]) != cacheMagic {
		return entry{}, fmt.Errorf("%w: the entry of another module", errCacheEntry)
	}
	f = f[sha256.Size+len(cacheMagic):]
	if _, err := hex.DecodeString(e.name); err != nil {
		return entry{}, fmt.Errorf("%w: bad name", errCacheEntry)
	}
	e.code = b[payloadLen : payloadLen+codeLen]
	e.payload = b[:payloadLen]
	e.payloadNonce, e.payloadTag = f[:cacheNonceBytes], f[cacheNonceBytes:cacheNonceBytes+cacheTagBytes]
	return e, nil
}

// verifyPayload verifies the payload of an entry that decode returned.
func (c *diskCache) verifyPayload(e entry) error {
	if _, err := c.aead.Open(nil, e.payloadNonce, e.payloadTag, e.payload); err != nil {
		return fmt.Errorf("%w: compiled code: authentication failed (corrupted or not made by this host)", errCacheEntry)
	}
	return nil
}

// compilation is one compilation with the disk cache: wazero's cache in
// a private directory that holds at most the module's verified entry.
type compilation struct {
	c     *diskCache
	k     [sha256.Size]byte
	stage string // the private directory
	sub   string // wazero's directory in it
	cache wazero.CompilationCache
	// From the entry, if there is one: the module checked and
	// instrumented (mapped from the entry until release is called), and
	// the limits it was checked under.
	code    []byte
	checked checkedLimits
	release func()
	// The check of the entry's payload, if it has one, under way while
	// wazero compiles (see lookup): checking is closed when it ends, and
	// staged is then done if it staged the entry for wazero. The fields
	// below are written by the check before it closes checking.
	checking   chan struct{}
	staged     context.Context
	markStaged context.CancelCauseFunc // staged's
	payloadErr error                   // the payload failed verification
	stageErr   error                   // staging failed
	stagedFile os.FileInfo             // the staged entry
}

// wait waits for the check of the entry's payload, if there is one.
func (comp *compilation) wait() {
	if comp.checking != nil {
		<-comp.checking
		comp.markStaged(nil)
	}
}

// releaseCode releases the entry's bytes, once wazero is done with them
// and the check of its payload has ended.
func (comp *compilation) releaseCode() {
	comp.wait()
	if comp.release != nil {
		comp.release()
		comp.release = nil
	}
}

// begin prepares a compilation of the module wasm (its bytes as loaded)
// and gives wazero the module's entry if there is a valid one. Without
// error, the caller checks and instruments the module unless comp.hit
// says it need not, compiles with comp.cache, calls comp.finish, and
// closes comp.cache when it releases the compiled module (or calls
// comp.abort instead of compiling).
func (c *diskCache) begin(wasm []byte) (*compilation, error) {
	comp := &compilation{c: c, k: c.entryKey(wasm)}
	stage, err := os.MkdirTemp(c.dir, cacheStage)
	if err != nil {
		return nil, err
	}
	comp.stage = stage
	fail := func(err error) (*compilation, error) {
		os.RemoveAll(stage)
		return nil, err
	}
	comp.cache, err = wazero.NewCompilationCacheWithDir(stage)
	if err != nil {
		return fail(err)
	}
	// wazero made its directory (named by its version and platform).
	ents, err := os.ReadDir(stage)
	if err != nil {
		comp.cache.Close(context.Background())
		return fail(err)
	}
	if len(ents) != 1 || !ents[0].IsDir() {
		comp.cache.Close(context.Background())
		return fail(fmt.Errorf("%s: expected one directory of wazero's", stage))
	}
	comp.sub = filepath.Join(stage, ents[0].Name())
	comp.lookup()
	return comp, nil
}

// hit reports whether the compilation has the module's entry, checked
// under limits no larger than lim: the module need not be checked or
// instrumented again.
func (comp *compilation) hit(lim Limits) bool {
	return comp.code != nil && comp.checked.within(checkedOf(lim))
}

// entryCode returns the module checked and instrumented, from its entry,
// or nil.
func (comp *compilation) entryCode() []byte {
	if comp == nil {
		return nil
	}
	return comp.code
}

// lookup finds the module's entry, if there is a valid one, in the
// compilation's directory (see stageEntry), and verifies its code and
// footer there: the caller may then give wazero the code. The payload,
// wazero's compiled code, is verified, for a large module, on another
// goroutine while wazero decodes and validates the code (which it always
// does first, 25 ms for a Go module of 2.7 MB, ten times the
// verification), and only then named as wazero names its file: wazero
// never reads a payload that was not verified. If wazero looked for its
// file before that (a starved goroutine), it compiles the module, and
// comp.staged cancels that compilation (see compileStaged). An entry
// that fails verification is removed (one whose payload fails, by
// finish).
func (comp *compilation) lookup() {
	c := comp.c
	path := c.entryPath(comp.k)
	tmp := filepath.Join(comp.stage, cacheStaged)
	b, done, err := stageEntry(path, tmp, c.max)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil && !errors.Is(err, errCacheEntry) {
		os.Remove(tmp)
		c.fail("reading %s: %v", path, err)
		return
	}
	var e entry
	if err == nil {
		if e, err = c.decode(comp.k, b); err != nil {
			done()
		}
	}
	if err != nil {
		os.Remove(tmp)
		c.reject(path, err)
		return
	}
	comp.code, comp.checked, comp.release = e.code, e.checked, done
	if len(e.code) < c.concurrentCode {
		// wazero would decode the code before the payload is checked:
		// checked first.
		comp.stagePayload(e, tmp)
	} else {
		staged, markStaged := context.WithCancelCause(context.Background())
		comp.staged, comp.markStaged, comp.checking = staged, markStaged, make(chan struct{})
		go func() {
			defer close(comp.checking)
			if c.beforePayload != nil {
				c.beforePayload()
				defer c.afterPayload()
			}
			if comp.stagePayload(e, tmp) {
				markStaged(errStaged)
			}
		}()
	}
	// Recently used: evicted last.
	now := time.Now()
	os.Chtimes(path, now, now)
}

// stagePayload verifies the payload of entry e, staged at tmp, and if it
// is authentic names it for wazero; it reports whether it did. Its
// outcome is in comp's payloadErr, stageErr and stagedFile.
func (comp *compilation) stagePayload(e entry, tmp string) bool {
	if err := comp.c.verifyPayload(e); err != nil {
		comp.payloadErr = err
		return false
	}
	name := filepath.Join(comp.sub, e.name)
	if err := os.Rename(tmp, name); err != nil {
		comp.stageErr = err
		return false
	}
	fi, err := os.Stat(name)
	if err != nil {
		comp.stageErr = err
		return false
	}
	comp.stagedFile = fi
	return true
}

// concurrentCode is the size of an entry's code from which its payload
// is verified while wazero decodes the code: below, wazero's decoding
// takes less than the goroutine's start (a small module's), and
// wazero could look for its file before the payload is verified.
const concurrentCode = 256 << 10

// reject counts, logs and removes an entry that failed verification.
func (c *diskCache) reject(path string, err error) {
	c.rejected.Add(1)
	c.logf("%s: %v; removed, compiling the module again", path, err)
	os.Remove(path)
}

// copyEntry copies the entry at path to a new file tmp, if it is a
// regular file of at most max bytes.
func copyEntry(path, tmp string, max int64) error {
	src, err := openNoFollow(path)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() > max {
		return fmt.Errorf("%w: not a regular file of at most %d bytes", errCacheEntry, max)
	}
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, io.LimitReader(src, max+1))
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

// abort ends a compilation that did not take place.
func (comp *compilation) abort() {
	comp.releaseCode() // after the payload's check
	if comp.payloadErr != nil {
		comp.c.reject(comp.c.entryPath(comp.k), comp.payloadErr)
	}
	comp.cache.Close(context.Background())
	os.RemoveAll(comp.stage)
}

// finish records what wazero did: read the staged entry (a hit), or
// compile and write its own, which is then stored with code, the module
// checked and instrumented, and checked, the limits it was checked
// under. compiled says whether the compilation succeeded.
func (comp *compilation) finish(compiled bool, code []byte, checked checkedLimits) {
	c := comp.c
	defer os.RemoveAll(comp.stage)
	comp.wait()
	path := c.entryPath(comp.k)
	switch {
	case comp.payloadErr != nil:
		c.reject(path, comp.payloadErr)
	case comp.stageErr != nil:
		c.fail("staging %s: %v", path, comp.stageErr)
	}
	if !compiled {
		return
	}
	ents, err := os.ReadDir(comp.sub)
	if err != nil {
		c.fail("reading %s: %v", comp.sub, err)
		return
	}
	for _, e := range ents {
		name := e.Name()
		if len(name) != cacheNameBytes || !e.Type().IsRegular() {
			continue // wazero's temporary files
		}
		path := filepath.Join(comp.sub, name)
		if comp.stagedFile != nil {
			if fi, err := os.Stat(path); err == nil && os.SameFile(fi, comp.stagedFile) {
				c.hits.Add(1)
				return
			}
		}
		c.misses.Add(1)
		payload, err := os.ReadFile(path)
		if err != nil {
			c.fail("reading %s: %v", path, err)
			return
		}
		c.store(comp.k, name, payload, code, checked)
		return
	}
	c.misses.Add(1)
}

// store writes an entry, then evicts the least recently used entries
// until the cache fits in its bound.
func (c *diskCache) store(k [sha256.Size]byte, name string, payload, code []byte, checked checkedLimits) {
	b := c.encode(k, name, payload, code, checked)
	if int64(len(b)) > c.max {
		c.tooBig.Add(1)
		c.logf("a compiled module of %d bytes is larger than the whole cache (%d bytes); not stored", len(b), c.max)
		return
	}
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	// No fsync: an entry cut short by a crash fails verification and is
	// compiled again.
	f, err := os.CreateTemp(c.entries, "new-*.tmp")
	if err != nil {
		c.fail("storing a compiled module: %v", err)
		return
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.entryPath(k))
	}
	if err != nil {
		os.Remove(f.Name())
		c.fail("storing a compiled module: %v", err)
		return
	}
	c.stored.Add(1)
	c.evict()
}

// evict removes the least recently used entries while the cache holds
// more than its bound. Called with storeMu held.
func (c *diskCache) evict() {
	ents, err := os.ReadDir(c.entries)
	if err != nil {
		c.fail("reading %s: %v", c.entries, err)
		return
	}
	type entry struct {
		path string
		size int64
		used time.Time
	}
	var all []entry
	var total int64
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), cacheEntryExt) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		all = append(all, entry{filepath.Join(c.entries, e.Name()), fi.Size(), fi.ModTime()})
		total += fi.Size()
	}
	slices.SortFunc(all, func(a, b entry) int { return a.used.Compare(b.used) })
	for _, e := range all {
		if total <= c.max {
			break
		}
		if err := os.Remove(e.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.fail("evicting %s: %v", e.path, err)
			continue
		}
		total -= e.size
		c.evicted.Add(1)
	}
}

// removeStale removes what processes that died left behind, in a
// directory that was a cache when this one opened it (its key was there):
// the entries of earlier layouts, and compilation directories and
// temporary files older than an hour (younger ones may belong to a
// process at work). It removes only what has the names the cache gives,
// and an earlier layout's directory only once that leaves it empty: a
// cache directory that holds other files keeps them.
func (c *diskCache) removeStale() {
	for _, v := range cacheOld {
		dir := filepath.Join(c.dir, v)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if n := e.Name(); e.Type().IsRegular() && (isEntryName(n) || isTempName(n, "new-")) {
				os.Remove(filepath.Join(dir, n))
			}
		}
		os.Remove(dir) // fails unless empty
	}
	old := time.Now().Add(-time.Hour)
	for _, dir := range []string{c.dir, c.entries} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			n := e.Name()
			ours := false
			switch {
			case dir == c.dir && e.IsDir():
				ours = isStageName(n)
			case dir == c.dir:
				ours = e.Type().IsRegular() && isTempName(n, cacheKeyFile+".")
			default:
				ours = e.Type().IsRegular() && isTempName(n, "new-")
			}
			if !ours {
				continue
			}
			if fi, err := e.Info(); err == nil && fi.ModTime().Before(old) {
				os.RemoveAll(filepath.Join(dir, n))
			}
		}
	}
}

// isEntryName reports whether n is the name of an entry: 64 hex digits
// and cacheEntryExt.
func isEntryName(n string) bool {
	h, ok := strings.CutSuffix(n, cacheEntryExt)
	if !ok || len(h) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

// isTempName reports whether n is the name of a temporary file that
// os.CreateTemp made with pattern prefix+"*.tmp".
func isTempName(n, prefix string) bool {
	d, ok := strings.CutPrefix(n, prefix)
	if !ok {
		return false
	}
	d, ok = strings.CutSuffix(d, ".tmp")
	return ok && isDigits(d)
}

// isStageName reports whether n is the name of a compilation's directory
// (os.MkdirTemp with pattern cacheStage).
func isStageName(n string) bool {
	d, ok := strings.CutPrefix(n, cacheStage)
	return ok && isDigits(d)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (c *diskCache) fail(format string, args ...any) {
	c.errors.Add(1)
	c.logf(format+"; compiling instead", args...)
}

func (c *diskCache) logf(format string, args ...any) {
	if c.log == nil {
		return
	}
	msg := fmt.Sprintf("tracemark: compilation cache: "+format+"\n", args...)
	c.logMu.Lock()
	io.WriteString(c.log, msg)
	c.logMu.Unlock()
}

func (c *diskCache) stats() CacheStats {
	return CacheStats{
		Dir:      c.dir,
		Hits:     c.hits.Load(),
		Misses:   c.misses.Load(),
		Stored:   c.stored.Load(),
		Evicted:  c.evicted.Load(),
		TooBig:   c.tooBig.Load(),
		Rejected: c.rejected.Load(),
		Errors:   c.errors.Load(),
	}
}

// compileCached compiles code in m's runtime configuration with the
// compilation comp of the host's disk cache: from the verified entry if
// there is one, else by compiling and storing the result with checked,
// the limits the module was checked under. If the cache fails it
// compiles without it. The module closes the runtime's compilation cache
// when it is released.
func (m *Module) compileCached(ctx context.Context, comp *compilation, rcfg wazero.RuntimeConfig, code []byte, checked checkedLimits, timeout time.Duration) (wazero.CompiledModule, error) {
	c := comp.c
	// wazero may keep parts of the code it decodes (debug information)
	// as long as the compiled module lives.
	m.cache, m.releaseCode = comp.cache, comp.releaseCode
	if c.beforeCompile != nil {
		c.beforeCompile(comp.sub)
	}
	compiled, err := m.compileStaged(ctx, comp, rcfg.WithCompilationCache(comp.cache), code, timeout)
	m.host.phase("compile")
	comp.finish(err == nil, code, checked)
	m.host.phase("finish")
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrCompileTimeout) {
		return compiled, err
	}
	// wazero fails a compilation whose cache it cannot read or write (a
	// full disk): once more without it.
	c.fail("compiling with the cache: %v", err)
	m.rt.Close(ctx)
	m.cache.Close(ctx)
	m.cache = nil
	return m.compileWith(ctx, rcfg.WithCompilationCache(m.ownCache()), code, timeout)
}

// compileStaged compiles code with the compilation's cache, whose entry
// may be staged while wazero decodes the code (see lookup). wazero looks
// for its file once, after decoding; if that was before the entry was
// staged, it compiles the module, and staging cancels that compilation
// (a hit does not look at ctx): the second compilation finds the entry.
func (m *Module) compileStaged(ctx context.Context, comp *compilation, rcfg wazero.RuntimeConfig, code []byte, timeout time.Duration) (wazero.CompiledModule, error) {
	if comp.staged == nil {
		return m.compileWith(ctx, rcfg, code, timeout)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(comp.staged, func() { cancel(errStaged) })
	compiled, err := m.compileWith(cctx, rcfg, code, timeout)
	stop()
	cancel(nil)
	if err == nil || !errors.Is(err, errStaged) || ctx.Err() != nil {
		return compiled, err
	}
	comp.c.restaged.Add(1)
	m.rt.Close(ctx)
	return m.compileWith(ctx, rcfg, code, timeout)
}

// ownCache gives the module a compilation cache in memory of its own.
func (m *Module) ownCache() wazero.CompilationCache {
	m.cache = wazero.NewCompilationCache()
	return m.cache
}

// compileWith makes the module's runtime with rcfg and compiles code in it.
func (m *Module) compileWith(ctx context.Context, rcfg wazero.RuntimeConfig, code []byte, timeout time.Duration) (wazero.CompiledModule, error) {
	m.rt = wazero.NewRuntimeWithConfig(ctx, rcfg)
	return m.compile(ctx, code, timeout)
}
