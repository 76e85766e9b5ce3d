# Bad control writes are rejected with the right errno and a pr_warn reason,
# and the listing does not change.
. /tests/kselftest/lib/common.sh
load_all
ctl "p:keep optprobe_target_args+4" || fail "add keep"
before=$(cat $SYS/probes)
warns_before=$(dmesg | grep -c "optprobe: ")

expect() { # errno-text command
    out=$(ctl "$2") && fail "accepted: '$2'"
    case "$out" in *"$1"*) ;; *) fail "'$2': got '$out', want '$1'";; esac
}
expect "No such file or directory" "p:x no_such_symbol_optprobe"
expect "Invalid argument" "p:x vfs_read+3"
expect "Invalid argument" "p:x vfs_read+zz"
expect "Invalid argument" "p:x 0x1002"
expect "File exists" "p:keep vfs_read+16"
expect "Invalid argument" "hello world"
expect "Invalid argument" "p:1bad vfs_read"
expect "Invalid argument" "p:x vfs_read extra"
expect "Invalid argument" ""
expect "No such file or directory" "-:nonexistent"
expect "Argument list too long" "p:x $(printf '%0300d' 0)"
expect "Invalid argument" "p:x 0x0"

after=$(cat $SYS/probes)
[ "$before" = "$after" ] || fail "listing changed by rejected writes"
warns_after=$(dmesg | grep -c "optprobe: ")
[ $((warns_after - warns_before)) -ge 12 ] || fail "only $((warns_after - warns_before)) warnings for 12 rejections"
dmesg | grep "optprobe: " | tail -12
cleanup
exit 0
