# SPDX-License-Identifier: GPL-2.0
# sockaccel: `make` builds build/sockaccel; `make test` (root) runs the
# tests; `make bench` (root) runs the benchmark. `V=1` shows commands.

.DELETE_ON_ERROR:
.SUFFIXES:

# SANITIZE=1: the loader and tools with AddressSanitizer and UBSan, in
# their own build directory (tests/test_fuzz.sh).
ifeq ($(SANITIZE),1)
BUILD      ?= build/san
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD      ?= build
endif
CLANG      ?= clang
CC         ?= gcc
BPFTOOL    ?= bpftool
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
ARCH       := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

ifeq ($(V),1)
  Q =
  msg =
else
  Q = @
  msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

BPF_SRCS    := bpf/sockops.bpf.c bpf/sk_msg.bpf.c bpf/guard.bpf.c bpf/sockopt.bpf.c bpf/join.bpf.c
BPF_OBJS    := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
LOADER_SRCS := $(wildcard loader/*.c)
LOADER_OBJS := $(patsubst loader/%.c,$(BUILD)/loader/%.o,$(LOADER_SRCS))
TEST_SRCS   := $(filter-out tests/tools/common.c,$(wildcard tests/tools/*.c))
TEST_BINS   := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
BENCH_BINS  := $(if $(wildcard bench/sabench.c),$(BUILD)/bench/sabench $(BUILD)/bench/floor.bpf.o)
GO          ?= go
# Go test programs (tests/apps/gorelay): built when a Go toolchain exists.
GO_BINS     := $(if $(shell command -v $(GO)),$(BUILD)/tests/gorelay)

# The loader's --version: git describe at build time.
SA_VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
CFLAGS      ?= -O2 -g
CFLAGS      += -Wall -Wextra -Werror -Wno-unused-parameter -std=gnu11 \
               -I$(BUILD) -Ibpf -MMD -MP
BPF_CFLAGS  := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
               -I$(BUILD) -Ibpf -MMD -MP
CFLAGS      += $(SAN_FLAGS)
LDLIBS      := -lbpf -lelf -lz -lcap

PREFIX     ?= /usr/local
DESTDIR    ?=
SBINDIR    := $(PREFIX)/sbin
MANDIR     := $(PREFIX)/share/man
DOCDIR     := $(PREFIX)/share/doc/sockaccel
COMPDIR    := $(PREFIX)/share/bash-completion/completions
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
DEB_VERSION := $(shell echo '$(SA_VERSION)' | sed -e 's/^v//' -e 's/-/+/g' -e 's/^\([0-9a-f]*\)\(+dirty\)\{0,1\}$$/0~git\1\2/')

.PHONY: all clean test test-kernels bench tools install deb
all: $(BUILD)/sockaccel tools

tools: $(TEST_BINS) $(BENCH_BINS) $(GO_BINS)

$(BUILD) $(BUILD)/loader $(BUILD)/tests $(BUILD)/bench:
	$(Q)mkdir -p $@

# vmlinux.h from the running kernel's BTF; regenerated only when missing.
$(BUILD)/vmlinux.h: | $(BUILD)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The same programs for kernels without bpf_rdonly_cast() (6.1): every
# read of a kernel object known by address is a probe read
# (bpf/common.bpf.h, SA_CORE_READS). The loader picks one at load.
$(BUILD)/%_core.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -DSA_CORE_READS -MT $@ -MF $(BUILD)/$*_core.bpf.d -c $< -o $@

# One skeleton per program; both objects declare the same maps and the
# loader makes the second reuse the first one's pinned maps.
$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name sockaccel_$(subst .bpf.o,,$(notdir $<)) > $@

SKELS := $(BUILD)/sockops.skel.h $(BUILD)/sk_msg.skel.h $(BUILD)/sockops_core.skel.h \
         $(BUILD)/sk_msg_core.skel.h $(BUILD)/guard.skel.h $(BUILD)/sockopt.skel.h \
         $(BUILD)/probe.skel.h $(BUILD)/join.skel.h $(BUILD)/join_core.skel.h
# Generated headers are not intermediates: keep them (and their objects).
.SECONDARY: $(SKELS) $(patsubst %.skel.h,%.bpf.o,$(SKELS))

$(BUILD)/loader/%.o: loader/%.c $(SKELS) | $(BUILD)/loader
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# Rebuilt whenever the version string changes.
$(BUILD)/loader/main.o: CFLAGS += -DSA_VERSION='"$(SA_VERSION)"'
$(BUILD)/loader/main.o: $(BUILD)/version
$(BUILD)/version: FORCE | $(BUILD)
	$(Q)echo '$(SA_VERSION)' | cmp -s - $@ || echo '$(SA_VERSION)' > $@
.PHONY: FORCE
FORCE:

$(BUILD)/sockaccel: $(LOADER_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/tools/%.c tests/tools/common.h | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/tools $< -o $@ -lpthread

$(BUILD)/tests/gorelay: tests/apps/gorelay/main.go tests/apps/gorelay/go.mod | $(BUILD)/tests
	$(call msg,GO,$@)
	$(Q)cd tests/apps/gorelay && GOCACHE=$(abspath $(BUILD))/gocache GOFLAGS=-mod=mod \
		$(GO) build -o $(abspath $@) .

$(BUILD)/bench/sabench: bench/sabench.c | $(BUILD)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< -o $@ -lpthread -lm

# The bench's "floor" variant: empty programs at sockaccel's cgroup hooks.
$(BUILD)/bench/floor.bpf.o: bench/floor.bpf.c $(BUILD)/vmlinux.h | $(BUILD)/bench
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# Installs missing build/test packages (apt), builds, runs every test.
test:
	$(Q)tests/run.sh

# Boots Debian's kernel packages under qemu and runs tests in each
# (tests/kernels/run.sh; SA_KERNELS, SA_KERNEL_TESTS choose).
test-kernels:
	$(Q)tests/kernels/run.sh

bench:
	$(Q)$(MAKE) -s all
	$(Q)bench/run.sh

# The binary embeds its BPF objects (skeletons): it runs from anywhere.
install: $(BUILD)/sockaccel
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -D -m 0755 $(BUILD)/sockaccel $(DESTDIR)$(SBINDIR)/sockaccel
	$(Q)install -D -m 0644 doc/sockaccel.8 $(DESTDIR)$(MANDIR)/man8/sockaccel.8
	$(Q)install -D -m 0644 doc/sockaccel.bash-completion $(DESTDIR)$(COMPDIR)/sockaccel
	$(Q)install -D -m 0644 doc/sockaccel.conf.example $(DESTDIR)$(DOCDIR)/sockaccel.conf.example
	$(Q)install -d $(DESTDIR)$(UNITDIR)
	$(Q)sed 's|@SBINDIR@|$(SBINDIR)|g' doc/sockaccel.service.in > $(DESTDIR)$(UNITDIR)/sockaccel.service
	$(Q)chmod 0644 $(DESTDIR)$(UNITDIR)/sockaccel.service

# A Debian package of `make install PREFIX=/usr` (dpkg-deb; no debhelper).
deb: $(BUILD)/sockaccel
	$(call msg,DEB,$(BUILD)/sockaccel_$(DEB_VERSION)_$(shell dpkg --print-architecture).deb)
	$(Q)rm -rf $(BUILD)/deb
	$(Q)$(MAKE) -s install PREFIX=/usr DESTDIR=$(abspath $(BUILD))/deb
	$(Q)install -d $(BUILD)/deb/DEBIAN
	$(Q)printf '%s\n' 'Package: sockaccel' 'Version: $(DEB_VERSION)' \
		'Architecture: $(shell dpkg --print-architecture)' \
		'Maintainer: sockaccel developers <sockaccel@localhost>' \
		'Depends: libbpf1, libelf1, zlib1g, libcap2' 'Section: net' 'Priority: optional' \
		'Description: local TCP acceleration for cgroups, invisible to the programs' \
		' Connections between processes of attached cgroups skip the TCP/IP stack' \
		' (sock_ops + sk_msg, bpf_msg_redirect_hash) where that is provably' \
		' invisible to them.' > $(BUILD)/deb/DEBIAN/control
	$(Q)dpkg-deb --root-owner-group --build $(BUILD)/deb \
		$(BUILD)/sockaccel_$(DEB_VERSION)_$(shell dpkg --print-architecture).deb > /dev/null

clean:
	$(call msg,CLEAN,$(BUILD))
	$(Q)rm -rf $(BUILD)

-include $(wildcard $(BUILD)/*.d $(BUILD)/loader/*.d $(BUILD)/tests/*.d $(BUILD)/bench/*.d)
