# 10,000 malformed, random and valid writes to the control file (seeded, see
# /tests/fuzz_seed). Each succeeds or fails with an errno; the listing stays
# well-formed; afterwards every probe is removed and no trampoline page stays.
. /tests/kselftest/lib/common.sh
[ "$OPTSUITE" = main ] || skip "the fuzz runs in the main boot"
load_all
seed=$(cat /tests/fuzz_seed)
info "fuzz seed $seed (replay: scripts/fuzz-lines $seed 10000)"
vm_before=$(grep -c . /proc/vmallocinfo)
ok=0 bad=0 n=0
check_listing() {
    grep -v '^#' $SYS/probes | awk '
        NF < 7 { print "short line: " $0; bad = 1 }
        $4 != "optimized" && $4 != "kprobe" && $4 != "ftrace" { print "bad state: " $0; bad = 1 }
        seen[$1]++ { print "duplicate name: " $1; bad = 1 }
        END { exit bad }' || fail "listing malformed after $n writes"
}
# Each refusal logs one pr_warn line; printing ~10,000 of them on the
# emulated UART would take a minute. Keep them in dmesg only for the loop,
# and scan dmesg for kernel errors ourselves.
dmesg -c > /dev/null
old_level=$(cut -f1 /proc/sys/kernel/printk)
trap 'echo "$old_level" > /proc/sys/kernel/printk' EXIT
echo 4 > /proc/sys/kernel/printk
while [ $n -lt 10000 ]; do
    set -- $(fuzzwrite /tests/fuzz_lines $SYS/control $n 2000)
    [ "$1" = accepted ] || fail "fuzzwrite failed at line $n"
    ok=$((ok + $2)) bad=$((bad + $4)) n=$((n + 2000))
    check_listing
done
echo "$old_level" > /proc/sys/kernel/printk
warns=$(dmesg | grep -c "optprobe: ")
dmesg | grep -E "Oops|BUG:|WARNING:|Call trace|panic" && fail "kernel errors during the fuzz"
info "fuzz: $warns optprobe warnings still in the dmesg ring (kept off the console)"
check_listing
info "fuzz: $n writes, $ok accepted, $bad refused, $(nprobes) probes listed"
[ $n = 10000 ] || fail "only $n lines written"
for name in $(awk '!/^#/ { print $1 }' $SYS/probes); do
    ctl "-:$name" || fail "remove $name"
done
[ "$(nprobes)" = 0 ] || fail "probes left"
rmmod optprobe || fail "rmmod"
vm_after=$(grep -c . /proc/vmallocinfo)
info "vmallocinfo entries: $vm_before before, $vm_after after"
[ "$vm_after" -le "$vm_before" ] || fail "vmalloc areas leaked: $vm_before -> $vm_after"
cleanup
exit 0
