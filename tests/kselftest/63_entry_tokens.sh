#!/bin/sh
# Token parity for function-entry delivery (issue 13), on the 4-CPU boot:
# ktest entry_tokens (tests/ktest/entry.c) checks that every call of
# optprobe_target_token, from 8 kthreads and a per-CPU hrtimer storm, is
# delivered exactly once to a plain kprobe at its entry, first through BRK
# only, then while optprobe flips the address between BRK and ftrace 1000
# times; meanwhile this script attaches and detaches function_graph on the
# same function.
. /tests/kselftest/lib/common.sh
[ "$OPTSUITE" = cpus4 ] || skip "runs in the 4-CPU boot"
T=/sys/kernel/tracing
grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev $T
# optflips= and optstorm_us= (make test-debug: fewer flips, a slower storm,
# so KASAN and lockdep on 4 emulated vCPUs leave the RCU GP kthread time).
FLIPS=$(sed -n "s/.*optflips=\([0-9]*\).*/\1/p" /proc/cmdline); FLIPS=${FLIPS:-1000}
STORM_US=$(sed -n "s/.*optstorm_us=\([0-9]*\).*/\1/p" /proc/cmdline); STORM_US=${STORM_US:-100}
load_all
entry_is_landing_pad || skip "function entry is no landing pad here: entry probes are branches"
echo optprobe_target_token > $T/set_graph_function
rm -f /tmp/graph.stop
(
    n=0
    tok=/sys/module/optprobe_ktest/parameters/tokens_issued
    while [ ! -f /tmp/graph.stop ]; do
        echo function_graph > $T/current_tracer
        echo "63: function_graph on at token $(cat $tok 2>/dev/null)" > /dev/kmsg; usleep 20000
        echo nop > $T/current_tracer
        echo "63: function_graph off at token $(cat $tok 2>/dev/null)" > /dev/kmsg; usleep 20000
        n=$((n + 1))
    done
    echo $n > /tmp/graph.count
) &
toggler=$!
t0=$(date +%s)
insmod $M/optprobe_ktest.ko case=entry_tokens flips=$FLIPS storm_us=$STORM_US; rc=$?
touch /tmp/graph.stop; wait $toggler
echo nop > $T/current_tracer; echo > $T/set_graph_function
dmesg | grep 'entry_tokens' | tail -4 | sed 's/^\[[ 0-9.]*\] //'
[ $rc = 0 ] || fail "entry_tokens failed"
rmmod optprobe_ktest
info "$FLIPS flips (storm every $STORM_US us) in $(( $(date +%s) - t0 )) s; function_graph attached and detached $(cat /tmp/graph.count) times"
[ "$(statval carriers)" = 0 ] || fail "carriers left: $(statval carriers)"
cleanup
echo "ok"
