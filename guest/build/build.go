// Package build compiles a Go package into a tracemark module: it runs
// go build for GOOS=wasip1 GOARCH=wasm with -buildmode=c-shared (the
// reactor form the host needs), then appends the metadata section and,
// with a key, the signature section, which Go cannot emit itself.
//
// It runs on the developer's machine or in tests, not in the module:
//
//	err := build.Build(ctx, "./plugin",
//		module.Modinfo{Name: "classifier", Version: "v1.0.0", License: "MIT"},
//		"classifier.wasm")
//
// Optional settings are options: WithKey signs the module, WithGo names
// the go command.
//
// The build is reproducible: -trimpath, no VCS stamping, and the same
// toolchain give the same bytes.
package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/tracemark/tracemark/internal/cachedir"
	"github.com/tracemark/tracemark/module"
)

// Option configures a build: WithKey, WithGo. The default is an unsigned
// module built with "go" from PATH.
type Option interface{ apply(*job) }

type optionFunc func(*job)

func (f optionFunc) apply(j *job) { f(j) }

// WithKey signs the module with key after the metadata is appended. By
// default, and with a nil key, the module is unsigned.
func WithKey(key *module.PrivateKey) Option { return optionFunc(func(j *job) { j.Key = key }) }

// WithGo runs the go command at path instead of "go" from PATH (the
// default, also for an empty path).
func WithGo(path string) Option { return optionFunc(func(j *job) { j.Go = path }) }

// job is what to build.
type job struct {
	// Dir is the directory of the module's main package.
	Dir string
	// Modinfo is the metadata to append. Name is required; a zero ABI
	// means module.ABIVersion.
	Modinfo module.Modinfo
	Key     *module.PrivateKey
	Go      string
}

func newJob(dir string, mi module.Modinfo, opts []Option) job {
	j := job{Dir: dir, Modinfo: mi}
	for _, o := range opts {
		if o != nil {
			o.apply(&j)
		}
	}
	return j
}

func (o job) goCmd() string {
	if o.Go != "" {
		return o.Go
	}
	return "go"
}

// Build compiles the package in dir, appends the metadata mi (Name is
// required; a zero ABI means module.ABIVersion) and writes the finished
// module to out.
func Build(ctx context.Context, dir string, mi module.Modinfo, out string, opts ...Option) error {
	return newJob(dir, mi, opts).build(ctx, out)
}

func (opts job) build(ctx context.Context, out string) error {
	if opts.Modinfo.ABI == 0 {
		opts.Modinfo.ABI = module.ABIVersion
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".build-*.wasm")
	if err != nil {
		return fmt.Errorf("building module: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.CommandContext(ctx, opts.goCmd(), "build", "-trimpath", "-buildvcs=false", "-buildmode=c-shared", "-o", tmp.Name(), ".")
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building module in %s: %w\n%s", opts.Dir, err, stderr.Bytes())
	}
	wasm, err := os.ReadFile(tmp.Name())
	if err != nil {
		return fmt.Errorf("building module: %w", err)
	}
	if wasm, err = module.SetModinfo(wasm, &opts.Modinfo); err != nil {
		return fmt.Errorf("building module: %w", err)
	}
	if opts.Key != nil {
		if wasm, err = module.Sign(wasm, opts.Key); err != nil {
			return fmt.Errorf("building module: %w", err)
		}
	}
	if err := os.WriteFile(tmp.Name(), wasm, 0o644); err != nil {
		return fmt.Errorf("building module: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("building module: %w", err)
	}
	return nil
}

// Cached builds the module into the user's cache directory
// (os.UserCacheDir()/tracemark/modules, or $TRACEMARK_CACHE_DIR/modules),
// unless a build of the same
// sources is there already, and returns its path. The cache key covers
// the Go files of dir and of the guest SDK, the toolchain version, the
// metadata and the signing key; go build's own cache makes a miss cheap.
// It takes Build's arguments but out.
func Cached(ctx context.Context, dir string, mi module.Modinfo, opts ...Option) (string, error) {
	return newJob(dir, mi, opts).cached(ctx)
}

func (opts job) cached(ctx context.Context) (string, error) {
	key, err := cacheKey(opts)
	if err != nil {
		return "", err
	}
	dir, err := cachedir.Dir("modules")
	if err != nil {
		dir = filepath.Join(os.TempDir(), "tracemark", "modules")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("building module: %w", err)
	}
	name := opts.Modinfo.Name
	if name == "" {
		name = "module"
	}
	out := filepath.Join(dir, name+"-"+key[:16]+".wasm")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	return out, opts.build(ctx, out)
}

func cacheKey(opts job) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version())
	if opts.Modinfo.ABI == 0 {
		opts.Modinfo.ABI = module.ABIVersion
	}
	info, err := opts.Modinfo.MarshalBinary()
	if err != nil {
		return "", fmt.Errorf("building module: %w", err)
	}
	h.Write(info)
	if opts.Key != nil {
		h.Write(opts.Key.Public().Key)
	}
	dirs := []string{opts.Dir}
	if _, file, _, ok := runtime.Caller(0); ok {
		dirs = append(dirs, filepath.Dir(filepath.Dir(file))) // the guest SDK
	}
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(d, "*.go"))
		slices.Sort(files)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return "", fmt.Errorf("building module: %w", err)
			}
			fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
