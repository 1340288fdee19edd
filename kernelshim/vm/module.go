package vm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/splicecheck/splicecheck/kernelshim"
	"golang.org/x/sys/unix"
)

// Kernel modules (`--module FILE.ko[:PARAMS]`, repeatable) go into the
// initramfs as /modules/NNNN.ko, in the order given, with
// /modules/index.json naming the host files and /modules/NNNN.params
// holding PARAMS, if any: comma-separated name=value pairs, passed to
// finit_module(2) as insmod would (`tcp_splice.ko:ring_kbytes=16`). The guest loads them with finit_module(2) before it
// probes the kernel or runs a trace. A module the kernel refuses ends the
// guest with a "module" fatal frame carrying the kernel's own words, read
// from /dev/kmsg around the call.

// moduleDir is where the modules live in the initramfs.
const moduleDir = "modules"

// splitModuleArg splits a --module argument into the file and the
// finit_module parameter string (space-separated). A colon starts the
// parameters only when what follows it has an '='.
func splitModuleArg(arg string) (path, params string) {
	if i := strings.LastIndexByte(arg, ':'); i >= 0 && strings.Contains(arg[i+1:], "=") {
		return arg[:i], strings.ReplaceAll(arg[i+1:], ",", " ")
	}
	return arg, ""
}

// checkModules checks, before anything boots, that every module file can
// be read. Errors name the flag and the file.
func checkModules(args []string) error {
	for _, arg := range args {
		p, _ := splitModuleArg(arg)
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("--module %s: %w", p, err)
		}
		st, err := f.Stat()
		f.Close()
		switch {
		case err != nil:
			return fmt.Errorf("--module %s: %w", p, err)
		case st.IsDir():
			return fmt.Errorf("--module %s: %w: a directory, not a .ko file", p, ErrModule)
		case st.Size() == 0:
			return fmt.Errorf("--module %s: %w: empty file", p, ErrModule)
		}
	}
	return nil
}

// addModules puts the module files into a, in order.
func addModules(a *Initramfs, args []string) error {
	if len(args) == 0 {
		return nil
	}
	var names []string
	for i, arg := range args {
		p, params := splitModuleArg(arg)
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("--module %s: %w", p, err)
		}
		a.AddFile(fmt.Sprintf("%s/%04d.ko", moduleDir, i), data, 0o644)
		if params != "" {
			a.AddFile(fmt.Sprintf("%s/%04d.params", moduleDir, i), []byte(params), 0o644)
		}
		names = append(names, filepath.Base(p))
	}
	js, _ := json.Marshal(names)
	a.AddFile(moduleDir+"/index.json", js, 0o644)
	return nil
}

// moduleError is a module the guest kernel would not load.
type moduleError struct {
	index  int    // position in the --module list
	name   string // the host file's base name
	detail string // the errno and the kernel's messages
}

func (e *moduleError) Error() string {
	return fmt.Sprintf("module %s: %s", e.name, e.detail)
}

// loadModuleDir loads the initramfs's modules in order (none when the
// directory is absent). It stops at the first the kernel refuses.
func loadModuleDir(dir string) *moduleError {
	js, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var names []string
	if err == nil {
		err = json.Unmarshal(js, &names)
	}
	if err != nil {
		return &moduleError{index: 0, name: "index.json", detail: err.Error()}
	}
	files, params := make([]string, len(names)), make([]string, len(names))
	for i := range names {
		files[i] = filepath.Join(dir, fmt.Sprintf("%04d.ko", i))
		b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%04d.params", i)))
		params[i] = string(b)
	}
	return loadModules(files, names, params)
}

// LoadModules loads the modules of the --module arguments args
// (FILE.ko[:PARAMS]) into the running kernel, in order, with
// finit_module(2); the guest side of --module. It stops at the first the
// kernel refuses and returns an error wrapping ErrModule with the kernel's
// log messages about it.
func LoadModules(args []string) error {
	if me := loadModuleArgs(args); me != nil {
		return fmt.Errorf("%w: %v", ErrModule, me)
	}
	return nil
}

// loadModuleArgs loads the modules of --module arguments, in order.
func loadModuleArgs(args []string) *moduleError {
	files, names, params := make([]string, len(args)), make([]string, len(args)), make([]string, len(args))
	for i, arg := range args {
		files[i], params[i] = splitModuleArg(arg)
		names[i] = filepath.Base(files[i])
	}
	return loadModules(files, names, params)
}

func loadModules(files, names, params []string) *moduleError {
	for i, f := range files {
		if detail := loadModule(f, names[i], params[i]); detail != "" {
			return &moduleError{index: i, name: names[i], detail: detail}
		}
	}
	return nil
}

// loadModule loads one module with its parameter string and returns ""
// or why the kernel refused it: the errno, then what the kernel logged
// during the call.
func loadModule(path, name, params string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	// Best effort: without the log the errno alone is reported.
	kl, _ := kernelshim.OpenKmsg()
	if kl != nil {
		defer kl.Close()
	}
	flags := 0
	if isCompressed(name) {
		flags |= unix.MODULE_INIT_COMPRESSED_FILE
	}
	err = unix.FinitModule(int(f.Fd()), params, flags)
	if err == nil {
		return ""
	}
	detail := "finit_module: " + err.Error()
	switch {
	case errors.Is(err, unix.ENOSYS):
		detail += " (a kernel built without CONFIG_MODULES)"
	case errors.Is(err, unix.EEXIST):
		detail += " (a module of that name is already loaded)"
	}
	var said []string
	if kl != nil {
		said, _ = kl.Messages()
	}
	if len(said) > 4 {
		said = said[len(said)-4:]
	}
	if len(said) == 0 {
		return detail + "; the kernel logged nothing"
	}
	return detail + "; kernel: " + strings.Join(said, " | ")
}

// isCompressed reports whether a module file is one the kernel must
// decompress (MODULE_INIT_COMPRESSED_FILE, CONFIG_MODULE_DECOMPRESS).
func isCompressed(name string) bool {
	for _, ext := range []string{".ko.xz", ".ko.gz", ".ko.zst"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// loadedModules lists the modules /proc/modules names, oldest first
// (the file lists the newest first).
func loadedModules() []string {
	b, err := os.ReadFile("/proc/modules")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			out = append([]string{f[0]}, out...)
		}
	}
	return out
}
