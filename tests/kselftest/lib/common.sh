# Shared helpers for optprobe's kselftests (busybox sh in the QEMU guest).
M=/modules
SYS=/sys/kernel/optprobe

fail() { echo "FAIL: $*"; cleanup; exit 1; }
skip() { echo "SKIP: $*"; cleanup; exit 4; }
info() { echo "$*"; }

# Unload everything of ours, most dependent first.
cleanup() {
    rmmod optprobe_ktest 2>/dev/null
    rmmod optprobe 2>/dev/null
    rmmod optprobe_target 2>/dev/null
    true
}

load_all() {
    cleanup
    insmod $M/optprobe_target.ko || fail "insmod optprobe_target"
    insmod $M/optprobe.ko "$@" || fail "insmod optprobe"
}

# Write one command to the control file; prints the shell's error text, if any.
ctl() { ( echo "$1" > $SYS/control ) 2>&1; }

# Field N of the listing line for probe NAME:
# 1 name, 2 symbol+offset, 3 address, 4 state, 5 hits, 6 missed, 7.. reason.
field() { awk -v n="$1" -v f="$2" '$1 == n { print $f }' $SYS/probes; }
state() { field "$1" 4; }
hits() { field "$1" 5; }
reason() { awk -v n="$1" '$1 == n { for (i = 7; i <= NF; i++) printf "%s%s", $i, (i < NF ? " " : ""); print "" }' $SYS/probes; }
nprobes() { grep -vc '^#' $SYS/probes; }

# Run the target's instrumented function N times (through the ktest module).
call_target() {
    insmod $M/optprobe_ktest.ko case=call calls="$1" || fail "drive target"
    rmmod optprobe_ktest
}
