# Last: on a kmemleak kernel (make test-debug), scan and fail on any suspected
# leak allocated by optprobe or its test modules. Skipped elsewhere.
. /tests/kselftest/lib/common.sh
K=/sys/kernel/debug/kmemleak
[ -e $K ] || skip "kernel without kmemleak (make test-debug has it)"
cleanup
# Objects must stay unreferenced across scans before kmemleak reports them.
echo scan > $K; sleep 6; echo scan > $K; sleep 6; echo scan > $K
total=$(grep -c "^unreferenced object" $K)
ours=$(awk '/^unreferenced object/ { n++ } /optprobe/ { hit[n] = 1 } END { c = 0; for (i in hit) c++; print c }' $K)
info "kmemleak: $total suspected leaks in all, $ours from optprobe modules"
[ "$ours" = 0 ] || { grep -A20 optprobe $K | head -60; fail "kmemleak: $ours leaks from optprobe"; }
exit 0
