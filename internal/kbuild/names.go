package kbuild

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// namesDir holds one file per name given to a build (Config.Name): the
// keys of the kernel and module entries the build returned. A name lets a
// later run (make kernel-test, CI) find a kernel without its inputs.
const namesDir = "names"

// named is what names/NAME.json records.
type named struct {
	Kernel  string   `json:"kernel"`            // the kernel entry's key
	Modules []string `json:"modules,omitempty"` // the module entries' keys, in Config.Modules order
}

// checkName accepts a profile name such as linux-6.12+loopback-splice-seq:
// no path separators, no leading dot.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\\\x00") || len(name) > 128 {
		return fmt.Errorf("%w: bad kernel name %q (want a profile name such as linux-6.12+loopback-splice)", ErrBadInput, name)
	}
	return nil
}

// recordName points name at the entries of res, replacing what it
// pointed at (write to a temporary file, then rename, so a reader sees
// the old name or the new one, never half of one).
func (b *builder) recordName(name string, res *Result, p *plan) error {
	n := named{Kernel: res.Key}
	for _, m := range p.modules {
		n.Modules = append(n.Modules, m.key)
	}
	data, err := json.Marshal(n)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.cache, namesDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: %w", ErrCache, err)
	}
	f, err := os.CreateTemp(dir, ".name-*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCache, err)
	}
	_, werr := f.Write(append(data, '\n'))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(f.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(f.Name(), filepath.Join(dir, name+".json"))
	}
	if werr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("%w: name %s: %w", ErrCache, name, werr)
	}
	return nil
}

// Lookup returns the kernel (and modules) that the last build named name
// (Config.Name) left in cacheDir ("" = DefaultCacheDir()), without
// building anything. A name never given, or whose entries are gone, is
// ErrNotBuilt.
func Lookup(cacheDir, name string) (*Result, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if cacheDir == "" {
		var err error
		if cacheDir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	data, err := os.ReadFile(filepath.Join(cacheDir, namesDir, name+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no kernel named %s in %s", ErrNotBuilt, name, cacheDir)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCache, err)
	}
	var n named
	if err := json.Unmarshal(data, &n); err != nil || n.Kernel == "" {
		return nil, fmt.Errorf("%w: %s: not a name this tool wrote; remove it", ErrCache, filepath.Join(cacheDir, namesDir, name+".json"))
	}
	res := &Result{Key: n.Kernel, Dir: filepath.Join(cacheDir, n.Kernel), Cached: true}
	m, err := readManifest(res.Dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && (m.Kind != "kernel" || !exists(filepath.Join(res.Dir, m.Image)))) {
		return nil, fmt.Errorf("%w: kernel %s: its entry %s is gone", ErrNotBuilt, name, res.Dir)
	}
	if err != nil {
		return nil, err
	}
	res.setKernel(m)
	for _, key := range n.Modules {
		dir := filepath.Join(cacheDir, key)
		mm, err := readManifest(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: kernel %s: its module entry %s is gone", ErrNotBuilt, name, dir)
		}
		if err != nil {
			return nil, err
		}
		res.addModules(dir, mm)
	}
	return res, nil
}
