package kbuild

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config describes one kernel, and the modules to build against it.
type Config struct {
	Source   string    // a kernel source directory, or a tarball of one (one top directory)
	Debian   string    // instead of Source: Debian's linux-source-VERSION, e.g. "6.12"
	Patches  []string  // applied in this order with patch -p1 in the source root
	Fragment string    // config fragment merged onto tinyconfig; "" = the tree's .config, else defconfig
	Modules  []string  // out-of-tree module source directories (kbuild Makefile or Kbuild)
	CacheDir string    // "" = DefaultCacheDir()
	Name     string    // when set, a later Lookup(CacheDir, Name) finds what this build returns
	Jobs     int       // make -j; 0 = runtime.NumCPU()
	Progress io.Writer // one line per step ("kernel: ..."); nil = discarded
	Verbose  bool      // also copy every command's output to Progress

	// Tests only.
	euid      func() int                        // nil = os.Geteuid
	deps      func(tarball, patches bool) []dep // nil = buildDeps
	afterStep func(step string)                 // called after each step of a build
}

// Result is where a built (or cached) kernel and its modules are.
type Result struct {
	Key     string   // the kernel's cache key
	Dir     string   // the kernel's cache entry
	Image   string   // the kernel image (bzImage)
	Tree    string   // the built source tree (make -C Tree M=DIR builds modules against it)
	Log     string   // the kernel's build log
	Modules []string // the built .ko files, by Config.Modules in order
	Cached  bool     // nothing was built: the kernel and every module were cached
	// From is the key of the cached kernel whose built tree the kernel's
	// build started from (the same kernel with fewer patches), "" when it
	// started from the source.
	From string
}

// setKernel fills in the paths of res's kernel entry (res.Dir) from its
// manifest.
func (res *Result) setKernel(m *manifest) {
	res.Image, res.Tree = filepath.Join(res.Dir, m.Image), filepath.Join(res.Dir, "tree")
	res.Log, res.From = filepath.Join(res.Dir, "build.log"), m.From
}

// addModules appends the .ko files of the module entry dir (manifest mm).
func (res *Result) addModules(dir string, mm *manifest) {
	for _, ko := range mm.Modules {
		res.Modules = append(res.Modules, filepath.Join(dir, ko))
	}
}

// DefaultCacheDir is $XDG_CACHE_HOME/splicecheck/kernels, else
// ~/.cache/splicecheck/kernels.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("%w: no cache directory (set XDG_CACHE_HOME or HOME, or pass one): %w", ErrCache, err)
	}
	return filepath.Join(d, "splicecheck", "kernels"), nil
}

// Build returns the kernel (and modules) cfg describes: from the cache
// when an entry has its key, else built into a new entry. See the package
// documentation for the recipe and the cache.
func Build(ctx context.Context, cfg Config) (*Result, error) {
	b, err := newBuilder(cfg)
	if err != nil {
		return nil, err
	}
	p, err := b.plan(ctx)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(b.cache, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCache, err)
	}
	b.sweep()
	key := p.key()
	res := &Result{Key: key, Dir: b.entry(key), Cached: true}
	b.logf("%s: %s", key, p.describe())
	m, err := readManifest(res.Dir)
	switch {
	case err == nil:
		b.logf("cached: %s", res.Dir)
	case errors.Is(err, fs.ErrNotExist):
		res.Cached = false
		if err := b.ensure(ctx, b.depsFor(p.tarball, len(p.patches) > 0)); err != nil {
			return nil, err
		}
		if m, err = b.buildKernel(ctx, p); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	res.setKernel(m)
	if m.Kind != "kernel" || !exists(res.Image) || !exists(res.Tree) {
		return nil, fmt.Errorf("%w: %s is not a complete kernel entry (was it edited?); remove it", ErrCache, res.Dir)
	}
	for _, mod := range p.modules {
		dir := b.entry(mod.key)
		mm, err := readManifest(dir)
		switch {
		case err == nil:
			b.logf("module %s cached: %s", mod.name, dir)
		case errors.Is(err, fs.ErrNotExist):
			res.Cached = false
			if err := b.ensure(ctx, b.depsFor(false, false)); err != nil {
				return nil, err
			}
			if mm, err = b.buildModule(ctx, mod, res); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
		res.addModules(dir, mm)
	}
	if cfg.Name != "" {
		if err := b.recordName(cfg.Name, res, p); err != nil {
			return nil, err
		}
	}
	return res, nil
}

type builder struct {
	cfg        Config
	cache      string
	jobs       int
	progress   io.Writer
	aptUpdated bool
}

func newBuilder(cfg Config) (*builder, error) {
	if cfg.Name != "" {
		if err := checkName(cfg.Name); err != nil {
			return nil, err
		}
	}
	b := &builder{cfg: cfg, cache: cfg.CacheDir, jobs: cfg.Jobs, progress: cfg.Progress}
	if b.progress == nil {
		b.progress = io.Discard
	}
	if b.jobs <= 0 {
		b.jobs = runtime.NumCPU()
	}
	if b.cache == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		b.cache = d
	}
	abs, err := filepath.Abs(b.cache)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCache, err)
	}
	b.cache = abs
	return b, nil
}

func (b *builder) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "kernel: "+format+"\n", args...)
}

func (b *builder) entry(key string) string { return filepath.Join(b.cache, key) }

func (b *builder) step(name string) {
	if b.cfg.afterStep != nil {
		b.cfg.afterStep(name)
	}
}

func (b *builder) depsFor(tarball, patches bool) []dep {
	if b.cfg.deps != nil {
		return b.cfg.deps(tarball, patches)
	}
	return buildDeps(tarball, patches)
}

// input is a file whose content goes into a key: a patch or a fragment.
type input struct {
	path, name string
	data       []byte
}

// module is one module directory to build.
type module struct {
	dir, name, key string
}

// plan is what Build will build, with every key computed.
type plan struct {
	source   string // absolute: a directory or a tarball
	tarball  bool
	sourceID string
	fragment *input
	patches  []input
	keys     []string // keys[i]: the kernel with the first i patches
	modules  []module
}

func (p *plan) key() string { return p.keys[len(p.keys)-1] }

func (p *plan) describe() string {
	s := filepath.Base(p.source)
	for _, pt := range p.patches {
		s += " + " + pt.name
	}
	if p.fragment != nil {
		s += ", config " + p.fragment.name
	}
	for _, m := range p.modules {
		s += ", module " + m.name
	}
	return s
}

var debianVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

// plan checks the inputs, reads them and computes the keys. For Debian
// it first makes sure the source package is installed (its tarball is the
// source's identity).
func (b *builder) plan(ctx context.Context) (*plan, error) {
	c := b.cfg
	p := &plan{}
	switch {
	case c.Source != "" && c.Debian != "":
		return nil, fmt.Errorf("%w: --source and --debian: give one", ErrBadInput)
	case c.Debian != "":
		if !debianVersion.MatchString(c.Debian) {
			return nil, fmt.Errorf("%w: --debian %q: want a kernel line such as 6.12", ErrBadInput, c.Debian)
		}
		if err := b.ensure(ctx, debianSourceDeps(c.Debian)); err != nil {
			return nil, err
		}
		p.source = debianTarball(c.Debian)
	case c.Source != "":
		p.source = c.Source
	default:
		return nil, fmt.Errorf("%w: no source: give --source DIR|TARBALL or --debian VERSION", ErrBadInput)
	}
	src, err := filepath.Abs(p.source)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	p.source = src
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("%w: source: %w", ErrBadInput, err)
	}
	if st.IsDir() {
		_, p.sourceID, err = treeIdentity(src)
	} else {
		p.tarball = true
		var sum string
		sum, err = fileSHA256(src)
		if err != nil {
			err = fmt.Errorf("%w: source: %w", ErrBadInput, err)
		}
		p.sourceID = "tarball sha256 " + sum
	}
	if err != nil {
		return nil, err
	}
	if c.Fragment != "" {
		in, err := readInput("--config", c.Fragment)
		if err != nil {
			return nil, err
		}
		p.fragment = &in
	}
	for _, path := range c.Patches {
		in, err := readInput("--patch", path)
		if err != nil {
			return nil, err
		}
		p.patches = append(p.patches, in)
	}
	target, _, err := imageTarget()
	if err != nil {
		return nil, err
	}
	var frag []byte
	if p.fragment != nil {
		frag = p.fragment.data
	}
	p.keys = []string{baseKey(runtime.GOARCH+" "+target, p.sourceID, frag, p.fragment != nil)}
	for _, pt := range p.patches {
		p.keys = append(p.keys, patchKey(p.keys[len(p.keys)-1], pt.data))
	}
	for _, d := range c.Modules {
		dir, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("%w: --module %s: %w", ErrBadInput, d, err)
		}
		if !exists(filepath.Join(dir, "Makefile")) && !exists(filepath.Join(dir, "Kbuild")) {
			return nil, fmt.Errorf("%w: --module %s: no Makefile or Kbuild (want a module source directory)", ErrBadInput, d)
		}
		content, err := moduleContent(dir)
		if err != nil {
			return nil, err
		}
		p.modules = append(p.modules, module{dir: dir, name: filepath.Base(dir), key: moduleKey(p.key(), content)})
	}
	return p, nil
}

func readInput(flag, path string) (input, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return input{}, fmt.Errorf("%w: %s: %w", ErrBadInput, flag, err)
	}
	return input{path: path, name: filepath.Base(path), data: data}, nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// manifest.json describes an entry; it is written last into the
// temporary directory, so an entry that has one is complete.
type manifest struct {
	Kind     string    `json:"kind"` // "kernel" or "module"
	Key      string    `json:"key"`
	Recipe   string    `json:"recipe"`
	Source   string    `json:"source,omitempty"`
	SourceID string    `json:"source_id,omitempty"`
	Version  string    `json:"version,omitempty"`
	Fragment string    `json:"fragment,omitempty"`
	Patches  []string  `json:"patches,omitempty"`
	From     string    `json:"from,omitempty"`
	Kernel   string    `json:"kernel,omitempty"` // module: its kernel's key
	Module   string    `json:"module,omitempty"` // module: the source directory
	Image    string    `json:"image,omitempty"`
	Modules  []string  `json:"modules,omitempty"` // .ko paths in the entry
	Built    time.Time `json:"built"`
	Seconds  float64   `json:"seconds"`
}

func readManifest(dir string) (*manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && exists(dir) {
			return nil, fmt.Errorf("%w: %s has no manifest.json: not an entry of this tool; remove it", ErrCache, dir)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrCache, err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %s/manifest.json: %w", ErrCache, dir, err)
	}
	return &m, nil
}

func writeManifest(dir string, m *manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), append(data, '\n'), 0o644)
}

// temp is an entry under construction: a directory next to the entries
// with the build log inside. Unless published, discard removes it and
// keeps the log at failedLog.
type temp struct {
	b         *builder
	key       string
	dir       string
	log       *os.File
	failedLog string
	published bool
}

const (
	tempPrefix = ".build-"
	// kernelWork is where every kernel is built (under the cache's lock),
	// so that a cached tree copied back for an incremental build sits at
	// the absolute path it was built at: kbuild's tools (objtool,
	// resolve_btfids) record absolute paths in their .cmd files, a moved
	// tree rebuilds objtool, and every kernel object depends on the
	// objtool binary.
	kernelWork = tempPrefix + "kernel"
	lockFile   = ".lock"
)

// newTemp creates the temporary directory of an entry: dir when given
// (it must not exist), else a new .build-KEY-PID-* directory.
func (b *builder) newTemp(key, dir string) (*temp, error) {
	var err error
	if dir != "" {
		err = os.Mkdir(dir, 0o755)
	} else {
		dir, err = os.MkdirTemp(b.cache, fmt.Sprintf("%s%s-%d-", tempPrefix, key[:12], os.Getpid()))
	}
	if err == nil {
		err = os.Chmod(dir, 0o755) // entries are readable like the rest of the cache
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCache, err)
	}
	t := &temp{b: b, key: key, dir: dir, failedLog: filepath.Join(b.cache, "logs", key+".log")}
	if t.log, err = os.Create(filepath.Join(dir, "build.log")); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w: %w", ErrCache, err)
	}
	return t, nil
}

// discard removes an unpublished temporary directory, moving its log to
// failedLog first. It runs deferred, so also while a panic unwinds.
func (t *temp) discard() {
	if t.published {
		return
	}
	t.log.Close()
	if os.MkdirAll(filepath.Dir(t.failedLog), 0o755) == nil {
		os.Rename(filepath.Join(t.dir, "build.log"), t.failedLog)
	}
	os.RemoveAll(t.dir)
}

// publish renames the finished directory into place. When another Build
// published the same key meanwhile, that entry wins and ours is removed.
func (t *temp) publish(m *manifest) (*manifest, error) {
	if err := t.log.Close(); err != nil {
		return nil, fmt.Errorf("%w: build log: %w", ErrCache, err)
	}
	if err := writeManifest(t.dir, m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCache, err)
	}
	dst := t.b.entry(t.key)
	if err := os.Rename(t.dir, dst); err != nil {
		if theirs, rerr := readManifest(dst); rerr == nil {
			t.b.logf("%s was built meanwhile by another build; using it", t.key)
			os.RemoveAll(t.dir)
			t.published = true
			return theirs, nil
		}
		return nil, fmt.Errorf("%w: publish %s: %w", ErrCache, dst, err)
	}
	t.published = true
	return m, nil
}

// sweep removes the temporary directories of builds whose process no
// longer exists (a build killed with SIGKILL cannot clean up after itself).
func (b *builder) sweep() {
	ents, err := os.ReadDir(b.cache)
	if err != nil {
		return
	}
	for _, e := range ents {
		parts := strings.Split(e.Name(), "-")
		if !strings.HasPrefix(e.Name(), tempPrefix) || len(parts) != 4 {
			continue
		}
		pid, err := strconv.Atoi(parts[2])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		b.logf("removing %s (its build, process %d, is gone)", e.Name(), pid)
		os.RemoveAll(filepath.Join(b.cache, e.Name()))
	}
}

// lock takes the cache's kernel-build lock (flock on .lock), waiting
// while another process or Build holds it. The lock dies with its holder.
func (b *builder) lock(ctx context.Context) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(b.cache, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCache, err)
	}
	for waited := false; ; waited = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the last fd releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("%w: lock %s: %w", ErrCache, f.Name(), err)
		}
		if !waited {
			b.logf("waiting for another kernel build on %s", b.cache)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// buildKernel builds p's kernel into a new entry, starting from the
// cached tree of its longest cached patch prefix when there is one. It
// builds in kernelWork under the cache's lock.
func (b *builder) buildKernel(ctx context.Context, p *plan) (*manifest, error) {
	key := p.key()
	unlock, err := b.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if m, err := readManifest(b.entry(key)); err == nil { // built while we waited
		b.logf("built meanwhile by another build: %s", b.entry(key))
		return m, nil
	}
	start := time.Now()
	work := filepath.Join(b.cache, kernelWork)
	if exists(work) { // its build died (it no longer holds the lock)
		b.logf("removing %s, left by a build that died", work)
		if err := os.RemoveAll(work); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCache, err)
		}
	}
	from := -1
	for i := len(p.patches) - 1; i >= 0; i-- {
		if m, err := readManifest(b.entry(p.keys[i])); err == nil && m.Kind == "kernel" {
			from = i
			break
		}
	}
	t, err := b.newTemp(key, work)
	if err != nil {
		return nil, err
	}
	defer t.discard()
	tree := filepath.Join(t.dir, "tree")
	m := &manifest{Kind: "kernel", Key: key, Recipe: RecipeVersion, Source: p.source, SourceID: p.sourceID}
	switch {
	case from >= 0:
		m.From = p.keys[from]
		b.logf("starting from the built tree of %s (the first %d of %d patches)", m.From, from, len(p.patches))
		if err := copyTree(ctx, filepath.Join(b.entry(m.From), "tree"), tree, nil); err != nil {
			return nil, b.cacheErr(ctx, "copy cached tree", err)
		}
	case p.tarball:
		b.logf("unpacking %s", p.source)
		if err := os.Mkdir(tree, 0o755); err != nil {
			return nil, b.cacheErr(ctx, "unpack", err)
		}
		if err := b.run(ctx, t.log, tree, nil, "tar", "-xf", p.source, "--strip-components=1", "--no-same-owner"); err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrMissingDeps) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: unpack %s: %v (log: %s)", ErrBadInput, p.source, err, t.failedLog)
		}
	default:
		b.logf("copying %s", p.source)
		if err := copyTree(ctx, p.source, tree, func(name string) bool { return name == ".git" }); err != nil {
			return nil, b.cacheErr(ctx, "copy source", err)
		}
	}
	b.step("source")
	version, err := treeVersion(tree)
	if err != nil {
		return nil, err
	}
	m.Version = version
	start0 := max(from, 0)
	if err := os.Mkdir(filepath.Join(t.dir, "patches"), 0o755); err != nil {
		return nil, b.cacheErr(ctx, "patches", err)
	}
	for i, pt := range p.patches {
		sum := fmt.Sprintf("%s sha256 %s", pt.name, sha256Hex(pt.data))
		m.Patches = append(m.Patches, sum)
		if i < start0 {
			continue
		}
		if err := b.applyPatch(ctx, t, tree, i, pt); err != nil {
			return nil, err
		}
		b.step("patch " + pt.name)
	}
	if p.fragment != nil {
		m.Fragment = fmt.Sprintf("%s sha256 %s", p.fragment.name, sha256Hex(p.fragment.data))
	}
	if err := b.configure(ctx, t, tree, p.fragment, from < 0); err != nil {
		return nil, err
	}
	b.step("config")
	target, imagePath, err := imageTarget()
	if err != nil {
		return nil, err
	}
	goals := []string{target}
	if configValue(filepath.Join(tree, ".config"), "CONFIG_MODULES") == "y" {
		goals = append(goals, "modules")
	}
	if err := b.make(ctx, t, tree, ErrBuild, goals...); err != nil {
		return nil, err
	}
	b.step("build")
	img := filepath.Join(tree, imagePath)
	info, err := os.Stat(img)
	if err != nil || info.Size() == 0 {
		return nil, fmt.Errorf("%w: make %s left no %s (log: %s)", ErrBuild, target, imagePath, t.failedLog)
	}
	m.Image = filepath.Base(imagePath)
	if err := linkOrCopy(img, filepath.Join(t.dir, m.Image)); err != nil {
		return nil, b.cacheErr(ctx, "image", err)
	}
	m.Built, m.Seconds = time.Now().UTC(), time.Since(start).Seconds()
	pm, err := t.publish(m)
	if err != nil {
		return nil, err
	}
	b.logf("built %s in %s: %s", key, time.Since(start).Round(time.Second), b.entry(key))
	return pm, nil
}

// cacheErr reports a failure to copy or write the cache's files; a ctx
// that ended wins.
func (b *builder) cacheErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %s: %w", ErrCache, what, err)
}

func (b *builder) applyPatch(ctx context.Context, t *temp, tree string, i int, pt input) error {
	copyPath := filepath.Join(t.dir, "patches", fmt.Sprintf("%02d-%s", i+1, pt.name))
	if err := os.WriteFile(copyPath, pt.data, 0o644); err != nil {
		return b.cacheErr(ctx, "patch", err)
	}
	b.logf("applying %s", pt.path)
	w := &patchWatch{}
	err := b.run(ctx, t.log, tree, w.line, "patch", "-p1", "--forward", "--batch", "--fuzz=0", "--no-backup-if-mismatch", "-r", "-", "-i", copyPath)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil || errors.Is(err, ErrMissingDeps) {
		return err
	}
	return w.failure(pt.path, err, t.failedLog)
}

// configure writes .config: on a fresh tree from the fragment (or the
// tree's own .config, or defconfig), then olddefconfig, which also takes
// in Kconfig changes of patches applied to a cached tree. Every line of
// the fragment must be in the result.
func (b *builder) configure(ctx context.Context, t *temp, tree string, frag *input, fresh bool) error {
	dotConfig := filepath.Join(tree, ".config")
	if fresh {
		switch {
		case frag != nil:
			fp := filepath.Join(t.dir, "config.fragment")
			if err := os.WriteFile(fp, frag.data, 0o644); err != nil {
				return b.cacheErr(ctx, "fragment", err)
			}
			if err := b.make(ctx, t, tree, ErrConfig, "tinyconfig"); err != nil {
				return err
			}
			b.logf("merging %s", frag.path)
			w := &makeWatch{b: b, start: time.Now()}
			if err := b.run(ctx, t.log, tree, w.line, "scripts/kconfig/merge_config.sh", "-m", ".config", fp); err != nil {
				if ctx.Err() != nil || errors.Is(err, ErrMissingDeps) {
					return err
				}
				return w.failure("merge_config.sh", err, t.failedLog)
			}
		case exists(dotConfig):
			b.logf("using the tree's .config")
		default:
			if err := b.make(ctx, t, tree, ErrConfig, "defconfig"); err != nil {
				return err
			}
		}
	}
	if err := b.make(ctx, t, tree, ErrConfig, "olddefconfig"); err != nil {
		return err
	}
	if frag != nil {
		return verifyConfig(dotConfig, frag)
	}
	return nil
}

// make runs make -jN goals in dir. A failure wraps kind (ErrConfig for
// configuration targets) or, for a build, ErrCompile when the log has a
// compiler error and ErrBuild otherwise.
func (b *builder) make(ctx context.Context, t *temp, dir string, kind error, goals ...string) error {
	args := append([]string{"make", "-j" + strconv.Itoa(b.jobs)}, goals...)
	b.logf("%s (log: %s)", strings.Join(args, " "), filepath.Join(t.dir, "build.log"))
	w := &makeWatch{b: b, start: time.Now()}
	err := b.run(ctx, t.log, dir, w.line, args...)
	if err == nil {
		if w.steps > 0 {
			b.logf("%s: %d steps in %s", strings.Join(args, " "), w.steps, time.Since(w.start).Round(time.Second))
		}
		return nil
	}
	if ctx.Err() != nil || errors.Is(err, ErrMissingDeps) {
		return err
	}
	ferr := w.failure(strings.Join(args, " "), err, t.failedLog)
	if kind == ErrConfig {
		return fmt.Errorf("%w: %v", ErrConfig, strings.TrimPrefix(ferr.Error(), ErrBuild.Error()+": "))
	}
	return ferr
}

// verifyConfig checks that every CONFIG_ line of the fragment (and every
// "# CONFIG_X is not set") holds in .config: olddefconfig drops options
// whose dependencies are missing without a word.
func verifyConfig(dotConfig string, frag *input) error {
	have, err := readConfig(dotConfig)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var bad []string
	sc := bufio.NewScanner(strings.NewReader(string(frag.data)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, want := "", ""
		switch {
		case strings.HasPrefix(line, "# CONFIG_") && strings.HasSuffix(line, " is not set"):
			name = strings.TrimSuffix(strings.TrimPrefix(line, "# "), " is not set")
		case strings.HasPrefix(line, "CONFIG_"):
			var ok bool
			if name, want, ok = strings.Cut(line, "="); !ok {
				continue
			}
		default:
			continue
		}
		if got := have[name]; got != want && !(want == "" && got == "n") {
			if got == "" {
				got = "not set"
			}
			bad = append(bad, fmt.Sprintf("%s: want %q, .config has %s", name, orUnset(want), got))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	more := ""
	if len(bad) > 1 {
		more = fmt.Sprintf(" (and %d more)", len(bad)-1)
	}
	return fmt.Errorf("%w: fragment %s not honoured after olddefconfig (a dependency is missing?): %s%s", ErrConfig, frag.path, bad[0], more)
}

func orUnset(v string) string {
	if v == "" {
		return "not set"
	}
	return v
}

// readConfig reads the CONFIG_X=value lines of a .config.
func readConfig(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if name, val, ok := strings.Cut(line, "="); ok && strings.HasPrefix(name, "CONFIG_") {
			out[name] = val
		}
	}
	return out, nil
}

func configValue(path, name string) string {
	c, err := readConfig(path)
	if err != nil {
		return ""
	}
	return c[name]
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	return copyFile(src, dst, info)
}

// buildModule builds one module against the kernel of res into a new
// entry: a copy of its source directory (kbuild writes next to the
// sources) built with make -C TREE M=COPY modules.
func (b *builder) buildModule(ctx context.Context, mod module, res *Result) (*manifest, error) {
	start := time.Now()
	t, err := b.newTemp(mod.key, "")
	if err != nil {
		return nil, err
	}
	defer t.discard()
	src := filepath.Join(t.dir, "src")
	b.logf("building module %s against %s", mod.dir, res.Key)
	if err := copyTree(ctx, mod.dir, src, func(n string) bool { return n == ".git" || isModuleOutput(n) }); err != nil {
		return nil, b.cacheErr(ctx, "copy module", err)
	}
	b.step("module source")
	if err := b.make(ctx, t, res.Tree, ErrBuild, "M="+src, "modules"); err != nil {
		return nil, err
	}
	b.step("module build")
	var kos []string
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".ko") {
			rel, _ := filepath.Rel(t.dir, p)
			kos = append(kos, rel)
		}
		return nil
	})
	if len(kos) == 0 {
		return nil, fmt.Errorf("%w: module %s: make modules built no .ko (log: %s)", ErrBuild, mod.dir, t.failedLog)
	}
	m := &manifest{Kind: "module", Key: mod.key, Recipe: RecipeVersion, Kernel: res.Key, Module: mod.dir,
		Modules: kos, Built: time.Now().UTC(), Seconds: time.Since(start).Seconds()}
	pm, err := t.publish(m)
	if err != nil {
		return nil, err
	}
	b.logf("built module %s in %s: %s", mod.name, time.Since(start).Round(time.Second), b.entry(mod.key))
	return pm, nil
}
