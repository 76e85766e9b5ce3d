# probes= attaches probes at insmod; a bad entry fails the load cleanly.
. /tests/kselftest/lib/common.sh
load_all 'probes="p:a optprobe_target_args+4;p:b vfs_read+16"'
[ "$(state a)" = optimized ] || fail "a: $(state a) $(reason a)"
[ -n "$(state b)" ] || fail "b missing"
cleanup
insmod $M/optprobe_target.ko || fail "insmod target"
insmod $M/optprobe.ko 'probes="p:a optprobe_target_args+4;p:b no_such_symbol_optprobe"' && fail "bad probes= accepted"
[ ! -e $SYS ] || fail "$SYS left after failed load"
grep -q '^optprobe ' /proc/modules && fail "module stayed after failed load"
cleanup
exit 0
