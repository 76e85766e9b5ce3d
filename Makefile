# SPDX-License-Identifier: GPL-2.0
# optprobe: out-of-tree module build plus the project's test bed.
#
#   make                 build optprobe.ko (and the test modules) against KDIR
#   make test            everything: bootstrap, host tests, then on 6.12 and 7.2: kernel, module, QEMU boots
#   make demo            boot QEMU, attach probes, show their state and cost
#   make bench           one boot: per-hit cost vs kprobe and ftrace, scaling, registration, memory
#   make kernel          build (or reuse) the cached test kernel (OPTPROBE_KERNEL=6.12 or 7.2)
#   make preflight       can KDIR (default: the test kernel) build and run optprobe? one line per requirement
#   make coverage        classify every instruction of the test kernel's .text
#   make test-exhaustive the classifier against the oracle on all 2^32 words
#   make test-long       make test with torture 60 s, boundary workload 120 s, ftrace group baseline
#   make test-debug      the whole suite on a second kernel with lockdep, KASAN, kmemleak
#   make clean
#
# KDIR defaults to the cached test kernel; point it at your own build tree
# (which needs CONFIG_RUST, CONFIG_KPROBES and the exact rustc that built it).

SHELL := /bin/bash
REPO := $(CURDIR)
ENV := source $(REPO)/scripts/env.sh
KDIR ?= $(shell $(REPO)/scripts/build-kernel --dir)
ARCH ?= arm64
LLVM ?= 1
RUSTC ?= /usr/bin/rustc
KMAKE = $(ENV) && $(MAKE) -C $(KDIR) M=$(REPO) ARCH=$(ARCH) LLVM=$(LLVM) RUSTC=$(RUSTC)

.PHONY: preflight all modules kernel bootstrap test test-long test-exhaustive test-debug coverage demo bench modules-clean clean

all: modules

modules:
	@test -f $(KDIR)/Makefile || { echo "KDIR=$(KDIR) is not a kernel build tree; run 'make kernel' or set KDIR"; exit 1; }
	+$(KMAKE) modules

preflight:
	@bash scripts/preflight --kdir $(KDIR) --rustc $(RUSTC)

bootstrap:
	@bash scripts/bootstrap

kernel: bootstrap
	@bash scripts/build-kernel >/dev/null

test:
	@mkdir -p build
	@bash scripts/run-tests

demo:
	@bash scripts/demo

bench:
	@bash scripts/bench

test-long:
	@mkdir -p build
	@OPTPROBE_LONG=1 OPTPROBE_TEST_TIMEOUT=1800 bash scripts/run-tests

test-debug:
	@mkdir -p build
	@OPTPROBE_KERNELS=6.12 OPTPROBE_EXTRA_CONFIG=$(REPO)/tests/config.debug OPTPROBE_TEST_TIMEOUT=3000 \
		OPTPROBE_GUEST_APPEND="optflips=100 optstorm_us=1000" bash scripts/run-tests

test-exhaustive: bootstrap
	@$(ENV) && cd tests/host && cargo test --release --test sweep -- --ignored --nocapture

coverage: kernel
	@mkdir -p build
	@$(ENV) && llvm-objcopy -O binary --only-section=.text $(KDIR)/vmlinux build/vmlinux-text.bin
	@$(ENV) && cd tests/host && cargo run --quiet --release --bin coverage -- $(REPO)/build/vmlinux-text.bin

# Module objects only (run-tests uses it when KDIR changes).
modules-clean:
	-$(KMAKE) clean 2>/dev/null

clean: modules-clean
	rm -rf build tests/host/target
	@$(ENV) && rm -rf "$$CARGO_TARGET_DIR"
