#!/usr/bin/env bash
# Host test of dkms.conf with the real dkms, in a private DKMS tree (nothing
# is installed into the system's): `dkms add` + `dkms build` against the test
# kernel build tree gives optprobe.ko; against a copy of that tree without
# rust/*.rmeta (as Debian's headers packages ship it) the build is refused
# with the preflight's reason before any compiler runs. Prints "N passed, N failed".
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/env.sh"
kdir=${KDIR:-$("$repo/scripts/build-kernel" --dir)}
command -v dkms > /dev/null || { echo "dkms not installed (scripts/bootstrap installs it)"; echo "0 passed, 1 failed"; exit 1; }
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$repo/dkms.conf")
krel=$(cat "$kdir/include/config/kernel.release")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/optprobe-$ver" "$tmp/tree" "$tmp/broken/rust"
# The source as DKMS would get it: the tracked files (or, outside a git
# checkout, the tree without build output).
if git -C "$repo" rev-parse --git-dir > /dev/null 2>&1; then
    (cd "$repo" && git ls-files -co --exclude-standard | grep -v '^results/' | tar cf - -T -)
else
    (cd "$repo" && tar --exclude=./build --exclude=./results --exclude='*.o' --exclude='*.ko' --exclude='.*.cmd' -cf - .)
fi | tar xf - -C "$tmp/src/optprobe-$ver"
d=(--dkmstree "$tmp/tree" --sourcetree "$tmp/src" -m optprobe -v "$ver" -k "$krel" -a aarch64)
pass=0 fail=0
result() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "ok: $2"; else fail=$((fail + 1)); echo "FAIL: $2"; return 1; fi; }
dkms add "${d[@]}" > "$tmp/add.log" 2>&1
result $? "dkms add" || cat "$tmp/add.log"
dkms build "${d[@]}" --kernelsourcedir "$kdir" > "$tmp/build.log" 2>&1
rc=$?
ko=$(find "$tmp/tree/optprobe/$ver/$krel" -name 'optprobe.ko*' 2>/dev/null | head -1)
[ $rc = 0 ] && [ -n "$ko" ] && modinfo "$ko" | grep -q "vermagic: *$krel "
result $? "dkms build against the test kernel gives optprobe.ko for $krel" || { cat "$tmp/build.log"; find "$tmp/tree" -name make.log -exec tail -30 {} \; ; }
# A headers tree without the Rust artifacts: refused by the preflight.
cp "$kdir/.config" "$tmp/broken/.config"
mkdir -p "$tmp/broken/include/config" && cp "$kdir/include/config/kernel.release" "$tmp/broken/include/config/"
dkms build "${d[@]}" --kernelsourcedir "$tmp/broken" --force > "$tmp/broken.log" 2>&1
rc=$?
[ $rc != 0 ] && grep -q "MISSING  Rust build artifacts" "$tmp/broken.log" && ! grep -q "error:" "$tmp/broken.log"
result $? "dkms build against headers without rust/*.rmeta is refused with the preflight's reason" || cat "$tmp/broken.log"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
