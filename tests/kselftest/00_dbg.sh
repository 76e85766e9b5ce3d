#!/bin/sh
. /tests/kselftest/lib/common.sh
T=/sys/kernel/tracing
grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev $T
load_all auto=1
echo > $T/kprobe_events
echo 4096 > $T/buffer_size_kb; echo "bs rc $?"
echo "p:optp/tok optprobe_target_event+12 tok=%x0:u64" >> $T/kprobe_events; echo "add rc $?"
echo 1 > $T/events/optp/tok/enable; echo "en rc $?"
echo "1 10" > /sys/module/optprobe_target/parameters/fire
grep -c tok= $T/trace
cat $SYS/probes | cut -c1-150 | grep -v "^ *$"
echo 0 > /sys/kernel/debug/kprobes/enabled; echo 1 > /sys/kernel/debug/kprobes/enabled
echo "20 10" > /sys/module/optprobe_target/parameters/fire
grep -c tok= $T/trace
cat $SYS/probes | cut -c1-150
sleep 1
echo "40 10" > /sys/module/optprobe_target/parameters/fire
grep -c tok= $T/trace
cat $SYS/probes | cut -c1-150
