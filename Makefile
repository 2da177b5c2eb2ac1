# PX — build, tests, demo and benchmarks.  `make check` and `make demo` are
# the two commands a new machine needs; both install what is missing first.
#
# Layout: sources by layer (grammar/ frontend/ ir/ codegen/ runtime/ sched/),
# everything generated or built goes to build/.

.DEFAULT_GOAL := all
B       := build
CC      := gcc
LLVM_CONFIG := /usr/lib/llvm-16/bin/llvm-config
CLANG   := clang-16

# Debug checks (the IR verifier after every pass) stay on unless RELEASE=1.
OPT     ?= -O2 -g
DEFS    := $(if $(RELEASE),,-DPX_DEBUG=1)
WARN    := -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter
SAN     ?=
PKGS    := SPIRV-Tools vulkan
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LLVM_CFLAGS = $(shell $(LLVM_CONFIG) --cflags 2>/dev/null | sed 's/-std=[^ ]*//; s/-W[^ ]*//g')
LLVM_LIBS   = $(shell $(LLVM_CONFIG) --ldflags --libs core orcjit native passes analysis target 2>/dev/null) \
              $(shell $(LLVM_CONFIG) --system-libs 2>/dev/null)
CFLAGS  := $(WARN) $(OPT) $(DEFS) $(SAN) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
           -MMD -MP -I. -Iinclude -I$(B)/gen
LDLIBS   = $(PKG_LIBS) $(LLVM_LIBS) -lstdc++ -lm -lpthread -ldl
LDFLAGS := $(SAN)

# ---- sources ---------------------------------------------------------------
GEN_C     := $(B)/gen/lex.c $(B)/gen/parse.c
PXC_SRC   := $(wildcard frontend/*.c ir/*.c codegen/*.c)
PX_SRC    := $(wildcard runtime/*.c sched/*.c)
PXC_OBJ   := $(PXC_SRC:%.c=$(B)/obj/%.o) $(GEN_C:$(B)/gen/%.c=$(B)/obj/gen/%.o)
PX_OBJ    := $(PX_SRC:%.c=$(B)/obj/%.o)
TOOLS     := $(patsubst tools/%.c,$(B)/%,$(wildcard tools/*.c))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
LIBPXC    := $(B)/libpxc.a
LIBPX     := $(B)/libpx.a

# Tests and tools run on lavapipe with the Mesa disk cache off, so the
# device is fixed and timings are not skewed.
export VK_DRIVER_FILES  ?= /usr/share/vulkan/icd.d/lvp_icd.x86_64.json
export VK_ICD_FILENAMES ?= /usr/share/vulkan/icd.d/lvp_icd.x86_64.json
export MESA_SHADER_CACHE_DISABLE := true

.PHONY: all deps check test unit golden-test golden asan fuzz demo bench bench-cost bench-compile install clean
all: $(LIBPXC) $(LIBPX) $(TOOLS) $(UNIT_BIN)

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

$(B)/%: $(B)/obj/tools/%.o $(LIBPX) $(LIBPXC)
	$(CC) $(LDFLAGS) $< $(LIBPX) $(LIBPXC) $(LDLIBS) -o $@
$(B)/tests/%: $(B)/obj/tests/unit/%.o $(LIBPX) $(LIBPXC)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIBPX) $(LIBPXC) $(LDLIBS) -o $@

# ---- tests -----------------------------------------------------------------
# tests/run.sh runs every unit test and the golden suite and ends with one
# `N passed, N failed` line.
check: deps
	@$(MAKE) --no-print-directory all
	@sh tests/run.sh $(B)

golden: all
	@sh tests/golden.sh $(B) --update

asan: deps
	@$(MAKE) --no-print-directory B=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow -Wno-format-truncation" all
	@ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    UBSAN_OPTIONS=print_stacktrace=1 sh tests/run.sh build/asan

FUZZ_SECONDS ?= 600
fuzz: deps
	@sh tests/fuzz/run.sh $(B) $(FUZZ_SECONDS)

demo: deps
	@$(MAKE) --no-print-directory all
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

PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIBPX) $(LIBPXC) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/px.h $(DESTDIR)$(PREFIX)/include/
	sed 's|@PREFIX@|$(PREFIX)|' tools/libpx.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libpx.pc

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
