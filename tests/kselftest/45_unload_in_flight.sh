# A module unloads while its probed code is running: 4 kthreads of
# optprobe_target hammer optprobe_target_work through optimized probes, and
# the module's exit function (probed too) stops them during rmmod. The
# probes must go with the module (their last hit counts are logged), the
# trampoline pages must come back, and the next load must run clean code.
# Then the same with optprobe itself unloaded under the hammering.
. /tests/kselftest/lib/common.sh
stat() { awk -v k="$1" '$1 == k { print $2 }' $SYS/stats; }
cleanup
insmod $M/optprobe.ko || fail "insmod optprobe"
pages0=$(stat trampoline_pages)
cycle=1
while [ $cycle -le 3 ]; do
    insmod $M/optprobe_target.ko spin=4 || fail "insmod optprobe_target spin=4"
    for off in 12 16 20 24 28; do
        ctl "p:work_$off optprobe_target_work+$off" || fail "add work+$off"
    done
    ctl "p:exit_loop optprobe_target_exit+0x30" || fail "add exit probe"
    [ "$(state work_12)" = optimized ] || fail "work_12: $(state work_12) ($(reason work_12))"
    [ "$(state exit_loop)" = optimized ] || fail "exit_loop: $(state exit_loop) ($(reason exit_loop))"
    sleep 1
    h=$(hits work_12)
    [ "$h" -gt 0 ] || fail "no hits while the spinners run"
    dmesg -c > /dev/null
    rmmod optprobe_target || fail "rmmod optprobe_target under load (cycle $cycle)"
    [ "$(nprobes)" = 0 ] || fail "probes left after their module went: $(cat $SYS/probes)"
    [ "$(stat trampoline_pages)" = "$pages0" ] || fail "trampoline pages $pages0 -> $(stat trampoline_pages)"
    exit_hits=$(dmesg | sed -n "s/.*probe 'exit_loop' removed with its module (\([0-9]*\) hits).*/\1/p")
    [ "$exit_hits" = 8 ] || fail "exit probe: '$exit_hits' hits, want 8 (one per loop pass)"
    work_hits=$(dmesg | sed -n "s/.*probe 'work_12' removed with its module (\([0-9]*\) hits).*/\1/p")
    info "cycle $cycle: work_12 had $h hits at 1 s and $work_hits at unload; exit probe $exit_hits hits; pages back to $pages0"
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
