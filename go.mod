module github.com/splicecheck/splicecheck

go 1.26.3

require (
	github.com/anishathalye/porcupine v1.3.1 // indirect
	github.com/cilium/ebpf v0.22.0 // indirect
	github.com/google/btree v1.1.2 // indirect
	golang.org/x/exp v0.0.0-20250711185948-6ae5c78190dc // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/time v0.15.0 // indirect
	gvisor.dev/gvisor v0.0.0-20260905035102-160fafc42237 // indirect
	pgregory.net/rapid v1.3.0 // indirect
)
