# rmmod optprobe racing the unload of a probed module (issue 11, item 2).
# optprobe's exit must detach its probes before it stops listening for module
# unloads: a module unloaded in between is freed under a live probe, and the
# detach then reads and writes its freed text. The test-only delay point
# exit_window holds the window between exit's two steps open for 2 s while the
# probed module is unloaded.
. /tests/kselftest/lib/common.sh
load_all
[ -e $HOOKS/delay_ms ] || fail "no test hooks in this build (make test builds with OPTPROBE_TEST_HOOKS=1)"
ctl "p:t1 optprobe_target_args+4" || fail "add t1"
ctl "p:t2 optprobe_target_args+8" || fail "add t2"
[ "$(state t1)" = optimized ] || fail "t1 $(state t1) ($(reason t1))"
call_target 3
dmesg -c > /dev/null
echo exit_window > $HOOKS/delay_at
echo 2000 > $HOOKS/delay_ms
rmmod optprobe &
rm_pid=$!
wait_log "test hook: 2000 ms at exit_window" || fail "exit never reached the window"
rmmod optprobe_target || fail "rmmod optprobe_target while optprobe is exiting"
wait $rm_pid || fail "rmmod optprobe failed"
grep -q '^optprobe ' /proc/modules && fail "optprobe still loaded"
# A clean reload afterwards.
load_all
ctl "p:t3 optprobe_target_args+4" || fail "add t3 after reload"
[ "$(state t3)" = optimized ] || fail "t3 $(state t3) ($(reason t3))"
cleanup
exit 0
