package kbuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/internal/testenv"
)

// The orchestration is tested on a fake "kernel tree": a Makefile with
// the kernel's version lines whose targets do what the recipe expects of
// them (write .config, drop an option whose dependency is missing, build
// an image from the sources, build a module with M=), and fail, hang or
// count invocations on demand. Real kernel builds are not run by go test.

// fakeMakefile's recipes; IMAGE is the image path of the host's arch.
const fakeMakefile = `VERSION = 6
PATCHLEVEL = 12
SUBLEVEL = 0
EXTRAVERSION = -fake

log = echo $@ >> "$$(cat $(CURDIR)/counter-path)"

tinyconfig defconfig:
	@$(log)
	@printf 'CONFIG_64BIT=y\nCONFIG_MODULES=y\n' > .config
olddefconfig:
	@$(log)
	@sed -i '/^CONFIG_DROPPED=/d' .config
TARGET:
	@$(log)
	@echo x >> build-count
	@echo "  CC      kernel/a.o"
	@if [ -f kernel/hang ]; then echo started; sleep 600 3>"$$(cat kernel/hang)"; fi
	@if [ -f kernel/broken.c ]; then echo "kernel/broken.c:3:7: error: 'x' undeclared (first use in this function)" >&2; exit 1; fi
	@pwd >> build-paths
	@mkdir -p $(dir IMAGE) && cat kernel/*.c build-count build-paths > IMAGE
modules:
	@$(log)
	@if [ -n "$(M)" ]; then cp $(M)/m.c $(M)/m.ko; fi
`

const fakeMerge = `#!/bin/sh
[ "$1" = -m ] && shift
cat "$2" >> "$1"
`

// fake is one test's source tree, module, inputs and cache.
type fake struct {
	t                     *testing.T
	dir, tree, mod, cache string
	counter               string
	fragment              string
	base                  Config
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tl := range tools {
		if _, err := exec.LookPath(tl); err != nil {
			testenv.Unavailable(t, tl+" not installed: the kernel build tests drive it")
		}
	}
}

func newFake(t *testing.T) *fake {
	t.Helper()
	needTools(t, "make", "patch", "sh", "sed")
	dir := t.TempDir()
	f := &fake{t: t, dir: dir, tree: filepath.Join(dir, "tree"), mod: filepath.Join(dir, "mod"),
		cache: filepath.Join(dir, "cache"), counter: filepath.Join(dir, "count"), fragment: filepath.Join(dir, "frag.config")}
	target, image, err := imageTarget()
	if err != nil {
		t.Skip(err)
	}
	mk := strings.NewReplacer("TARGET:", target+":", "IMAGE", image).Replace(fakeMakefile)
	f.write("tree/Makefile", mk)
	f.write("tree/scripts/kconfig/merge_config.sh", fakeMerge)
	os.Chmod(filepath.Join(f.tree, "scripts/kconfig/merge_config.sh"), 0o755)
	f.write("tree/kernel/a.c", "int a;\n")
	f.write("tree/counter-path", f.counter)
	f.write("mod/Makefile", "obj-m := m.o\n")
	f.write("mod/m.c", "int m;\n")
	f.write("frag.config", "CONFIG_MODULES=y\n# CONFIG_FOO is not set\n")
	f.base = Config{Source: f.tree, Fragment: f.fragment, CacheDir: f.cache, Jobs: 1,
		deps: func(bool, bool) []dep { return []dep{tool("make", "build-essential")} }}
	return f
}

func (f *fake) write(rel, content string) string {
	f.t.Helper()
	p := filepath.Join(f.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// patch writes a patch adding line after the line "after" of kernel/a.c
// (or creating a new file when after is "").
func (f *fake) patch(name, file, after, line string) string {
	if after == "" {
		return f.write(name, fmt.Sprintf("--- /dev/null\n+++ b/%s\n@@ -0,0 +1 @@\n+%s\n", file, line))
	}
	return f.write(name, fmt.Sprintf("--- a/%s\n+++ b/%s\n@@ -1 +1,2 @@\n %s\n+%s\n", file, file, after, line))
}

// makeRuns is how many make targets ran, over every build of this fake.
func (f *fake) makeRuns() int {
	data, err := os.ReadFile(f.counter)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}

func (f *fake) build(mod func(*Config)) (*Result, error) {
	c := f.base
	if mod != nil {
		mod(&c)
	}
	return Build(context.Background(), c)
}

// entries lists the cache's entries, and fails on any temporary directory
// left behind.
func (f *fake) entries() []string {
	f.t.Helper()
	ents, err := os.ReadDir(f.cache)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		switch {
		case strings.HasPrefix(e.Name(), tempPrefix):
			f.t.Errorf("temporary directory left in the cache: %s", e.Name())
		case e.Name() != "logs" && e.Name() != lockFile:
			out = append(out, e.Name())
		}
	}
	return out
}

func (f *fake) key(mod func(*Config)) string {
	f.t.Helper()
	c := f.base
	if mod != nil {
		mod(&c)
	}
	b, err := newBuilder(c)
	if err != nil {
		f.t.Fatal(err)
	}
	p, err := b.plan(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return p.key()
}

func oneLine(t *testing.T, err error) {
	t.Helper()
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("want a one-line error, got %q", err)
	}
}

// The key derivation is pinned: a change to it (or to RecipeVersion)
// makes every cached kernel a miss, which must be a decision, not an
// accident.
func TestKeyDerivationPinned(t *testing.T) {
	b := baseKey("amd64 bzImage", "tarball sha256 00", []byte("CONFIG_X=y\n"), true)
	p := patchKey(b, []byte("--- a/x\n+++ b/x\n"))
	m := moduleKey(p, "abc")
	got := b + " " + p + " " + m
	const want = "505cdece118d7f6a9cccb5717631c954 f8061547ab1988b53fe00af6d8f84ae2 9b9de84beb1c41da2f2ac20a9c42cb2d"
	if got != want {
		t.Errorf("keys changed: got %s (if intended, update this test)", got)
	}
}

// Same inputs, same keys, wherever the input files live and whatever
// they are called.
func TestKeyStable(t *testing.T) {
	f := newFake(t)
	p1 := f.patch("p1.diff", "kernel/a.c", "int a;", "int b;")
	k1 := f.key(func(c *Config) { c.Patches = []string{p1}; c.Modules = []string{f.mod} })
	other := filepath.Join(t.TempDir(), "renamed.patch")
	data, _ := os.ReadFile(p1)
	os.WriteFile(other, data, 0o644)
	k2 := f.key(func(c *Config) { c.Patches = []string{other}; c.Modules = []string{f.mod} })
	if k1 != k2 {
		t.Errorf("key depends on the patch's path: %s vs %s", k1, k2)
	}
	if k3 := f.key(func(c *Config) { c.Patches = []string{p1}; c.Modules = []string{f.mod}; c.Jobs = 7 }); k3 != k1 {
		t.Errorf("key depends on --jobs: %s vs %s", k1, k3)
	}
}

// Every input that changes what is built changes the key; module build
// outputs in the module directory do not.
func TestKeySensitive(t *testing.T) {
	f := newFake(t)
	p1 := f.patch("p1.diff", "kernel/a.c", "int a;", "int b;")
	p2 := f.patch("p2.diff", "kernel/c.c", "", "int c;")
	p1x := f.patch("p1x.diff", "kernel/a.c", "int a;", "int B;")
	base := func(c *Config) { c.Patches = []string{p1, p2} }
	k := f.key(base)
	for name, mod := range map[string]func(*Config){
		"one byte of a patch": func(c *Config) { c.Patches = []string{p1x, p2} },
		"patch order":         func(c *Config) { c.Patches = []string{p2, p1} },
		"one patch fewer":     func(c *Config) { c.Patches = []string{p1} },
		"no fragment":         func(c *Config) { c.Patches = []string{p1, p2}; c.Fragment = "" },
		"empty fragment": func(c *Config) {
			c.Patches = []string{p1, p2}
			c.Fragment = f.write("empty.config", "")
		},
		"fragment content": func(c *Config) {
			c.Patches = []string{p1, p2}
			c.Fragment = f.write("frag2.config", "CONFIG_MODULES=n\n")
		},
	} {
		if got := f.key(mod); got == k {
			t.Errorf("%s: key unchanged (%s)", name, got)
		}
	}
	// The source: content and mtime of a file, a new file.
	f.write("tree/kernel/a.c", "int a; \n")
	k2 := f.key(base)
	if k2 == k {
		t.Errorf("source file edited: key unchanged")
	}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(filepath.Join(f.tree, "kernel/a.c"), old, old)
	if k3 := f.key(base); k3 == k2 {
		t.Errorf("source file touched: key unchanged")
	}
	// A module: its content changes its key, not the kernel's.
	withMod := func(c *Config) { base(c); c.Modules = []string{f.mod} }
	km := moduleKeyOf(t, f, withMod)
	f.write("mod/m.o", "object")
	f.write("mod/.m.o.cmd", "cmd")
	if km2 := moduleKeyOf(t, f, withMod); km2 != km {
		t.Errorf("module build outputs changed the module key")
	}
	kk := f.key(withMod)
	f.write("mod/m.c", "int m2;\n")
	if km2 := moduleKeyOf(t, f, withMod); km2 == km {
		t.Errorf("module source edited: module key unchanged")
	}
	if f.key(withMod) != kk {
		t.Errorf("module source edited: kernel key changed")
	}
}

func moduleKeyOf(t *testing.T, f *fake, mod func(*Config)) string {
	c := f.base
	mod(&c)
	b, _ := newBuilder(c)
	p, err := b.plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p.modules[0].key
}

// A build publishes one complete entry; the same Build again is a hit
// that runs nothing.
func TestBuildThenHit(t *testing.T) {
	f := newFake(t)
	withMod := func(c *Config) { c.Modules = []string{f.mod} }
	res, err := f.build(withMod)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cached || res.From != "" {
		t.Errorf("first build: Cached %v From %q", res.Cached, res.From)
	}
	for _, p := range append([]string{res.Image, res.Log, res.Tree, filepath.Join(res.Dir, "manifest.json")}, res.Modules...) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("entry incomplete: %v", err)
		}
	}
	if len(res.Modules) != 1 || filepath.Base(res.Modules[0]) != "m.ko" {
		t.Errorf("modules: %v", res.Modules)
	}
	if got := f.entries(); len(got) != 2 {
		t.Errorf("want a kernel and a module entry, got %v", got)
	}
	runs := f.makeRuns()
	again, err := f.build(withMod)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Image != res.Image || strings.Join(again.Modules, " ") != strings.Join(res.Modules, " ") {
		t.Errorf("second build: %+v, want the cached %+v", again, res)
	}
	if f.makeRuns() != runs {
		t.Errorf("a cache hit ran make (%d targets, before %d)", f.makeRuns(), runs)
	}
	// Another module against the cached kernel builds only the module.
	f.write("mod/m.c", "int m2;\n")
	third, err := f.build(withMod)
	if err != nil {
		t.Fatal(err)
	}
	if third.Cached || third.Image != res.Image || third.Modules[0] == res.Modules[0] {
		t.Errorf("changed module: %+v", third)
	}
	if got, _ := os.ReadFile(third.Modules[0]); string(got) != "int m2;\n" {
		t.Errorf("module built from the old source: %q", got)
	}
}

// A kernel with one more patch than a cached one starts from a copy of
// its built tree, and the cached entry is left as it was.
func TestBuildReusesCachedPrefix(t *testing.T) {
	f := newFake(t)
	p1 := f.patch("p1.diff", "kernel/a.c", "int a;", "int b;")
	p2 := f.patch("p2.diff", "kernel/c.c", "", "int c;")
	first, err := f.build(func(c *Config) { c.Patches = []string{p1} })
	if err != nil {
		t.Fatal(err)
	}
	img1, _ := os.ReadFile(first.Image)
	second, err := f.build(func(c *Config) { c.Patches = []string{p1, p2} })
	if err != nil {
		t.Fatal(err)
	}
	if second.From != first.Key {
		t.Errorf("From = %q, want the cached %s", second.From, first.Key)
	}
	img2, _ := os.ReadFile(second.Image)
	// The fake image is the sources, one x per build of the tree, and
	// where each build ran: the reused tree is built where it was first
	// built, so the absolute paths kbuild's tools recorded still hold.
	work := filepath.Join(f.cache, kernelWork, "tree")
	if want := "int a;\nint b;\nint c;\nx\nx\n" + work + "\n" + work + "\n"; string(img2) != want {
		t.Errorf("second image %q, want %q (patched, built twice, in one place)", img2, want)
	}
	if again, _ := os.ReadFile(first.Image); string(again) != string(img1) || exists(filepath.Join(first.Tree, "kernel/c.c")) {
		t.Errorf("the cached base entry was modified")
	}
}

// A build that fails leaves no entry and no temporary directory; its log
// is kept where the one-line error says, and the error quotes the first
// compiler error.
func TestFailedBuildPublishesNothing(t *testing.T) {
	f := newFake(t)
	broken := f.patch("broken.diff", "kernel/broken.c", "", "int x = y;")
	mod := func(c *Config) { c.Patches = []string{broken} }
	key := f.key(mod)
	_, err := f.build(mod)
	if !errors.Is(err, ErrCompile) {
		t.Fatalf("want ErrCompile, got %v", err)
	}
	oneLine(t, err)
	msg := err.Error()
	if !strings.Contains(msg, "kernel/broken.c:3:7: error: 'x' undeclared") {
		t.Errorf("error does not quote the compiler error: %s", msg)
	}
	logPath := filepath.Join(f.cache, "logs", key+".log")
	if !strings.Contains(msg, logPath) {
		t.Errorf("error does not name the log %s: %s", logPath, msg)
	}
	if data, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(data), "broken.c:3:7") {
		t.Errorf("log not kept: %v", err)
	}
	if got := f.entries(); len(got) != 0 {
		t.Errorf("a failed build left entries: %v", got)
	}
}

// A patch that does not apply: the error names the patch and the first
// failing file and hunk; nothing is published.
func TestPatchDoesNotApply(t *testing.T) {
	f := newFake(t)
	good := f.patch("good.diff", "kernel/a.c", "int a;", "int b;")
	for _, tc := range []struct {
		name, want string
		patches    []string
	}{
		{"hunk", "kernel/a.c: Hunk #1 FAILED at 1", []string{good, f.patch("stale.diff", "kernel/a.c", "int zzz;", "int b;")}},
		{"missing file", "kernel/gone.c: no such file to patch", []string{f.patch("gone.diff", "kernel/gone.c", "int a;", "int b;")}},
		{"applied twice", "kernel/a.c: reversed or already applied", []string{good, good}},
		{"garbage", "only garbage", []string{f.write("junk.diff", "this is not a patch\n")}},
	} {
		_, err := f.build(func(c *Config) { c.Patches = tc.patches })
		if !errors.Is(err, ErrPatch) {
			t.Errorf("%s: want ErrPatch, got %v", tc.name, err)
			continue
		}
		oneLine(t, err)
		last := tc.patches[len(tc.patches)-1]
		if msg := err.Error(); !strings.Contains(msg, last+": ") || !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.want)) {
			t.Errorf("%s: error should name %s and %q: %s", tc.name, last, tc.want, msg)
		}
	}
	if got := f.entries(); len(got) != 0 {
		t.Errorf("failed patches left entries: %v", got)
	}
}

// A fragment option that olddefconfig drops is an error naming it.
func TestConfigFragmentNotHonoured(t *testing.T) {
	f := newFake(t)
	frag := f.write("dropped.config", "CONFIG_MODULES=y\nCONFIG_DROPPED=y\n")
	_, err := f.build(func(c *Config) { c.Fragment = frag })
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "CONFIG_DROPPED") {
		t.Fatalf("want ErrConfig naming CONFIG_DROPPED, got %v", err)
	}
	oneLine(t, err)
	if got := f.entries(); len(got) != 0 {
		t.Errorf("entries left: %v", got)
	}
}

// Cancelling the context kills make's whole process group (here a sleep
// two levels below make), removes the temporary directory and publishes
// nothing.
func TestCancelKillsTheBuild(t *testing.T) {
	f := newFake(t)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	hang := f.patch("hang.diff", "kernel/hang", "", fifo)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := f.base
	c.Patches = []string{hang}
	errc := make(chan error, 1)
	go func() { _, err := Build(ctx, c); errc <- err }()
	// The sleep opens the FIFO for writing; the read end reaches EOF only
	// once no process holds it, that is when the sleep is dead.
	opened := make(chan *os.File, 1)
	go func() {
		r, err := os.Open(fifo)
		if err == nil {
			opened <- r
		}
	}()
	var r *os.File
	select {
	case r = <-opened:
	case err := <-errc:
		t.Fatalf("Build ended before make ran the sleep: %v", err)
	}
	defer r.Close()
	cancel()
	gone := make(chan struct{})
	go func() { io.Copy(io.Discard, r); close(gone) }()
	select {
	case <-gone:
	case <-time.After(2 * time.Minute):
		t.Fatal("the build's sleep outlived the cancelled Build")
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("want context.Canceled, got %v", err)
	}
	if got := f.entries(); len(got) != 0 {
		t.Errorf("entries left: %v", got)
	}
}

// A panic in the middle of a build (here after configuring) unwinds
// through Build without leaving a temporary directory.
func TestPanicLeavesNothing(t *testing.T) {
	f := newFake(t)
	c := f.base
	c.afterStep = func(step string) {
		if step == "config" {
			panic("planted")
		}
	}
	func() {
		defer func() {
			if r := recover(); r != "planted" {
				t.Errorf("want the planted panic, got %v", r)
			}
		}()
		Build(context.Background(), c)
	}()
	if got := f.entries(); len(got) != 0 {
		t.Errorf("entries left: %v", got)
	}
	if logs, _ := os.ReadDir(filepath.Join(f.cache, "logs")); len(logs) != 1 {
		t.Errorf("want the build log kept in logs/, got %d files", len(logs))
	}
}

// Two Builds of one key at once both succeed, with one entry built once:
// the second waits for the cache's lock and finds the first's entry.
func TestConcurrentBuildsOneEntry(t *testing.T) {
	f := newFake(t)
	var wg sync.WaitGroup
	res := make([]*Result, 2)
	errs := make([]error, 2)
	for i := range res {
		wg.Add(1)
		go func() { defer wg.Done(); res[i], errs[i] = f.build(nil) }()
	}
	wg.Wait()
	for i := range res {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	if res[0].Image != res[1].Image {
		t.Errorf("two images for one key: %s, %s", res[0].Image, res[1].Image)
	}
	if got := f.entries(); len(got) != 1 {
		t.Errorf("want one entry, got %v", got)
	}
	if img, _ := os.ReadFile(res[0].Image); strings.Count(string(img), "x\n") != 1 {
		t.Errorf("the kernel was built more than once: %q", img)
	}
}

// Temporary directories of builds whose process is gone are removed; a
// live process's are not. A kernel work directory nobody holds the lock
// for is a dead build's too.
func TestSweepRemovesDeadBuilds(t *testing.T) {
	f := newFake(t)
	junk := f.write("cache/"+kernelWork+"/tree/junk", "left by a SIGKILLed build")
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(f.cache, fmt.Sprintf("%s0123456789ab-%d-1", tempPrefix, cmd.Process.Pid))
	live := filepath.Join(f.cache, fmt.Sprintf("%s0123456789ab-%d-2", tempPrefix, os.Getppid()))
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(filepath.Join(d, "tree"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.build(nil); err != nil {
		t.Fatal(err)
	}
	if exists(dead) {
		t.Errorf("dead build's directory kept")
	}
	if !exists(live) {
		t.Errorf("live process's directory removed")
	}
	if exists(junk) {
		t.Errorf("a dead kernel build's work directory was kept")
	}
	os.RemoveAll(live)
}

// A missing tool is one line naming it and its package: unprivileged, it
// says to run as root; as root without apt-get, that apt-get is missing.
func TestMissingTools(t *testing.T) {
	f := newFake(t)
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		euid int
		want string
	}{
		{1000, "run as root"},
		{0, "apt-get not found"},
	} {
		_, err := f.build(func(c *Config) {
			c.deps = nil
			c.euid = func() int { return tc.euid }
		})
		if !errors.Is(err, ErrMissingDeps) {
			t.Fatalf("euid %d: want ErrMissingDeps, got %v", tc.euid, err)
		}
		oneLine(t, err)
		msg := err.Error()
		for _, w := range []string{"make", "flex", "pahole", "dwarves", "build-essential", tc.want} {
			if !strings.Contains(msg, w) {
				t.Errorf("euid %d: error does not name %q: %s", tc.euid, w, msg)
			}
		}
	}
	if got := f.entries(); len(got) != 0 {
		t.Errorf("entries left: %v", got)
	}
}

func TestBadInput(t *testing.T) {
	f := newFake(t)
	for name, mod := range map[string]func(*Config){
		"no source":      func(c *Config) { c.Source = "" },
		"two sources":    func(c *Config) { c.Debian = "6.12" },
		"bad debian":     func(c *Config) { c.Source = ""; c.Debian = "6.12; rm" },
		"missing source": func(c *Config) { c.Source = filepath.Join(f.dir, "nope") },
		"not a kernel":   func(c *Config) { c.Source = f.mod },
		"missing patch":  func(c *Config) { c.Patches = []string{filepath.Join(f.dir, "nope.diff")} },
		"missing config": func(c *Config) { c.Fragment = filepath.Join(f.dir, "nope.config") },
		"module no make": func(c *Config) { c.Modules = []string{filepath.Join(f.tree, "kernel")} },
	} {
		_, err := f.build(mod)
		if !errors.Is(err, ErrBadInput) {
			t.Errorf("%s: want ErrBadInput, got %v", name, err)
		}
		oneLine(t, err)
	}
	if f.makeRuns() != 0 {
		t.Errorf("bad input ran make")
	}
}

// lineWriter calls fn with each line written to it.
type lineWriter struct {
	mu  sync.Mutex
	buf string
	fn  func(line string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf += string(p)
	for {
		line, rest, ok := strings.Cut(w.buf, "\n")
		if !ok {
			return len(p), nil
		}
		w.buf = rest
		w.fn(line)
	}
}

// A kernel build waits for the cache's lock while another holds it, and
// gives up when its context ends, leaving nothing.
func TestLockWaitHonoursContext(t *testing.T) {
	f := newFake(t)
	if err := os.MkdirAll(f.cache, 0o755); err != nil {
		t.Fatal(err)
	}
	holder, err := newBuilder(f.base)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := holder.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := f.base
	c.Progress = &lineWriter{fn: func(line string) {
		if strings.Contains(line, "waiting for another kernel build") {
			cancel()
		}
	}}
	c.afterStep = func(string) { t.Error("built while another build held the lock") }
	_, err = Build(ctx, c)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("want context.Canceled, got %v", err)
	}
	if got := f.entries(); len(got) != 0 {
		t.Errorf("entries left: %v", got)
	}
}

// A named build is found again by Lookup without its inputs; a rename to
// other entries replaces the name; a removed entry is ErrNotBuilt.
func TestNamedBuildLookup(t *testing.T) {
	f := newFake(t)
	res, err := f.build(func(c *Config) { c.Modules = []string{f.mod}; c.Name = "linux-6.12+x" })
	if err != nil {
		t.Fatal(err)
	}
	got, err := Lookup(f.cache, "linux-6.12+x")
	if err != nil {
		t.Fatal(err)
	}
	if got.Image != res.Image || strings.Join(got.Modules, " ") != strings.Join(res.Modules, " ") {
		t.Errorf("Lookup = %+v, want %+v", got, res)
	}
	if _, err := Lookup(f.cache, "linux-6.12"); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("a name never given: %v, want ErrNotBuilt", err)
	}
	if _, err := Lookup(f.cache, "../x"); !errors.Is(err, ErrBadInput) {
		t.Errorf("a name with a slash: %v, want ErrBadInput", err)
	}
	f.write("kernel/a.c", "int changed;\n")
	res2, err := f.build(func(c *Config) { c.Name = "linux-6.12+x" })
	if err != nil {
		t.Fatal(err)
	}
	if got, err = Lookup(f.cache, "linux-6.12+x"); err != nil || got.Key != res2.Key || len(got.Modules) != 0 {
		t.Errorf("renamed: Lookup = %+v, %v; want key %s and no modules", got, err, res2.Key)
	}
	if err := os.RemoveAll(res2.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Lookup(f.cache, "linux-6.12+x"); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("entry removed: %v, want ErrNotBuilt", err)
	}
}
