#!/usr/bin/env bash
# scripts/deps.sh - installs the Debian packages wagate needs, if missing.
# Usage: scripts/deps.sh [extra-package ...]
set -euo pipefail
pkgs=(build-essential autoconf automake libtool pkg-config
      libevent-dev libcurl4-openssl-dev libjson-c-dev libssl-dev check valgrind curl jq
      redis-server libhiredis-dev faketime # shared state (SPEC section 11)
      clang libclang-rt-dev llvm # scripts/fuzz.sh: libFuzzer, symbolizer
      chromium fonts-dejavu-core # the inbox page's browser tests
      "$@")
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
