# Allocation failures at every step (issue 11), with the target's spinner
# threads running through the probes: the in-kernel case "faults" fails the
# n-th allocation of attach, disable, enable and detach for every n in turn;
# here the control file gets the same for adds and removes. Every outcome
# must be whole, and nothing may be left (99_kmemleak checks for leaks).
# Needs CONFIG_FAULT_INJECTION and CONFIG_FAILSLAB: make test-debug.
. /tests/kselftest/lib/common.sh
F=/sys/kernel/debug/failslab
[ -e /proc/self/fail-nth ] && [ -d $F ] || skip "no fault injection in this kernel (make test-debug has it)"
# Fail GFP_KERNEL allocations too, quietly (a stack dump would read as a bug).
echo N > $F/ignore-gfp-wait
echo 0 > $F/verbose
cleanup
insmod $M/optprobe_target.ko spin=2 || fail "insmod optprobe_target spin=2"
insmod $M/optprobe.ko || fail "insmod optprobe"
pages0=$(statval trampoline_pages)
insmod $M/optprobe_ktest.ko case=faults || fail "ktest case faults (see its lines above)"
rmmod optprobe_ktest
adds='p:f1 optprobe_target_work+16
p:f2 optprobe_target_work+20'
n=1 failed=0
while [ $n -lt 300 ]; do
    # A subshell: fail-nth is per task and counts from the next fault point.
    out=$( (echo $n > /proc/self/fail-nth; printf '%s\n' "$adds" > $SYS/control; rc=$?; read left < /proc/self/fail-nth; echo "rc=$rc left=$left") 2>&1 | tail -1)
    p=$(nprobes)
    case "$out" in
        *rc=0*) [ "$p" = 2 ] || fail "add succeeded at point $n with $p probes" ;;
        *) failed=$((failed + 1)); [ "$p" = 0 ] || fail "add failed at point $n ($out) but $p probes are left" ;;
    esac
    if [ "$p" = 2 ]; then
        out2=$( (echo $n > /proc/self/fail-nth; printf -- '-:f1\n-:f2\n' > $SYS/control; echo "rc=$?") 2>&1 | tail -1)
        p=$(nprobes)
        case "$out2" in
            *rc=0*) [ "$p" = 0 ] || fail "remove succeeded at point $n with $p probes left" ;;
            *) [ "$p" = 2 ] || fail "remove failed at point $n ($out2) with $p probes" ; ctl "-:f1" ; ctl "-:f2" ;;
        esac
    fi
    case "$out" in *left=0*) ;; *) break ;; esac
    n=$((n + 1))
done
info "control file: $n fault points, $failed adds failed cleanly"
[ "$(nprobes)" = 0 ] || fail "$(nprobes) probes left"
[ "$(statval trampoline_pages)" = "$pages0" ] || fail "trampoline pages $(statval trampoline_pages), were $pages0"
echo Y > $F/ignore-gfp-wait
cleanup
exit 0
