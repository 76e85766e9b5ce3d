# Control writes of any size (issue 11, item 14), as kprobe_events takes them:
# `cat list > control` with 1000 lines (about 40 KiB) reaches the store in
# page-sized pieces cut mid-line. Each piece runs its complete lines (all or
# nothing) and carries its unfinished last line into the next.
. /tests/kselftest/lib/common.sh
load_all
i=0
while [ $i -lt 1000 ]; do
    echo "p:m$i optprobe_target_many_insns+$((4 * i))"
    i=$((i + 1))
done > /tmp/adds
i=0
while [ $i -lt 1000 ]; do echo "-:m$i"; i=$((i + 1)); done > /tmp/removes
info "adds: $(wc -c < /tmp/adds) bytes, removes: $(wc -c < /tmp/removes) bytes"
cat /tmp/adds > $SYS/control || fail "cat of 1000 adds refused"
[ "$(nprobes)" = 1000 ] || fail "$(nprobes) probes after 1000 adds"
[ "$(state m0)" = optimized ] && [ "$(state m999)" = optimized ] || fail "m0 '$(state m0)', m999 '$(state m999)'"
[ "$(field m517 2)" = "optprobe_target_many_insns+0x814" ] || fail "m517 at '$(field m517 2)'"
cat /tmp/removes > $SYS/control || fail "cat of 1000 removes refused"
[ "$(nprobes)" = 0 ] || fail "$(nprobes) probes after 1000 removes"
# The last line of a write needs no newline, even after a page boundary.
{ head -c 4200 /tmp/adds | sed '$d'; printf 'p:last vfs_read+16'; } > /tmp/tail
cat /tmp/tail > $SYS/control || fail "write ending without a newline refused"
[ -n "$(state last)" ] || fail "the unterminated last line was not run"
[ "$(statval trampoline_pages)" -gt 0 ] || fail "no trampoline pages?"
cleanup
exit 0
