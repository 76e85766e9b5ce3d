#!/bin/sh
# Function entry where BTI is not enforced (the boot with arm64.nobti, or
# in the main boot a kernel built without BTI, as Debian's GCC-built one):
# "bti c" and "paciasp" are plain hints or absent there, so sym+0 and the
# paciasp site are ordinary probe sites. Our probes there are optimized;
# kprobe_events probes and kretprobes at sym+0 are optimized with auto=1
# and give the same trace body as through BRK.
. /tests/kselftest/lib/common.sh
if [ "$OPTSUITE" = main ]; then
    load_all
    entry_is_landing_pad && skip "function entry is a landing pad here: the arm64.nobti boot runs this"
elif [ "$OPTSUITE" != nobti ]; then
    skip "runs in the arm64.nobti boot, or the main boot of a kernel without BTI"
fi
T=/sys/kernel/tracing
grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev $T
FIRE=/sys/module/optprobe_target/parameters/fire
[ "$OPTSUITE" = nobti ] && grep -qw bti /proc/cpuinfo && fail "arm64.nobti did not turn BTI off: $(grep -m1 Features /proc/cpuinfo)"
site_field() { awk -v s="$1" -v f="$2" '$2 == s && $1 ~ /^@/ { print $f }' $SYS/probes; }
wait_state() { i=0; while [ "$(site_field "$1" 4)" != "$2" ]; do i=$((i + 1)); [ $i -lt 200 ] || return 1; usleep 10000; done; }
body() { grep -v '^#' $T/trace | sed 's/^ *\([^ ]*\) *\[[0-9]*\] [^ ]* *[0-9.]*: /\1 /'; }
run_calls() { echo > $T/trace; echo "$1 $2" > $FIRE || fail "fire"; }

load_all
# Our own probes at entry: sym+0 ("bti c") of a module and a kernel
# function, and vfs_read's "paciasp".
ctl "p:ent_mod optprobe_target_event+0" > /dev/null || fail "add ent_mod"
ctl "p:ent_vfs vfs_read+0" > /dev/null || fail "add ent_vfs"
ctl "p:pac_vfs vfs_read+12" > /dev/null || fail "add pac_vfs"
for p in ent_mod ent_vfs pac_vfs; do
    [ "$(state $p)" = optimized ] || fail "$p: $(state $p) ($(reason $p)), want optimized without BTI"
done
call_target 10
run_calls 1 100
cat /proc/version > /dev/null
[ "$(hits ent_mod)" = 100 ] || fail "ent_mod: $(hits ent_mod) hits, want 100"
# Read in turn while other tasks call read(): the later count is not less.
e=$(hits ent_vfs); p=$(hits pac_vfs)
[ "$e" -gt 0 ] && [ "$p" -ge "$e" ] ||
    fail "vfs_read: $e entry hits, $p paciasp hits"
info "own probes: $(awk '$1 ~ /^(ent|pac)_/ { print $1, $2, $4, $5 }' $SYS/probes | tr '\n' ';')"
ctl "-:ent_mod" > /dev/null; ctl "-:ent_vfs" > /dev/null; ctl "-:pac_vfs" > /dev/null

# kprobe_events at sym+0, with the argument fetches only entry allows.
echo > $T/kprobe_events
ARGS='a1=$arg1 a2=$arg2 a3=$arg3 a4=$arg4 a5=$arg5 a6=$arg6 a7=$arg7 a8=$arg8 x0=%x0 x8=%x8 fp=%x29 lr=%lr sp=%sp pc=%pc st=+8(%sp):x64 comm=$comm'
echo "p:optp/entry optprobe_target_event $ARGS" >> $T/kprobe_events || fail "entry event: $(cat $T/error_log)"
echo 1 > $T/events/optp/entry/enable
S=optprobe_target_event+0x0
[ "$(site_field $S 4)" = kprobe ] || fail "auto=0: $(site_field $S 4)"
run_calls 1 50; body > /tmp/brk.txt
echo 1 > $SYS/auto
wait_state $S optimized || fail "entry event not optimized: $(cat $SYS/probes)"
run_calls 1 50; body > /tmp/opt.txt
[ "$(wc -l < /tmp/opt.txt)" = 50 ] || fail "optimized: $(wc -l < /tmp/opt.txt) events"
same_or_fail /tmp/brk.txt /tmp/opt.txt "entry trace bodies differ"
info "entry parity: $(head -1 /tmp/opt.txt)"
echo 0 > $T/events/optp/entry/enable
echo "-:optp/entry" >> $T/kprobe_events
echo 0 > $SYS/auto

# A kretprobe at sym+0: $retval through BRK and optimized.
echo "r:optp/ret optprobe_target_event ret=\$retval" >> $T/kprobe_events || fail "kretprobe event: $(cat $T/error_log)"
echo 1 > $T/events/optp/ret/enable
run_calls 1 50; body > /tmp/rbrk.txt
echo 1 > $SYS/auto
wait_state $S optimized || fail "kretprobe not optimized: $(cat $SYS/probes)"
[ "$(site_field $S 1)" = "@pre_handler_kretprobe" ] || fail "kretprobe owner '$(site_field $S 1)'"
run_calls 1 50; body > /tmp/ropt.txt
[ "$(wc -l < /tmp/ropt.txt)" = 50 ] || fail "kretprobe optimized: $(wc -l < /tmp/ropt.txt) events"
same_or_fail /tmp/rbrk.txt /tmp/ropt.txt "kretprobe bodies differ"
info "kretprobe parity: $(head -1 /tmp/ropt.txt)"
# Both at once: one aggregate, one branch.
echo "p:optp/entry optprobe_target_event $ARGS" >> $T/kprobe_events || fail "entry event again"
echo 1 > $T/events/optp/entry/enable
wait_state $S optimized || fail "entry + kretprobe not optimized"
[ "$(site_field $S 1)" = "@aggr(2)" ] || fail "entry + kretprobe owner '$(site_field $S 1)'"
run_calls 1 50
[ "$(grep -c ' entry: ' $T/trace) $(grep -c ' ret: ' $T/trace)" = "50 50" ] || fail "entry + kretprobe: $(grep -c ' entry: ' $T/trace) entry, $(grep -c ' ret: ' $T/trace) return events"
# A kernel function's entry, with a kretprobe: read() keeps working.
echo "r:optp/kret vfs_read ret=\$retval" >> $T/kprobe_events || fail "vfs_read kretprobe"
echo 1 > $T/events/optp/kret/enable
wait_state vfs_read+0x0 optimized || fail "vfs_read kretprobe not optimized: $(cat $SYS/probes)"
echo > $T/trace
cat /proc/version > /dev/null
grep -q ' kret: ' $T/trace || fail "no vfs_read return events"
echo 0 > $T/events/optp/enable
echo > $T/kprobe_events
i=0; while [ "$(statval carriers)" != 0 ]; do i=$((i + 1)); [ $i -lt 200 ] || fail "carriers left"; usleep 10000; done
cleanup
echo "ok"
