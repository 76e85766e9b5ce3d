#!/usr/bin/env bash
# Self-test of scripts/ktap-check: each synthetic console log must be judged
# as stated, so a broken run can never pass unnoticed. Prints KTAP-like lines
# and "N passed, N failed"; exit 1 on any mismatch.
set -u
here=$(cd "$(dirname "$0")" && pwd)
check="$here/../scripts/ktap-check"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
good='[    1.0] KTAP version 1
[    1.1] 1..2
[    1.2] ok 1 a
[    1.3] ok 2 b # SKIP
[    1.4] OPTPROBE-GUEST-DONE mode=test'
expect() { # name want-rc log-text
    printf '%s\n' "$3" > "$tmp/log"
    python3 "$check" "$tmp/log" selftest > "$tmp/out" 2>&1
    rc=$?
    if [ $rc = "$2" ]; then pass=$((pass + 1)); echo "ok - $1"
    else fail=$((fail + 1)); echo "not ok - $1 (rc $rc, want $2)"; cat "$tmp/out"; fi
}
expect "clean log passes" 0 "$good"
expect "not ok fails" 1 "${good/ok 1 a/not ok 1 a}"
expect "short plan fails" 1 "${good/1..2/1..3}"
expect "missing end marker fails" 1 "${good/OPTPROBE-GUEST-DONE mode=test/}"
expect "WARNING fails" 1 "$good
[    2.0] WARNING: CPU: 1 PID: 1 at x.c:1 f+0x0/0x4"
expect "Oops fails" 1 "$good
[    2.0] Internal error: Oops: 0000000096000004 [#1] PREEMPT SMP"
expect "BUG fails" 1 "$good
[    2.0] BUG: scheduling while atomic"
expect "Call trace fails" 1 "$good
[    2.0] Call trace:"
expect "panic fails" 1 "$good
[    2.0] Kernel panic - not syncing: oops"
expect "command line mentioning panic passes" 0 "[    0.0] Kernel command line: panic=-1 oops=panic
$good"
expect "no KTAP fails" 1 "[    1.4] OPTPROBE-GUEST-DONE mode=test"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
