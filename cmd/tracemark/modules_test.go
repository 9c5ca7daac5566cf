package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/agent"
	"github.com/tracemark/tracemark/agent/agentmodules"
	"github.com/tracemark/tracemark/examples/plugin/pluginbuild"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/wasm"
)

// Environment of the "modtarget" role: a keyring file the host trusts,
// and "1" to require signatures.
const (
	envTestKeyring    = "TRACEMARK_TEST_KEYRING"
	envTestRequireSig = "TRACEMARK_TEST_REQUIRE_SIG"
)

// modTargetMain is a traced process that allows loading modules at run
// time (agentmodules.WithHost). Besides "ready", it answers "hook N", which
// calls the example plugin's request hook N times with "GET
// /api/items/I", and "attack", which calls it with a request the plugin
// finds suspicious.
func modTargetMain() int {
	// The host's default cache on disk, under the $TRACEMARK_CACHE_DIR
	// that runTests set: compiling the plugin takes seconds with -race,
	// and the tests' targets compile it once.
	var opts []wasm.HostOption
	if k := os.Getenv(envTestKeyring); k != "" {
		ring, err := module.LoadKeyring(k)
		if err != nil {
			fmt.Println("keyring:", err)
			return 1
		}
		opts = append(opts, wasm.WithKeys(ring))
	}
	if os.Getenv(envTestRequireSig) == "1" {
		opts = append(opts, wasm.WithRequireSignature())
	}
	host, err := wasm.NewHost(opts...)
	if err != nil {
		fmt.Println("host:", err)
		return 1
	}
	defer host.Close(context.Background())
	a, err := agent.Start(agentmodules.WithHost(host))
	if err != nil {
		fmt.Println("agent:", err)
		return 1
	}
	defer a.Close()
	fmt.Printf("ready %d\n", os.Getpid())
	call := func(req string) {
		m := host.Module("classifier")
		if m == nil {
			fmt.Println("error: classifier not loaded")
			return
		}
		if _, err := m.Call(context.Background(), "on_request", []byte(req)); err != nil {
			fmt.Println("error:", err)
		}
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch cmd := sc.Text(); {
		case strings.HasPrefix(cmd, "hook "):
			n, _ := strconv.Atoi(strings.TrimPrefix(cmd, "hook "))
			for i := range n {
				call("GET /api/items/" + strconv.Itoa(i))
			}
		case cmd == "attack":
			call("GET /.env")
		}
		fmt.Printf("done %s\n", sc.Text())
	}
	return 0
}

// startModTarget starts a traced process that loads modules, with extra
// environment variables.
func (e *env) startModTarget(environ ...string) *proc {
	e.t.Helper()
	e2 := *e
	e2.environ = append(slices.Clip(e.environ), environ...)
	p := e2.start("modtarget")
	p.stdout.waitFor(e.t, "ready ")
	return p
}

// examplePlugin builds the example plugin once for all tests (the build
// is cached across runs too) and returns a private copy of it in dir.
var examplePlugin = sync.OnceValues(func() ([]byte, error) {
	path, err := pluginbuild.Path(context.Background())
	if err != nil {
		return nil, err
	}
	return os.ReadFile(path)
})

func pluginCopy(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := examplePlugin()
	if err != nil {
		t.Fatalf("building the example plugin: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestModuleFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	plugin := pluginCopy(t, e.runtime, "classifier.wasm")
	key := filepath.Join(e.runtime, "release.key")

	r := e.cli("keygen", "-o", key, "--name", "Example release")
	if r.code != 0 || !strings.Contains(r.stdout, "Signer:      Example release (ed25519:") {
		t.Fatalf("keygen: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("private key: %v, mode %v; want 0600", err, st.Mode())
	}
	if _, err := module.LoadKeyring(key + ".pub"); err != nil {
		t.Errorf("public key: %v", err)
	}
	r = e.cli("keygen", "-o", key)
	if r.code != exitUsage || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("keygen over an existing key: exit %d\n%s", r.code, r.stderr)
	}

	// Unsigned: P and E, and O is not known yet.
	fi := modinfoJSON(t, e, plugin)
	if fi.Modinfo == nil || fi.Modinfo.Name != "classifier" || fi.Modinfo.Version != "v1.0.0" || fi.Modinfo.License != "Proprietary" ||
		fi.Signature.State != "unsigned" || fi.Taint != "PE" || fi.ABIError != "" || !slices.Contains(fi.Exports, "on_request") {
		t.Errorf("modinfo of the unsigned plugin: %+v", fi)
	}

	r = e.cli("sign", "--key", key, plugin)
	if r.code != 0 || !strings.Contains(r.stdout, "Signed "+plugin+" as Example release (ed25519:") {
		t.Fatalf("sign: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Trusted with --key, an unknown key without.
	fi = modinfoJSON(t, e, plugin, "--key", key+".pub")
	if fi.Signature.State != "trusted" || fi.Signature.Signer != "Example release" || fi.Taint != "P" {
		t.Errorf("modinfo --key: signature %+v, taint %s", fi.Signature, fi.Taint)
	}
	fi = modinfoJSON(t, e, plugin)
	if fi.Signature.State != "unknown-key" || fi.Signature.Fingerprint == "" || fi.Taint != "PE" {
		t.Errorf("modinfo without --key: signature %+v, taint %s", fi.Signature, fi.Taint)
	}
	r = e.cli("modinfo", plugin, "--key", key+".pub")
	for _, re := range []string{`(?m)^name:\s+classifier$`, `(?m)^license:\s+Proprietary \(proprietary\)$`,
		`(?m)^signature:\s+Example release \(ed25519:[0-9a-f]{16}\)$`, `(?m)^abi check:\s+ok$`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("modinfo --key output does not match %s:\n%s", re, r.stdout)
		}
	}
	r = e.cli("modinfo", plugin)
	if !regexp.MustCompile(`(?m)^signature:\s+unknown key ed25519:[0-9a-f]{16}$`).MatchString(r.stdout) {
		t.Errorf("modinfo without --key:\n%s", r.stdout)
	}

	// Tampered with after signing: a bad signature, with or without the key.
	tampered := tamper(t, plugin, filepath.Join(e.runtime, "tampered.wasm"))
	fi = modinfoJSON(t, e, tampered, "--key", key+".pub")
	if fi.Signature.State != "bad-signature" || fi.Modinfo.Version != "v6.6.6" || fi.Taint != "PE" {
		t.Errorf("modinfo of a tampered module: signature %+v, version %q, taint %s", fi.Signature, fi.Modinfo.Version, fi.Taint)
	}

	// Mistakes.
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"sign", plugin}, exitUsage, "sign needs --key"},
		{[]string{"sign", "--key", filepath.Join(e.runtime, "nokey"), plugin}, exitUsage, "no such file"},
		{[]string{"sign", "--key", plugin, plugin}, exitUsage, "malformed key"},
		{[]string{"sign", "--key", key, key + ".pub"}, exitError, "not signed: " + key + ".pub"},
		{[]string{"modinfo", key}, exitError, "not a wasm module"},
		{[]string{"modinfo", filepath.Join(e.runtime, "none.wasm")}, exitError, "no such file"},
		{[]string{"modinfo"}, exitUsage, "accepts 1 arg"},
		{[]string{"modinfo", plugin, "--key", plugin}, exitUsage, "--key"},
	} {
		r := e.cli(tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("tracemark %s: exit %d, want %d with %q:\n%s", strings.Join(tt.args, " "), r.code, tt.code, tt.msg, r.stderr)
		}
	}
}

// fileInfo is the JSON of modinfo --json, as a script sees it.
type fileInfo struct {
	Modinfo   *module.Modinfo `json:"modinfo"`
	Signature struct {
		State       string `json:"state"`
		Signer      string `json:"signer"`
		Fingerprint string `json:"fingerprint"`
	} `json:"signature"`
	ABIError string   `json:"abi_error"`
	Exports  []string `json:"exports"`
	Taint    string   `json:"taint"`
}

func modinfoJSON(t *testing.T, e *env, args ...string) fileInfo {
	t.Helper()
	r := e.cli(append([]string{"modinfo", "--json"}, args...)...)
	var fi fileInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &fi) != nil {
		t.Fatalf("modinfo --json %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return fi
}

// tamper copies a module, changing its version in the metadata without
// signing it again: what an attacker changing a signed file does.
func tamper(t *testing.T, from, to string) string {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(b, []byte("version=v1.0.0\x00"))
	if i < 0 {
		t.Fatal("no version in the plugin's metadata")
	}
	copy(b[i:], "version=v6.6.6")
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return to
}

// TestModules loads, lists, traces and unloads the example plugin in a
// process that allows it, over the real socket.
func TestModules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	plugin := pluginCopy(t, e.runtime, "classifier.wasm")
	target := e.startModTarget()
	pid := strconv.Itoa(target.pid())

	list := lsmodJSON(t, e, pid)
	if !list.Loading || len(list.Modules) != 0 || list.Taint != "" || list.Policy != "proprietary" {
		t.Errorf("lsmod before insmod: %+v", list)
	}

	// insmod takes the path relative to the CLI's directory.
	r := e.cli("insmod", "-p", pid, filepath.Base(plugin))
	if r.code != 0 || !strings.Contains(r.stdout, "Loaded classifier v1.0.0 into process "+pid+": taint POE, live, 2 markers") {
		t.Fatalf("insmod: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	list = lsmodJSON(t, e, pid)
	if len(list.Modules) != 1 || list.Taint != "POE" {
		t.Fatalf("lsmod after insmod: %+v", list)
	}
	m := list.Modules[0]
	if m.Name != "classifier" || m.Version != "v1.0.0" || m.License != "Proprietary" || m.GPLCompatible || m.Signer != "unsigned" ||
		m.Taint != "POE" || m.State != "live" || m.Path != plugin || len(m.Markers) != 2 || m.Markers[0].Name != "classifier:classified" ||
		m.Markers[0].Format != "category=%s score=%d seen=%u" || !slices.Contains(m.Hooks, "on_request") {
		t.Errorf("lsmod --json: %+v", m)
	}
	r = e.cli("lsmod", "-p", pid)
	for _, re := range []string{
		`(?m)^MODULE\s+VERSION\s+LICENSE\s+SIGNER\s+TAINT\s+STATE\s+MARKERS\s+CALLS\s+EVENTS\s+DROPPED\s+ERRORS$`,
		`(?m)^classifier\s+v1\.0\.0\s+Proprietary\s+unsigned\s+POE\s+live\s+2\s+0\s+0\s+0\s+0$`,
		`(?m)^  classifier:classified\s+category=%s score=%d seen=%u\s+off$`,
		`Process ` + pid + ` taint: POE \(policy proprietary;`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("lsmod output does not match %s:\n%s%s", re, r.stdout, r.stderr)
		}
	}
	if infos := e.ps(); len(infos) != 1 || infos[0].Taint != "POE" {
		t.Errorf("ps after insmod: %+v", infos)
	}

	// Its markers are the process's, beside the program's.
	r = e.cli("list", "-p", pid, "classifier:*", "-l")
	if r.code != 0 || !strings.Contains(r.stdout, "classifier:classified  (stable, off)") ||
		!strings.Contains(r.stdout, "classifier:suspicious  (unstable, off)") || !strings.Contains(r.stdout, "module:      classifier") {
		t.Errorf("list classifier:*: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Record while the program calls the plugin.
	dir := filepath.Join(e.runtime, "trace")
	rec := e.start("cli", "record", "-p", pid, "-e", "classifier:*", "-o", dir)
	rec.stderr.waitFor(t, "Recording 2 markers of pid "+pid)
	// Recorded markers are in use: rmmod refuses.
	r = e.cli("rmmod", "-p", pid, "classifier")
	if r.code != exitError || !strings.Contains(r.stderr, "module in use") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("rmmod while recording: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Count(r.stderr, "(") > 1 || strings.Contains(r.stderr, "force to unload") {
		t.Errorf("rmmod while recording: the refusal says it twice, in parentheses:\n%s", r.stderr)
	}
	target.do(t, "hook 5")
	target.do(t, "attack")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	if out := target.stdout.text(); strings.Contains(out, "error:") {
		t.Errorf("calls into the plugin failed:\n%s", out)
	}
	bt := babeltrace(t, dir)
	if n := countLines(bt, "classifier:classified:"); n != 6 {
		t.Errorf("babeltrace2 shows %d classifier:classified events, want 6:\n%s", n, strings.Join(bt, "\n"))
	}
	if countLines(bt, `{ category = "api", score = 30, seen = 5 }`) != 1 ||
		countLines(bt, `{ category = "suspicious", score = 100, seen = 1 }`) != 1 ||
		countLines(bt, `classifier:suspicious: { cpu_id = `) != 1 || countLines(bt, `method = "GET", path = "/.env", reason = "secrets probe"`) != 1 {
		t.Errorf("the plugin's events are not as it fired them:\n%s", strings.Join(bt, "\n"))
	}
	list = lsmodJSON(t, e, pid)
	if c := list.Modules[0].Counters; c.Calls != 6 || c.Delivered != 7 || c.Errors != 0 {
		t.Errorf("lsmod counters after the recording: %+v", c)
	}

	// rmmod removes the module and its markers; the taint stays.
	r = e.cli("rmmod", "-p", pid, "classifier")
	if r.code != 0 || !strings.Contains(r.stdout, "Unloaded classifier v1.0.0 from process "+pid+": 2 markers removed") {
		t.Fatalf("rmmod: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if list = lsmodJSON(t, e, pid); len(list.Modules) != 0 || list.Taint != "POE" {
		t.Errorf("lsmod after rmmod: %+v", list)
	}
	r = e.cli("list", "-p", pid, "classifier:*")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "" || !strings.Contains(r.stderr, `no marker matches "classifier:*"`) {
		t.Errorf("list after rmmod: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	rep := taintJSON(t, e, pid)
	if rep.Taint != "POE" || !rep.Loading || len(rep.Modules) != 0 || len(rep.Flags) != 3 || rep.Flags[0].Letter != "P" ||
		len(rep.Flags[0].Records) != 1 || rep.Flags[0].Records[0].Module != "classifier" || rep.Flags[2].Records[0].Reason != "unsigned" {
		t.Errorf("taint after rmmod: %+v", rep)
	}
	r = e.cli("taint", "-p", pid)
	for _, re := range []string{
		`(?m)^Process ` + pid + ` tainted: POE$`,
		`(?m)^  P  proprietary module loaded: its licence is not GPL-compatible, or it declares none$`,
		`(?m)^\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  classifier: licence "Proprietary" is not GPL-compatible$`,
		`(?m)^  O  out-of-tree module loaded`,
		`(?m)^  E  unsigned module loaded`,
		`(?m)^No module is loaded now\.$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("taint output does not match %s:\n%s%s", re, r.stdout, r.stderr)
		}
	}
	r = e.cli("rmmod", "-p", pid, "classifier")
	if r.code != exitError || !strings.Contains(r.stderr, `no module "classifier" is loaded`) {
		t.Errorf("rmmod of an unloaded module: exit %d\n%s", r.code, r.stderr)
	}

	// Built for another ABI: refused (exit 2), unless forced (taint F,
	// markers refused by the default policy).
	oldABI := withModinfo(t, plugin, filepath.Join(e.runtime, "oldabi.wasm"),
		module.Modinfo{Name: "oldabi", Version: "v0.9.0", License: "GPL", ABI: 2})
	r = e.cli("insmod", "-p", pid, oldABI)
	if r.code != exitUsage || !strings.Contains(r.stderr, "ABI mismatch") || !strings.Contains(r.stderr, "--force loads it anyway") {
		t.Errorf("insmod of an ABI v2 module: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, ") (") || strings.Contains(r.stderr, "))") || strings.Count(r.stderr, "force") > 1 {
		t.Errorf("insmod of an ABI v2 module: doubled parentheses:\n%s", r.stderr)
	}
	r = e.cli("insmod", "-p", pid, oldABI, "--force", "--json")
	var mi wire.ModuleInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &mi) != nil {
		t.Fatalf("insmod --force: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if mi.Name != "oldabi" || mi.Taint != "FOE" || mi.State != "refused" || mi.Forced == "" || !strings.Contains(mi.Refused, `policy "proprietary" refuses taint F`) {
		t.Errorf("insmod --force: %+v", mi)
	}
	r = e.cli("lsmod", "-p", pid)
	if !regexp.MustCompile(`(?m)^oldabi\s+v0\.9\.0\s+GPL\s+unsigned\s+FOE\s+refused\s+2\s`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "  markers refused: ") || !strings.Contains(r.stdout, "  force-loaded: ") {
		t.Errorf("lsmod of a forced module:\n%s", r.stdout)
	}
	r = e.cli("list", "-p", pid, "classifier:classified")
	if !strings.Contains(r.stdout, "refused (-l says why)") {
		t.Errorf("list does not show the forced module's markers as refused:\n%s", r.stdout)
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		if len(l) > 120 {
			t.Errorf("list: a %d-column line:\n%s", len(l), l)
		}
	}
	r = e.cli("list", "-p", pid, "classifier:classified", "-l")
	if !regexp.MustCompile(`(?m)^classifier:classified  \(\w+, refused\)$`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, `refused:     module oldabi tainted FOE: policy "proprietary" refuses taint F`) {
		t.Errorf("list -l does not say why the marker is refused:\n%s", r.stdout)
	}
	if r = e.cli("rmmod", "-p", pid, "oldabi"); r.code != 0 {
		t.Errorf("rmmod oldabi: exit %d\n%s", r.code, r.stderr)
	}
	if rep := taintJSON(t, e, pid); rep.Taint != "PFOE" {
		t.Errorf("process taint after the forced module: %q, want PFOE (sticky)", rep.Taint)
	}

	// Files that are not modules, or not there.
	notWasm := filepath.Join(e.runtime, "notes.wasm")
	if err := os.WriteFile(notWasm, []byte("not a module\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"insmod", "-p", pid, notWasm}, exitUsage, notWasm + ": loading module: not a wasm module"},
		{[]string{"insmod", "-p", pid, e.runtime}, exitUsage, "is a directory"},
		{[]string{"insmod", "-p", pid, "/dev/zero"}, exitUsage, "not a regular file"},
		{[]string{"insmod", "-p", pid, filepath.Join(e.runtime, "none.wasm")}, exitError, "cannot read " + filepath.Join(e.runtime, "none.wasm") + ": no such file"},
		{[]string{"insmod", "-p", pid, plugin, "--policy", "lenient"}, exitUsage, "want strict, kernel, proprietary or open"},
		{[]string{"insmod", "-p", pid}, exitUsage, "accepts 1 arg"},
		{[]string{"rmmod", "-p", pid, "Bad-Name"}, exitUsage, "want [a-z][a-z0-9_]*"},
	} {
		r := e.cli(tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("tracemark %s: exit %d, want %d with %q:\n%s", strings.Join(tt.args, " "), r.code, tt.code, tt.msg, r.stderr)
		}
	}

	// A per-module policy: the kernel's refuses P.
	r = e.cli("insmod", "-p", pid, plugin, "--policy", "kernel", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &mi); err != nil || mi.State != "refused" || mi.Policy != "kernel" {
		t.Errorf("insmod --policy kernel: exit %d %v %+v\n%s", r.code, err, mi, r.stderr)
	}
	r = e.cli("insmod", "-p", pid, plugin)
	if r.code != exitError || !strings.Contains(r.stderr, "module already loaded") {
		t.Errorf("insmod twice: exit %d\n%s", r.code, r.stderr)
	}
	if !wireAlive(target) {
		t.Error("the target died")
	}
}

func wireAlive(p *proc) bool { return wire.ProcessAlive(p.pid()) }

// withModinfo copies a module with other metadata.
func withModinfo(t *testing.T, from, to string, mi module.Modinfo) string {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = module.SetModinfo(b, &mi); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return to
}

// TestModuleSignatures loads signed, tampered and unsigned copies of the
// plugin into processes that trust the signer, one of them requiring
// signatures.
func TestModuleSignatures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := filepath.Join(e.runtime, "release.key")
	if r := e.cli("keygen", "-o", key, "--name", "release"); r.code != 0 {
		t.Fatalf("keygen: exit %d\n%s", r.code, r.stderr)
	}
	signed := pluginCopy(t, e.runtime, "signed.wasm")
	if r := e.cli("sign", "--key", key, signed); r.code != 0 {
		t.Fatalf("sign: exit %d\n%s", r.code, r.stderr)
	}
	tampered := tamper(t, signed, filepath.Join(e.runtime, "tampered.wasm"))
	unsigned := pluginCopy(t, e.runtime, "unsigned.wasm")

	trusting := e.startModTarget(envTestKeyring + "=" + key + ".pub")
	pid := strconv.Itoa(trusting.pid())
	r := e.cli("insmod", "-p", pid, signed, "--json")
	var mi wire.ModuleInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &mi) != nil {
		t.Fatalf("insmod signed: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if mi.Taint != "PO" || mi.SignatureState != "trusted" || !strings.HasPrefix(mi.Signer, "release (ed25519:") {
		t.Errorf("signed by a trusted key: %+v", mi)
	}
	if r := e.cli("rmmod", "-p", pid, "classifier"); r.code != 0 {
		t.Fatalf("rmmod: exit %d\n%s", r.code, r.stderr)
	}
	// Tampered with: loaded (the host does not require signatures), but
	// tainted E and shown as such.
	r = e.cli("insmod", "-p", pid, tampered, "--json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &mi) != nil {
		t.Fatalf("insmod tampered: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if mi.Taint != "POE" || mi.SignatureState != "bad-signature" || !strings.HasPrefix(mi.Signer, "bad signature") || mi.Version != "v6.6.6" {
		t.Errorf("tampered: %+v", mi)
	}
	r = e.cli("lsmod", "-p", pid)
	if !regexp.MustCompile(`(?m)^classifier\s+v6\.6\.6\s+Proprietary\s+bad signature.*\s+POE\s+live\s`).MatchString(r.stdout) {
		t.Errorf("lsmod of the tampered module:\n%s", r.stdout)
	}

	// A host that requires signatures refuses all but the signed copy.
	strict := e.startModTarget(envTestKeyring+"="+key+".pub", envTestRequireSig+"=1")
	pid = strconv.Itoa(strict.pid())
	for _, f := range []string{tampered, unsigned} {
		r := e.cli("insmod", "-p", pid, f)
		if r.code != exitUsage || !strings.Contains(r.stderr, "not signed by a trusted key") {
			t.Errorf("insmod %s into a host requiring signatures: exit %d\n%s", filepath.Base(f), r.code, r.stderr)
		}
	}
	if r := e.cli("insmod", "-p", pid, signed); r.code != 0 || !strings.Contains(r.stdout, "taint PO, live") {
		t.Errorf("insmod signed into a host requiring signatures: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Refused files leave no module behind, and no taint but that of
	// what was loaded.
	if list := lsmodJSON(t, e, pid); len(list.Modules) != 1 || list.Taint != "PO" {
		t.Errorf("lsmod of the strict host: %+v", list)
	}
}

// TestModulesNotAllowed runs the module commands against a process that
// did not opt in to loading modules.
func TestModulesNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	plugin := pluginCopy(t, e.runtime, "classifier.wasm")
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	for _, args := range [][]string{{"insmod", "-p", pid, plugin}, {"rmmod", "-p", pid, "classifier"}} {
		r := e.cli(args...)
		if r.code != exitError || !strings.Contains(r.stderr, "process "+pid+" does not load modules: this program was built without module support: import github.com/tracemark/tracemark/agent/agentmodules and start its agent with agentmodules.WithHost(host)") {
			t.Errorf("tracemark %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	r := e.cli("lsmod", "-p", pid)
	if r.code != 0 || !strings.Contains(r.stderr, "process "+pid+" does not load modules at run time") ||
		!strings.Contains(r.stdout, "Process "+pid+" taint: - (no run-time loading;") {
		t.Errorf("lsmod: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if list := lsmodJSON(t, e, pid); list.Loading || len(list.Modules) != 0 || list.Taint != "" {
		t.Errorf("lsmod --json: %+v", list)
	}
	r = e.cli("taint", "-p", pid)
	if r.code != 0 || !strings.Contains(r.stdout, "Process "+pid+" is not tainted.") || !strings.Contains(r.stdout, "does not load modules at run time") {
		t.Errorf("taint: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if rep := taintJSON(t, e, pid); rep.Taint != "" || rep.Loading || len(rep.Flags) != 0 {
		t.Errorf("taint --json: %+v", rep)
	}
}

// TestModuleRequests sends malformed module requests over the socket:
// each gets a JSON error with the right code, and nothing is loaded.
func TestModuleRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	plugin := pluginCopy(t, e.runtime, "classifier.wasm")
	target := e.startModTarget()
	sock := filepath.Join(e.socketDir(), wire.SocketName(target.pid()))
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"no body", "POST", "/v1/modules", ``, 400, wire.CodeBadRequest},
		{"bad JSON", "POST", "/v1/modules", `{"path":`, 400, wire.CodeBadRequest},
		{"unknown field", "POST", "/v1/modules", `{"path":"` + plugin + `","forse":true}`, 400, wire.CodeUnknownField},
		{"no path", "POST", "/v1/modules", `{"force":true}`, 400, wire.CodeInvalid},
		{"relative path", "POST", "/v1/modules", `{"path":"classifier.wasm"}`, 400, wire.CodeInvalid},
		{"control characters", "POST", "/v1/modules", `{"path":"/tmp/a\u001b[2Jb.wasm"}`, 400, wire.CodeInvalid},
		{"huge path", "POST", "/v1/modules", `{"path":"/` + strings.Repeat("a", 5000) + `"}`, 400, wire.CodeInvalid},
		{"bad policy", "POST", "/v1/modules", `{"path":"` + plugin + `","policy":"default"}`, 400, wire.CodeInvalid},
		{"bad force", "DELETE", "/v1/modules/classifier?force=maybe", ``, 400, wire.CodeInvalid},
		{"bad name", "DELETE", "/v1/modules/..", ``, 400, wire.CodeInvalid},
		{"not loaded", "DELETE", "/v1/modules/classifier", ``, 404, wire.CodeNotFound},
		{"body where none", "GET", "/v1/modules", `{"x":1}`, 400, wire.CodeBadRequest},
		{"wrong method", "PUT", "/v1/taint", ``, 405, wire.CodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, "http://x"+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var eb wire.ErrorBody
			if err := json.Unmarshal(b, &eb); err != nil || eb.Error == nil {
				t.Fatalf("%d %q is not a JSON error: %v", resp.StatusCode, b, err)
			}
			if resp.StatusCode != tt.status || eb.Error.Code != tt.code || eb.Error.Message == "" {
				t.Errorf("got %d %q, want %d %s", resp.StatusCode, b, tt.status, tt.code)
			}
		})
	}
	if list := lsmodJSON(t, e, strconv.Itoa(target.pid())); len(list.Modules) != 0 || list.Taint != "" {
		t.Errorf("after the bad requests: %+v", list)
	}
}

func lsmodJSON(t *testing.T, e *env, pid string) wire.ModuleList {
	t.Helper()
	r := e.cli("lsmod", "-p", pid, "--json")
	var list wire.ModuleList
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil {
		t.Fatalf("lsmod --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return list
}

func taintJSON(t *testing.T, e *env, pid string) wire.TaintReport {
	t.Helper()
	r := e.cli("taint", "-p", pid, "--json")
	var rep wire.TaintReport
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil {
		t.Fatalf("taint --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return rep
}

// A module without a version is "raw", not "raw -", and counts are
// singular when they are one.
func TestModuleWithoutVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	plugin := pluginCopy(t, e.runtime, "classifier.wasm")
	target := e.startModTarget()
	pid := strconv.Itoa(target.pid())
	noVersion := withModinfo(t, plugin, filepath.Join(e.runtime, "raw.wasm"), module.Modinfo{Name: "raw", License: "GPL", ABI: module.ABIVersion})
	if r := e.cli("insmod", "-p", pid, noVersion); r.code != 0 || !strings.Contains(r.stdout, "Loaded raw into process "+pid+": taint ") ||
		!strings.Contains(r.stdout, ", 2 markers\n") {
		t.Errorf("insmod of a module without a version: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.cli("rmmod", "-p", pid, "raw"); r.code != 0 || !strings.Contains(r.stdout, "Unloaded raw from process "+pid+": 2 markers removed") {
		t.Errorf("rmmod of a module without a version: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
