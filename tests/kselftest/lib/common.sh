# Shared helpers for optprobe's kselftests (busybox sh in the QEMU guest).
M=/modules
SYS=/sys/kernel/optprobe
# Test-only delay points (a build with OPTPROBE_TEST_HOOKS=1, as make test makes).
HOOKS=/sys/module/optprobe/parameters

fail() { echo "FAIL: $*"; cleanup; exit 1; }
skip() { echo "SKIP: $*"; cleanup; exit 4; }
info() { echo "$*"; }

# Unload everything of ours, most dependent first.
cleanup() {
    rmmod optprobe_ktest 2>/dev/null
    rmmod optprobe_inittext 2>/dev/null
    rmmod optprobe 2>/dev/null
    rmmod optprobe_target 2>/dev/null
    true
}

load_all() {
    cleanup
    insmod $M/optprobe_target.ko || fail "insmod optprobe_target"
    insmod $M/optprobe.ko "$@" || fail "insmod optprobe"
}

# Wait up to 5 s for the kernel log to contain $1.
wait_log() {
    i=0
    while ! dmesg | grep -q "$1"; do
        i=$((i + 1)); [ $i -lt 50 ] || return 1
        usleep 100000
    done
}

# Write one command to the control file; prints the shell's error text, if any.
ctl() { ( echo "$1" > $SYS/control ) 2>&1; }

# Field N of the listing line for probe NAME:
# 1 name, 2 symbol+offset, 3 address, 4 state, 5 hits, 6 missed, 7.. reason.
field() { awk -v n="$1" -v f="$2" '$1 == n { print $f }' $SYS/probes; }
state() { field "$1" 4; }
hits() { field "$1" 5; }
reason() { awk -v n="$1" '$1 == n { for (i = 7; i <= NF; i++) printf "%s%s", $i, (i < NF ? " " : ""); print "" }' $SYS/probes; }
# Fail unless probe $1 has $2 hits; re-arms kprobes first if a test left
# debugfs kprobes/enabled at 0 ($E).
want_hits() {
    [ "$(hits "$1")" = "$2" ] && return 0
    [ -n "${E:-}" ] && echo 1 > "$E"
    fail "$1: $(hits "$1") hits, want $2${3:+ ($3)}"
}
nprobes() { grep -vc '^#' $SYS/probes; }
# A figure from the stats file: probes, optimized, disabled, trampoline_pages, ...
statval() { awk -v k="$1" '$1 == k { print $2 }' $SYS/stats; }

# Run the target's instrumented function N times (through the ktest module).
call_target() {
    insmod $M/optprobe_ktest.ko case=call calls="$1" || fail "drive target"
    rmmod optprobe_ktest
}

# Size in bytes of kernel text symbol $1 (distance to the next symbol).
func_size() {
    set -- $(grep -A1 -E " [tT] $1\$" /proc/kallsyms | head -2 | cut -d' ' -f1)
    [ $# = 2 ] && echo $(( 0x$2 - 0x$1 ))
}

# Probe every 4-byte offset of function $1 as $2_OFFSET, at most $3
# instructions (default 256), one write each so offsets that are refused are
# skipped. Prints "attached refused".
probe_function() {
    size=$(func_size "$1")
    [ -n "$size" ] || { echo "0 0"; return; }
    a=0 r=0 off=0
    while [ $off -lt "$size" ] && [ $off -lt $(( ${3:-256} * 4 )) ]; do
        if ctl "p:$2_$off $1+$off" > /dev/null; then a=$((a + 1)); else r=$((r + 1)); fi
        off=$((off + 4))
    done
    echo "$a $r"
}
