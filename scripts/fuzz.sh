#!/usr/bin/env bash
# scripts/fuzz.sh - builds the libFuzzer harnesses of tests/fuzz/ with clang
# (libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer) and runs each,
# one after the other, on a copy of its seed corpus.
#
# Usage: scripts/fuzz.sh [seconds] [name...]
#   seconds  how long each harness runs (default 60)
#   name     run only these (tests/fuzz/fuzz_<name>.c); default: all
# Environment: FUZZ_FLAGS    extra libFuzzer flags (e.g. "-seed=1")
#              FUZZ_CFLAGS   extra compiler flags for the harnesses and src
#                            (e.g. -DWAGATE_FUZZ_STRICT_CONFIG)
#              FUZZ_MAX_LEN  largest input (default 4096, or twice the
#                            largest seed when that is more)
#
# Every tests/fuzz/fuzz_<name>.c is built (tests/fuzz/fuzz.mk) into
# _build/fuzz/fuzz_<name>, linked with every src/*.c but src/main.c and
# every src/lib/*.c. Each
# runs on a copy of tests/fuzz/corpus/<name>/ (what it finds stays under
# _build/fuzz/run/<name>/; the repository is never written) with
# tests/fuzz/<name>.dict, or else tests/fuzz/json.dict. Exits non-zero on
# any crash, leak, timeout, out-of-memory or sanitizer report; the input
# that caused it is saved under _build/fuzz/artifacts/ and printed.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
out=$top/_build/fuzz

secs=60
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi

all=()
for f in tests/fuzz/fuzz_*.c; do
    [ -f "$f" ] || continue
    n=${f#tests/fuzz/fuzz_}
    all+=("${n%.c}")
done
if [ "${#all[@]}" -eq 0 ]; then
    echo "fuzz: no tests/fuzz/fuzz_*.c" >&2
    exit 2
fi
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=("${all[@]}")
for n in "${names[@]}"; do
    if [ ! -f "tests/fuzz/fuzz_$n.c" ]; then
        echo "fuzz: no harness tests/fuzz/fuzz_$n.c (have: ${all[*]})" >&2
        exit 2
    fi
done

if ! command -v clang >/dev/null; then
    echo "fuzz: clang not found: run scripts/deps.sh" >&2
    exit 2
fi

# src/version.h includes configure's build-config.h: run configure once
# (again only when configure itself changes) in a directory of our own,
# unless the tree is configured in place (configure then refuses others).
[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
cfg=$out/cfg
mkdir -p "$cfg"
sum=$(cksum <configure)
if [ -f config.status ] && [ -f build-config.h ]; then
    cfg=$top
elif [ ! -f "$cfg/build-config.h" ] || [ "$(cat "$cfg/configure.sum" 2>/dev/null)" != "$sum" ]; then
    echo "== fuzz: configure (for build-config.h)"
    rm -f "$cfg/configure.sum"
    (cd "$cfg" && "$top/configure" -q CC=clang >configure.out 2>&1) || {
        cat "$cfg/configure.out" >&2
        exit 2
    }
    echo "$sum" >"$cfg/configure.sum"
fi

# the libraries configure.ac asks pkg-config for, but the test framework
mods=()
while IFS= read -r m; do
    [ -n "$m" ] && mods+=("$m")
done < <(sed -n 's/.*PKG_CHECK_MODULES(\[\([A-Za-z0-9_]*\)\], *\[\([^]]*\)\].*/\1 \2/p' configure.ac |
    awk '$1 != "CHECK" { $1 = ""; sub(/^ /, ""); print }')
pkg_cflags=$(pkg-config --cflags "${mods[@]}")
pkg_libs=$(pkg-config --libs "${mods[@]}")

export FUZZ_CFLAGS=${FUZZ_CFLAGS:-}
flags="$(clang --version | head -1) | $cfg | $pkg_cflags | $pkg_libs | $FUZZ_CFLAGS | $(cksum <tests/fuzz/fuzz.mk)"
if [ "$(cat "$out/flags" 2>/dev/null)" != "$flags" ]; then
    echo "$flags" >"$out/flags"
fi
echo "== fuzz: build ${all[*]}"
make -s -f tests/fuzz/fuzz.mk -j"$(nproc 2>/dev/null || echo 2)" \
    OUT="$out" CFG="$cfg" PKG_CFLAGS="$pkg_cflags" PKG_LIBS="$pkg_libs"

symbolizer=$(command -v llvm-symbolizer || true)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1${symbolizer:+:external_symbolizer_path=$symbolizer}${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# Prints what a failed run left: the log's end and each input it saved.
report_failure() { # name log start-stamp
    echo "---- $2 (last 80 lines)"
    tail -n 80 "$2" | cut -c1-400
    grep -a 'fuzz invariant broken' "$2" | cut -c1-600 || true
    local found=0
    while IFS= read -r a; do
        found=1
        echo "---- crashing input: $a ($(wc -c <"$a") bytes)"
        od -An -c "$a" | head -n 40
        echo "---- reproduce: $out/fuzz_$1 $a"
    done < <(find "$out/artifacts" -type f -name "$1-*" -newer "$3")
    [ "$found" -eq 1 ] || echo "---- (no input saved; see the log)"
}

failed=0
summary=()
mkdir -p "$out/artifacts"
for n in "${names[@]}"; do
    run=$out/run/$n
    rm -rf "$run"
    mkdir -p "$run/corpus"
    seeds=0
    if [ -d "tests/fuzz/corpus/$n" ]; then
        cp -R "tests/fuzz/corpus/$n/." "$run/corpus/"
        seeds=$(find "$run/corpus" -type f | wc -l)
    else
        echo "fuzz: warning: no seed corpus tests/fuzz/corpus/$n/"
    fi
    dict=
    if [ -f "tests/fuzz/$n.dict" ]; then
        dict=tests/fuzz/$n.dict
    elif [ -f tests/fuzz/json.dict ]; then
        dict=tests/fuzz/json.dict
    fi
    maxlen=${FUZZ_MAX_LEN:-}
    if [ -z "$maxlen" ]; then
        big=$(find "$run/corpus" -type f -printf '%s\n' | sort -n | tail -1)
        maxlen=$((2 * ${big:-0}))
        [ "$maxlen" -ge 4096 ] || maxlen=4096
    fi
    args=(-max_total_time="$secs" -max_len="$maxlen" -timeout=10
          -rss_limit_mb=2048 -detect_leaks=1 -print_final_stats=1
          -artifact_prefix="$out/artifacts/$n-")
    [ -z "$dict" ] || args+=(-dict="$dict")
    # shellcheck disable=SC2206 # FUZZ_FLAGS is a list of flags on purpose
    args+=(${FUZZ_FLAGS:-})
    log=$run/fuzz.log
    touch "$run/start"
    echo "== fuzz: $n for ${secs}s (${seeds} seeds, max_len $maxlen${dict:+, $dict})"
    rc=0
    "$out/fuzz_$n" "${args[@]}" "$run/corpus" >"$log" 2>&1 || rc=$?
    # belt and braces: a report that did not stop the run is a failure too
    if [ "$rc" -eq 0 ] && grep -qE '^(==[0-9]+==)?ERROR: |runtime error:|^SUMMARY: ' "$log"; then
        rc=1
    fi
    if [ "$rc" -ne 0 ]; then
        failed=1
        report_failure "$n" "$log" "$run/start"
        summary+=("fuzz $n: FAILED (exit $rc; log $log)")
        continue
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    corp=$(find "$run/corpus" -type f | wc -l)
    summary+=("fuzz $n: ok, ${runs:-?} runs in ${secs}s, ${cov:-cov ?}, corpus $seeds -> $corp")
done

echo
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "scripts/fuzz.sh: FAILED (inputs under $out/artifacts/)"
    exit 1
fi
echo "scripts/fuzz.sh: no crash, leak, timeout or sanitizer report"
