# The control file and the listing are root only; a non-root write gets
# EACCES and changes nothing; listed addresses follow kptr_restrict.
. /tests/kselftest/lib/common.sh
load_all
ctl "p:perm optprobe_target_args+4" || fail "add perm"
before=$(cat $SYS/probes)
as_user() { runas 1000 "$1" 2>&1; }
uid=$(runas 1000 'id -u' 2>&1)
[ "$uid" = 1000 ] || fail "runas does not drop to uid 1000: '$uid' (rc $?)"
out=$(as_user "echo 'p:evil vfs_read+16' > $SYS/control") && fail "non-root write accepted"
case "$out" in *"Permission denied"*) ;; *) fail "non-root write: '$out', want Permission denied";; esac
out=$(as_user "cat $SYS/probes") && fail "non-root read of the listing succeeded"
case "$out" in *"Permission denied"*) ;; *) fail "non-root read: '$out'";; esac
[ "$before" = "$(cat $SYS/probes)" ] || fail "listing changed by a refused write"

addr() { field perm 3; }
old=$(cat /proc/sys/kernel/kptr_restrict)
echo 0 > /proc/sys/kernel/kptr_restrict
[ "$(addr)" != 0x0000000000000000 ] || fail "kptr_restrict=0: address hidden from root"
echo 1 > /proc/sys/kernel/kptr_restrict
[ "$(addr)" != 0x0000000000000000 ] || fail "kptr_restrict=1: address hidden from root (CAP_SYSLOG)"
echo 2 > /proc/sys/kernel/kptr_restrict
[ "$(addr)" = 0x0000000000000000 ] || fail "kptr_restrict=2: address shown: $(addr)"
echo "$old" > /proc/sys/kernel/kptr_restrict
info "non-root: EACCES for write and read; addresses: shown at kptr_restrict 0/1, hidden at 2"
cleanup
exit 0
