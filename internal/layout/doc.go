// Package layout holds the test that enforces the project's import rules
// (docs/design.md, "Layout"): which top-level packages may import
// which, and that gVisor, x/sys/unix and cilium/ebpf stay in the one
// package each belongs to. It has no code of its own.
package layout
