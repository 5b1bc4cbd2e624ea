#!/usr/bin/env bash
# scripts/test.sh - installs what is missing, builds, runs every test: once
# in a plain build (unit tests also under valgrind), once with
# AddressSanitizer + UndefinedBehaviorSanitizer; then each libFuzzer
# harness for 15 s (scripts/fuzz.sh). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
scripts/deps.sh
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi

jobs=$(nproc 2>/dev/null || echo 2)
failed=0
summary=()

show_logs() {
    for f in "$1"/tests/*.log; do
        [ -f "$f" ] || continue
        case "$f" in *test-suite.log) continue ;; esac
        echo "---- $f"; tail -n 60 "$f"
    done
}

build_and_check() { # name configure-args...
    local name=$1; shift
    local dir="$top/_build/$name"
    rm -rf "$dir"; mkdir -p "$dir"
    echo "== $name: configure $*"
    (cd "$dir" && "$top/configure" -q "$@" >/dev/null)
    echo "== $name: make"
    make -C "$dir" -j"$jobs" >/dev/null
    echo "== $name: make check"
    if make -C "$dir" -j1 check >"$dir/check.out" 2>&1; then
        summary+=("$name: $(grep -E '^# (PASS|FAIL)' "$dir/check.out" | tr '\n' ' ')")
        for f in "$dir"/tests/check_*.log; do
            summary+=("  $(basename "$f" .log): $(grep -h 'Checks:' "$f" | tail -1)")
        done
    else
        failed=1
        cat "$dir/check.out" | tail -n 40
        show_logs "$dir"
        summary+=("$name: FAILED")
    fi
}

build_and_check plain
# unit tests under valgrind: no leak, no invalid access
if [ -d "$top/_build/plain" ]; then
    for t in check_config check_units check_headers check_sandbox check_precheck check_json_strict check_query check_cache check_learn check_ratelimit check_idempotency check_state_file check_shaper check_stats check_review; do
        exe="$top/_build/plain/tests/$t"
        [ -x "$exe" ] || continue
        if CK_FORK=no valgrind -q --error-exitcode=1 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect "$exe" >"$exe.valgrind" 2>&1; then
            summary+=("valgrind $t: clean")
        else
            failed=1; cat "$exe.valgrind" | tail -n 40
            summary+=("valgrind $t: FAILED")
        fi
    done
fi
build_and_check sanitizers --enable-sanitizers

# the libFuzzer harnesses of tests/fuzz/, 15 s each from their seed corpora
echo "== fuzz: scripts/fuzz.sh 15"
mkdir -p "$top/_build/fuzz"
if scripts/fuzz.sh 15 >"$top/_build/fuzz/test.out" 2>&1; then
    while IFS= read -r l; do summary+=("$l"); done \
        < <(grep -aE '^fuzz [a-z0-9_]+: ' "$top/_build/fuzz/test.out")
else
    failed=1
    tail -n 150 "$top/_build/fuzz/test.out"
    while IFS= read -r l; do summary+=("$l"); done \
        < <(grep -aE '^fuzz [a-z0-9_]+: ' "$top/_build/fuzz/test.out")
    summary+=("fuzz: FAILED (log _build/fuzz/test.out, inputs _build/fuzz/artifacts/)")
fi

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "scripts/test.sh: FAILED"
    exit 1
fi
echo "scripts/test.sh: all tests passed"
