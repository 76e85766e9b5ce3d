# A probe attached while debugfs kprobes/enabled=0 (issue 11, item 8) must
# arm when kprobes are enabled again, as a kprobe registered then does. It
# stays a BRK kprobe, listed with the reason.
. /tests/kselftest/lib/common.sh
E=/sys/kernel/debug/kprobes/enabled
[ -e $E ] || skip "no $E"
load_all
echo 0 > $E || fail "disarm all"
ctl "p:t1 optprobe_target_args+4" || { echo 1 > $E; fail "add t1 while disarmed"; }
info "while disarmed: $(grep '^t1 ' $SYS/probes | tr -s ' ')"
call_target 5
want_hits t1 0 "kprobes are disarmed"
echo 1 > $E || fail "arm all"
call_target 5
info "after arming: $(grep '^t1 ' $SYS/probes | tr -s ' ')"
want_hits t1 5 "after kprobes were enabled again"
ctl "-:t1" || fail "remove t1"
[ "$(statval trampoline_pages)" = 0 ] || fail "trampoline page left"
cleanup
exit 0
