#!/usr/bin/env bash
# Host test of scripts/preflight against the test kernel's build tree and
# broken copies of it: each missing requirement gets its MISSING line and a
# failing exit; the real tree passes. Prints "N passed, N failed".
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/env.sh"
kdir=${KDIR:-$("$repo/scripts/build-kernel" --dir)}
pass=0 fail=0
check() { # name, expected rc, expected pattern, preflight args...
    local name=$1 rc=$2 pat=$3; shift 3
    out=$(bash "$repo/scripts/preflight" "$@" 2>&1); got=$?
    if [ $got = "$rc" ] && grep -qE "$pat" <<< "$out"; then pass=$((pass + 1)); echo "ok: $name"
    else fail=$((fail + 1)); echo "FAIL: $name (rc $got, want $rc; want /$pat/)"; echo "$out"; fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
check "the test kernel is ready" 0 "^preflight: ready" --kdir "$kdir" --rustc /usr/bin/rustc
check "no build tree" 1 "^MISSING  kernel build tree" --kdir "$tmp/none"
mkdir -p "$tmp/norust" "$tmp/noart/rust"
grep -v '^CONFIG_RUST=' "$kdir/.config" > "$tmp/norust/.config"
check "no CONFIG_RUST" 1 "^MISSING  CONFIG_RUST" --kdir "$tmp/norust" --rustc /usr/bin/rustc
cp "$kdir/.config" "$tmp/noart/.config"
check "no rust/*.rmeta (as Debian's headers)" 1 "^MISSING  Rust build artifacts" --kdir "$tmp/noart" --rustc /usr/bin/rustc
sed 's/^CONFIG_RUSTC_VERSION=.*/CONFIG_RUSTC_VERSION=109701/' "$kdir/.config" > "$tmp/noart/.config"
check "another rustc built the kernel" 1 "^MISSING  rustc: .*built by rustc 1.97.1" --kdir "$tmp/noart" --rustc /usr/bin/rustc
LIBCLANG_PATH=$tmp/none check "LIBCLANG_PATH without libclang" 1 "^MISSING  libclang: LIBCLANG_PATH=" --kdir "$kdir" --rustc /usr/bin/rustc
echo "$pass passed, $fail failed"
[ $fail = 0 ]
