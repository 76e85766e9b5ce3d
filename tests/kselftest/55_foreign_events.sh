#!/bin/sh
# Others' kprobes optimized in place (src/foreign.rs): a kprobe_events probe
# with fetch args gives the same trace body through BRK (auto=0) and through
# our branch (auto=1); the listing shows it as @kprobe_dispatcher; 'o'/'-o'
# do the same by hand; bad requests are refused cleanly; a kprobe with a
# post-handler or an unknown handler joining the address puts the BRK back;
# a handler that changes pc is counted and refused.
. /tests/kselftest/lib/common.sh
T=/sys/kernel/tracing
grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev $T
FIRE=/sys/module/optprobe_target/parameters/fire
SITE=optprobe_target_event+0xc
ARGS='a0=%x0 a1=%x1 a2=%x2 a3=%x3 a4=%x4 a5=%x5 a6=%x6 a7=%x7 a8=%x8 fp=%x29 lr=%lr sp=%sp pc=%pc st=+8(%sp):x64 comm=$comm'

# Listing fields of the foreign line at $SITE: 1 name .. 4 state, 7.. reason.
site_field() { awk -v s="$SITE" -v f="$1" '$2 == s && $1 ~ /^@/ { print $f }' $SYS/probes; }
site_reason() { awk -v s="$SITE" '$2 == s && $1 ~ /^@/ { for (i = 7; i <= NF; i++) printf "%s%s", $i, (i < NF ? " " : ""); print "" }' $SYS/probes; }
now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
# Wait up to 2 s for the site's state to be $1; prints the wait in ms.
wait_state() {
    t0=$(now_ms)
    i=0
    while [ "$(site_field 4)" != "$1" ]; do
        i=$((i + 1)); [ $i -lt 200 ] || return 1
        usleep 10000
    done
    echo $(( $(now_ms) - t0 ))
}
# The trace body: task-pid and everything after the event name (no CPU,
# irq-flags or timestamp columns).
body() { grep -v '^#' $T/trace | sed 's/^ *\([^ ]*\) *\[[0-9]*\] [^ ]* *[0-9.]*: /\1 /'; }
run_calls() { echo > $T/trace; echo "$1 $2" > $FIRE || fail "fire"; }
cleanup_events() {
    [ -d $T/events/optp ] && echo 0 > $T/events/optp/enable
    echo > $T/kprobe_events 2>/dev/null
}

load_all
cleanup_events
pages0=$(statval trampoline_pages)
echo "p:optp/parity $SITE $ARGS" >> $T/kprobe_events || fail "kprobe_events refused the probe: $(cat $T/error_log)"
echo 1 > $T/events/optp/parity/enable || fail "enable event"

[ "$(site_field 1)" = "@kprobe_dispatcher" ] || fail "listing: name '$(site_field 1)', want @kprobe_dispatcher: $(cat $SYS/probes)"
[ "$(site_field 4)" = kprobe ] || fail "auto=0: state $(site_field 4), want kprobe"
info "auto=0: $(site_reason)"
run_calls 1 50
body > /tmp/brk.txt
[ "$(wc -l < /tmp/brk.txt)" = 50 ] || fail "BRK run: $(wc -l < /tmp/brk.txt) events, want 50"

echo 1 > $SYS/auto || fail "auto=1 refused: $(ls -l $SYS; dmesg | tail -5)"
[ "$(cat $SYS/auto)" = 1 ] || fail "auto reads $(cat $SYS/auto)"
ms=$(wait_state optimized) || fail "not optimized within 2 s of auto=1: $(site_reason)"
info "auto=1: optimized after ${ms} ms"
grep optprobe_target_event+0xc /sys/kernel/debug/kprobes/list | grep -q OPTIMIZED ||
    fail "debugfs kprobes/list does not say [OPTIMIZED]: $(cat /sys/kernel/debug/kprobes/list)"
run_calls 1 50
body > /tmp/opt.txt
hits=$(site_field 5)
[ "$hits" -ge 50 ] || fail "optimized: $hits hits counted, want >= 50"
same_or_fail /tmp/brk.txt /tmp/opt.txt "trace bodies differ between BRK and optimized"
info "trace parity: $(wc -l < /tmp/opt.txt) events identical; first: $(head -1 /tmp/opt.txt)"
[ "$(statval foreign_optimized)" = 1 ] || fail "stats: foreign_optimized $(statval foreign_optimized)"

# A new event while auto=1: optimized shortly after it is enabled.
echo "p:optp/late $SITE a0=%x0" >> $T/kprobe_events || fail "second event"
[ "$(site_field 1)" = "@aggr(2)" ] || fail "two events: name '$(site_field 1)', want @aggr(2)"
echo 1 > $T/events/optp/late/enable
ms=$(wait_state optimized) || fail "two events: not optimized: $(site_reason)"
echo 0 > $T/events/optp/late/enable
echo "-:optp/late" >> $T/kprobe_events || fail "remove second event"

# Disabled: back to the original instruction; re-enabled: optimized again.
echo 0 > $T/events/optp/parity/enable
wait_state disabled > /dev/null || fail "disabled event: state $(site_field 4)"
echo 1 > $T/events/optp/parity/enable
ms=$(wait_state optimized) || fail "re-enabled: not optimized: $(site_reason)"
info "re-enabled: optimized after ${ms} ms"

# Manual requests with auto=0.
echo 0 > $SYS/auto
wait_state kprobe > /dev/null || fail "auto=0: still $(site_field 4)"
ctl "o optprobe_target_event+12" > /dev/null || fail "'o SYMBOL' refused"
[ "$(site_field 4)" = optimized ] || fail "after 'o': state $(site_field 4): $(site_reason)"
ctl "-o optprobe_target_event+12" > /dev/null || fail "'-o SYMBOL' refused"
[ "$(site_field 4)" = kprobe ] || fail "after '-o': state $(site_field 4)"
addr=$(printf %x $(( 0x$(grep ' optprobe_target_event\b' /proc/kallsyms | cut -d' ' -f1) + 12 )))
ctl "o 0x$addr" > /dev/null || fail "'o 0xADDR' refused"
[ "$(site_field 4)" = optimized ] || fail "after 'o 0xADDR': state $(site_field 4)"
run_calls 1 50
body > /tmp/opt2.txt
same_or_fail /tmp/brk.txt /tmp/opt2.txt "trace bodies differ after 'o'"
# auto=1 with an explicit -o: excluded.
echo 1 > $SYS/auto
ctl "-o 0x$addr" > /dev/null || fail "'-o 0xADDR' refused"
[ "$(site_field 4)" = kprobe ] || fail "-o with auto=1: state $(site_field 4)"
case "$(site_reason)" in *excluded*) ;; *) fail "-o with auto=1: reason '$(site_reason)'" ;; esac
ctl "o 0x$addr" > /dev/null || fail "'o' again refused"
[ "$(site_field 4)" = optimized ] || fail "o after -o: state $(site_field 4)"

# Bad requests: a clear errno, one pr_warn, nothing changed.
before=$(cat $SYS/probes | md5sum)
for bad in "o no_such_symbol_xyz|No such file" "o optprobe_target_event+2|Invalid" \
           "o:x vfs_read|Invalid" "o vfs_read junk|Invalid" "o optprobe_target_event+0x100000|Invalid" \
           "o vfs_read+16
p:mixed vfs_read+16|Invalid"; do
    cmd=${bad%%|*} want=${bad#*|}
    out=$(ctl "$cmd")
    case "$out" in *"$want"*) ;; *) fail "'$cmd': '$out', want $want" ;; esac
done
[ "$(cat $SYS/probes | md5sum)" = "$before" ] || fail "a bad request changed the listing"
dmesg | grep -q "unknown symbol 'no_such_symbol_xyz'" || fail "no pr_warn for an unknown symbol"
echo 0 > $SYS/auto
out=$(ctl "-o 0xffff000000001000"); case "$out" in *"No such file"*) ;; *) fail "-o unknown address: '$out'" ;; esac
ctl "-o 0x$addr" > /dev/null
out=$(ctl "-o 0x$addr"); case "$out" in *"No such file"*) ;; *) fail "-o without a request: '$out'" ;; esac
out=$( (echo 2 > $SYS/auto) 2>&1); case "$out" in *Invalid*) ;; *) fail "auto=2: '$out'" ;; esac
[ "$(cat $SYS/auto)" = 0 ] || fail "auto changed by a bad write"
echo 1 > $SYS/auto
ms=$(wait_state optimized) || fail "auto=1 again: $(site_reason)"

# Kprobes that cannot run on the optimized path join the address.
for c in post:post-handler other:"handler not allowed"; do
    kind=${c%%:*} want=${c#*:}
    insmod $M/optprobe_ktest.ko case=hold_$kind || fail "load the $kind kprobe"
    wait_state kprobe > /dev/null || fail "$kind kprobe joined: still $(site_field 4)"
    case "$(site_reason)" in *"$want"*) ;; *) fail "$kind kprobe joined: reason '$(site_reason)'" ;; esac
    run_calls 1 50
    body > /tmp/mixed.txt
    same_or_fail /tmp/brk.txt /tmp/mixed.txt "trace bodies differ with the $kind kprobe"
    rmmod optprobe_ktest
    ms=$(wait_state optimized) || fail "$kind kprobe left: not optimized: $(site_reason)"
done

# A kprobe the optimized path must not run joins, and hits arrive before
# the poller sees it (held off by the foreign_poll delay point): its handler
# (an override, as fail_function's) is not run there but counted missed,
# the others run; once the poller runs, the BRK path honours it.
if [ -e $HOOKS/delay_at ]; then
    run_calls 1 50
    want=$(cat $FIRE)
    m0=$(site_field 6)
    echo foreign_poll > $HOOKS/delay_at
    echo 1500 > $HOOKS/delay_ms
    usleep 200000
    insmod $M/optprobe_ktest.ko case=hold_override || fail "load the override kprobe"
    run_calls 1 50
    got=$(cat $FIRE) events=$(body | wc -l) missed=$(( $(site_field 6) - m0 ))
    echo 0 > $HOOKS/delay_ms
    [ "$got" = "$want" ] || fail "override kprobe ran on the optimized path: sum $got, want $want"
    [ "$events" = 50 ] || fail "the allowed event saw $events of 50 hits"
    [ "$missed" = 50 ] || fail "override kprobe: $missed missed, want 50"
    wait_state kprobe > /dev/null || fail "override kprobe joined: still $(site_field 4)"
    run_calls 1 50
    [ "$(cat $FIRE)" = $((50 * 0xbad)) ] || fail "BRK path: sum $(cat $FIRE), want the override's"
    info "override kprobe joined unseen: 50 hits missed on it, none on the event; then BRK honours it"
    rmmod optprobe_ktest
    ms=$(wait_state optimized) || fail "override kprobe left: $(site_reason)"
fi

# A handler that moves pc: counted, refused, back to BRK (test builds allow
# the test module's handler, src/test_hooks.rs).
if [ -e $HOOKS/delay_at ]; then
    insmod $M/optprobe_ktest.ko case=hold_pc || fail "load the pc-moving kprobe"
    ms=$(wait_state optimized) || fail "pc-moving kprobe: not optimized first: $(site_reason)"
    run_calls 1 50
    wait_state kprobe > /dev/null || fail "pc-moving kprobe: not refused"
    case "$(site_reason)" in *"changed pc"*) ;; *) fail "pc-moving kprobe: reason '$(site_reason)'" ;; esac
    n=$(statval pc_changes)
    [ "$n" -ge 1 ] || fail "pc_changes $n"
    info "pc-moving handler: $n hit(s) counted, then refused"
    rmmod optprobe_ktest
    ms=$(wait_state optimized) || fail "pc-moving kprobe left: $(site_reason)"
fi

# Removal: the line leaves the listing, the carrier goes, pages come back.
cleanup_events
i=0
while [ -n "$(site_field 4)" ]; do i=$((i + 1)); [ $i -lt 200 ] || fail "removed event still listed"; usleep 10000; done
# The carrier leaves at the poller's next pass.
i=0
while [ "$(statval carriers)" != 0 ]; do i=$((i + 1)); [ $i -lt 200 ] || fail "carriers left: $(statval carriers)"; usleep 10000; done
[ "$(statval trampoline_pages)" = "$pages0" ] || fail "trampoline pages $(statval trampoline_pages), were $pages0"
rmmod optprobe || fail "rmmod optprobe"

# auto=1 at insmod, with the event already there.
insmod $M/optprobe.ko auto=1 || fail "insmod auto=1"
echo "p:optp/parity $SITE $ARGS" >> $T/kprobe_events
echo 1 > $T/events/optp/parity/enable
ms=$(wait_state optimized) || fail "insmod auto=1: not optimized: $(site_reason)"
info "insmod auto=1: optimized after ${ms} ms"
run_calls 1 50
body > /tmp/opt3.txt
same_or_fail /tmp/brk.txt /tmp/opt3.txt "trace bodies differ (insmod auto=1)"
# The probed module unloads under a carried event: the carrier goes with
# the module (our notifier runs first), the core marks the kprobe gone.
# An event named MODULE:SYMBOL comes back with its module (kprobe_events
# re-registers it), and is optimized again.
echo 0 > $T/events/optp/parity/enable
echo "-:optp/parity" >> $T/kprobe_events
echo "p:optp/modev optprobe_target:optprobe_target_event+12 a0=%x0" >> $T/kprobe_events || fail "MODULE:SYMBOL event"
echo 1 > $T/events/optp/modev/enable
ms=$(wait_state optimized) || fail "before unload: $(site_reason)"
# Hold the window between our GOING notification and the core's (the
# foreign kprobe is not gone yet): the poller tries a carrier there and
# kprobes refuses it (the module is going). That refusal must not outlive
# the module: kprobe_events re-registers the same kprobe when it is back.
if [ -e $HOOKS/delay_at ]; then
    echo module_going > $HOOKS/delay_at
    echo 600 > $HOOKS/delay_ms
    refused0=$(dmesg | grep -c "cannot probe .*(ENOENT)")
fi
rmmod optprobe_target || fail "rmmod optprobe_target under a carried event"
if [ -e $HOOKS/delay_at ]; then
    echo 0 > $HOOKS/delay_ms
    dmesg | grep -q "test hook: 600 ms at module_going" || fail "the module_going window was not held"
    # Only those from this window: earlier tests log ENOENT refusals too.
    refused=$(( $(dmesg | grep -c "cannot probe .*(ENOENT)") - refused0 ))
fi
i=0; while [ "$(statval carriers)" != 0 ]; do i=$((i + 1)); [ $i -lt 200 ] || fail "carrier left after its module went"; usleep 10000; done
gone=$(awk '$1 ~ /^@/ { print $4 }' $SYS/probes)
[ "$gone" = gone ] || fail "after unload: state '$gone': $(grep '^@' $SYS/probes)"
insmod $M/optprobe_target.ko || fail "insmod target again"
# Deterministic: the module's COMING notification (done when insmod
# returns) forgot the refusals in it; without that, one made in the held
# window lasts 5 s more.
case "$(site_reason)" in *"carrier refused by kprobes"*)
    fail "module back: still refused from when it was going: $(site_reason)";; esac
ms=$(wait_state optimized) || fail "module back: not optimized: $(site_reason)"
info "probed module unloaded (listed gone, carrier removed), back: optimized after ${ms} ms${refused:+ ($refused carrier attempts refused while it was going)}"
run_calls 1 50
[ "$(grep -c ' modev: ' $T/trace)" = 50 ] || fail "module back: $(grep -c ' modev: ' $T/trace) events"
echo 0 > $T/events/optp/modev/enable
echo "-:optp/modev" >> $T/kprobe_events
echo "p:optp/parity $SITE $ARGS" >> $T/kprobe_events
echo 1 > $T/events/optp/parity/enable
ms=$(wait_state optimized) || fail "parity event again: $(site_reason)"
# rmmod optprobe with the event live: it stays, as a BRK kprobe. (The
# target may load elsewhere this time: compare with a run of this load.)
run_calls 1 50
body > /tmp/opt4.txt
rmmod optprobe || fail "rmmod with a carried event"
run_calls 1 50
body > /tmp/after.txt
same_or_fail /tmp/opt4.txt /tmp/after.txt "trace bodies differ after rmmod optprobe"
cleanup_events
cleanup
echo "ok"
