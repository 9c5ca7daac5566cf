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
	cacheEntries   = "v1"
	cacheStage     = "stage-"
	cacheEntryExt  = ".entry"
	cacheMagic     = "tmcache1"
	cacheKeyBytes  = 32
	cacheNameBytes = 64 // wazero names its entries with 64 hex digits
)

// errCacheEntry is the cause of an entry that the cache refuses.
var errCacheEntry = errors.New("invalid entry")

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
	// compiles: tests break the directory there.
	beforeCompile func(sub string)

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
	key, err := cacheKey(dir)
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
	c := &diskCache{dir: dir, entries: entries, max: max, aead: aead, build: buildString(), log: log}
	c.removeStale()
	return c, nil
}

// cacheKey reads the host key of the cache in dir, or makes it. The key
// file must be a regular file of this user that nobody else may read.
func cacheKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, cacheKeyFile)
	for range 2 {
		key, err := readKey(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return key, err
		}
		// Made aside and linked into place: of two processes making it
		// at once, one wins and the other reads its key.
		f, err := os.CreateTemp(dir, cacheKeyFile+".*.tmp")
		if err != nil {
			return nil, err
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
			return nil, err
		}
	}
	return readKey(path)
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

// buildString names what compiled code depends on besides the module's
// bytes: wazero (the compiler), tracemark (which instruments the module
// and configures the compiler), Go and the platform.
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
	tm := buildinfo.Read()
	return fmt.Sprintf("wazero %s; tracemark %s %s %t; %s %s/%s", wz, tm.Version, tm.Commit, tm.Modified, tm.Go, runtime.GOOS, runtime.GOARCH)
}

// entryKey is the key of a module's entry: its instrumented code and
// the build.
func (c *diskCache) entryKey(code []byte) [sha256.Size]byte {
	h := sha256.New()
	io.WriteString(h, cacheMagic+"\n"+c.build+"\n")
	sum := sha256.Sum256(code)
	h.Write(sum[:])
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func (c *diskCache) entryPath(k [sha256.Size]byte) string {
	return filepath.Join(c.entries, hex.EncodeToString(k[:])+cacheEntryExt)
}

// An entry is
//
//	"tmcache1"
//	key                 32 bytes: the entry's key (entryKey)
//	u8 len, name        wazero's name of its compiled module (hex)
//	u64le len, payload  wazero's serialized compiled module
//	nonce               12 random bytes
//	tag                 16 bytes: AES-256-GCM under the host key, with
//	                    nonce, of nothing, authenticating everything above
//	                    (GMAC: a tenth of the cost of HMAC-SHA256 on
//	                    compiled code of megabytes)
const (
	cacheNonceBytes = 12
	cacheTagBytes   = 16
	cacheHeader     = len(cacheMagic) + sha256.Size + 1 + cacheNameBytes + 8
)

func (c *diskCache) encode(k [sha256.Size]byte, name string, payload []byte) []byte {
	b := make([]byte, 0, cacheHeader+len(payload)+cacheNonceBytes+cacheTagBytes)
	b = append(b, cacheMagic...)
	b = append(b, k[:]...)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(payload)))
	b = append(b, payload...)
	nonce := make([]byte, cacheNonceBytes)
	rand.Read(nonce)
	b = append(b, nonce...)
	return c.aead.Seal(b, nonce, nil, b[:len(b)-cacheNonceBytes])
}

// decode verifies an entry and returns its name and payload (a part of
// b).
func (c *diskCache) decode(k [sha256.Size]byte, b []byte) (name string, payload []byte, err error) {
	if len(b) < cacheHeader+cacheNonceBytes+cacheTagBytes {
		return "", nil, fmt.Errorf("%w: truncated (%d bytes)", errCacheEntry, len(b))
	}
	n := len(b) - cacheNonceBytes - cacheTagBytes
	body, nonce, tag := b[:n], b[n:n+cacheNonceBytes], b[n+cacheNonceBytes:]
	if _, err := c.aead.Open(nil, nonce, tag, body); err != nil {
		return "", nil, fmt.Errorf("%w: authentication failed (corrupted, truncated or not made by this host)", errCacheEntry)
	}
	// Authentic: written by encode, but maybe for another module.
	h := body[len(cacheMagic):]
	if string(body[:len(cacheMagic)]) != cacheMagic || string(h[:sha256.Size]) != string(k[:]) {
		return "", nil, fmt.Errorf("%w: the entry of another module", errCacheEntry)
	}
	h = h[sha256.Size:]
	if int(h[0]) != cacheNameBytes {
		return "", nil, fmt.Errorf("%w: bad header", errCacheEntry)
	}
	name = string(h[1 : 1+cacheNameBytes])
	if _, err := hex.DecodeString(name); err != nil {
		return "", nil, fmt.Errorf("%w: bad name", errCacheEntry)
	}
	rest := h[1+cacheNameBytes:]
	if binary.LittleEndian.Uint64(rest) != uint64(len(rest)-8) {
		return "", nil, fmt.Errorf("%w: bad length", errCacheEntry)
	}
	return name, rest[8:], nil
}

// lookup returns the verified entry of a module, if there is one. An
// entry that fails verification is removed.
func (c *diskCache) lookup(k [sha256.Size]byte) (name string, payload []byte, ok bool) {
	path := c.entryPath(k)
	f, err := openNoFollow(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, false
	}
	if err != nil {
		c.fail("reading %s: %v", path, err)
		return "", nil, false
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		c.fail("reading %s: %v", path, err)
		return "", nil, false
	case !fi.Mode().IsRegular() || fi.Size() > c.max:
		err = fmt.Errorf("%w: not a regular file of at most %d bytes", errCacheEntry, c.max)
	default:
		b := make([]byte, fi.Size())
		_, err = io.ReadFull(f, b)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			b, err = nil, nil // cut short since: fails verification
		}
		if err != nil {
			c.fail("reading %s: %v", path, err)
			return "", nil, false
		}
		name, payload, err = c.decode(k, b)
	}
	if err != nil {
		c.rejected.Add(1)
		c.logf("%s: %v; removed, compiling the module again", path, err)
		os.Remove(path)
		return "", nil, false
	}
	// Recently used: evicted last.
	now := time.Now()
	os.Chtimes(path, now, now)
	return name, payload, true
}

// compilation is one compilation with the disk cache: wazero's cache in
// a private directory that holds at most the module's verified entry.
type compilation struct {
	c      *diskCache
	k      [sha256.Size]byte
	stage  string // the private directory
	sub    string // wazero's directory in it
	staged os.FileInfo
	cache  wazero.CompilationCache
}

// begin prepares a compilation of code. Without error, the caller
// compiles with comp.cache, then calls comp.finish, and closes comp.cache
// when it releases the compiled module.
func (c *diskCache) begin(code []byte) (*compilation, error) {
	comp := &compilation{c: c, k: c.entryKey(code)}
	name, payload, found := c.lookup(comp.k)
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
		return fail(err)
	}
	if len(ents) != 1 || !ents[0].IsDir() {
		return fail(fmt.Errorf("%s: expected one directory of wazero's", stage))
	}
	comp.sub = filepath.Join(stage, ents[0].Name())
	if found {
		path := filepath.Join(comp.sub, name)
		if err := os.WriteFile(path, payload, 0o600); err != nil {
			return fail(err)
		}
		if comp.staged, err = os.Stat(path); err != nil {
			return fail(err)
		}
	}
	return comp, nil
}

// finish records what wazero did: read the staged entry (a hit), or
// compile and write its own, which is then stored. compiled says whether
// the compilation succeeded.
func (comp *compilation) finish(compiled bool) {
	c := comp.c
	defer os.RemoveAll(comp.stage)
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
		if comp.staged != nil {
			if fi, err := os.Stat(path); err == nil && os.SameFile(fi, comp.staged) {
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
		c.store(comp.k, name, payload)
		return
	}
	c.misses.Add(1)
}

// store writes an entry, then evicts the least recently used entries
// until the cache fits in its bound.
func (c *diskCache) store(k [sha256.Size]byte, name string, payload []byte) {
	b := c.encode(k, name, payload)
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

// removeStale removes what processes that died left behind: compilation
// directories and temporary entries older than an hour (younger ones may
// belong to a process at work).
func (c *diskCache) removeStale() {
	old := time.Now().Add(-time.Hour)
	for _, dir := range []string{c.dir, c.entries} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			n := e.Name()
			if !strings.HasPrefix(n, cacheStage) && !strings.HasSuffix(n, ".tmp") {
				continue
			}
			if fi, err := e.Info(); err == nil && fi.ModTime().Before(old) {
				os.RemoveAll(filepath.Join(dir, n))
			}
		}
	}
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
// host's disk cache: from a verified entry if there is one, else by
// compiling and storing the result. If the cache fails it compiles
// without it. It returns the runtime's compilation cache, which the
// module closes when it is released.
func (m *Module) compileCached(ctx context.Context, c *diskCache, rcfg wazero.RuntimeConfig, code []byte, timeout time.Duration) (wazero.CompiledModule, error) {
	comp, err := c.begin(code)
	if err != nil {
		c.fail("preparing to compile: %v", err)
		return m.compileWith(ctx, rcfg.WithCompilationCache(m.ownCache()), code, timeout)
	}
	m.cache = comp.cache
	if c.beforeCompile != nil {
		c.beforeCompile(comp.sub)
	}
	compiled, err := m.compileWith(ctx, rcfg.WithCompilationCache(comp.cache), code, timeout)
	comp.finish(err == nil)
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
