# The module loads, its sysfs directory appears, and unloading leaves nothing.
. /tests/kselftest/lib/common.sh
cleanup
vm_before=$(grep -c . /proc/vmallocinfo)
insmod $M/optprobe.ko || fail "insmod optprobe"
[ -d $SYS ] || fail "$SYS missing"
[ -f $SYS/control ] || fail "$SYS/control missing"
[ -f $SYS/probes ] || fail "$SYS/probes missing"
perm=$(stat -c %a $SYS/control)
[ "$perm" = 200 ] || fail "control mode $perm, want 200 (root write only)"
perm=$(stat -c %a $SYS/probes)
[ "$perm" = 400 ] || fail "probes mode $perm, want 400 (root read only)"
[ "$(nprobes)" = 0 ] || fail "fresh module lists probes"
grep -q '^optprobe ' /proc/modules || fail "not in /proc/modules"
# Attach and detach once so trampoline pages are allocated and freed.
ctl "p:t vfs_read+16" >/dev/null || true
ctl "-:t" >/dev/null || true
rmmod optprobe || fail "rmmod optprobe"
[ ! -e $SYS ] || fail "$SYS left after unload"
grep -q '^optprobe ' /proc/modules && fail "still in /proc/modules"
vm_after=$(grep -c . /proc/vmallocinfo)
info "vmallocinfo entries: $vm_before before, $vm_after after"
[ "$vm_after" -le "$vm_before" ] || fail "vmalloc areas leaked: $vm_before -> $vm_after"
exit 0
