#!/usr/bin/env bash
# scripts/test.sh - installs what is missing, builds, runs every test: once
# in a plain build (then the unit suites again under valgrind, make
# check-valgrind), once with AddressSanitizer + UndefinedBehaviorSanitizer;
# then each libFuzzer harness for 15 s (scripts/fuzz.sh). Exits non-zero on
# any failure, after printing the logs of the suites that failed.
#
# Suites run in parallel, in two parts (tests/tests.am): first the ones
# that measure the rate on the wire to a few ms (make check-timing), one
# per core and alone, since a loaded CPU blurs what they measure; then the
# others (make check-others, -j$CHECK_JOBS: default two per core, as they
# mostly wait). The valgrind runs and the fuzz harnesses, which use their
# core, run one per core.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
scripts/deps.sh
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi

jobs=$(nproc 2>/dev/null || echo 2)
check_jobs=${CHECK_JOBS:-$((2 * jobs))}
timing_jobs=$jobs
failed=0
summary=()

# The log of every suite whose result (its .trs) is not a pass.
show_failed_logs() { # build-dir
    local trs log
    for trs in "$1"/tests/*.trs "$1"/tests/*/*.trs; do
        [ -f "$trs" ] || continue
        grep -qE '^:test-result: (FAIL|ERROR|XPASS)' "$trs" || continue
        log=${trs%.trs}.log
        echo "---- $log"
        tail -n 80 "$log"
    done
}

# The names of the suites that failed, and the totals, from make check's
# output.
failed_names() { # check.out
    grep -E '^(FAIL|ERROR|XPASS): ' "$1" | tr '\n' ' ' || true
}
totals() { # check.out (one or more make check summaries)
    awk '/^# PASS:/ { p += $3 } /^# FAIL:/ { f += $3 }
         END { printf "# PASS:  %d # FAIL:  %d ", p, f }' "$1"
}

# One line per suite: its name and Check's totals.
suite_lines() { # build-dir
    local f
    for f in "$1"/tests/*.log "$1"/tests/*/*.log; do
        [ -f "$f" ] || continue
        case "$f" in *-suite.log) continue ;; esac
        summary+=("  ${f#"$1"/}: $(grep -h 'Checks:' "$f" | tail -1)")
    done
}

build_and_check() { # name configure-args...
    local name=$1; shift
    local dir="$top/_build/$name" t0=$SECONDS t1
    rm -rf "$dir"; mkdir -p "$dir"
    echo "== $name: configure $*"
    (cd "$dir" && "$top/configure" -q "$@" >/dev/null)
    echo "== $name: make"
    make -C "$dir" -j"$jobs" >/dev/null
    t1=$SECONDS
    echo "== $name: make check-timing (-j$timing_jobs), check-others (-j$check_jobs)"
    local ok=1 t2
    make -C "$dir" -j"$timing_jobs" check-timing >"$dir/check.out" 2>&1 || ok=0
    t2=$SECONDS
    make -C "$dir" -j"$check_jobs" check-others >>"$dir/check.out" 2>&1 || ok=0
    if [ "$ok" -eq 1 ]; then
        summary+=("$name: $(totals "$dir/check.out")(build $((t1 - t0)) s, check $((t2 - t1)) s timing + $((SECONDS - t2)) s others)")
        suite_lines "$dir"
    else
        failed=1
        tail -n 40 "$dir/check.out"
        show_failed_logs "$dir"
        summary+=("$name: FAILED $(failed_names "$dir/check.out")")
    fi
}

build_and_check plain
# The unit suites under valgrind: no leak, no invalid access. The list is
# tests/tests.am's (VALGRIND_TESTS: UNIT_TESTS and the sandbox's suite).
plain=$top/_build/plain
if [ -f "$plain/Makefile" ]; then
    echo "== plain: make check-valgrind (-j$jobs)"
    t0=$SECONDS
    if make -C "$plain" -j"$jobs" check-valgrind >"$plain/valgrind.out" 2>&1; then
        summary+=("valgrind: $(totals "$plain/valgrind.out")($((SECONDS - t0)) s)")
    else
        failed=1
        tail -n 40 "$plain/valgrind.out"
        show_failed_logs "$plain"
        summary+=("valgrind: FAILED $(failed_names "$plain/valgrind.out")")
    fi
    while IFS= read -r l; do summary+=("  valgrind ${l#*: }: ${l%%:*}"); done \
        < <(grep -E '^(PASS|FAIL|ERROR): ' "$plain/valgrind.out" | sed 's/^PASS:/clean:/')
fi
build_and_check sanitizers --enable-sanitizers

# The libFuzzer harnesses of tests/fuzz/, 15 s each from their seed
# corpora: built once, then one group per core at a time.
echo "== fuzz: scripts/fuzz.sh 15 ($jobs at a time)"
t0=$SECONDS
fuzz_out=$top/_build/fuzz
mkdir -p "$fuzz_out"
rm -f "$fuzz_out"/test-*.out
harnesses=()
for f in tests/fuzz/fuzz_*.c; do
    n=${f#tests/fuzz/fuzz_}
    harnesses+=("${n%.c}")
done
fuzz_failed=0
# the build, and a first harness for one run, alone: the groups then share
# the built harnesses and never build at the same time
if ! FUZZ_FLAGS=-runs=1 scripts/fuzz.sh 1 "${harnesses[0]}" >"$fuzz_out/build.out" 2>&1; then
    fuzz_failed=1
    tail -n 150 "$fuzz_out/build.out"
else
    pids=()
    for ((g = 0; g < jobs; g++)); do
        group=()
        for ((i = g; i < ${#harnesses[@]}; i += jobs)); do group+=("${harnesses[i]}"); done
        [ "${#group[@]}" -gt 0 ] || continue
        scripts/fuzz.sh 15 "${group[@]}" >"$fuzz_out/test-$g.out" 2>&1 &
        pids+=("$!")
    done
    for ((g = 0; g < ${#pids[@]}; g++)); do
        if ! wait "${pids[g]}"; then
            fuzz_failed=1
            tail -n 150 "$fuzz_out/test-$g.out"
        fi
    done
    summary+=("fuzz: build and runs $((SECONDS - t0)) s")
    while IFS= read -r l; do summary+=("  $l"); done \
        < <(cat "$fuzz_out"/test-*.out | grep -aE '^fuzz [a-z0-9_]+: ' | sort)
fi
if [ "$fuzz_failed" -ne 0 ]; then
    failed=1
    summary+=("fuzz: FAILED (logs _build/fuzz/test-*.out, inputs _build/fuzz/artifacts/)")
fi

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "scripts/test.sh: FAILED"
    exit 1
fi
echo "scripts/test.sh: all tests passed in $SECONDS s"
