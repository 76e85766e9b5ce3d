# Run one in-kernel case of optprobe_ktest: load, run (init), unload.
# The suite (OPTSUITE, from optsuite= on the kernel command line) sets the
# size of the long cases: full (default), quick (the second boot of make
# test: address-layout checks only) or long (make test-long).
. /tests/kselftest/lib/common.sh
case=$1
shift
case "$case:${OPTSUITE:-full}" in
    torture:long) set -- seconds=60 "$@" ;;
    torture:quick) skip "torture runs in the full suite (KASLR boot)" ;;
    torture:*) set -- seconds=10 "$@" ;;
    races:quick) set -- seconds=3 "$@" ;;
    races:*) skip "in this suite, torture covers attach/detach under load" ;;
    scale:quick) set -- scale_probes=300 "$@" ;;   # still two batches
esac
load_all
insmod $M/optprobe_ktest.ko case="$case" "$@"
rc=$?
cleanup
[ $rc = 0 ] || { echo "ktest case '$case' failed (see optprobe_ktest lines above)"; exit 1; }
exit 0
