# gemma2.c build.
#   make            the library (build/release/libgemma2.a) and the CLI (./gemma2)
#   make test       every test, built with AddressSanitizer + UndefinedBehaviorSanitizer
#   make run        build, then run the main job on the bundled default model
#   make clean
#
# Sources are found by wildcard: a new file in src/, cli/ or tests/unit/ needs no edit here.
# Files named *_avx2.c / *_avx512.c are compiled for that instruction set only; the kernels
# dispatch to them at run time after checking the CPU (see src/kernels/dispatch.c).

CC      ?= gcc
OPT     ?= -O2
CFLAGS_COMMON = -std=c17 -g -Wall -Wextra -Werror -Iinclude -Isrc -fopenmp \
                -D_GNU_SOURCE -MMD -MP
LDLIBS  = -lcjson -lopenblas -lm -lpthread -fopenmp

AVX2_FLAGS   = -mavx2 -mfma -mf16c
AVX512_FLAGS = -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni -mfma -mf16c

LIB_SRC  := $(shell find src -name '*.c' | sort)
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))

REL  = build/release
ASAN = build/asan
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

REL_OBJ  = $(LIB_SRC:%.c=$(REL)/%.o)
ASAN_OBJ = $(LIB_SRC:%.c=$(ASAN)/%.o)
REL_CLI  = $(CLI_SRC:%.c=$(REL)/%.o)
ASAN_CLI = $(CLI_SRC:%.c=$(ASAN)/%.o)
TEST_BIN = $(TEST_SRC:tests/unit/%.c=$(ASAN)/tests/%)

.PHONY: all test run clean bench-build
all: gemma2

isa_flags = $(if $(findstring _avx512.c,$<),$(AVX512_FLAGS),$(if $(findstring _avx2.c,$<),$(AVX2_FLAGS)))

$(REL)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(OPT) $(isa_flags) -c $< -o $@

$(ASAN)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN_FLAGS) $(isa_flags) -c $< -o $@

$(REL)/libgemma2.a: $(REL_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(ASAN)/libgemma2.a: $(ASAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

gemma2: $(REL_CLI) $(REL)/libgemma2.a
	$(CC) -o $@ $(REL_CLI) $(REL)/libgemma2.a $(LDLIBS)

$(ASAN)/gemma2: $(ASAN_CLI) $(ASAN)/libgemma2.a
	$(CC) $(SAN_FLAGS) -o $@ $(ASAN_CLI) $(ASAN)/libgemma2.a $(LDLIBS)

$(ASAN)/tests/%: tests/unit/%.c $(ASAN)/libgemma2.a tests/unit/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN_FLAGS) -Itests/unit -o $@ $< $(ASAN)/libgemma2.a $(LDLIBS)

# Tests: unit tests and CLI tests against the sanitized build, plus the release CLI where
# speed matters (reference comparisons on larger models). tests/run.sh prints the summary.
test: $(TEST_BIN) $(ASAN)/gemma2 gemma2
	@tests/run.sh

run: gemma2
	@scripts/run_default.sh

clean:
	rm -rf build gemma2

-include $(shell find build -name '*.d' 2>/dev/null)
