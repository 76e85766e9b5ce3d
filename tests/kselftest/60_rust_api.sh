# The Rust API: a Registration with a Rust handler on a function in the
# module itself is optimized, sees every call and x0, and stops on drop.
. /tests/kselftest/lib/common.sh
cleanup
insmod $M/optprobe.ko selftest=1 || fail "selftest=1 load failed"
dmesg | grep "selftest: Rust API probe" | tail -1
dmesg | grep -q "selftest: Rust API probe at .*: optimized, 100 hits, last x0 1099" || fail "self-test line missing"
[ "$(nprobes)" = 0 ] || fail "self-test probe left in the listing"
cleanup
exit 0
