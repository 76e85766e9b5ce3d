# Unloading a probed module removes its probes first; rmmod optprobe with
# probes attached detaches them all.
. /tests/kselftest/lib/common.sh
load_all
ctl "p:t1 optprobe_target_args+4" || fail "add t1"
ctl "p:t2 optprobe_target_args+8" || fail "add t2"
ctl "p:k1 vfs_read+16" || fail "add k1"
[ "$(state t1)" = optimized ] || fail "t1 $(state t1)"
call_target 3
rmmod optprobe_target || fail "rmmod optprobe_target with probes attached"
[ -z "$(state t1)" ] || fail "t1 still listed after its module left"
[ -z "$(state t2)" ] || fail "t2 still listed after its module left"
[ -n "$(state k1)" ] || fail "k1 vanished"
cat /proc/version > /dev/null
rmmod optprobe || fail "rmmod optprobe with probes attached"
cat /proc/version > /dev/null
[ ! -e $SYS ] || fail "$SYS left"
exit 0
