# The kernel's own kprobes KUnit suite (lib/test_kprobes.c, built in) run
# again, through debugfs, with optprobes on every instruction of the
# functions it probes and calls, so its kprobes, kretprobes and stack-trace
# checks share those functions (and at +0, the addresses) with our probes.
. /tests/kselftest/lib/common.sh
[ "$OPTSUITE" = main ] || skip "the KUnit re-run is in the main boot"
K=/sys/kernel/debug/kunit/kprobes_test
[ -e $K/run ] || skip "no $K/run (KUNIT_DEBUGFS off?)"
load_all
total_a=0 total_r=0
for f in kprobe_target kprobe_target2 kprobe_recursed_target \
         kprobe_stacktrace_internal_target kprobe_stacktrace_target kprobe_stacktrace_driver; do
    set -- $(probe_function $f $f)
    info "$f: $1 probes attached, $2 offsets refused by kprobes"
    total_a=$((total_a + $1)) total_r=$((total_r + $2))
done
[ $total_a -ge 10 ] || fail "only $total_a probes attached on the suite's functions"
opt=$(awk '!/^#/ && $4 == "optimized"' $SYS/probes | wc -l)
[ "$opt" -ge 5 ] || fail "only $opt of them optimized"
# Also probe hot kernel text, so the suite runs amid trampoline hits.
for spec in vfs_read+16 kernel_clone+24 schedule+20; do ctl "p $spec" > /dev/null; done

# Keep the suite's own KTAP off the console (the results file has it all).
echo 4 > /proc/sys/kernel/printk
echo run > $K/run
echo 7 > /proc/sys/kernel/printk
cat $K/results > /tmp/kunit_results
sed 's/^/  /' /tmp/kunit_results | grep -E "ok [0-9]|# kprobes_test|# Totals" | head -20
pass=$(grep -cE "^\s+ok [0-9]+ [a-z_]+$" /tmp/kunit_results)
skipped=$(grep -cE "^\s+ok [0-9]+ .*# SKIP" /tmp/kunit_results)
failed=$(grep -cE "^\s*not ok " /tmp/kunit_results)
hits=$(awk '!/^#/ && $1 ~ /^kprobe_/ { s += $5 } END { print s + 0 }' $SYS/probes)
missed=$(awk '!/^#/ && $1 ~ /^kprobe_/ { s += $6 } END { print s + 0 }' $SYS/probes)
info "kprobes_test with $total_a optprobes live ($opt optimized): $pass passed, $failed failed, $skipped skipped; our probes: $hits hits, $missed missed"
[ "$failed" = 0 ] || fail "kprobes_test failed with optprobes attached"
[ "$pass" -ge 5 ] || fail "kprobes_test: only $pass cases passed"
[ "$hits" -gt 0 ] || fail "no hits on our probes while the suite ran"
grep -q "^ok [0-9]* kprobes_test" /tmp/kunit_results || fail "no suite result"
cleanup
exit 0
