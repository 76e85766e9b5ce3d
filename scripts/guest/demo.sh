#!/bin/sh
# Guest side of `make demo`: attach probes on real kernel functions (at their
# first body instruction and mid-function) and on the test target, drive them,
# show the listing, then measure the cost of a hit.
SYS=/sys/kernel/optprobe
say() { echo "$*"; }
insmod /modules/optprobe_target.ko
insmod /modules/optprobe.ko
say "=== optprobe demo: $(uname -r), $(nproc) CPUs, $(grep -o 'nokaslr' /proc/cmdline || echo 'KASLR on')"
# Offsets: +0 is "bti c", +4/+8 the ftrace patch site, +12 "paciasp"; +16 is
# the first instruction of the function body in this kernel.
for p in \
    "p:vfs_read_entry vfs_read+16" \
    "p:vfs_read_mid vfs_read+32" \
    "p:ksys_read_entry ksys_read+16" \
    "p:ksys_read_mid ksys_read+64" \
    "p:openat2_entry do_sys_openat2+16" \
    "p:openat2_mid do_sys_openat2+52" \
    "p:clone_entry kernel_clone+16" \
    "p:clone_mid kernel_clone+60" \
    "p:target_body optprobe_target_args+4" \
    "p:target_bti optprobe_target_args" \
    "p:target_adrp optprobe_target_adrp+4" \
    "p:target_blr optprobe_target_blr_insn"; do
    say "# echo '$p' > $SYS/control"
    echo "$p" > $SYS/control
done
# Drive them: reads, opens, forks.
i=0
while [ $i -lt 20 ]; do
    dd if=/proc/version of=/dev/null bs=64 2>/dev/null
    sh -c true
    i=$((i + 1))
done
insmod /modules/optprobe_ktest.ko case=call calls=1000 && rmmod optprobe_ktest
say "=== /sys/kernel/optprobe/probes"
sed 's/ *$//' $SYS/probes
opt=$(grep -v '^#' $SYS/probes | grep -c ' optimized ')
all=$(grep -vc '^#' $SYS/probes)
kopt=$(grep -v '^#' $SYS/probes | grep -v optprobe_target | grep -c ' optimized ')
kall=$(grep -v '^#' $SYS/probes | grep -vc optprobe_target)
say "=== summary: $opt of $all probes optimized; kernel text: $kopt of $kall"
# The cost case probes the target itself: clear our probes there first.
for name in target_body target_bti target_adrp target_blr; do echo "-:$name" > $SYS/control; done
say "=== cost of one hit (QEMU TCG: ratios are meaningful, absolute ns are not)"
insmod /modules/optprobe_ktest.ko case=cost calls=${DEMO_CALLS:-100000} && rmmod optprobe_ktest
dmesg | grep "optprobe_ktest: cost" | sed 's/^\[[^]]*\] //'

say "=== others' kprobes: a kprobe_events probe with fetch args, optimized in place (auto)"
T=/sys/kernel/tracing
grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev $T
P=/sys/module/optprobe_target/parameters
ev='p:demo/ev optprobe_target_event+12 a=%x0 b=%x1 c=%x2 d=%x3 lr=%lr comm=$comm'
n=${DEMO_EVENT_CALLS:-20000}
fire() { echo "1 $n" > $P/fire; echo $(( $(cat $P/fire_ns) / n )); }
site() { grep '^@' $SYS/probes | sed 's/ *$//'; }
none=$(fire)
say "# echo '$ev' > $T/kprobe_events; echo 1 > $T/events/demo/ev/enable"
echo "$ev" > $T/kprobe_events
echo 1 > $T/events/demo/ev/enable
say "# cat $SYS/auto: $(cat $SYS/auto)"
site
brk=$(fire)
tail -1 $T/trace | sed 's/^ *//'
say "# echo 1 > $SYS/auto"
echo 1 > $SYS/auto
site
grep 'optprobe_target_event+0xc' /sys/kernel/debug/kprobes/list
opt=$(fire)
tail -1 $T/trace | sed 's/^ *//'
say "=== kprobe_events cost ($n calls each): unprobed $none ns/call, BRK $brk ns/call, optimized $opt ns/call;" \
    "overhead $((brk - none)) -> $((opt - none)) ns"
echo 0 > $T/events/demo/ev/enable
echo > $T/kprobe_events

say "=== function entry on a BTI kernel: sym+0 is 'bti c'; delivered at the ftrace call site"
ev='p:demo/entry optprobe_target_event a=$arg1 lr=%lr comm=$comm'
say "# echo '$ev' > $T/kprobe_events; echo 1 > $T/events/demo/entry/enable"
echo "$ev" > $T/kprobe_events
echo 1 > $T/events/demo/entry/enable
i=0; while ! grep -q 'optprobe_target_event+0x0 .* ftrace ' $SYS/probes && [ $i -lt 50 ]; do i=$((i + 1)); usleep 20000; done
site
ent=$(fire)
tail -1 $T/trace | sed 's/^ *//'
say "=== entry event cost ($n calls): $ent ns/call through ftrace (unprobed $none)"
echo 0 > $T/events/demo/entry/enable
echo > $T/kprobe_events
rmmod optprobe
rmmod optprobe_target
say "=== demo done"
