# scripts/lib.sh - sourced by run.sh and bench.sh (not run on its own).

# build_tree DIR [configure arguments...]: configures and builds wagate in
# DIR (under the source tree) unless DIR/wagate is newer than every source.
build_tree() {
    local dir=$1 src=$PWD
    shift
    if [ -x "$dir/wagate" ] &&
        [ -z "$(find src -newer "$dir/wagate" \( -name '*.[ch]' -o -name '*.lua' \) 2>/dev/null | head -1)" ]; then
        return 0
    fi
    echo "building in ${dir#"$PWD"/}" >&2
    autoreconf -fi >/dev/null 2>&1
    mkdir -p "$dir"
    (cd "$dir" && "$src/configure" -q "$@" >/dev/null && make -j"$(nproc)" >/dev/null)
}

# config_get BIN CONF JQ-PATH: one value of the effective configuration,
# as `wagate --check-config` prints it (defaults filled in), or "" for null.
config_get() {
    "$1/wagate" --check-config -c "$2" 2>/dev/null | jq -r "$3 // empty"
}
