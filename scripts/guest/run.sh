#!/bin/sh
# Guest test runner: every tests/kselftest/*.sh, then every in-kernel case in
# tests/kselftest/ktest_cases. Prints KTAP through /dev/kmsg, so each line is
# one console record that kernel messages cannot split.
T=/tests/kselftest
ktap() { echo "$*" > /dev/kmsg; }
diag() { while IFS= read -r line; do ktap "# $line"; done < "$1"; }

# optsuite= on the kernel command line says which boot this is; the tests
# read it as OPTSUITE (see scripts/run-tests):
#   main    KASLR, 2 CPUs: everything but the 4-CPU tests
#   layout  nokaslr, 2 CPUs: the address-layout dependent tests again
#   cpus4   KASLR, 4 CPUs: only the tests that need 4 CPUs busy
#   nobti   KASLR, 2 CPUs, arm64.nobti: function entry as on CPUs without BTI
# optlong=1 (make test-long) lengthens the long tests.
OPTSUITE=$(sed -n 's/.*optsuite=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
export OPTSUITE=${OPTSUITE:-main}
OPTLONG=$(sed -n 's/.*optlong=\([01]\).*/\1/p' /proc/cmdline)
export OPTLONG=${OPTLONG:-0}
scripts=$(ls $T/*.sh)
cases=$(grep -v '^#' $T/ktest_cases)
# optests=PATTERN on the kernel command line runs only matching tests.
only=$(sed -n 's/.*optests=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -z "$only" ] && [ "$OPTSUITE" = cpus4 ] && only=25_insn_boundary,58_foreign_churn,63_entry_tokens,ktest_torture
[ -z "$only" ] && [ "$OPTSUITE" = nobti ] && only=20_sysfs_probes,55_foreign_events,57_bpf_kprobe,59_nobti_entry,ktest_hits,ktest_regs
# optests=A,B runs those matching any of the comma-separated patterns.
if [ -n "$only" ]; then
    pats=$(echo "$only" | tr ',' ' ')
    pick() { for x in $2; do for p in $pats; do case "$1$x" in *$p*) echo "$x"; break;; esac; done; done; }
    scripts=$(pick "" "$scripts")
    cases=$(pick ktest_ "$cases")
fi
n=0
for s in $scripts; do n=$((n + 1)); done
for c in $cases; do n=$((n + 1)); done

ktap "KTAP version 1"
ktap "1..$n"
i=0 pass=0 fail=0 skip=0
result() { # name rc
    # A test may have lowered the console loglevel: results must be seen.
    echo 7 > /proc/sys/kernel/printk
    i=$((i + 1))
    case "$2" in
        0) ktap "ok $i $1"; pass=$((pass + 1)) ;;
        4) ktap "ok $i $1 # SKIP"; skip=$((skip + 1)) ;;
        *) ktap "not ok $i $1"; fail=$((fail + 1)) ;;
    esac
}
run_script() {
    sh "$1" > /tmp/out 2>&1
    rc=$?
    diag /tmp/out
    result "$(basename "$1" .sh)" $rc
}
# Scripts, then the in-kernel cases, then the 99_* scripts (final checks
# such as kmemleak that must see everything before them).
for s in $scripts; do
    case "$s" in */99_*) ;; *) run_script "$s" ;; esac
done
for c in $cases; do
    sh $T/lib/ktest.sh "$c" > /tmp/out 2>&1
    rc=$?
    diag /tmp/out
    result "ktest_$c" $rc
done
for s in $scripts; do
    case "$s" in */99_*) run_script "$s" ;; esac
done
ktap "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:$skip error:0"
