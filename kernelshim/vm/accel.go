package vm

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
)

// detectAccel returns "kvm" when hardware virtualisation is usable and
// "tcg" otherwise. Both conditions are checked, not assumed: /dev/kvm can
// exist on a CPU without vmx/svm, and QEMU then aborts or hangs instead of
// falling back (docs/kernel-facts.md, "VMs here").
func detectAccel() string {
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil || !hasVirtFlag(cpuinfo) {
		return "tcg"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg"
	}
	f.Close()
	return "kvm"
}

// hasVirtFlag reports whether a cpuinfo flags line lists vmx or svm.
func hasVirtFlag(cpuinfo []byte) bool {
	for _, line := range bytes.Split(cpuinfo, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("flags")) {
			continue
		}
		for _, f := range bytes.Fields(line) {
			if string(f) == "vmx" || string(f) == "svm" {
				return true
			}
		}
	}
	return false
}

// checkStatic verifies that path is a static ELF executable: the initramfs
// has no dynamic loader or libc.
func checkStatic(path string) error {
	if path == "" {
		return fmt.Errorf("%w: no guest binary given", ErrBadBinary)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("guest binary %s: %w: %w", path, ErrBadBinary, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("guest binary %s: %w: dynamically linked; build it with CGO_ENABLED=0 (make build does)", path, ErrBadBinary)
		}
	}
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("guest binary %s: %w: built for %v, the VM is x86_64", path, ErrBadBinary, f.Machine)
	}
	return nil
}
