# Run one in-kernel case of optprobe_ktest: load, run (init), unload.
. /tests/kselftest/lib/common.sh
case=$1
shift
load_all
insmod $M/optprobe_ktest.ko case="$case" "$@"
rc=$?
cleanup
[ $rc = 0 ] || { echo "ktest case '$case' failed (see optprobe_ktest lines above)"; exit 1; }
exit 0
