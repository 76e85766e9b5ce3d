#!/bin/sh
# Guest side of `make bench`: one boot, one insmod; parameters come from the
# kernel command line (benchargs="calls=... repeats=... event_calls=...").
args=$(sed -n 's/.*benchargs=\([^ ]*\).*/\1/p' /proc/cmdline | tr ',' ' ')
insmod /modules/optprobe_target.ko
insmod /modules/optprobe.ko
echo "=== optprobe bench: $args"
insmod /modules/optprobe_bench.ko $(echo $args | tr ' ' '\n' | grep -v '^event_calls=') || echo "optprobe_bench: FAILED to run"
rmmod optprobe_bench 2>/dev/null

# A kprobe_events event with 4 fetch args, mid-function in the target:
# unprobed, BRK (auto=0) and optimized (auto=1), interleaved per run. The
# event writes a trace record on both paths, so the record's cost is in
# both overheads. One RESULT line per run; scripts/bench-report takes
# medians.
n=100000 runs=5
for a in $args; do
    case "$a" in event_calls=*) n=${a#*=} ;; repeats=*) runs=${a#*=} ;; esac
done
T=/sys/kernel/tracing
grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev $T
FIRE=/sys/module/optprobe_target/parameters
echo 'p:bench/ev optprobe_target_event+12 a=%x0 b=%x1 c=%x2 d=%x3' > $T/kprobe_events
state() { awk '$2 == "optprobe_target_event+0xc" && $1 ~ /^@/ { print $4 }' /sys/kernel/optprobe/probes; }
fire() { echo "1 $n" > $FIRE/fire; cat $FIRE/fire_ns; }
r=0
while [ $r -lt $runs ]; do
    r=$((r + 1))
    echo 0 > $T/events/bench/ev/enable
    none=$(fire)
    echo 0 > /sys/kernel/optprobe/auto
    echo 1 > $T/events/bench/ev/enable
    s1=$(state); brk=$(fire)
    echo 1 > /sys/kernel/optprobe/auto
    s2=$(state); opt=$(fire)
    echo 0 > /sys/kernel/optprobe/auto
    echo "optprobe_bench: RESULT event run=$r calls=$n unprobed_ns=$none kprobe_ns=$brk kprobe_state=$s1 optprobe_ns=$opt optprobe_state=$s2" > /dev/kmsg
done
echo 0 > $T/events/bench/ev/enable
echo > $T/kprobe_events
echo "optprobe_bench: event done" > /dev/kmsg
rmmod optprobe
rmmod optprobe_target
