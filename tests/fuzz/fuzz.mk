# tests/fuzz/fuzz.mk - builds the libFuzzer harnesses; run by scripts/fuzz.sh
# (which passes OUT, CFG, PKG_CFLAGS and PKG_LIBS), not by automake.
#
# FUZZ_CFLAGS (from the environment) is added to every compile, e.g.
# -DWAGATE_FUZZ_STRICT_CONFIG.
#
# Every tests/fuzz/fuzz_<name>.c becomes $(OUT)/fuzz_<name>, linked with
# every src/*.c but src/main.c and every src/lib/*.c, so a new module or
# harness needs no edit here. Objects are rebuilt when a source, a header (-MMD) or the flags
# ($(OUT)/flags, rewritten by fuzz.sh only when they change) change.

CC = clang
SAN = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
COMMON = $(SAN) -g -O1 -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE \
	-DWAGATE_SYSCONFDIR='"/etc"' -Isrc -Isrc/lib -I$(CFG) $(PKG_CFLAGS) $(FUZZ_CFLAGS)
WARN = -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wvla

SRC = $(filter-out src/main.c,$(wildcard src/*.c src/lib/*.c))
OBJ = $(patsubst src/%.c,$(OUT)/obj/%.o,$(SRC))
HARNESS = $(wildcard tests/fuzz/fuzz_*.c)
BIN = $(patsubst tests/fuzz/%.c,$(OUT)/%,$(HARNESS))

all: $(BIN)

# src/ is the gateway's own code, built with -Werror by configure/make;
# a warning only clang gives is shown here but does not stop fuzzing.
$(OUT)/obj/%.o: src/%.c $(OUT)/flags
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(COMMON) $(WARN) -MMD -MP -c $< -o $@

# Harnesses: -Werror, and fuzz.h (LLVMFuzzerTestOneInput's prototype,
# FUZZ_CHECK) included even where a harness does not include it.
$(OUT)/hobj/%.o: tests/fuzz/%.c $(OUT)/flags
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(COMMON) $(WARN) -Werror -Itests/fuzz -include fuzz.h \
		-MMD -MP -c $< -o $@

$(OUT)/fuzz_%: $(OUT)/hobj/fuzz_%.o $(OBJ)
	@echo "  LD      $@"
	@$(CC) $(SAN) $^ $(PKG_LIBS) -lm -o $@

.PHONY: all
.DELETE_ON_ERROR:
.SECONDARY: # keep the harness objects between runs
-include $(OBJ:.o=.d) $(patsubst tests/fuzz/%.c,$(OUT)/hobj/%.d,$(HARNESS))
