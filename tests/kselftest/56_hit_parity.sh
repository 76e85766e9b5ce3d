#!/bin/sh
# Hit parity for others' kprobes: every call carries a token (its first
# argument); a kprobe_events probe records it. With auto=1, rounds of calls
# run while the event is disabled and enabled by its owner, debugfs
# kprobes/enabled is toggled, and, in the background, other kprobe_events
# probes and an optprobe probe join and leave the address. The tokens
# recorded must be exactly those of the calls made while the event and
# kprobes were enabled: no duplicate, no gap, nothing extra.
. /tests/kselftest/lib/common.sh
T=/sys/kernel/tracing
grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev $T
E=/sys/kernel/debug/kprobes/enabled
FIRE=/sys/module/optprobe_target/parameters/fire
ROUNDS=${ROUNDS:-48} BATCH=${BATCH:-100}
[ "$OPTLONG" = 1 ] && ROUNDS=200

load_all auto=1
# The token is x0 on entry: probe the first body instruction (clang: +12,
# GCC: +8), before the compiler reuses x0.
OFF=$(event_body_offset)
SITE=optprobe_target_event+$OFF
LISTED=$(printf 'optprobe_target_event+0x%x' $OFF)
echo > $T/kprobe_events
echo 4096 > $T/buffer_size_kb
echo "p:optp/tok $SITE tok=%x0:u64" >> $T/kprobe_events || fail "add event"
echo 1 > $T/events/optp/tok/enable

# Background: others join and leave the address. Not by adding and removing
# kprobe_events (removing an event clears the trace buffers): other events
# are enabled and disabled, optprobe probes and a plain kprobe of the test
# module (an unknown handler: the address goes back to BRK while it is
# there) are registered and unregistered.
for k in 0 1 2; do echo "p:optp/other$k $SITE v=%x1" >> $T/kprobe_events || fail "add other$k"; done
(
    n=0
    while [ ! -e /tmp/stop_churn ]; do
        n=$((n + 1))
        k=$((n % 3))
        echo 1 > $T/events/optp/other$k/enable
        [ $((n % 2)) = 0 ] && echo "p:own_$n $SITE" > $SYS/control
        [ $((n % 5)) = 0 ] && insmod $M/optprobe_ktest.ko case=hold_other
        usleep 3000
        echo 0 > $T/events/optp/other$k/enable
        [ $((n % 2)) = 0 ] && echo "-:own_$n" > $SYS/control
        [ $((n % 5)) = 0 ] && rmmod optprobe_ktest
    done
    echo "churn: $n cycles"
) > /tmp/churn.out 2>&1 &
churn=$!

rm -f /tmp/stop_churn /tmp/want
echo > $T/trace
next=1 optimized=0
r=0
while [ $r -lt $ROUNDS ]; do
    r=$((r + 1))
    case $((r % 6)) in
        1) echo 0 > $T/events/optp/tok/enable; on=0 ;;
        3) echo 0 > $E; on=0 ;;
        *) on=1 ;;
    esac
    [ "$(awk -v s=$LISTED '$2 == s && $1 ~ /^@/ { print $4 }' $SYS/probes)" = optimized ] &&
        optimized=$((optimized + 1))
    echo "$next $BATCH" > $FIRE || fail "fire"
    [ $on = 1 ] && seq $next $((next + BATCH - 1)) >> /tmp/want
    next=$((next + BATCH))
    echo 1 > $T/events/optp/tok/enable
    echo 1 > $E
    # Let the poller act now and then, so both paths take rounds.
    [ $((r % 2)) = 0 ] && usleep 150000
done
touch /tmp/stop_churn
wait $churn
cat /tmp/churn.out
echo 0 > $T/events/optp/enable 2>/dev/null
grep -o "tok=[0-9]*" $T/trace | cut -d= -f2 | sort -n > /tmp/got
sort -n /tmp/want > /tmp/want.s
dups=$(uniq -d /tmp/got | wc -l)
info "rounds $ROUNDS x $BATCH calls: $(wc -l < /tmp/want.s) expected, $(wc -l < /tmp/got) recorded, $dups duplicated; optimized at the start of $optimized rounds"
[ "$dups" = 0 ] || fail "duplicated tokens: $(uniq -d /tmp/got | head -5 | tr '\n' ' ')"
if ! cmp -s /tmp/got /tmp/want.s; then
    diff /tmp/want.s /tmp/got | grep '^[-+][0-9]' | head -5
    fail "recorded tokens differ from the calls made"
fi
[ $optimized -gt 0 ] || fail "never optimized during the run"
grep -q "Lost\|lost" $T/trace && fail "trace buffer lost events"
echo > $T/kprobe_events
i=0; while [ "$(statval carriers)" != 0 ]; do i=$((i + 1)); [ $i -lt 200 ] || fail "carriers left"; usleep 10000; done
cleanup
echo "ok"
