#!/usr/bin/env bash
# Host test of make rust-analyzer against KDIR (run-tests: both kernels,
# after the module build): rust-project.json names the optprobe crate once,
# with its real root, dependencies that resolve to the kernel's crates, the
# cfgs its build used (the test hooks; on 7.x the module!/fmt cfgs), and only
# roots that exist; without a module build the script refuses.
# Prints "N passed, N failed".
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/env.sh"
kdir=${KDIR:-$("$repo/scripts/build-kernel" --dir)}
pass=0 fail=0
result() { # name, rc
    if [ "$2" = 0 ]; then pass=$((pass + 1)); echo "ok: $1"; else fail=$((fail + 1)); echo "FAIL: $1"; fi
}
cd "$repo"
make -s KDIR="$kdir" rust-analyzer > "$repo/build/rust-analyzer.out" 2>&1
rc=$?
cat "$repo/build/rust-analyzer.out"
result "make rust-analyzer" $rc
# What this kernel's Kbuild turns on (the same detection, read back from the build).
want="optprobe_test_hooks"
grep -qw authors "$KSRC/rust/macros/module.rs" 2>/dev/null && want="$want optprobe_module_authors"
[ -f "$KSRC/rust/kernel/fmt.rs" ] && want="$want optprobe_kernel_fmt"
[ "${OPTPROBE_TEST_HOOKS:-0}" = 1 ] || want=${want/optprobe_test_hooks/}
python3 - "$repo/rust-project.json" "$repo/src/optprobe.rs" $want <<'PY'
import json, os, sys
project = json.load(open(sys.argv[1]))
root, want = sys.argv[2], sys.argv[3:]
crates = project["crates"]
ours = [c for c in crates if c["display_name"] == "optprobe"]
checks = []
checks.append(("one optprobe crate", len(ours) == 1))
c = ours[0] if ours else {"root_module": "", "deps": [], "cfg": []}
checks.append(("its root is src/optprobe.rs", c["root_module"] == root))
names = {d["name"]: crates[d["crate"]]["display_name"] if 0 <= d["crate"] < len(crates) else None for d in c["deps"]}
checks.append(("its deps resolve to crates of that name, kernel and core among them",
               all(k == v for k, v in names.items()) and {"kernel", "core"} <= set(names)))
checks.append((f"its cfg has the build's own: {' '.join(want) or '(none)'}",
               all(w in c["cfg"] for w in want) and "MODULE" in c["cfg"]))
checks.append(("and the kernel's CONFIG_* cfgs", any(x.startswith("CONFIG_RUST") for x in c["cfg"])))
checks.append(("every crate's root exists", all(os.path.isfile(x["root_module"]) for x in crates)))
checks.append(("no in-tree driver or sample crates", not any("/drivers/" in x["root_module"] or "/samples/" in x["root_module"] for x in crates)))
bad = 0
for name, ok in checks:
    print(("ok: " if ok else "FAIL: ") + name)
    bad += not ok
print(f"json: {len(checks) - bad} passed, {bad} failed")
sys.exit(1 if bad else 0)
PY
rc=$?
result "rust-project.json checks" $rc
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
out=$(python3 "$repo/scripts/rust-analyzer" "$tmp" "$kdir" 2>&1); rc=$?
[ $rc != 0 ] && grep -q "no module build yet" <<< "$out"
result "refused without a module build ($out)" $?
echo "$pass passed, $fail failed"
[ $fail = 0 ]
