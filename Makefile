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

VM_KERNEL = $(lastword $(sort $(wildcard /boot/vmlinuz-6.1.*)))

.PHONY: build run test lint bench fuzz clean vm-deps html-deps vm-test crosscheck kernels kernel-test fix-kernels fix-validate

# A static binary: it is also /init in the VM guests of `splicecheck vm`.
# It carries the commit it was built from (`splicecheck --version`;
# -dirty with uncommitted changes): go build records it only without
# -buildvcs=false and in a checkout whose .git is a directory.
COMMIT = $(shell c=$$(git rev-parse --short=12 HEAD 2>/dev/null) && { git diff --quiet HEAD 2>/dev/null || c=$$c-dirty; echo $$c; })
build:
	CGO_ENABLED=0 $(GO) build -ldflags '-X main.commit=$(COMMIT)' -o $(BIN) ./cmd/splicecheck

# The main job: run the kernel corpus on the model and on this machine's
# kernel and compare them byte for byte (the model profile of the host),
# then attack every profile the model implements for CHECKTIME each and
# print the table of properties x profiles (counterexamples in out/check).
CHECKTIME ?= 15s
run: build
	./$(BIN) diff --a model --b kernel --expect testdata/kernel-test/linux-6.18.expect $(KERNEL_TRACES)
	./$(BIN) check --time $(CHECKTIME) --out out/check

# The whole suite: formatting, vet, every test with the race detector
# (the VM boot tests and the HTML timelines in headless Chromium
# included), the bug zoo's campaigns, the long schedule searches and the
# generated traces' full run on the model without it (ten times faster),
# then the kernel corpus in a Debian 6.1 guest.
test: lint vm-deps html-deps
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'TestZoo|TestSearch|TestGenTracesRunOnModel' ./fuzz
	$(MAKE) --no-print-directory vm-test

# QEMU and Debian's 6.1 kernel for the VM tests, installed when root and
# missing. Unprivileged, it only says what is missing (the tests then skip).
vm-deps:
	@if ! command -v qemu-system-x86_64 >/dev/null || [ -z "$(VM_KERNEL)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "vm-deps: installing qemu-system-x86 and linux-image-amd64"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 linux-image-amd64 >/dev/null; \
	  else echo "vm-deps: qemu-system-x86 and linux-image-amd64 are missing; run as root to install them"; fi; \
	fi

# Chromium, which opens the HTML timelines of `run --html` in
# cmd/splicecheck's TestTimelineHTMLInChromium (headless: screenshots and
# the DOM), installed when root and missing. Unprivileged, it only says
# that it is missing (the test then skips).
html-deps:
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "html-deps: installing chromium"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	  else echo "html-deps: chromium is missing; run as root to install it"; fi; \
	fi

# The kernel corpus in one boot of a Debian 6.1 guest, compared with the
# recorded goldens of testdata/golden/linux-6.1 (the model's linux-6.1
# profile is compared with the same goldens by linux.TestCorpus). The
# wall-clock limit (default 5 min) only stops a hung run: a TCG guest on
# a loaded machine boots in minutes, so it is as kernel-test's.
vm-test: vm-deps build
	@kernel=$$(ls /boot/vmlinuz-6.1.* 2>/dev/null | sort | tail -1); \
	if [ -z "$$kernel" ]; then echo "vm-test: no Debian 6.1 kernel in /boot"; \
	  if [ "$${SPLICECHECK_REQUIRE_KERNEL:-}" = 1 ]; then exit 1; fi; exit 0; fi; \
	./$(BIN) vm --kernel $$kernel --vm-timeout 15m --against golden --profile linux-6.1 \
	  --expect testdata/kernel-test/linux-6.1.expect $(KERNEL_TRACES) && \
	echo "== the C reproducers of $(words $(REPRO_VM_TRACES)) of them, static, in the same guest" && \
	./$(BIN) vm --kernel $$kernel --repro --vm-timeout 15m --against golden --profile linux-6.1 $(REPRO_VM_TRACES)

# The kernel-corpus traces whose C reproducers (splicecheck repro --c)
# vm-test also runs in the 6.1 guest: one of each kind of op and runner
# rule (sk_msg and sk_skb programs, a stream parser, forty threads,
# iocopy, MSG_ZEROCOPY completions, timeouts).
REPRO_VM_TRACES = $(addprefix testdata/traces/kernel/,kf_cork_apply_stale_bytes.trace runner_many_readers.trace \
	iocopy_plain_tcp_copies_all.trace zc_tcp_completions.trace strp_err_timeout_partial_frame.trace \
	peer_partial_reads_peek_waitall.trace skb_parser_frames.trace proxy_sockmap.trace)

# The three kernels of the patch profiles (issue 18), built with
# `splicecheck kernel build` or taken from its cache ($(KERNEL_CACHE)
# when set, else $XDG_CACHE_HOME/splicecheck/kernels or ~/.cache/...):
# Debian's linux-source-6.12 with the two btf.c fixes, that plus Cong
# Wang's loopback-splice RFC (rebuilt from a copy of the first's tree),
# and the first plus the multikernel/tcp_splice module. KERNEL_INPUTS is
# the directory with the patches, the config fragment and the module
# source (the test subjects; they are not part of this repository).
KERNEL_INPUTS ?=
KERNEL_CACHE ?=
KBUILD = ./$(BIN) kernel build --debian 6.12 --config $(KERNEL_INPUTS)/minimal-sockmap.config \
	--patch $(KERNEL_INPUTS)/btf-sock_ops-kfunc-hook.diff --patch $(KERNEL_INPUTS)/btf-sock_ops-ctx-projection.diff \
	$(if $(KERNEL_CACHE),--cache $(KERNEL_CACHE))
kernels: build
	@if [ -z "$(KERNEL_INPUTS)" ] || [ ! -f "$(KERNEL_INPUTS)/minimal-sockmap.config" ]; then \
	  echo "kernels: KERNEL_INPUTS=$(KERNEL_INPUTS) has no minimal-sockmap.config; set KERNEL_INPUTS to the kernel inputs directory" >&2; exit 2; fi
	@echo "== linux-6.12 + btf fixes"; $(KBUILD) --name linux-6.12
	@echo "== linux-6.12 + btf fixes + loopback-splice RFC"; $(KBUILD) --name linux-6.12+loopback-splice \
	  --patch $(KERNEL_INPUTS)/rfc-loopback-splice-6.12.118.diff
	@echo "== linux-6.12 + btf fixes, tcp_splice module"; $(KBUILD) --name linux-6.12+loopback-splice-seq \
	  --module $(KERNEL_INPUTS)/tcp_splice/module

# The three kernels in one boot each (QEMU), every trace of the kernel
# corpus, testdata/traces/loopback/ and testdata/traces/counterexamples/
# compared with the model's matching profile; the divergences each kernel
# is known to have are listed, with their reasons, in
# testdata/kernel-test/PROFILE.expect (a listed trace that agrees fails
# too). The kernels come from `make kernels` when KERNEL_INPUTS is set
# (built or cached), else from the names an earlier `make kernels` left
# in the cache. The module is loaded with ring_kbytes=16: the 16 KiB
# rings of the loopback-splice-seq profile (its default is 64). Then the
# C reproducers of the counterexamples run in the guests of the two
# loopback-splice kernels (vm --repro: the RFC's kfunc, the module's),
# against the same expectations.
KTEST_TRACES = $(KERNEL_TRACES) $(sort $(wildcard testdata/traces/loopback/*.trace)) \
	$(sort $(wildcard testdata/traces/counterexamples/*.trace))
KTEST_PROFILES = linux-6.12 linux-6.12+loopback-splice linux-6.12+loopback-splice-seq
kernel-test: vm-deps build
	@if [ -n "$(KERNEL_INPUTS)" ]; then $(MAKE) --no-print-directory kernels; fi
	@rc=0; for p in $(KTEST_PROFILES); do \
	  paths=$$(./$(BIN) kernel path $(if $(KERNEL_CACHE),--cache $(KERNEL_CACHE)) $$p) || exit 2; \
	  img=$$(head -1 <<<"$$paths"); mods=$$(tail -n +2 <<<"$$paths" | sed 's/^/--module /; s/$$/:ring_kbytes=16/'); \
	  echo "== $$p: $$img $$mods"; \
	  ./$(BIN) vm --kernel $$img $$mods --profile $$p --vm-timeout 15m \
	    --expect testdata/kernel-test/$$p.expect $(KTEST_TRACES) || rc=1; \
	done; \
	for p in linux-6.12+loopback-splice linux-6.12+loopback-splice-seq; do \
	  paths=$$(./$(BIN) kernel path $(if $(KERNEL_CACHE),--cache $(KERNEL_CACHE)) $$p) || exit 2; \
	  img=$$(head -1 <<<"$$paths"); mods=$$(tail -n +2 <<<"$$paths" | sed 's/^/--module /; s/$$/:ring_kbytes=16/'); \
	  echo "== $$p: the counterexamples' C reproducers (splicecheck repro --c), static, in the guest"; \
	  ./$(BIN) vm --kernel $$img $$mods --repro --profile $$p --vm-timeout 15m \
	    --expect testdata/kernel-test/$$p.expect $(sort $(wildcard testdata/traces/counterexamples/*.trace)) || rc=1; \
	done; exit $$rc

# This project's fixes of two kernel findings (docs/findings/): each a
# patch of testdata/patches/ on the linux-6.12 of `make kernels`, built
# from a copy of its cached tree (minutes) or taken from the cache by
# name. fix-validate validates the fixed kernels side by side (a TCG
# guest takes one core), each in two boots. First, in one boot:
# the finding's trace and testdata/traces/fixes/ against the fix's
# profile, which must all agree with no kernel warning (vm
# --fail-on-warn), and every trace of kernel-test against the same
# profile (known divergences in testdata/kernel-test/PROFILE.expect); the
# kernel corpus's outputs must then equal the unpatched 6.12.118's
# goldens (testdata/golden/linux-6.12) except the traces listed in
# testdata/kernel-test/PROFILE.changes, which the fix changes. Second, a
# differential campaign of FIX_CAMPAIGN_TRACES generated traces: the
# model's profile against the fixed kernel (check --diff vm); a NEW
# divergence is replayed, and fails only if the fixed kernel diverges
# again and the unpatched linux-6.12 does not (against its own profile).
FIX_PROFILES = linux-6.12+fix-cork-copybreak linux-6.12+fix-psock-delete-seq
FIX_CAMPAIGN_TRACES ?= 40
fix-kernels: build
	@if [ -z "$(KERNEL_INPUTS)" ] || [ ! -f "$(KERNEL_INPUTS)/minimal-sockmap.config" ]; then \
	  echo "fix-kernels: KERNEL_INPUTS=$(KERNEL_INPUTS) has no minimal-sockmap.config; set KERNEL_INPUTS to the kernel inputs directory" >&2; exit 2; fi
	@echo "== linux-6.12 + btf fixes + fix-cork-copybreak"; $(KBUILD) --name linux-6.12+fix-cork-copybreak \
	  --patch testdata/patches/bpf-sockmap-cork-copy-position.patch
	@echo "== linux-6.12 + btf fixes + fix-psock-delete-seq"; $(KBUILD) --name linux-6.12+fix-psock-delete-seq \
	  --patch testdata/patches/bpf-sockmap-stop-strp-copied-seq.patch
fix-validate: vm-deps build
	@if [ -n "$(KERNEL_INPUTS)" ]; then $(MAKE) --no-print-directory fix-kernels; fi
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	base=$$(./$(BIN) kernel path $(if $(KERNEL_CACHE),--cache $(KERNEL_CACHE)) linux-6.12) || exit 2; base=$$(head -1 <<<"$$base"); \
	validate() { \
	  p=$$1; rc=0; \
	  case $$p in \
	    *fix-cork-copybreak) own="testdata/traces/kernel/kf_cork_apply_stale_bytes.trace $$(ls testdata/traces/fixes/cork_*.trace)";; \
	    *fix-psock-delete-seq) own="testdata/traces/findings/psock_delete_strparser_seq_warn.trace $$(ls testdata/traces/fixes/psock_*.trace)";; \
	  esac; \
	  paths=$$(./$(BIN) kernel path $(if $(KERNEL_CACHE),--cache $(KERNEL_CACHE)) $$p) || return 2; img=$$(head -1 <<<"$$paths"); \
	  echo "== $$p: its finding, testdata/traces/fixes/ and the kernel-test traces against the model, one boot"; \
	  ./$(BIN) vm --kernel $$img --profile $$p --vm-timeout 15m --fail-on-warn --record $$tmp \
	    --expect testdata/kernel-test/$$p.expect $$own $(KTEST_TRACES) | grep -v '^agree '; [ $${PIPESTATUS[0]} = 0 ] || rc=1; \
	  echo "== $$p: the kernel corpus against the unpatched linux-6.12's goldens"; \
	  same=0; for g in testdata/golden/linux-6.12/*.out; do \
	    n=$$(basename $$g .out); why=$$(sed -n "s/^$$n\.trace: //p" testdata/kernel-test/$$p.changes); \
	    if cmp -s $$g $$tmp/$$p/$$n.out; then \
	      if [ -n "$$why" ] && [ "$${why#race:}" = "$$why" ]; then echo "UNCHANGED $$n, listed in $$p.changes: $$why"; rc=1; else same=$$((same+1)); fi; \
	    elif [ -n "$$why" ]; then echo "changed   $$n: $$why"; \
	    else echo "CHANGED   $$n, not in testdata/kernel-test/$$p.changes"; diff $$g $$tmp/$$p/$$n.out | head -6; rc=1; fi; \
	  done; echo "$$same corpus traces unchanged"; \
	  echo "== $$p: check --diff vm, $(FIX_CAMPAIGN_TRACES) generated traces, one boot"; \
	  ./$(BIN) check --diff vm --kernel $$img --profile $$p --time 0 --traces $(FIX_CAMPAIGN_TRACES) --out $$tmp/check-$$p 2>&1 | grep -v ' pass (\|, known\|^  linux'; \
	  crc=$${PIPESTATUS[0]}; ces=$$(ls $$tmp/check-$$p/*.trace 2>/dev/null); \
	  if [ $$crc != 0 ] && [ -z "$$ces" ]; then echo "check failed (exit $$crc) without a counterexample"; rc=1; fi; \
	  for ce in $$ces; do \
	    echo "== $$p: $$(basename $$ce) replayed on the fixed kernel, and on the unpatched linux-6.12 against its profile:"; \
	    sed -n 's/^# violation: /   /p' $$ce; \
	    if ./$(BIN) vm --kernel $$img --profile $$p $$ce >/dev/null 2>&1; then \
	      echo "   the fixed kernel agrees on replay: the campaign's divergence was the kernel's timing"; \
	    elif ./$(BIN) vm --kernel $$base --profile linux-6.12 $$ce >/dev/null 2>&1; then \
	      echo "NEW: the unpatched kernel agrees, the fixed one diverges"; rc=1; \
	    else echo "   the unpatched kernel diverges too: not the fix's"; fi; \
	  done; \
	  return $$rc; \
	}; \
	for p in $(FIX_PROFILES); do (validate $$p > $$tmp/$$p.log 2>&1; echo $$? > $$tmp/$$p.rc) & done; wait; \
	rc=0; for p in $(FIX_PROFILES); do cat $$tmp/$$p.log; [ "$$(cat $$tmp/$$p.rc)" = 0 ] || rc=1; done; \
	[ $$rc = 0 ] && echo "fix-validate: $(words $(FIX_PROFILES)) fixed kernels validated" || echo "fix-validate: FAILED"; exit $$rc

lint:
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt: not formatted: $$unformatted"; exit 1; fi
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) ./...
	RINGBUF_REPORT=1 $(GO) test -run '^TestReport$$' -count=1 -v ./ringbuf

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./trace
	$(GO) test -run '^$$' -fuzz FuzzModelProperties -fuzztime $(FUZZTIME) ./fuzz

# The model-vs-kernel differential campaign (root): N random traces from
# seed SEED on this machine's kernel against PROFILE, or, with
# KERNEL=IMAGE, in long-lived guests of IMAGE (e.g. KERNEL=/boot/vmlinuz-6.1.0-57-amd64
# PROFILE=linux-6.1). OUT=DIR keeps every divergence, shrunk, as a trace.
# JOBS=N runs N traces at a time: on the host's kernel, or on N guests (the
# report is N's only where the kernel's timing decides an outcome).
# TIME_SCALE=K stretches the kernel side's durations (default 10; a slow
# TCG guest beside other guests wants more).
N ?= 1000
SEED ?= 0
JOBS ?= 1
PROFILE ?= linux-6.18
KERNEL ?=
OUT ?=
TIME_SCALE ?=
crosscheck: build
	SPLICECHECK_CROSSCHECK_N=$(N) SPLICECHECK_CROSSCHECK_SEED=$(SEED) SPLICECHECK_CROSSCHECK_JOBS=$(JOBS) SPLICECHECK_CROSSCHECK_PROFILE=$(PROFILE) \
	SPLICECHECK_CROSSCHECK_KERNEL=$(KERNEL) SPLICECHECK_CROSSCHECK_GUEST=$(abspath $(BIN)) SPLICECHECK_CROSSCHECK_OUT=$(OUT) SPLICECHECK_CROSSCHECK_TIME_SCALE=$(TIME_SCALE) \
	  $(GO) test -tags crosscheck -count=1 -timeout 0 -run ModelVsKernel -v ./internal/crosscheck

clean:
	rm -rf bin out
	$(GO) clean -testcache
