# Run one in-kernel case of optprobe_ktest: load, run (init), unload.
# The boot's suite (OPTSUITE, see scripts/guest/run.sh) picks the cases and
# their sizes; OPTLONG=1 (make test-long) makes torture run 60 s.
. /tests/kselftest/lib/common.sh
case=$1
shift
case "$case:$OPTSUITE" in
    torture:cpus4) set -- seconds=$([ "$OPTLONG" = 1 ] && echo 60 || echo 10) "$@" ;;
    torture:*) skip "torture runs in the 4-CPU boot" ;;
    races:layout) set -- seconds=3 "$@" ;;
    races:*) skip "races runs in the layout boot; torture covers it in the 4-CPU boot" ;;
    scale:layout) set -- scale_probes=300 "$@" ;;   # still two batches
esac
load_all
insmod $M/optprobe_ktest.ko case="$case" "$@"
rc=$?
cleanup
[ $rc = 0 ] || { echo "ktest case '$case' failed (see optprobe_ktest lines above)"; exit 1; }
exit 0
