#!/bin/sh
# Coverage of function-entry probes (issue 13): kprobe_events probes at
# sym+0 of a seeded random sample of 200 functions from
# available_filter_functions, made fast with auto=1: on a BTI kernel
# through ftrace, elsewhere (or where a function has no landing pad) with a
# branch. Prints "RESULT entry fast: NN.N% of N" and fails below 99%; every
# probe that stays slow, and every function kprobes refuses, is named with
# its reason.
. /tests/kselftest/lib/common.sh
T=/sys/kernel/tracing
grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev $T
SEED=${COVERAGE_SEED:-13}
WANT=${COVERAGE_N:-200}

load_all
echo 0 > $T/events/enable
echo > $T/kprobe_events || fail "kprobe_events busy"
echo 0 > $T/tracing_on
# Kernel functions only (module ones have a " [mod]" suffix), one sample.
grep -v ' \[' $T/available_filter_functions | sort -u |
    awk -v seed=$SEED -v n=$WANT 'BEGIN { srand(seed) } { f[NR] = $1 }
        END { for (i = 0; i < n && NR > 0; i++) { j = int(rand() * NR) + 1; print f[j]; f[j] = f[NR]; NR-- } }' > /tmp/sample
[ "$(wc -l < /tmp/sample)" = "$WANT" ] || fail "sample: $(wc -l < /tmp/sample) functions"
n=0; refused=0
: > /tmp/refused
while read -r fn; do
    if echo "p:cov/f$n $fn" >> $T/kprobe_events 2>/dev/null; then
        n=$((n + 1))
    else
        refused=$((refused + 1))
        echo "$fn: $(tail -1 $T/error_log | sed 's/.*: //')" >> /tmp/refused
    fi
done < /tmp/sample
[ $n -gt 0 ] || fail "no probe accepted"
echo 1 > $T/events/cov/enable || fail "enable the sample"
echo 1 > $SYS/auto
fast_count() { awk '$1 ~ /^@/ && $2 ~ /\+0x0$/ && ($4 == "ftrace" || $4 == "optimized")' $SYS/probes | wc -l; }
i=0; last=-1; same=0
while [ $i -lt 100 ]; do
    f=$(fast_count)
    [ "$f" = $n ] && break
    if [ "$f" = "$last" ]; then same=$((same + 1)); [ $same -ge 10 ] && break; else same=0; fi
    last=$f; i=$((i + 1)); usleep 100000
done
fast=$(fast_count)
ftrace=$(awk '$1 ~ /^@/ && $4 == "ftrace"' $SYS/probes | wc -l)
pct=$(awk -v f=$fast -v n=$n 'BEGIN { printf "%.1f", 100 * f / n }')
echo "RESULT entry fast: $pct% of $n"
info "seed $SEED: $WANT sampled, $n probed ($ftrace through ftrace, $((fast - ftrace)) with a branch), $refused refused by kprobes"
while read -r line; do info "refused: $line"; done < /tmp/refused
awk '$1 ~ /^@/ && $4 != "ftrace" && $4 != "optimized" { r = ""; for (i = 7; i <= NF; i++) r = r " " $i; print "slow:", $2, $4 r }' $SYS/probes
echo 0 > $T/events/cov/enable
echo 0 > $SYS/auto
i=0; while [ "$(statval carriers)" != 0 ]; do i=$((i + 1)); [ $i -lt 500 ] || fail "carriers left"; usleep 10000; done
echo > $T/kprobe_events
echo 1 > $T/tracing_on
awk -v f=$fast -v n=$n 'BEGIN { exit !(f * 1000 >= n * 990) }' || fail "entry fast $pct% of $n, want >= 99%"
cleanup
echo "ok"
