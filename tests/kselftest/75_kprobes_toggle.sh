# The kernel can disarm and re-arm every kprobe at once (debugfs
# kprobes/enabled), writing the original instruction, then its BRK, over our
# branch. Hits must stop while disarmed and resume (through the BRK) after;
# the listing must say the branch is gone; removal must still free the
# trampoline, with no "not our branch" error.
. /tests/kselftest/lib/common.sh
E=/sys/kernel/debug/kprobes/enabled
[ -e $E ] || skip "no $E"
load_all
ctl "p:t1 optprobe_target_args+4" || fail "add t1"
[ "$(state t1)" = optimized ] || fail "t1 $(state t1) ($(reason t1))"
call_target 5
want_hits t1 5
echo 0 > $E || fail "disarm all"
call_target 5
want_hits t1 5 "kprobes are disarmed"
echo 1 > $E || fail "arm all"
call_target 5
info "after the toggle: $(grep '^t1 ' $SYS/probes | tr -s ' ')"
want_hits t1 10 "after re-arming"
[ "$(state t1)" = kprobe ] || fail "listing says $(state t1) though the branch is gone"
dmesg -c > /dev/null
ctl "-:t1" || fail "remove t1"
dmesg | grep -q "not our branch" && fail "removal refused the site"
[ "$(statval trampoline_pages)" = 0 ] || fail "trampoline page not freed: $(statval trampoline_pages)"
# New probes optimize again.
ctl "p:t2 optprobe_target_args+8" || fail "add t2"
[ "$(state t2)" = optimized ] || fail "t2 $(state t2) ($(reason t2))"
cleanup
exit 0
