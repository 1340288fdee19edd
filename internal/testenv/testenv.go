// Package testenv holds helpers shared by tests that need the environment
// to provide something, such as root and BPF for the kernel backend.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireKernelEnv is the environment variable that turns a missing
// privilege from a skip into a failure (CI sets it to 1).
const RequireKernelEnv = "SPLICECHECK_REQUIRE_KERNEL"

// RequireKernel skips the test with probe's one-line reason when probe
// reports that the kernel cannot be used (not root, no BPF), or fails it
// instead when SPLICECHECK_REQUIRE_KERNEL=1. probe is the backend's own
// privilege check, kernelshim.Available:
//
//	testenv.RequireKernel(t, kernelshim.Available)
//
// (This package does not import kernelshim so that kernelshim's in-package
// tests can use it.)
func RequireKernel(t testing.TB, probe func() error) {
	t.Helper()
	if err := probe(); err != nil {
		Unavailable(t, err.Error())
	}
}

// Unavailable skips the test with reason (one line), or fails it when
// SPLICECHECK_REQUIRE_KERNEL=1, where a missing kernel, VM or privilege
// must not hide a test.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(RequireKernelEnv) == "1" {
		t.Fatalf("%s (%s=1: kernel tests must run)", reason, RequireKernelEnv)
		return // Fatalf ends a real test; a recording fake needs the return
	}
	t.Skip(reason)
}

// RequireCommand returns the path of the program name, or makes the test
// Unavailable (a skip, a failure under SPLICECHECK_REQUIRE_KERNEL=1)
// with one line naming it and how to get it (hint: a make target).
func RequireCommand(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, name+" is not installed ("+hint+")")
		return ""
	}
	return p
}
