# Instruction-boundary sweep: a probe on every one of the first 64
# instructions of hot kernel functions, all at once, under a fork/exec/read/
# open workload on every CPU for 30 s (120 s in make test-long); then all
# removed in one write per function. Reports counts by state and reason. The kernel log
# checker fails the boot on any Oops, BUG, WARNING or Call trace.
. /tests/kselftest/lib/common.sh
[ "$OPTSUITE" = cpus4 ] || skip "the boundary sweep runs in the 4-CPU boot"
secs=30
[ "$OPTLONG" = 1 ] && secs=120
funcs="kernel_clone vfs_read do_sys_openat2 schedule"
load_all
pages0=$(statval trampoline_pages)

attached=0 refused=0
for f in $funcs; do
    # The first 64 instructions, or all of a shorter function.
    set -- $(probe_function $f $f 64)
    attached=$((attached + $1)) refused=$((refused + $2))
done
info "attached $attached probes, $refused offsets refused (ftrace call sites, kprobes blacklist, ftrace ops literals)"
[ $attached -ge 150 ] || fail "only $attached probes attached"
info "by state and reason:"
grep -v '^#' $SYS/probes | awk '{ r = $7; for (i = 8; i <= NF; i++) r = r " " $i; print $4 " (" r ")" }' | sort | uniq -c
info "not optimized:"
grep -v '^#' $SYS/probes | awk '$4 != "optimized" { r = $7; for (i = 8; i <= NF; i++) r = r " " $i; print "  " $2 ": " r }'
grep -v '^#' $SYS/probes | grep -q "no trampoline memory" && fail "fallback for lack of trampoline memory"

# The workload: four shells forking, exec'ing, opening and reading.
end=$(( $(date +%s) + secs ))
i=0
while [ $i -lt 4 ]; do
    ( n=0
      while [ $(date +%s) -lt $end ]; do
          /bin/true
          cat /proc/version /tests/kselftest/10_load_unload.sh > /dev/null
          dd if=/proc/kallsyms of=/dev/null bs=4k count=4 2> /dev/null
          n=$((n + 1))
      done
      echo $n > /tmp/boundary_$i ) &
    i=$((i + 1))
done
wait
loops=$(cat /tmp/boundary_* | awk '{ s += $1 } END { print s + 0 }')
info "workload: $secs s on 4 CPUs, $loops loops (each: fork+exec, open+read x2, read)"
total=0
for f in $funcs; do
    # One read of the listing for both sums: reading it is itself a vfs_read.
    set -- $(awk -v p="^${f}_" '$1 ~ p { s += $5; if ($4 == "optimized") o += $5 } END { print s + 0, o + 0 }' $SYS/probes)
    h=$1 opt=$2
    info "$f: $h hits ($opt through trampolines)"
    [ "$opt" -gt 0 ] || fail "$f: no hits through trampolines"
    total=$((total + h))
done
missed=$(awk '!/^#/ { s += $6 } END { print s + 0 }' $SYS/probes)
info "total: $total hits, $missed missed, on $attached probes in $secs s"

for f in $funcs; do
    names=$(awk -v p="^${f}_" '$1 ~ p { printf "-:%s\n", $1 }' $SYS/probes)
    [ -z "$names" ] && continue
    ( printf "%s\n" "$names" > $SYS/control ) || fail "removing the $f probes"
done
[ "$(nprobes)" = 0 ] || fail "$(nprobes) probes left after removing all"
[ "$(statval trampoline_pages)" = "$pages0" ] || fail "trampoline pages $pages0 -> $(statval trampoline_pages)"
info "all removed; trampoline pages back to $pages0"
cleanup
exit 0
