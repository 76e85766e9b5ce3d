# Probes through the control file: on the test target and on kernel text,
# at entry and mid-function; state, reason and hit counts in the listing.
. /tests/kselftest/lib/common.sh
load_all

ctl "p:args optprobe_target_args+4" || fail "add args"
ctl "p:entry optprobe_target_args" || fail "add entry"
ctl "p:adrp optprobe_target_adrp+4" || fail "add adrp"
ctl "p:blr optprobe_target_blr_insn" || fail "add blr"
cat $SYS/probes
[ "$(state args)" = optimized ] || fail "args: $(state args) ($(reason args))"
# sym+0 is "bti c": a landing pad where the kernel is built for BTI and the
# CPU enforces it, an ordinary hint with arm64.nobti; a kernel built without
# BTI (GCC-built Debian) has no landing pad there at all.
if entry_is_landing_pad; then
    [ "$(state entry)" = kprobe ] || fail "entry (bti) optimized"
    [ "$(reason entry)" = "BTI landing pad (notrace: no ftrace call site)" ] || fail "entry reason '$(reason entry)'"
else
    [ "$(state entry)" = optimized ] || fail "entry without BTI: $(state entry) ($(reason entry))"
fi
[ "$(state adrp)" = optimized ] || fail "adrp (relocated): $(state adrp) ($(reason adrp))"
[ "$(reason blr)" = "indirect call (BLR)" ] || fail "blr reason '$(reason blr)'"
# The probe sits on the global label optprobe_target_args_insn (= args+4).
case "$(field args 2)" in optprobe_target_args_insn+0x0|optprobe_target_args+0x4) ;; *) fail "args symbol '$(field args 2)'";; esac
call_target 25
[ "$(hits args)" = 25 ] || fail "args hits $(hits args), want 25"
[ "$(hits entry)" = 25 ] || fail "entry hits $(hits entry), want 25"

# Multi-line writes: applied all or nothing, one text-patch batch.
printf 'p:m1 optprobe_target_args+8\np:m2 optprobe_target_args+12\n' > $SYS/control || fail "multi-line add"
[ "$(state m1)" = optimized ] && [ "$(state m2)" = optimized ] || fail "multi-line add: $(state m1) $(state m2)"
printf -- '-:m1\n-:m2\n' > $SYS/control || fail "multi-line remove"
[ -z "$(state m1)$(state m2)" ] || fail "multi-line remove left probes"

# Kernel text: every 4-byte offset in the first 64 bytes of a few hot
# functions. Some offsets are refused by kprobes (ftrace sites); the rest must
# never fall back for lack of trampoline memory, KASLR or not.
opt=0 brk=0 refused=0
for f in vfs_read ksys_read do_sys_openat2 kernel_clone; do
    off=0
    while [ $off -lt 64 ]; do
        if ctl "p:${f}_$off $f+$off" >/dev/null; then
            if [ "$(state ${f}_$off)" = optimized ]; then opt=$((opt + 1)); else brk=$((brk + 1)); fi
        else
            refused=$((refused + 1))
        fi
        off=$((off + 4))
    done
done
grep -v '^#' $SYS/probes | grep -q "no trampoline memory" && fail "fallback for lack of trampoline memory"
info "kernel text: $opt optimized, $brk kprobe, $refused refused by kprobes"
[ $opt -ge 20 ] || fail "only $opt kernel-text probes optimized"
cat /proc/version > /dev/null; ls / > /dev/null; sh -c true
total=$(awk '$1 ~ /^vfs_read_/ && $4 == "optimized" { s += $5 } END { print s + 0 }' $SYS/probes)
[ "$total" -gt 0 ] || fail "no hits on optimized vfs_read probes"
info "optimized vfs_read probes: $total hits"
grep -v '^#' $SYS/probes | awk '{ print $4 }' | sort | uniq -c

for name in $(awk '!/^#/ { print $1 }' $SYS/probes); do
    ctl "-:$name" || fail "remove $name"
done
[ "$(nprobes)" = 0 ] || fail "probes left after removing all"
cleanup
exit 0
