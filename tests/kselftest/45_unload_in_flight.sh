# A module unloads while its probed code is running: 4 kthreads of
# optprobe_target hammer optprobe_target_work through optimized probes, and
# the module's exit function (probed at entry: a BRK probe on its BTI pad)
# stops them during rmmod and runs a probed step eight times. The
# probes must go with the module (their last hit counts are logged), the
# trampoline pages must come back, and the next load must run clean code.
# Then the same with optprobe itself unloaded under the hammering.
. /tests/kselftest/lib/common.sh
cleanup
insmod $M/optprobe.ko || fail "insmod optprobe"
pages0=$(statval trampoline_pages)
cycle=1
while [ $cycle -le 3 ]; do
    insmod $M/optprobe_target.ko spin=4 || fail "insmod optprobe_target spin=4"
    for off in 12 16 20 24 28; do
        ctl "p:work_$off optprobe_target_work+$off" || fail "add work+$off"
    done
    ctl "p:exit_entry optprobe_target_exit" || fail "add exit entry probe"
    ctl "p:exit_step optprobe_target_exit_step_insn" || fail "add exit step probe"
    [ "$(state work_12)" = optimized ] || fail "work_12: $(state work_12) ($(reason work_12))"
    [ "$(state exit_step)" = optimized ] || fail "exit_step: $(state exit_step) ($(reason exit_step))"
    sleep 1
    h=$(hits work_12)
    [ "$h" -gt 0 ] || fail "no hits while the spinners run"
    dmesg -c > /dev/null
    rmmod optprobe_target || fail "rmmod optprobe_target under load (cycle $cycle)"
    [ "$(nprobes)" = 0 ] || fail "probes left after their module went: $(cat $SYS/probes)"
    [ "$(statval trampoline_pages)" = "$pages0" ] || fail "trampoline pages $pages0 -> $(statval trampoline_pages)"
    removed_hits() { dmesg | sed -n "s/.*probe '$1' removed with its module (\([0-9]*\) hits).*/\1/p"; }
    exit_hits=$(removed_hits exit_entry) step_hits=$(removed_hits exit_step)
    [ "$exit_hits" = 1 ] || fail "exit entry probe: '$exit_hits' hits, want 1"
    [ "$step_hits" = 8 ] || fail "exit step probe: '$step_hits' hits, want 8"
    info "cycle $cycle: work_12 had $h hits at 1 s and $(removed_hits work_12) at unload; exit entry $exit_hits hit, exit step $step_hits; pages back to $pages0"
    cycle=$((cycle + 1))
done
# Fresh code at (maybe) the same addresses: no stale branch may remain.
call_target_fresh() {
    insmod $M/optprobe_target.ko spin=2 || fail "reload optprobe_target"
    sleep 1
    rmmod optprobe_target || fail "unload the reloaded target"
}
call_target_fresh

# optprobe leaves while the spinners hit its trampolines.
insmod $M/optprobe_target.ko spin=4 || fail "insmod optprobe_target spin=4"
for off in 12 16 20 24 28; do
    ctl "p:work_$off optprobe_target_work+$off" || fail "add work+$off"
done
sleep 1
rmmod optprobe || fail "rmmod optprobe under load"
sleep 1
rmmod optprobe_target || fail "rmmod optprobe_target after optprobe left"
call_target_fresh
cleanup
exit 0
