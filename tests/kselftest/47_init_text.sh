# A probe in a module's .init.text (issue 11, item 1). kprobes accepts such
# addresses while the module loads; when it goes live the init text is freed.
# optprobe must retire the probe before that (branch out, trampoline freed)
# and list it as gone: reading the listing and unregistering must not touch
# the freed text. optprobe_inittext.ko optprobes its own __init helper, calls
# it three times in init, and unregisters the probe in its exit.
. /tests/kselftest/lib/common.sh
load_all
insmod $M/optprobe_inittext.ko || fail "insmod optprobe_inittext (see its log lines)"
sleep 1	# init text is freed after an RCU grace period
info "$(grep '^inittext ' $SYS/probes | tr -s ' ')"
[ "$(state inittext)" = gone ] || fail "listing says '$(state inittext)', want gone"
[ "$(hits inittext)" = 3 ] || fail "$(hits inittext) hits, want 3"
reason inittext | grep -q "init text" || fail "reason '$(reason inittext)'"
[ "$(statval trampoline_pages)" = 0 ] || fail "trampoline of the retired probe not freed"
rmmod optprobe_inittext || fail "rmmod optprobe_inittext"
[ "$(statval probes)" = 0 ] || fail "$(statval probes) probes left"
cleanup
exit 0
