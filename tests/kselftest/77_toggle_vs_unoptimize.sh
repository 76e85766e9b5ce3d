# debugfs kprobes/enabled=0 racing the removal of an optimized probe (issue 11,
# item 3). unoptimize reads the site, decides, then writes BRK over its branch.
# If the read is not under the lock that serialises text writes, the core's
# disarm-all can write the original instruction in between; we then write a
# BRK while every kprobe counts as disarmed, the unregister skips the disarm,
# and the next call dies in "Oops - BRK". The delay point unoptimize_checked
# holds that window open for 1 s while kprobes/enabled=0 is written.
. /tests/kselftest/lib/common.sh
E=/sys/kernel/debug/kprobes/enabled
[ -e $E ] || skip "no $E"
load_all
[ -e $HOOKS/delay_ms ] || fail "no test hooks in this build (make test builds with OPTPROBE_TEST_HOOKS=1)"
ctl "p:t1 optprobe_target_args+4" || fail "add t1"
[ "$(state t1)" = optimized ] || fail "t1 $(state t1) ($(reason t1))"
dmesg -c > /dev/null
echo unoptimize_checked > $HOOKS/delay_at
echo 1000 > $HOOKS/delay_ms
ctl "-:t1" &
rm_pid=$!
wait_log "test hook: 1000 ms at unoptimize_checked" || fail "removal never reached the window"
echo 0 > $E || fail "disarm all"
wait $rm_pid || fail "remove t1"
echo 0 > $HOOKS/delay_ms
# The site must hold the original instruction now: this call would die on a
# stray BRK.
call_target 5
echo 1 > $E || fail "arm all"
call_target 5
[ "$(statval probes)" = 0 ] || fail "$(statval probes) probes left"
[ "$(statval trampoline_pages)" = 0 ] || fail "trampoline page not freed"
dmesg | grep -q "not our branch" && fail "removal refused the site"
cleanup
exit 0
