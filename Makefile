# PX — build, tests, demo and benchmarks.  `make check` and `make demo` are
# the two commands a new machine needs; both install what is missing first.
#
# Layout: sources by layer (grammar/ frontend/ ir/ codegen/ runtime/ sched/),
# everything generated or built goes to build/.

.DEFAULT_GOAL := all
# objects are never deleted as intermediates (make would rebuild them, and
# relink, on every call)
.SECONDARY:
B       := build
CC      := gcc
LLVM_CONFIG := /usr/lib/llvm-16/bin/llvm-config
CLANG   := clang-16

# Debug checks (the IR verifier after every pass) stay on unless RELEASE=1.
OPT     ?= -O2 -g
DEFS    := $(if $(RELEASE),,-DPX_DEBUG=1)
WARN    := -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter
SAN     ?=
PKGS    := SPIRV-Tools vulkan jansson libmicrohttpd
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LLVM_CFLAGS = $(shell $(LLVM_CONFIG) --cflags 2>/dev/null | sed 's/-std=[^ ]*//; s/-W[^ ]*//g')
LLVM_LIBS   = $(shell $(LLVM_CONFIG) --ldflags --libs core orcjit native passes analysis target 2>/dev/null) \
              $(shell $(LLVM_CONFIG) --system-libs 2>/dev/null)
CFLAGS  := $(WARN) $(OPT) $(DEFS) $(SAN) -fPIC -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
           -MMD -MP -I. -Iinclude -I$(B)/gen
# LLVM is not linked into programs: the LLVM backend is a plugin
# (libpx-llvm.so.0, codegen/llvm_load.c) that uses the program's copy of
# the compiler library, so programs export their symbols (-rdynamic) and
# take every object of the static archives.
LDLIBS   = $(PKG_LIBS) -lstdc++ -lm -lpthread -ldl
LDFLAGS := $(SAN) -rdynamic

# ---- sources ---------------------------------------------------------------
GEN_C     := $(B)/gen/lex.c $(B)/gen/parse.c
PXC_SRC   := $(filter-out codegen/llvm.c,$(wildcard base/*.c frontend/*.c ir/*.c codegen/*.c))
PX_SRC    := $(wildcard runtime/*.c sched/*.c) $(filter-out hv/guest_main.c,$(wildcard hv/*.c))
PXC_OBJ   := $(PXC_SRC:%.c=$(B)/obj/%.o) $(GEN_C:$(B)/gen/%.c=$(B)/obj/gen/%.o)
PX_OBJ    := $(PX_SRC:%.c=$(B)/obj/%.o)
# the dashboard (hv/dash/) compiled in as arrays: no run-time path lookup
DASH_FILES := hv/dash/index.html hv/dash/dash.js hv/dash/dash.css
PX_OBJ    += $(B)/obj/gen/dash.o
TOOLS     := $(patsubst tools/%.c,$(B)/%,$(wildcard tools/*.c))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
LIBPXC    := $(B)/libpxc.a
LIBPX     := $(B)/libpx.a
# the shared library (soname libpx.so.MAJOR) and the LLVM plugin
PX_MAJOR  := $(shell sed -n 's/^\#define PX_VERSION_MAJOR \([0-9]*\).*/\1/p' include/px.h)
PX_VER    := $(shell sed -n 's/^\#define PX_VERSION_STRING "\(.*\)"/\1/p' include/px.h)
SOLIB     := $(B)/libpx.so.$(PX_VER)
LLVMPLUG  := $(B)/libpx-llvm.so.0
STATIC_LIBS = -Wl,--whole-archive $(LIBPX) $(LIBPXC) -Wl,--no-whole-archive

# Tests and tools run on lavapipe with the Mesa disk cache off, so the
# device is fixed and timings are not skewed.
export VK_DRIVER_FILES  ?= /usr/share/vulkan/icd.d/lvp_icd.x86_64.json
export VK_ICD_FILENAMES ?= /usr/share/vulkan/icd.d/lvp_icd.x86_64.json
export MESA_SHADER_CACHE_DISABLE := true

.PHONY: all deps check test unit golden-test golden asan tsan fuzz demo bench bench-cost bench-compile bench-sched bench-startup bench-hvd bench-oversub bench-multidev guest-client install clean guest-image vm-test
all: $(LIBPXC) $(LIBPX) $(SOLIB) $(LLVMPLUG) $(TOOLS) $(UNIT_BIN)

deps:
	@sh tools/install-deps.sh

# ---- generated grammar -----------------------------------------------------
$(B)/gen/lex.c: grammar/px.re $(B)/gen/parse.c
	@mkdir -p $(@D)
	re2c -W --utf8 --input-encoding utf8 -o $@ $<
$(B)/gen/parse.c: grammar/px.y
	@mkdir -p $(@D)
	bison -Wall -Werror --header=$(B)/gen/parse.h -o $@ $<
$(B)/gen/parse.h: $(B)/gen/parse.c
$(B)/gen/dash.c: $(DASH_FILES) hv/dash/embed.sh
	@mkdir -p $(@D)
	sh hv/dash/embed.sh $(DASH_FILES) >$@

$(B)/obj/gen/%.o: $(B)/gen/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wno-unused-function -Wno-sign-compare -c $< -o $@
$(B)/obj/%.o: %.c | $(B)/gen/parse.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(if $(findstring codegen/llvm,$<),$(LLVM_CFLAGS)) -c $< -o $@

$(LIBPXC): $(PXC_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(LIBPX): $(PX_OBJ)
	@rm -f $@
	ar rcs $@ $^ $(if $(PX_OBJ),,/dev/null 2>/dev/null || true)

$(SOLIB): $(PX_OBJ) $(PXC_OBJ)
	$(CC) $(SAN) -shared -Wl,-soname,libpx.so.$(PX_MAJOR) $^ $(LDLIBS) -o $@
	ln -sf $(notdir $@) $(B)/libpx.so.$(PX_MAJOR)
	ln -sf $(notdir $@) $(B)/libpx.so
$(LLVMPLUG): $(B)/obj/codegen/llvm.o
	$(CC) $(SAN) -shared -Wl,-soname,$(notdir $@) $< $(LLVM_LIBS) -o $@

$(B)/%: $(B)/obj/tools/%.o $(LIBPX) $(LIBPXC) | $(LLVMPLUG)
	$(CC) $(LDFLAGS) $< $(STATIC_LIBS) $(LDLIBS) -o $@
# tests live in $(B)/tests: their run path finds the plugin in $(B)
$(B)/tests/%: $(B)/obj/tests/unit/%.o $(LIBPX) $(LIBPXC) | $(LLVMPLUG)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -Wl,-rpath,'$$ORIGIN/..' $< $(STATIC_LIBS) $(LDLIBS) -o $@

# ---- tests -----------------------------------------------------------------
# tests/run.sh runs every unit test and the golden suite and ends with one
# `N passed, N failed` line.
# check: every suite, real guest VMs included (the image is built first:
# QEMU and busybox from apt when missing, a kernel from its Debian package)
check: deps
	@$(MAKE) --no-print-directory all $(B)/guest/pxrun
	@$(MAKE) --no-print-directory guest-image
	@sh tests/run.sh $(B)

golden: all
	@sh tests/golden.sh $(B) --update

ASAN_OPT := -O1 -g -fno-omit-frame-pointer
ASAN_SAN := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow \
            -Wno-format-truncation
asan: deps
	@$(MAKE) --no-print-directory B=build/asan OPT="$(ASAN_OPT)" SAN="$(ASAN_SAN)" all
	@ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    UBSAN_OPTIONS=print_stacktrace=1 PX_TEST_CFLAGS="-fsanitize=address,undefined" \
	    PX_TEST_OPT="$(ASAN_OPT)" PX_TEST_SAN="$(ASAN_SAN)" sh tests/run.sh build/asan

# ThreadSanitizer over the suites that run threads: the scheduler (both
# backends), the CPU backend's pool, the runtime.
TSAN_SAN := -fsanitize=thread -Wno-format-truncation
tsan: deps
	@$(MAKE) --no-print-directory B=build/tsan OPT="-O1 -g" SAN="$(TSAN_SAN)" all
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	    sh tests/tsan.sh build/tsan

FUZZ_SECONDS ?= 600
fuzz: deps
	@sh tests/fuzz/run.sh $(B) $(FUZZ_SECONDS)

demo: deps
	@$(MAKE) --no-print-directory all $(B)/guest/pxrun
	@sh guest/install-deps.sh && sh guest/build-image.sh $(B)/guest >/dev/null || \
	    echo "demo: no guest image (QEMU or the kernel package is missing): local clients instead"
	@sh examples/demo.sh $(B)

bench: deps
	@$(MAKE) --no-print-directory RELEASE=1 B=build/release all
	@sh bench/run.sh build/release

bench-cost: deps
	@$(MAKE) --no-print-directory RELEASE=1 B=build/release all
	@sh bench/cost.sh build/release

# compile time against statement count (docs/PERFORMANCE.md, "Compile time")
bench-compile: deps
	@$(MAKE) --no-print-directory RELEASE=1 B=build/release all
	@sh bench/compile_scale.sh build/release

# the scheduler's figures (bench/sched_bench.c): shares, lending, latency,
# overhead; JSON in build/release/sched.json
$(B)/sched_bench: $(B)/obj/bench/sched_bench.o $(LIBPX) $(LIBPXC) | $(LLVMPLUG)
	$(CC) $(LDFLAGS) $< $(STATIC_LIBS) $(LDLIBS) -o $@
bench-sched: deps
	@$(MAKE) --no-print-directory RELEASE=1 B=build/release all build/release/sched_bench
	@build/release/sched_bench build/release/sched.json

# oversubscription: a VM's launch speed with its buffers evicted against
# unpressured (bench/oversub_bench.c); JSON in build/release/oversub.json
$(B)/oversub_bench: $(B)/obj/bench/oversub_bench.o $(LIBPX) $(LIBPXC) | $(LLVMPLUG)
	$(CC) $(LDFLAGS) $< $(STATIC_LIBS) $(LDLIBS) -o $@
bench-oversub: deps
	@$(MAKE) --no-print-directory RELEASE=1 B=build/release all build/release/oversub_bench
	@build/release/oversub_bench build/release/oversub.json

bench-startup: deps
	@$(MAKE) --no-print-directory RELEASE=1 B=build/release all
	@sh bench/startup.sh build/release

# ---- real guests (guest/README.md) ------------------------------------------
# guest-image: QEMU and busybox-static through apt when missing, a Debian
# cloud kernel extracted from its package (never installed), a busybox
# initramfs with the virtio modules, /init, the test program and, when it
# exists, the static client $(B)/guest/pxrun. Everything in $(B)/guest.
guest-image:
	@sh guest/install-deps.sh
	@sh guest/build-image.sh $(B)/guest
# vm-test: the harness (three guests at once against a stand-in, a failing
# and a hanging guest: tests/vm.sh) and real VMs against pxhvd (three
# guests running pxrun --vm at once, checked against NumPy:
# tests/vm-hvd.sh); both are part of make check
vm-test: guest-image
	@$(MAKE) --no-print-directory all $(B)/guest/pxrun
	@sh tests/vm.sh $(B) && sh tests/vm-hvd.sh $(B)

# The guest build of pxrun (hv/client.c): what runs inside a VM and talks
# to pxhvd over a serial port or socket. Static, and nothing of Vulkan,
# LLVM or SPIRV-Tools: the daemon compiles. --json is built with jansson
# (its static archive).
GUEST_SRC := hv/guest_main.c hv/client.c hv/proto.c runtime/npy.c runtime/dtype.c
$(B)/guest/pxrun: $(GUEST_SRC) hv/hv.h include/px.h tools/pxrun_args.h
	@mkdir -p $(@D)
	$(CC) $(WARN) -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. -Iinclude -I$(B)/gen -static $(GUEST_SRC) -ljansson -lm -o $@
guest-client: $(B)/guest/pxrun
	@if ldd $< >/dev/null 2>&1; then echo "guest-client: $< is dynamic"; exit 1; fi
	@echo "guest-client: $< (static)"

# per-launch overhead through pxhvd against in-process, and the data path
$(B)/hvd_bench: $(B)/obj/bench/hvd_bench.o $(LIBPX) $(LIBPXC) | $(LLVMPLUG)
	$(CC) $(LDFLAGS) $< $(STATIC_LIBS) $(LDLIBS) -o $@
bench-hvd: deps
	@$(MAKE) --no-print-directory RELEASE=1 B=build/release all build/release/hvd_bench
	@build/release/hvd_bench

# many devices (bench/multidev_bench.c): migration downtime and total
# against a memcpy of the same bytes, auto-balance settling; JSON in
# build/release/multidev.json
$(B)/multidev_bench: $(B)/obj/bench/multidev_bench.o $(LIBPX) $(LIBPXC) | $(LLVMPLUG)
	$(CC) $(LDFLAGS) $< $(STATIC_LIBS) $(LDLIBS) -o $@
bench-multidev: deps
	@$(MAKE) --no-print-directory RELEASE=1 B=build/release all build/release/multidev_bench
	@build/release/multidev_bench build/release/multidev.json

PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIBPX) $(LIBPXC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SOLIB) $(LLVMPLUG) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(SOLIB)) $(DESTDIR)$(PREFIX)/lib/libpx.so.$(PX_MAJOR)
	ln -sf $(notdir $(SOLIB)) $(DESTDIR)$(PREFIX)/lib/libpx.so
	install -m 644 include/px.h include/pxsched.h include/pxclient.h $(DESTDIR)$(PREFIX)/include/
	sed 's|@PREFIX@|$(PREFIX)|; s|@VERSION@|$(PX_VER)|' tools/libpx.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libpx.pc

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
