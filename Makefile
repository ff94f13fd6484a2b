# Makefile — builds clearmta (optimised), its sanitized test build, tests, fuzzers and docs.
# Sources are found by wildcard: a new src/<module>/<file>.c, tests/unit/test_*.c or
# fuzz/fuzz_*.c is built without editing this file.

CC      ?= gcc
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
INC     := -Isrc
LIBS    := -levent_core -levent_extra -levent_openssl -levent_pthreads -lhiredis -lssl -lcrypto -lcrypt -lcares -lresolv -lpsl -lidn2 -lpthread -lm

RELEASE_CFLAGS := $(CSTD) $(WARN) $(INC) -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2
ASAN_CFLAGS    := $(CSTD) $(WARN) $(INC) -O1 -g -fno-omit-frame-pointer \
                  -fsanitize=address,undefined -fno-sanitize-recover=undefined -DCLEARMTA_TESTING

# The console's files (console/) are embedded by a generated source, part of the library.
ASSETS   := $(sort $(wildcard console/*))
GEN_SRC  := build/gen/console_assets.c
SRC      := $(sort $(wildcard src/*/*.c)) $(GEN_SRC)
LIB_SRC  := $(filter-out src/cli/%,$(SRC))
CLI_SRC  := $(filter src/cli/%,$(SRC))
HDRS     := $(wildcard src/*.h src/*/*.h src/*/*.def)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))

REL_OBJ  := $(SRC:%.c=build/release/%.o)
ASAN_OBJ := $(SRC:%.c=build/asan/%.o)
ASAN_LIB_OBJ := $(LIB_SRC:%.c=build/asan/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)

BIN      := build/clearmta
ASAN_BIN := build/asan/clearmta
FUZZ_SECONDS ?= 60

.PHONY: all deps run test unit integration fuzz bench docs clean

all: deps $(BIN) docs

deps:
	@sh scripts/deps.sh build

$(GEN_SRC): $(ASSETS) scripts/embed_assets.py
	@mkdir -p $(dir $@)
	python3 scripts/embed_assets.py $@ $(ASSETS)

build/release/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE_CFLAGS) -c $< -o $@

build/asan/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c $< -o $@

$(REL_OBJ) $(ASAN_OBJ): | deps

$(BIN): $(REL_OBJ)
	$(CC) $(RELEASE_CFLAGS) $^ -o $@ $(LIBS)

$(ASAN_BIN): $(ASAN_OBJ)
	$(CC) $(ASAN_CFLAGS) $^ -o $@ $(LIBS)

build/asan/tests/%: tests/unit/%.c $(ASAN_LIB_OBJ) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -Wno-missing-prototypes -Itests/unit $< $(ASAN_LIB_OBJ) -o $@ $(LIBS) -lcmocka

# docs/replies.md is generated from the reply table; never edit it by hand.
docs: docs/replies.md
docs/replies.md: $(BIN)
	@mkdir -p docs
	$(BIN) docs replies > $@.tmp && mv $@.tmp $@

run: all
	@echo "clearmta: the console is at http://127.0.0.1:8025/ (SMTP: 127.0.0.1:2525, submission: 127.0.0.1:2587)"
	$(BIN) serve

unit: $(UNIT_BIN)
integration: $(ASAN_BIN)

test:
	@sh scripts/deps.sh test
	@$(MAKE) --no-print-directory $(ASAN_BIN) $(UNIT_BIN) $(BIN)
	@sh tests/run.sh

# libFuzzer targets: clang; the library compiled once with coverage (fuzzer-no-link), then one
# fuzz/fuzz_<parser>.c linked against it per target.
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := $(CSTD) $(INC) -O1 -g $(FUZZ_SAN) -DCLEARMTA_TESTING
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
build/fuzz/%: fuzz/%.c $(FUZZ_LIB_OBJ) $(wildcard fuzz/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_LIB_OBJ) -o $@ $(LIBS)

fuzz: deps $(FUZZ_BIN)
	@sh scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

bench: all
	@sh scripts/deps.sh bench
	@sh bench/run.sh

# make install [PREFIX=/usr/local] [DESTDIR=]; what goes where is in scripts/install.sh.
PREFIX  ?= /usr/local
DESTDIR ?=
.PHONY: install uninstall
install: $(BIN)
	@sh scripts/install.sh install "$(PREFIX)" "$(DESTDIR)"

uninstall:
	@sh scripts/install.sh uninstall "$(PREFIX)" "$(DESTDIR)"

clean:
	rm -rf build
