# Shared helpers for optprobe's kselftests (busybox sh in the QEMU guest).
M=/modules
SYS=/sys/kernel/optprobe
# Test-only delay points (a build with OPTPROBE_TEST_HOOKS=1, as make test makes).
HOOKS=/sys/module/optprobe/parameters

fail() { echo "FAIL: $*"; cleanup; exit 1; }
skip() { echo "SKIP: $*"; cleanup; exit 4; }
info() { echo "$*"; }
# Load a module once (tests/guest/finsmod.c): busybox's insmod, which its sh
# runs even by name, would rerun a module whose init failed, and a ktest
# case that failed once and then passed would read as passed.
insmod() { finsmod "$@"; }

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

# Is function entry a BTI landing pad here? The kernel must be built for BTI
# (optprobe_target's sym+0 is "bti c"; needs optprobe_target loaded) and the
# CPU must enforce it (cpuinfo's "bti"; arm64.nobti hides it).
# A missing parameter fails the test: a silent "no" would turn tests that
# need a landing pad into skips.
entry_is_landing_pad() {
    pad=/sys/module/optprobe_target/parameters/entry_landing_pad
    [ -r $pad ] || fail "$pad missing (optprobe_target not loaded, or built from older sources)"
    grep -qw bti /proc/cpuinfo && [ "$(cat $pad)" = 1 ]
}

# The offset of optprobe_target_event's first body instruction, just after
# its ftrace call site (the BL that available_filter_functions_addrs lists):
# 12 on a BTI kernel ("bti c", "mov x9, x30", BL), 8 without. There x0 still
# holds the first argument, whatever the compiler does next. Needs
# optprobe_target loaded and tracefs mounted.
event_body_offset() {
    ip=$(awk '$2 == "optprobe_target_event" { print $1; exit }' /sys/kernel/tracing/available_filter_functions_addrs)
    sym=$(awk '$3 == "optprobe_target_event" { print $1; exit }' /proc/kallsyms)
    [ -n "$ip" ] && [ -n "$sym" ] || fail "cannot find optprobe_target_event's ftrace call site"
    # The low 32 bits of each: busybox arithmetic is signed 64-bit.
    echo $(( 0x${ip#????????} + 4 - 0x${sym#????????} ))
}

# Fail with $3 unless files $1 and $2 are identical; shows the first lines
# of each side (busybox diff is unified).
same_or_fail() {
    cmp -s "$1" "$2" && return 0
    diff "$1" "$2" | grep '^-[^-]' | head -2
    diff "$1" "$2" | grep '^+[^+]' | head -2
    fail "$3"
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
