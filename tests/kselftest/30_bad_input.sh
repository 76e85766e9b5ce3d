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
# Names: up to 64 characters, as kprobe_events allows (issue 11, item 15).
n64=nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn
expect "Invalid argument" "p:${n64}x vfs_read+16"

# Multi-line writes are all or nothing: a bad line anywhere, a name used
# twice, additions mixed with removals, or a refused probe change nothing.
expect "Invalid argument" "$(printf 'p:ok1 vfs_read+16\np:bad vfs_read+3')"
expect "File exists" "$(printf 'p:dup vfs_read+16\np:dup vfs_read+20')"
expect "Invalid argument" "$(printf 'p:ok1 vfs_read+16\n-:keep')"
expect "No such file or directory" "$(printf 'p:ok1 vfs_read+16\np:ok2 no_such_symbol_optprobe')"
expect "No such file or directory" "$(printf -- '-:keep\n-:nonexistent')"
after=$(cat $SYS/probes)
[ "$before" = "$after" ] || fail "listing changed by rejected writes"
warns_after=$(dmesg | grep -c "optprobe: ")
[ $((warns_after - warns_before)) -ge 18 ] || fail "only $((warns_after - warns_before)) warnings for 18 rejections"
dmesg | grep "optprobe: " | tail -18
ctl "p:$n64 vfs_read+16" || fail "a 64-character name refused"
[ "$(state $n64)" = optimized ] || fail "64-character name: '$(state $n64)' ($(grep "^$n64" $SYS/probes))"
ctl "-:$n64" || fail "remove the 64-character name"
cleanup
exit 0
