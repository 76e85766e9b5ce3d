#!/bin/sh
# A BPF kprobe program, attached as bpftrace and libbpf attach one
# (perf_event_open on the kprobe PMU, PERF_EVENT_IOC_SET_BPF), counts into
# a map (tests/guest/bpfcount.c): its count is the number of calls made,
# through the BRK (auto=0) and through our branch (auto=1).
. /tests/kselftest/lib/common.sh
SITE=optprobe_target_event+0xc
FIRE=/sys/module/optprobe_target/parameters/fire
site_field() { awk -v s="$SITE" -v f="$1" '$2 == s && $1 ~ /^@/ { print $f }' $SYS/probes; }
wait_file() { i=0; while [ ! -e "$1" ]; do i=$((i + 1)); [ $i -lt 500 ] || return 1; usleep 20000; done; }
wait_state() { i=0; while [ "$(site_field 4)" != "$1" ]; do i=$((i + 1)); [ $i -lt 200 ] || return 1; usleep 10000; done; }
[ -e /sys/bus/event_source/devices/kprobe/type ] || skip "no kprobe PMU (CONFIG_PERF_EVENTS, CONFIG_KPROBE_EVENTS)"

load_all
rm -f /tmp/go*
: > /tmp/bpf.out
bpfcount optprobe_target_event 12 $FIRE /tmp/go1 /tmp/go2 /tmp/go3 > /tmp/bpf.out 2>&1 &
pid=$!
i=0
while ! grep -q ready /tmp/bpf.out; do
    i=$((i + 1)); [ $i -lt 250 ] || { kill $pid; fail "bpfcount did not attach: $(cat /tmp/bpf.out)"; }
    kill -0 $pid 2>/dev/null || fail "bpfcount: $(cat /tmp/bpf.out)"
    usleep 20000
done
[ "$(site_field 1)" = "@kprobe_dispatcher" ] || fail "the BPF kprobe is not listed: $(cat $SYS/probes)"
[ "$(site_field 4)" = kprobe ] || fail "auto=0: state $(site_field 4)"
go() { echo "$2 $3" > /tmp/go.tmp && mv /tmp/go.tmp /tmp/go$1; wait_file /tmp/go$1.done || fail "bpfcount stuck: $(cat /tmp/bpf.out)"; }
go 1 1 1000
echo 1 > $SYS/auto
wait_state optimized || fail "BPF kprobe not optimized: $(cat $SYS/probes)"
hits0=$(site_field 5)
go 2 1001 1000
hits=$(( $(site_field 5) - hits0 ))
[ "$hits" = 1000 ] || fail "optimized: $hits hits through the trampoline, want 1000"
# Back to BRK while the program stays attached.
echo 0 > $SYS/auto
wait_state kprobe || fail "auto=0: still $(site_field 4)"
go 3 2001 1000
wait $pid || fail "bpfcount exited $?: $(cat /tmp/bpf.out)"
cat /tmp/bpf.out
counts=$(grep '^count ' /tmp/bpf.out | cut -d' ' -f2 | tr '\n' ' ')
[ "$counts" = "1000 2000 3000 " ] || fail "map counts '$counts', want '1000 2000 3000' (BRK, optimized, BRK)"
sleep 1
[ -z "$(site_field 4)" ] || fail "the closed BPF kprobe is still listed"
[ "$(statval carriers)" = 0 ] || fail "carriers left: $(statval carriers)"
cleanup
echo "ok"
