# SPDX-License-Identifier: GPL-2.0
# optprobe: out-of-tree module build plus the project's test bed.
#
#   make                 build optprobe.ko (and the test modules) against KDIR
#   make test            everything: bootstrap, host tests, then on 6.12 and 7.2: kernel, module, QEMU boots
#   make demo            boot QEMU, attach probes, show their state and cost
#   make bench           one boot: per-hit cost vs kprobe and ftrace, scaling, registration, memory
#   make bench-ablation  one short bench boot per tests/ablation/*.patch: where a hit's time goes
#   make kernel          build (or reuse) the cached test kernel (OPTPROBE_KERNEL=6.12 or 7.2)
#   make preflight       can KDIR (default: the test kernel) build and run optprobe? one line per requirement
#   make coverage        classify every instruction of the test kernel's .text
#   make test-exhaustive the classifier against the oracle on all 2^32 words
#   make test-long       make test with torture 60 s, boundary workload 120 s, ftrace group baseline
#   make test-debug      the whole suite on a second kernel with lockdep, KASAN, kmemleak
#   make rust-analyzer   rust-project.json for the module against KDIR (as the kernel's target for in-tree code)
#   make test-debian     the suite in Debian sid's own arm64 kernel, Rust artifacts reproduced in a sid chroot
#   make clean
#
# KDIR defaults to the cached test kernel; point it at your own build tree
# (which needs CONFIG_RUST, CONFIG_KPROBES and the exact rustc that built it).

SHELL := /bin/bash
REPO := $(CURDIR)
ENV := source $(REPO)/scripts/env.sh
KDIR ?= $(shell $(REPO)/scripts/build-kernel --dir)
ARCH ?= arm64
# The kernel's own compiler: LLVM=1 for a clang-built kernel (our test
# kernels), nothing for a GCC-built one (Debian's).
LLVM ?= $(if $(shell grep -qs '^CONFIG_CC_IS_GCC=y' $(KDIR)/.config && echo gcc),,1)
RUSTC ?= /usr/bin/rustc
KMAKE = $(ENV) && $(MAKE) -C $(KDIR) M=$(REPO) ARCH=$(ARCH) LLVM=$(LLVM) RUSTC=$(RUSTC)

.PHONY: preflight all modules kernel bootstrap test test-long test-exhaustive test-debug test-debian rust-analyzer coverage demo bench bench-ablation modules-clean clean

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

bench-ablation:
	@bash scripts/bench-ablation

test-long:
	@mkdir -p build
	@OPTPROBE_LONG=1 OPTPROBE_TEST_TIMEOUT=1800 bash scripts/run-tests

test-debug:
	@mkdir -p build
	@OPTPROBE_KERNELS=6.12 OPTPROBE_EXTRA_CONFIG=$(REPO)/tests/config.debug OPTPROBE_TEST_TIMEOUT=3000 \
		OPTPROBE_GUEST_APPEND="optflips=100 optstorm_us=1000" bash scripts/run-tests

# rust-project.json for rust-analyzer: the kernel's target, plus the
# optprobe crate with the cfgs of its last build (scripts/rust-analyzer).
rust-analyzer: modules
	+$(ENV) && $(MAKE) -C $(KDIR) ARCH=$(ARCH) LLVM=$(LLVM) RUSTC=$(RUSTC) rust-analyzer
	@python3 scripts/rust-analyzer $(REPO) $(KDIR)

test-debian:
	@mkdir -p build
	@bash scripts/test-debian

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
