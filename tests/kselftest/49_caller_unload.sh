# A C ABI caller that unloads without unregistering (issue 11, item 13): its
# probe's handler and data live in the module being freed, so optprobe must
# remove the probe with it, not leave a handler pointer into freed text.
. /tests/kselftest/lib/common.sh
load_all
insmod $M/optprobe_ktest.ko case=leak || fail "insmod optprobe_ktest case=leak"
[ "$(nprobes)" = 1 ] || fail "$(nprobes) probes after the leaking register, want 1"
info "$(grep '^leaked ' $SYS/probes | tr -s ' ')"
dmesg -c > /dev/null
rmmod optprobe_ktest || fail "rmmod optprobe_ktest"
[ "$(nprobes)" = 0 ] || fail "the probe outlived the module holding its handler: $(grep -v '^#' $SYS/probes | tr -s ' ')"
dmesg | grep -q "handler" || fail "no log line says why the probe went"
dmesg | grep "optprobe: "
[ "$(statval trampoline_pages)" = 0 ] || fail "trampoline page not freed"
cleanup
exit 0
