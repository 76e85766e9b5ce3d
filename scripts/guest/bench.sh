#!/bin/sh
# Guest side of `make bench`: one boot, one insmod; parameters come from the
# kernel command line (benchargs="calls=... repeats=...").
args=$(sed -n 's/.*benchargs=\([^ ]*\).*/\1/p' /proc/cmdline | tr ',' ' ')
insmod /modules/optprobe_target.ko
insmod /modules/optprobe.ko
echo "=== optprobe bench: $args"
insmod /modules/optprobe_bench.ko $args || echo "optprobe_bench: FAILED to run"
rmmod optprobe_bench 2>/dev/null
rmmod optprobe
rmmod optprobe_target
