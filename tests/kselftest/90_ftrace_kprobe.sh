# The kernel's ftrace kprobe selftests (tools/testing/selftests/ftrace,
# run by ftracetest under bash) with optprobe loaded and optimized probes
# live on the functions those tests probe: kprobe_events probes then share
# addresses with ours (kprobe_insn_boundary.tc probes every offset of
# kernel_clone). The whole kprobe group runs (~70 s at 2 vCPUs); make
# test-long first runs it without optprobe loaded and requires the same
# result for every test.
#
# A result other than PASS or UNSUPPORTED fails this test, except these,
# which this kernel cannot pass with or without optprobe:
#   kretprobe_maxactive.tc  probes inet_csk_accept; the test kernel has no
#                           networking (FAIL)
#   kprobe_module.tc        needs the trace-printk sample module (UNRESOLVED)
#   kprobe_eventname.tc     needs a GCC ".isra." clone; clang makes none
#                           (UNRESOLVED)
. /tests/kselftest/lib/common.sh
[ "$OPTSUITE" = main ] || skip "the ftrace selftests run in the main boot"
[ -x /bin/bash ] && [ -x /tests/ftrace/ftracetest ] || skip "no bash or ftracetest in the initramfs"
K=test.d/kprobe
grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev /sys/kernel/tracing
# run_group OUT: the kprobe group, each result line stamped with the seconds
# since the start (to see where time goes).
run_group() {
    ( cd /tests/ftrace && t0=$(date +%s)
      bash ./ftracetest -l /tmp/ftrace_logs $K/ 2>&1 |
          while IFS= read -r line; do echo "$(( $(date +%s) - t0 ))s $line"; done ) > "$1"
    sed -i 's/^[0-9]*s \(# of\)/\1/' "$1"
}
# result FILE TEST.tc: PASS, FAIL, UNRESOLVED, UNSUPPORTED, ... or empty.
result() {
    d=$(sed -n 's/^# description: //p' /tests/ftrace/$K/$2)
    grep -F "] $d	[" "$1" | sed 's/.*\[\([A-Z]*\)\]$/\1/'
}
if [ "$OPTLONG" = 1 ]; then
    cleanup
    run_group /tmp/ftrace_base.out
    info "baseline without optprobe: $(grep '^# of passed' /tmp/ftrace_base.out)"
fi
load_all
for off in 12 16 20 24 28 32 36 40 44 48; do
    ctl "p:clone_$off kernel_clone+$off" > /dev/null
    ctl "p:read_$off vfs_read+$off" > /dev/null
    ctl "p:open_$off do_sys_openat2+$off" > /dev/null
done
opt=$(awk '!/^#/ && $4 == "optimized"' $SYS/probes | wc -l)
[ "$opt" -ge 10 ] || fail "only $opt optimized probes to run the selftests under"
expected="kretprobe_maxactive.tc:FAIL kprobe_module.tc:UNRESOLVED kprobe_eventname.tc:UNRESOLVED"
start=$(date +%s)
run_group /tmp/ftrace.out
grep -E "^[0-9]+s \[[0-9]+\]|^# of" /tmp/ftrace.out
n() { sed -n "s/^# of $1: *\([0-9]*\).*/\1/p" /tmp/ftrace.out; }
passed=$(n passed) failed=$(n failed) unresolved=$(n unresolved) untested=$(n untested)
unsupported=$(n unsupported) xfailed=$(n xfailed)
[ -n "$passed" ] || { tail -20 /tmp/ftrace.out; fail "ftracetest printed no summary"; }
# Every result that is not PASS or UNSUPPORTED must be an expected one.
unexpected=0 known=0
for tc in $(cd /tests/ftrace && ls $K/*.tc); do
    t=$(basename $tc)
    r=$(result /tmp/ftrace.out $t)
    if [ "$OPTLONG" = 1 ] && [ "$(result /tmp/ftrace_base.out $t)" != "$r" ]; then
        unexpected=$((unexpected + 1))
        echo "--- $t: $r with optprobe, $(result /tmp/ftrace_base.out $t) without"
        continue
    fi
    case "$r" in ""|PASS|UNSUPPORTED) continue ;; esac
    case " $expected " in
        *" $t:$r "*) known=$((known + 1)); info "expected on this kernel: $t $r" ;;
        *)  unexpected=$((unexpected + 1))
            echo "--- unexpected: $t $r; verbose re-run:"
            (cd /tests/ftrace && bash ./ftracetest -v -l /tmp/ftrace_rerun $tc 2>&1 | tail -40) ;;
    esac
done
hits=$(awk '!/^#/ { s += $5 } END { print s + 0 }' $SYS/probes)
still=$(awk '!/^#/ && $4 == "optimized"' $SYS/probes | wc -l)
info "ftrace kprobe selftests in $(( $(date +%s) - start )) s with $opt optprobes live: $passed passed, $failed failed, $unresolved unresolved, $untested untested, $unsupported unsupported, $xfailed xfailed; our probes: $hits hits, $still still optimized"
[ $unexpected = 0 ] || fail "$unexpected ftrace kprobe selftests failed with optprobes attached"
[ "$passed" -ge 15 ] || fail "only $passed ftrace kprobe selftests passed"
[ "$still" = "$opt" ] || fail "$opt probes were optimized before, $still after"
[ "$hits" -gt 0 ] || fail "no hits on our probes"
cleanup
exit 0
