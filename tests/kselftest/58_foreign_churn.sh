#!/bin/sh
# Churn of others' kprobes under load on 4 CPUs: kprobe_events probes are
# registered, enabled, disabled and unregistered at several addresses while
# auto mode is switched on and off, debugfs kprobes/enabled is toggled now
# and then, and the probed functions run nonstop. Then: no oops (the boot
# checker), no carrier left, trampoline pages back to where they started.
# 30 s (OPTLONG: 120 s).
. /tests/kselftest/lib/common.sh
[ "$OPTSUITE" = cpus4 ] || skip "the churn runs in the 4-CPU boot"
T=/sys/kernel/tracing
grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev $T
E=/sys/kernel/debug/kprobes/enabled
FIRE=/sys/module/optprobe_target/parameters/fire
SECS=30; [ "$OPTLONG" = 1 ] && SECS=120
SITES="optprobe_target_event+12 optprobe_target_work+12 vfs_read+16 ksys_read+16 kernel_clone+16"

cleanup
insmod $M/optprobe_target.ko spin=2 || fail "insmod target"
insmod $M/optprobe.ko auto=1 || fail "insmod optprobe"
echo > $T/kprobe_events
pages0=$(statval trampoline_pages)
rm -f /tmp/stop
# Load: the target's event function and read() nonstop (the spinners run
# optprobe_target_work).
( while [ ! -e /tmp/stop ]; do echo "1 2000" > $FIRE; done ) &
( while [ ! -e /tmp/stop ]; do cat /proc/version > /dev/null; done ) &
# Owners: two churners over the addresses.
churner() {
    n=0
    while [ ! -e /tmp/stop ]; do
        for s in $SITES; do
            n=$((n + 1))
            ev=c$1_$n
            echo "p:churn/$ev $s a=%x0" >> $T/kprobe_events 2>/dev/null || continue
            echo 1 > $T/events/churn/$ev/enable
            [ $((n % 3)) = 0 ] && usleep 20000
            echo 0 > $T/events/churn/$ev/enable
            [ $((n % 4)) = 0 ] && { echo 1 > $T/events/churn/$ev/enable; echo 0 > $T/events/churn/$ev/enable; }
            echo "-:churn/$ev" >> $T/kprobe_events
        done
    done
    echo "churner $1: $n events"
}
churner 1 > /tmp/churn1 2>&1 &
churner 2 > /tmp/churn2 2>&1 &
# Settings: auto on and off, kprobes/enabled now and then, o/-o by hand.
end=$(( $(cut -d. -f1 /proc/uptime) + SECS ))
flips=0 seen=0
while [ "$(cut -d. -f1 /proc/uptime)" -lt $end ]; do
    flips=$((flips + 1))
    echo $((flips % 2)) > $SYS/auto
    [ $((flips % 5)) = 0 ] && { echo 0 > $E; usleep 50000; echo 1 > $E; }
    [ $((flips % 3)) = 0 ] && ctl "o vfs_read+16" > /dev/null
    [ $((flips % 7)) = 0 ] && ctl "-o vfs_read+16" > /dev/null
    usleep 300000
    [ "$(statval foreign_optimized)" -gt 0 ] && seen=$((seen + 1))
done
touch /tmp/stop
wait
cat /tmp/churn1 /tmp/churn2
[ -d $T/events/churn ] && echo 0 > $T/events/churn/enable
echo > $T/kprobe_events
echo 1 > $E
echo 0 > $SYS/auto
ctl "-o vfs_read+16" > /dev/null
i=0
while [ "$(statval carriers)" != 0 ]; do i=$((i + 1)); [ $i -lt 300 ] || fail "carriers left: $(statval carriers)"; usleep 10000; done
info "churn: $SECS s, $flips setting changes, foreign kprobes optimized at $seen of them; stats at the end: $(tr '\n' ' ' < $SYS/stats)"
[ "$(statval trampoline_pages)" = "$pages0" ] || fail "trampoline pages $(statval trampoline_pages), were $pages0"
[ $seen -gt 0 ] || fail "no foreign kprobe was ever seen optimized"
[ "$(statval orphans)" = 0 ] || fail "orphans left: $(statval orphans)"
rmmod optprobe || fail "rmmod optprobe"
cleanup
echo "ok"
