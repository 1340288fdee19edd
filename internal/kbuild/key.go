package kbuild

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// RecipeVersion names the build recipe: the steps Build runs and their
// flags. Change it whenever a change to the recipe would make a fresh
// build differ from what the cache holds; every key changes with it.
const RecipeVersion = "kbuild-1"

// keyLen is how many hex digits of a sha256 name an entry (128 bits).
const keyLen = 32

// keyHash is a sha256 over length-prefixed, labelled fields, so that no
// two different sequences of fields hash the same bytes.
type keyHash struct{ h hash.Hash }

func newKeyHash() *keyHash { return &keyHash{sha256.New()} }

func (k *keyHash) field(label string, data []byte) {
	var n [8]byte
	for _, b := range [][]byte{[]byte(label), data} {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		k.h.Write(n[:])
		k.h.Write(b)
	}
}

func (k *keyHash) key() string { return hex.EncodeToString(k.h.Sum(nil))[:keyLen] }

// baseKey is the key of a kernel without patches: the recipe, the target
// architecture, the source's identity and the configuration.
func baseKey(arch, source string, fragment []byte, haveFragment bool) string {
	k := newKeyHash()
	k.field("recipe", []byte(RecipeVersion))
	k.field("kind", []byte("kernel"))
	k.field("arch", []byte(arch))
	k.field("source", []byte(source))
	if haveFragment {
		k.field("fragment", fragment)
	} else {
		k.field("no-fragment", nil)
	}
	return k.key()
}

// patchKey is the key of the kernel prev with one more patch on top.
func patchKey(prev string, patch []byte) string {
	k := newKeyHash()
	k.field("recipe", []byte(RecipeVersion))
	k.field("base", []byte(prev))
	k.field("patch", patch)
	return k.key()
}

// moduleKey is the key of a module built against the kernel of key kernel.
func moduleKey(kernel, moduleContent string) string {
	k := newKeyHash()
	k.field("recipe", []byte(RecipeVersion))
	k.field("kind", []byte("module"))
	k.field("kernel", []byte(kernel))
	k.field("module", []byte(moduleContent))
	return k.key()
}

// fileSHA256 is the hex sha256 of a file's content.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// treeIdentity identifies a kernel source directory without reading
// every file: its kernel version and, for every file except under .git,
// the relative path, mode, size and modification time. A file that is
// edited or touched makes a new identity.
func treeIdentity(dir string) (version, id string, err error) {
	version, err = treeVersion(dir)
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	var n [8]byte
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s\x00%o\x00", rel, uint32(info.Mode()))
		if info.Mode().IsRegular() {
			binary.BigEndian.PutUint64(n[:], uint64(info.Size()))
			h.Write(n[:])
			binary.BigEndian.PutUint64(n[:], uint64(info.ModTime().UnixNano()))
			h.Write(n[:])
		}
		return nil
	})
	if err != nil {
		return "", "", fmt.Errorf("%w: --source %s: %w", ErrBadInput, dir, err)
	}
	return version, "tree " + version + " " + hex.EncodeToString(h.Sum(nil)), nil
}

// treeVersion reads VERSION, PATCHLEVEL, SUBLEVEL and EXTRAVERSION from a
// kernel tree's top Makefile; a directory without them is not a kernel
// source tree.
func treeVersion(dir string) (string, error) {
	f, err := os.Open(filepath.Join(dir, "Makefile"))
	if err != nil {
		return "", fmt.Errorf("%w: --source %s: not a kernel source tree: %w", ErrBadInput, dir, err)
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan() && i < 20; i++ {
		name, val, ok := strings.Cut(sc.Text(), "=")
		if ok {
			vals[strings.TrimSpace(name)] = strings.TrimSpace(val)
		}
	}
	if vals["VERSION"] == "" || vals["PATCHLEVEL"] == "" {
		return "", fmt.Errorf("%w: --source %s: not a kernel source tree (no VERSION in its Makefile)", ErrBadInput, dir)
	}
	v := vals["VERSION"] + "." + vals["PATCHLEVEL"]
	if s := vals["SUBLEVEL"]; s != "" {
		v += "." + s
	}
	return v + vals["EXTRAVERSION"], nil
}

// isModuleOutput reports whether a file name in a module directory is
// something kbuild writes (left out of the module's key and its copy).
func isModuleOutput(name string) bool {
	switch name {
	case "Module.symvers", "modules.order", ".tmp_versions":
		return true
	}
	if strings.HasPrefix(name, ".") && (strings.HasSuffix(name, ".cmd") || strings.HasSuffix(name, ".d")) {
		return true
	}
	for _, suf := range []string{".o", ".ko", ".mod", ".mod.c", ".BTF", ".BTF_ids", ".rej", ".orig"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// moduleContent hashes a module source directory: every file's relative
// path, executable bit and content, in path order, leaving out .git and
// build outputs.
func moduleContent(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && (d.Name() == ".git" || isModuleOutput(d.Name())) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("%w: --module %s: %w", ErrBadInput, dir, err)
	}
	sort.Strings(files)
	k := newKeyHash()
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		info, err := os.Lstat(p)
		if err != nil {
			return "", fmt.Errorf("%w: --module %s: %w", ErrBadInput, dir, err)
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return "", fmt.Errorf("%w: --module %s: %w", ErrBadInput, dir, err)
			}
			k.field("symlink "+rel, []byte(target))
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("%w: --module %s: %w", ErrBadInput, dir, err)
		}
		k.field(fmt.Sprintf("file %s %v", rel, info.Mode()&0o111 != 0), data)
	}
	return k.key(), nil
}

// imageTarget is the make target and the path in the tree of the kernel
// image for the host architecture (kernels are built natively).
func imageTarget() (target, path string, err error) {
	switch runtime.GOARCH {
	case "amd64":
		return "bzImage", "arch/x86/boot/bzImage", nil
	case "arm64":
		return "Image", "arch/arm64/boot/Image", nil
	}
	return "", "", fmt.Errorf("%w: no kernel image target known for %s", ErrBadInput, runtime.GOARCH)
}

func sha256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}
