# splicecheck: `make run` is the main job on defaults, `make test` the whole
# suite. Both work on a fresh machine with only Go and gcc (the race
# detector needs cgo); Go modules come from the module proxy.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/splicecheck
KERNEL_TRACES = $(sort $(wildcard testdata/traces/kernel/*.trace))
FUZZTIME ?= 60s
BENCHCOUNT ?= 1

.PHONY: build run test lint bench fuzz clean

build:
	$(GO) build -o $(BIN) ./cmd/splicecheck

# The main job: run the kernel corpus on this machine's kernel and compare
# it byte for byte with the goldens recorded on Linux 6.18.
run: build
	./$(BIN) diff --a kernel --b golden $(KERNEL_TRACES)

# The whole suite: formatting, vet, every test with the race detector.
test: lint
	$(GO) test -race -count=1 ./...

lint:
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt: not formatted: $$unformatted"; exit 1; fi
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./trace

clean:
	rm -rf bin out
	$(GO) clean -testcache
