package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracemark/tracemark/internal/buildinfo"
	"github.com/tracemark/tracemark/internal/cachedir"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// answer is a module whose hook returns the first n bytes of "ABCDEFGH":
// modules of different n differ in their code (the hook's constant), so
// the compiled code of one run for another would answer wrongly.
func answer(name string, n int) []byte {
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	b.Data(0, []byte("ABCDEFGH"))
	b.Export("hook", b.Func(sigHook, nil, wasmbin.I64Const(int64(n))))
	return withModinfo(b.Bytes(), rawInfo(name))
}

// syncBuffer is a log for hosts used from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// diskHost makes a host with the disk cache in dir.
func diskHost(t *testing.T, dir string, max int64) (*Host, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	h, err := NewHost(WithCacheDir(dir), WithCacheBytes(max), WithLog(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	h.CacheStats() // opens the cache
	return h, log
}

// loadAnswer loads wasm, checks that its hook answers want, and unloads
// it.
func loadAnswer(t *testing.T, h *Host, wasm []byte, want string) {
	t.Helper()
	m, err := h.Load(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Call(context.Background(), "hook", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Fatalf("hook answered %q, want %q", out, want)
	}
	if err := m.Unload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
}

// files returns the regular files under dir and their contents.
func files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newFile returns the one file in after that is not in before.
func newFile(t *testing.T, before, after map[string][]byte) string {
	t.Helper()
	var added []string
	for p := range after {
		if _, ok := before[p]; !ok {
			added = append(added, p)
		}
	}
	if len(added) != 1 {
		t.Fatalf("loading added %d files to the cache, want 1: %v", len(added), added)
	}
	return added[0]
}

func checkStats(t *testing.T, h *Host, want CacheStats) {
	t.Helper()
	got := h.CacheStats()
	got.Dir, want.Dir = "", ""
	if got != want {
		t.Errorf("cache stats %+v, want %+v", got, want)
	}
}

func TestDiskCacheHit(t *testing.T) {
	dir := t.TempDir()
	h, log := diskHost(t, dir, 0)
	a := answer("a", 1)
	loadAnswer(t, h, a, "A")
	checkStats(t, h, CacheStats{Misses: 1, Stored: 1})
	loadAnswer(t, h, a, "A")
	checkStats(t, h, CacheStats{Misses: 1, Stored: 1, Hits: 1})
	// Another host (another process) shares the entry.
	h2, _ := diskHost(t, dir, 0)
	loadAnswer(t, h2, a, "A")
	checkStats(t, h2, CacheStats{Hits: 1})
	if s := log.String(); s != "" {
		t.Errorf("log: %s", s)
	}
	for _, p := range []string{filepath.Join(dir, cacheEntries)} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v", p, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, cacheKeyFile)); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != cacheKeyBytes {
		t.Errorf("key: %v", err)
	}
	// Nothing is left of the compilations.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), cacheStage) {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestDiskCacheSwapped replaces the cached code of one module with the
// cached code of another, as someone who can write the cache directory
// could: the host must not run it.
func TestDiskCacheSwapped(t *testing.T) {
	dir := t.TempDir()
	h, log := diskHost(t, dir, 0)
	a, b := answer("a", 1), answer("b", 2)
	before := files(t, dir)
	loadAnswer(t, h, a, "A")
	mid := files(t, dir)
	entryA := newFile(t, before, mid)
	loadAnswer(t, h, b, "AB")
	entryB := newFile(t, mid, files(t, dir))
	bb, _ := os.ReadFile(entryB)
	if err := os.WriteFile(entryA, bb, 0o600); err != nil {
		t.Fatal(err)
	}
	loadAnswer(t, h, a, "A")
	checkStats(t, h, CacheStats{Misses: 3, Stored: 3, Rejected: 1})
	if s := log.String(); !strings.Contains(s, "the entry of another module") || !strings.Contains(s, "compiling the module again") {
		t.Errorf("log: %q", s)
	}
	// The entry was written again, and is good.
	loadAnswer(t, h, a, "A")
	checkStats(t, h, CacheStats{Misses: 3, Stored: 3, Rejected: 1, Hits: 1})
}

// TestDiskCacheDamaged damages the entry of a module in every way a disk,
// a crash or a person could: the module still loads and runs right,
// compiled again, and the entry is replaced.
func TestDiskCacheDamaged(t *testing.T) {
	for _, bc := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"flipped code byte", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }},
		{"flipped mac byte", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
		{"truncated to the header", func(b []byte) []byte { return b[:10] }},
		{"empty", func(b []byte) []byte { return nil }},
		{"extended", func(b []byte) []byte { return append(b, 0) }},
	} {
		t.Run(bc.name, func(t *testing.T) {
			dir := t.TempDir()
			h, log := diskHost(t, dir, 0)
			a := answer("a", 3)
			before := files(t, dir)
			loadAnswer(t, h, a, "ABC")
			after := files(t, dir)
			entry := newFile(t, before, after)
			if err := os.WriteFile(entry, bc.damage(bytes.Clone(after[entry])), 0o600); err != nil {
				t.Fatal(err)
			}
			loadAnswer(t, h, a, "ABC")
			checkStats(t, h, CacheStats{Misses: 2, Stored: 2, Rejected: 1})
			if !strings.Contains(log.String(), "invalid entry") {
				t.Errorf("log: %q", log.String())
			}
			// Written again (with a new nonce), and used.
			if b, _ := os.ReadFile(entry); len(b) != len(after[entry]) || !bytes.Equal(b[:len(b)-cacheRandom], after[entry][:len(b)-cacheRandom]) {
				t.Error("the entry was not written again")
			}
			loadAnswer(t, h, a, "ABC")
			checkStats(t, h, CacheStats{Misses: 2, Stored: 2, Rejected: 1, Hits: 1})
		})
	}
}

// TestDiskCacheOtherKey: entries made under another host key (a cache
// copied from elsewhere, or a key replaced) are not used.
func TestDiskCacheOtherKey(t *testing.T) {
	dir := t.TempDir()
	h, _ := diskHost(t, dir, 0)
	a := answer("a", 4)
	loadAnswer(t, h, a, "ABCD")
	key := filepath.Join(dir, cacheKeyFile)
	if err := os.WriteFile(key, bytes.Repeat([]byte{7}, cacheKeyBytes), 0o600); err != nil {
		t.Fatal(err)
	}
	h2, _ := diskHost(t, dir, 0)
	loadAnswer(t, h2, a, "ABCD")
	checkStats(t, h2, CacheStats{Misses: 1, Stored: 1, Rejected: 1})
}

// TestDiskCacheUnsafeDir: a directory or key file that others could
// change is not used; the host compiles, and says why.
func TestDiskCacheUnsafeDir(t *testing.T) {
	for _, bc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"world-writable dir", func(t *testing.T, dir string) { os.Chmod(dir, 0o777) }, "may be written by other users"},
		{"group-writable entries", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, cacheEntries), 0o770) }, "may be written by other users"},
		{"readable key", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, cacheKeyFile), 0o644) }, "may be read or written by other users"},
		{"key is a symlink", func(t *testing.T, dir string) {
			k := filepath.Join(dir, cacheKeyFile)
			os.Rename(k, k+".real")
			os.Symlink(k+".real", k)
		}, "too many levels of symbolic links"},
		{"short key", func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, cacheKeyFile), []byte("k"), 0o600) }, "not 32 bytes"},
		{"dir is a file", func(t *testing.T, dir string) {
			os.RemoveAll(dir)
			os.WriteFile(dir, nil, 0o600)
		}, "not a directory"},
	} {
		t.Run(bc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			if _, err := openDiskCache(dir, DefaultCacheBytes, nil); err != nil {
				t.Fatal(err)
			}
			bc.setup(t, dir)
			h, log := diskHost(t, dir, 0)
			if s := h.CacheStats(); !strings.Contains(s.Disabled, bc.want) || s.Dir != "" {
				t.Errorf("stats %+v, want disabled: %s", s, bc.want)
			}
			if !strings.Contains(log.String(), bc.want) {
				t.Errorf("log: %q", log.String())
			}
			loadAnswer(t, h, answer("a", 5), "ABCDE")
			loadAnswer(t, h, answer("a", 5), "ABCDE")
		})
	}
}

// TestDiskCacheUnwritable: a cache that cannot be written (taken away,
// replaced by a file, a full disk) costs compiling, not loading.
func TestDiskCacheUnwritable(t *testing.T) {
	t.Run("entries", func(t *testing.T) {
		dir := t.TempDir()
		h, log := diskHost(t, dir, 0)
		entries := filepath.Join(dir, cacheEntries)
		os.RemoveAll(entries)
		os.WriteFile(entries, nil, 0o600)
		loadAnswer(t, h, answer("a", 6), "ABCDEF")
		loadAnswer(t, h, answer("a", 6), "ABCDEF")
		checkStats(t, h, CacheStats{Misses: 2, Errors: 4})
		if !strings.Contains(log.String(), "storing a compiled module") {
			t.Errorf("log: %q", log.String())
		}
	})
	t.Run("dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "cache")
		h, log := diskHost(t, dir, 0)
		os.RemoveAll(dir)
		os.WriteFile(dir, nil, 0o600)
		loadAnswer(t, h, answer("a", 7), "ABCDEFG")
		checkStats(t, h, CacheStats{Errors: 1})
		if !strings.Contains(log.String(), "preparing to compile") {
			t.Errorf("log: %q", log.String())
		}
	})
	t.Run("full", func(t *testing.T) {
		// wazero's own write fails: the host compiles again without
		// the cache.
		dir := t.TempDir()
		h, log := diskHost(t, dir, 0)
		h.diskCache().beforeCompile = func(sub string) {
			os.RemoveAll(sub)
			os.WriteFile(sub, nil, 0o600)
		}
		loadAnswer(t, h, answer("a", 8), "ABCDEFGH")
		checkStats(t, h, CacheStats{Errors: 1})
		if !strings.Contains(log.String(), "compiling with the cache") {
			t.Errorf("log: %q", log.String())
		}
	})
}

// TestDiskCacheFull: the cache stays within its bound, evicting the least
// recently used entries; an entry larger than the bound is not stored.
func TestDiskCacheFull(t *testing.T) {
	dir := t.TempDir()
	h, _ := diskHost(t, dir, 0)
	before := files(t, dir)
	loadAnswer(t, h, answer("a", 1), "A")
	size := int64(len(files(t, dir)[newFile(t, before, files(t, dir))]))

	t.Run("evicts", func(t *testing.T) {
		dir := t.TempDir()
		max := size*2 + size/2 // two entries, not three
		h, _ := diskHost(t, dir, max)
		loadAnswer(t, h, answer("a", 1), "A")
		loadAnswer(t, h, answer("b", 2), "AB")
		loadAnswer(t, h, answer("a", 1), "A") // a is now used more recently than b
		loadAnswer(t, h, answer("c", 3), "ABC")
		checkStats(t, h, CacheStats{Misses: 3, Stored: 3, Hits: 1, Evicted: 1})
		var total int64
		for _, b := range files(t, filepath.Join(dir, cacheEntries)) {
			total += int64(len(b))
		}
		if total > max {
			t.Errorf("the cache holds %d bytes, bound %d", total, max)
		}
		loadAnswer(t, h, answer("a", 1), "A")   // kept
		loadAnswer(t, h, answer("b", 2), "AB")  // evicted: compiled again
		loadAnswer(t, h, answer("c", 3), "ABC") // kept, or evicted by b
		if s := h.CacheStats(); s.Hits < 2 || s.Misses < 4 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("too big", func(t *testing.T) {
		dir := t.TempDir()
		h, log := diskHost(t, dir, size-1)
		loadAnswer(t, h, answer("a", 1), "A")
		loadAnswer(t, h, answer("a", 1), "A")
		checkStats(t, h, CacheStats{Misses: 2, TooBig: 2})
		if !strings.Contains(log.String(), "larger than the whole cache") {
			t.Errorf("log: %q", log.String())
		}
		if f := files(t, filepath.Join(dir, cacheEntries)); len(f) != 0 {
			t.Errorf("stored: %v", slices.Collect(maps.Keys(f)))
		}
	})
}

// TestDiskCacheConcurrent: hosts of several processes share a cache
// directory, loading the same and different modules at once.
func TestDiskCacheConcurrent(t *testing.T) {
	dir := t.TempDir()
	hosts := make([]*Host, 3)
	for i := range hosts {
		hosts[i], _ = diskHost(t, dir, 0)
	}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			h := hosts[i%len(hosts)]
			n := 1 + i%3
			m, err := h.Load(context.Background(), answer(fmt.Sprintf("m%d", i), n))
			if err != nil {
				t.Error(err)
				return
			}
			out, err := m.Call(context.Background(), "hook", nil)
			if err != nil || string(out) != "ABCDEFGH"[:n] {
				t.Errorf("%s: %q, %v", m.Name(), out, err)
			}
		})
	}
	wg.Wait()
	var s CacheStats
	for _, h := range hosts {
		c := h.CacheStats()
		s.Hits += c.Hits
		s.Misses += c.Misses
		s.Rejected += c.Rejected
		s.Errors += c.Errors
	}
	if s.Hits+s.Misses != 12 || s.Rejected != 0 || s.Errors != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestDiskCacheDefaultDir: the default directory is under
// $TRACEMARK_CACHE_DIR, and a test binary without it has no cache on
// disk (tests never write into the user's cache).
func TestDiskCacheDefaultDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(cachedir.Env, dir)
	h, err := NewHost()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	// A host that loads nothing writes nothing.
	if _, err := os.Stat(filepath.Join(dir, "compiled")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NewHost made the cache directory: %v", err)
	}
	if s := h.CacheStats(); s.Dir != filepath.Join(dir, "compiled") {
		t.Errorf("stats %+v", s)
	}
	t.Setenv(cachedir.Env, "")
	h2, err := NewHost()
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close(context.Background())
	if s := h2.CacheStats(); s.Dir != "" || !strings.Contains(s.Disabled, "test binary") {
		t.Errorf("stats %+v", s)
	}
	loadAnswer(t, h2, answer("a", 2), "AB")
	h3, _ := NewHost(WithoutDiskCache(), WithCacheDir(dir))
	defer h3.Close(context.Background())
	if s := h3.CacheStats(); s.Dir != "" || s.Disabled == "" {
		t.Errorf("stats %+v", s)
	}
}

// entryOf loads wasm into a new host on dir, and returns the path of
// the entry that the load stored.
func entryOf(t *testing.T, dir string, wasm []byte, want string) string {
	t.Helper()
	h, _ := diskHost(t, dir, 0)
	before := files(t, dir)
	loadAnswer(t, h, wasm, want)
	return newFile(t, before, files(t, dir))
}

// TestDiskCacheEntryFile: wazero reads an entry through a hard link, so
// an entry must be a regular file of this user that nobody else may
// write (another user could change it between its verification and its
// use): any other is rejected, removed and compiled again.
func TestDiskCacheEntryFile(t *testing.T) {
	for _, bc := range []struct {
		name   string
		change func(t *testing.T, entry string)
		want   string
	}{
		{"writable by others", func(t *testing.T, entry string) { os.Chmod(entry, 0o666) }, "may be written by other users"},
		{"writable by the group", func(t *testing.T, entry string) { os.Chmod(entry, 0o620) }, "may be written by other users"},
		{"symbolic link", func(t *testing.T, entry string) {
			// To a copy of the entry itself, which would verify.
			real := filepath.Join(t.TempDir(), "real")
			b, _ := os.ReadFile(entry)
			os.WriteFile(real, b, 0o600)
			os.Remove(entry)
			os.Symlink(real, entry)
		}, "symbolic link"},
		{"directory", func(t *testing.T, entry string) {
			os.Remove(entry)
			os.Mkdir(entry, 0o700)
		}, "not a regular file"},
		{"another user's", func(t *testing.T, entry string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a file away")
			}
			os.Chown(entry, 54321, 54321)
		}, "belongs to user 54321"},
	} {
		t.Run(bc.name, func(t *testing.T) {
			if runtime.GOOS == "windows" {
				t.Skip("no file modes")
			}
			dir := t.TempDir()
			a := answer("a", 3)
			entry := entryOf(t, dir, a, "ABC")
			bc.change(t, entry)
			h, log := diskHost(t, dir, 0)
			loadAnswer(t, h, a, "ABC")
			checkStats(t, h, CacheStats{Misses: 1, Stored: 1, Rejected: 1})
			if s := log.String(); !strings.Contains(s, bc.want) || !strings.Contains(s, "compiling the module again") {
				t.Errorf("log: %q, want %q", s, bc.want)
			}
			// Stored again as a private file, and used.
			if fi, err := os.Lstat(entry); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Errorf("entry after the load: %v, %v", fi.Mode(), err)
			}
			loadAnswer(t, h, a, "ABC")
			checkStats(t, h, CacheStats{Misses: 1, Stored: 1, Rejected: 1, Hits: 1})
		})
	}
}

// TestDiskCacheLimits: an entry spares the compile-limit walk only under
// limits no smaller than those it was checked under; under smaller ones
// the module is walked again, and refused if it is over them, even
// though its compiled code is in the cache.
func TestDiskCacheLimits(t *testing.T) {
	dir := t.TempDir()
	a := answer("a", 2)
	entryOf(t, dir, a, "AB")
	h, _ := diskHost(t, dir, 0)
	_, err := h.Load(context.Background(), a, WithLoadLimits(Limits{MaxCodeUnits: 2}))
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "MaxCodeUnits" {
		t.Fatalf("load under a smaller limit: %v, want a *LimitError for MaxCodeUnits", err)
	}
	// Larger limits: the entry's code is used, compiled once.
	m, err := h.Load(context.Background(), a, WithLoadLimits(Limits{MaxFunctions: 1 << 20, MaxCodeUnits: 1 << 30}))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := m.Call(context.Background(), "hook", nil); err != nil || string(out) != "AB" {
		t.Fatalf("hook: %q, %v", out, err)
	}
	m.Unload(context.Background(), false)
	// Smaller limits that the module is within: walked again, and loaded
	// from the cache.
	loadAnswerWith(t, h, a, "AB", WithLoadLimits(Limits{MaxCodeUnits: 1000}))
	checkStats(t, h, CacheStats{Hits: 2})
}

// loadAnswer with load options.
func loadAnswerWith(t *testing.T, h *Host, wasm []byte, want string, opts ...LoadOption) {
	t.Helper()
	m, err := h.Load(context.Background(), wasm, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := m.Call(context.Background(), "hook", nil); err != nil || string(out) != want {
		t.Fatalf("hook: %q, %v; want %q", out, err, want)
	}
	if err := m.Unload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
}

// TestDiskCacheOldLayout: when a cache opens, the entries of the earlier
// layouts are removed, and the compilation directories and temporary
// files that processes left behind over an hour ago; what is younger, or
// is not named as the cache names its files, stays.
func TestDiskCacheOldLayout(t *testing.T) {
	dir := t.TempDir()
	diskHost(t, dir, 0) // the cache's key
	entry := strings.Repeat("0", 64) + cacheEntryExt
	for _, old := range cacheOld {
		old := filepath.Join(dir, old)
		os.MkdirAll(old, 0o700)
		os.WriteFile(filepath.Join(old, entry), make([]byte, 1000), 0o600)
		os.WriteFile(filepath.Join(old, "new-123.tmp"), nil, 0o600)
	}
	// A foreign file makes v2 stay, with it alone.
	os.WriteFile(filepath.Join(dir, "v2", "notes.txt"), nil, 0o600)
	hourAgo := time.Now().Add(-2 * time.Hour)
	stale := []string{"stage-123", "key.456.tmp", filepath.Join(cacheEntries, "new-789.tmp")}
	kept := []string{"stage-124", "stage-x1", "mine.tmp", filepath.Join(cacheEntries, "other.tmp")}
	for _, name := range append(append([]string{}, stale...), kept...) {
		path := filepath.Join(dir, name)
		if strings.HasPrefix(name, "stage-") {
			os.Mkdir(path, 0o700)
			os.WriteFile(filepath.Join(path, "x"), nil, 0o600)
		} else {
			os.WriteFile(path, nil, 0o600)
		}
		if name != "stage-124" {
			os.Chtimes(path, hourAgo, hourAgo)
		}
	}
	diskHost(t, dir, 0)
	if _, err := os.Stat(filepath.Join(dir, "v1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("v1: %v, want it removed", err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "v2"))
	if err != nil || len(ents) != 1 || ents[0].Name() != "notes.txt" {
		t.Errorf("v2 holds %v (%v), want only the foreign notes.txt", ents, err)
	}
	for _, name := range stale {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want it removed", name, err)
		}
	}
	for _, name := range kept {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v, want it kept", name, err)
		}
	}
}

// TestDiskCacheForeignDir: a cache opened in a directory that was not a
// cache (no key; say a home directory) removes nothing there, even what
// has the names of an earlier layout or of the cache's stale files.
func TestDiskCacheForeignDir(t *testing.T) {
	dir := t.TempDir()
	hourAgo := time.Now().Add(-2 * time.Hour)
	names := []string{
		filepath.Join("v1", strings.Repeat("0", 64)+cacheEntryExt),
		filepath.Join("v2", "thesis.tex"),
		filepath.Join("v2", strings.Repeat("0", 64)+cacheEntryExt),
		filepath.Join("stage-123", "data"),
		"key.456.tmp",
	}
	for _, name := range names {
		path := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(path), 0o700)
		os.WriteFile(path, []byte("x"), 0o600)
		os.Chtimes(path, hourAgo, hourAgo)
		os.Chtimes(filepath.Dir(path), hourAgo, hourAgo)
	}
	diskHost(t, dir, 0)
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v, want it kept", name, err)
		}
	}
}

// TestCacheBuild: an entry is keyed by the versions of the build, and for
// a build that no version names exactly, by the executable too, since
// such a build may instrument modules differently from the last.
func TestCacheBuild(t *testing.T) {
	exe := func() string { return "executable /bin/x 1 2" }
	noExe := func() string { return "" }
	for _, bc := range []struct {
		tm    buildinfo.Info
		exact bool
	}{
		{buildinfo.Info{Version: "v0.4.1", Go: "go1.26"}, true},
		{buildinfo.Info{Version: "v0.0.0-20261202014500-abcdef123456", Commit: "abcdef", Go: "go1.26"}, true},
		{buildinfo.Info{Version: "v0.0.0-20261202014500-abcdef123456+dirty", Commit: "abcdef", Modified: true, Go: "go1.26"}, false},
		{buildinfo.Info{Version: "v0.4.1", Commit: "abcdef", Modified: true, Go: "go1.26"}, false},
		{buildinfo.Info{Version: "(devel)", Go: "go1.26"}, false},
		{buildinfo.Info{Version: "unknown", Go: "go1.26"}, false},
	} {
		s := cacheBuild("v1.12.0", bc.tm, exe)
		if has := strings.Contains(s, "executable /bin/x"); has == bc.exact {
			t.Errorf("%+v: %q: names the executable %t, want %t", bc.tm, s, has, !bc.exact)
		}
		if !strings.Contains(s, bc.tm.Version) || !strings.Contains(s, "wazero v1.12.0") {
			t.Errorf("%+v: %q lacks the versions", bc.tm, s)
		}
		if !bc.exact {
			// Without an executable to name, each process has its own.
			if a, b := cacheBuild("v1.12.0", bc.tm, noExe), cacheBuild("v1.12.0", bc.tm, noExe); a == b {
				t.Errorf("%+v: %q twice without an executable", bc.tm, a)
			}
		}
	}
}

// coldCompiles makes compileHook signal, on cold, when wazero compiles a
// module rather than reading its file: it then asks how many workers to
// compile with (and never on a hit). With untilCanceled, wazero then
// waits until its compilation is canceled before it compiles a function.
// Reset at the end of the test.
func coldCompiles(t *testing.T, untilCanceled bool) <-chan struct{} {
	cold := make(chan struct{})
	var once sync.Once
	compileHook = func(ctx context.Context) context.Context {
		return workersWatch{ctx, func() {
			once.Do(func() { close(cold) })
			if untilCanceled {
				select {
				case <-ctx.Done():
				case <-time.After(time.Minute):
					t.Error("the compilation was never canceled")
				}
			}
		}}
	}
	t.Cleanup(func() { compileHook = nil })
	return cold
}

type workersWatch struct {
	context.Context
	asked func()
}

func (w workersWatch) Value(key any) any {
	if fmt.Sprintf("%T", key) == "expctxkeys.CompilationWorkers" {
		w.asked()
	}
	return w.Context.Value(key)
}

// waitCold waits until wazero compiles cold, or fails the test after a
// minute (wazero's internals changed: the hook no longer sees it).
func waitCold(t *testing.T, cold <-chan struct{}) {
	select {
	case <-cold:
	case <-time.After(time.Minute):
		t.Error("wazero never compiled: compileHook does not see it")
	}
}

// TestDiskCachePayloadSwapped: an entry whose code and footer are its own
// but whose compiled code (payload) is another module's, of the same
// size, passes the first check (the code's), and wazero decodes the code
// meanwhile (unless the module is small: then it is checked before);
// the payload's check fails, whether it ends before wazero looks for its
// file or after, so wazero never reads the payload: it compiles the
// module, which answers as itself, and the entry is replaced.
func TestDiskCachePayloadSwapped(t *testing.T) {
	for _, mode := range []string{"small", "checked before wazero looks", "checked after wazero looks"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			h, log := diskHost(t, dir, 0)
			a, b := answer("a", 1), answer("b", 2)
			before := files(t, dir)
			loadAnswer(t, h, a, "A")
			mid := files(t, dir)
			entryA := newFile(t, before, mid)
			loadAnswer(t, h, b, "AB")
			entryB := newFile(t, mid, files(t, dir))
			ea, eb := mid[entryA], files(t, dir)[entryB]
			payloadLen := func(e []byte) int {
				return int(binary.LittleEndian.Uint64(e[len(e)-cacheFooter+len(checkedLimits{})*8+cacheNameBytes:]))
			}
			n := payloadLen(ea)
			if payloadLen(eb) != n {
				t.Fatalf("payloads of %d and %d bytes", n, payloadLen(eb))
			}
			swapped := append(bytes.Clone(eb[:n]), ea[n:]...)
			if err := os.WriteFile(entryA, swapped, 0o600); err != nil {
				t.Fatal(err)
			}
			dc := h.diskCache()
			switch mode {
			case "checked before wazero looks":
				dc.concurrentCode = 0 // the module is small
				checked := make(chan struct{})
				dc.beforePayload, dc.afterPayload = func() {}, func() { close(checked) }
				dc.beforeCompile = func(string) { <-checked }
			case "checked after wazero looks":
				dc.concurrentCode = 0
				cold := coldCompiles(t, false)
				dc.beforePayload, dc.afterPayload = func() { waitCold(t, cold) }, func() {}
			}
			loadAnswer(t, h, a, "A")
			checkStats(t, h, CacheStats{Misses: 3, Stored: 3, Rejected: 1})
			if s := log.String(); !strings.Contains(s, "compiled code: authentication failed") || !strings.Contains(s, "compiling the module again") {
				t.Errorf("log: %q", s)
			}
			dc.beforePayload, dc.afterPayload, dc.beforeCompile = nil, nil, nil
			dc.concurrentCode = concurrentCode
			loadAnswer(t, h, a, "A")
			checkStats(t, h, CacheStats{Misses: 3, Stored: 3, Rejected: 1, Hits: 1})
		})
	}
}

// TestDiskCacheStagedLate: when the payload's check ends after wazero
// looked for its file (a starved goroutine), wazero has begun to compile
// the module; staging the entry stops that, and the compilation begun
// again reads the entry. (wazero is held before it compiles any function
// until staging cancels it: a small module would be compiled first.)
func TestDiskCacheStagedLate(t *testing.T) {
	dir := t.TempDir()
	h, log := diskHost(t, dir, 0)
	a := answer("a", 5)
	loadAnswer(t, h, a, "ABCDE")
	cold := coldCompiles(t, true)
	dc := h.diskCache()
	dc.concurrentCode = 0 // the module is small
	dc.beforePayload, dc.afterPayload = func() { waitCold(t, cold) }, func() {}
	loadAnswer(t, h, a, "ABCDE")
	checkStats(t, h, CacheStats{Misses: 1, Stored: 1, Hits: 1})
	if n := h.diskCache().restaged.Load(); n != 1 {
		t.Errorf("%d compilations begun again, want 1", n)
	}
	if s := log.String(); s != "" {
		t.Errorf("log: %s", s)
	}
}

// TestDiskCacheAbortWaitsForCheck: a load that fails after finding its
// entry (here: the name is taken) releases the entry's mapping only once
// the check of its compiled code, which reads the mapping, has ended.
func TestDiskCacheAbortWaitsForCheck(t *testing.T) {
	dir := t.TempDir()
	h, _ := diskHost(t, dir, 0)
	a := answer("a", 2)
	loadAnswer(t, h, a, "AB")
	m, err := h.Load(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unload(context.Background(), false)
	dc := h.diskCache()
	dc.concurrentCode = 0
	looked := make(chan struct{})
	var once sync.Once
	h.onPhase = func(p string) {
		if p == "lookup" {
			once.Do(func() { close(looked) })
		}
	}
	var checked atomic.Bool
	dc.beforePayload = func() { <-looked }
	dc.afterPayload = func() { checked.Store(true) }
	if _, err := h.Load(context.Background(), a); !errors.Is(err, ErrExists) {
		t.Fatalf("loading a module of a loaded one's name: %v", err)
	}
	if !checked.Load() {
		t.Error("the load returned before the check of its entry ended")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), cacheStage) {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
